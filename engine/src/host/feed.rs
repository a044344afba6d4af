//! A room's events on their way to its members: a bounded ring of frames, built once, that
//! every member's writer reads at its own pace.
//!
//! Unlike a channel that hands each receiver one clone per event (a reference-count bump,
//! a slot lock and a counter on lines every core touches), a writer here takes everything
//! that is new in one short critical section and copies those frames' bytes straight into
//! its own write buffer: one lock per batch, nothing shared touched per delivery. A member
//! more than `capacity` events behind has lost events and is told so (`Lagged`).

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A member's identity inside one room, unique for the host's lifetime.
pub(crate) type MemberId = u64;

/// One frame on its way to a room's members: the WebSocket frame, built once, plus who may
/// see it. It stays in the feed; members copy its bytes out, never the frame.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The member whose action this is: they get an `ack` instead of the event.
    pub origin: MemberId,
    /// For private messages, the only member who receives it.
    pub only: Option<MemberId>,
    /// The origin receives it too: an event made by an upload, which has no `ack`.
    pub echo: bool,
    pub frame: bytes::Bytes,
}

impl Delivery {
    /// Whether `member` should be sent this frame.
    pub fn is_for(&self, member: MemberId) -> bool {
        if member == self.origin {
            return self.echo;
        }
        self.only.is_none_or(|only| only == member)
    }
}

pub(crate) struct Feed {
    ring: Mutex<Ring>,
    /// Events ever published: lets a writer see whether there is news without the lock.
    published: AtomicU64,
    news: Notify,
}

struct Ring {
    items: VecDeque<Delivery>,
    capacity: usize,
    /// The frames' bytes, and the most they may be: long messages shorten how far behind a
    /// member may fall instead of growing the room's memory.
    bytes: usize,
    max_bytes: usize,
    /// The number of the event at `items[0]`.
    first: u64,
}

/// A member fell this many events behind the room (more than the feed keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lagged(pub u64);

impl Feed {
    pub fn new(capacity: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: Mutex::new(Ring {
                items: VecDeque::new(),
                capacity: capacity.max(1),
                bytes: 0,
                max_bytes: max_bytes.max(1),
                first: 0,
            }),
            published: AtomicU64::new(0),
            news: Notify::new(),
        })
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic elsewhere cannot leave the ring half-changed: every change is one push or
        // pop, so a poisoned lock's data is still good.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an event and wakes every writer waiting for news.
    pub fn publish(&self, delivery: Delivery) {
        {
            let mut ring = self.ring();
            ring.bytes += delivery.frame.len();
            ring.items.push_back(delivery);
            while ring.items.len() > ring.capacity
                || (ring.bytes > ring.max_bytes && ring.items.len() > 1)
            {
                if let Some(gone) = ring.items.pop_front() {
                    ring.bytes -= gone.frame.len();
                    ring.first += 1;
                }
            }
            // Stored under the lock, so a cursor made at the same time sees a count that
            // matches the ring.
            self.published
                .store(ring.first + ring.items.len() as u64, Ordering::Release);
        }
        self.news.notify_waiters();
    }

    /// Forgets every frame (numbering goes on), freeing the ring; only for a room nobody
    /// reads any more.
    pub fn clear(&self) {
        let mut ring = self.ring();
        if !ring.items.is_empty() || ring.items.capacity() > 0 {
            ring.first += ring.items.len() as u64;
            ring.items = VecDeque::new();
            ring.bytes = 0;
        }
    }

    /// A reader that will see the events published from now on.
    pub fn cursor(self: &Arc<Self>) -> Cursor {
        let ring = self.ring();
        Cursor {
            feed: Arc::clone(self),
            next: ring.first + ring.items.len() as u64,
        }
    }
}

/// One member's place in a feed.
pub(crate) struct Cursor {
    feed: Arc<Feed>,
    next: u64,
}

impl Cursor {
    pub fn has_news(&self) -> bool {
        self.feed.published.load(Ordering::Acquire) > self.next
    }

    /// Waits until there is something this cursor has not taken.
    pub async fn news(&self) {
        loop {
            let mut notified = pin!(self.feed.news.notified());
            // Registered before looking, so an event published in between still wakes us.
            notified.as_mut().enable();
            if self.has_news() {
                return;
            }
            notified.await;
        }
    }

    /// Hands the frames of up to `max` new events meant for `member` to `take`, in order,
    /// and moves past them; stops early after a frame for which `take` says `false` (it has
    /// enough). Returns how many events were passed over (taken or not meant for `member`),
    /// or how far behind the room the member is if the ring moved on without it.
    pub fn take(
        &mut self,
        member: MemberId,
        max: usize,
        mut take: impl FnMut(&[u8]) -> bool,
    ) -> Result<usize, Lagged> {
        let ring = self.feed.ring();
        if self.next < ring.first {
            return Err(Lagged(ring.first + ring.items.len() as u64 - self.next));
        }
        let from = (self.next - ring.first) as usize;
        let mut passed = 0;
        for delivery in ring.items.range(from..).take(max) {
            passed += 1;
            if delivery.is_for(member) && !take(&delivery.frame) {
                break;
            }
        }
        self.next += passed as u64;
        Ok(passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(origin: MemberId, only: Option<MemberId>, text: &'static str) -> Delivery {
        Delivery {
            origin,
            only,
            echo: false,
            frame: Bytes::from_static(text.as_bytes()),
        }
    }

    fn drain(cursor: &mut Cursor, member: MemberId, max: usize) -> (Vec<String>, usize) {
        let mut got = Vec::new();
        let passed = cursor
            .take(member, max, |f| {
                got.push(String::from_utf8(f.to_vec()).unwrap());
                true
            })
            .expect("not lagged");
        (got, passed)
    }

    #[test]
    fn a_cursor_sees_only_what_was_published_after_it_and_meant_for_its_member() {
        let feed = Feed::new(8, 1 << 20);
        feed.publish(event(1, None, "before"));
        let mut cursor = feed.cursor();
        assert!(!cursor.has_news());
        feed.publish(event(1, None, "a"));
        feed.publish(event(2, None, "own"));
        feed.publish(event(1, Some(3), "private to 3"));
        feed.publish(event(1, Some(2), "private to 2"));
        assert!(cursor.has_news());
        let (got, passed) = drain(&mut cursor, 2, 2);
        assert_eq!((got, passed), (vec!["a".to_string()], 2));
        let (got, passed) = drain(&mut cursor, 2, 100);
        assert_eq!((got, passed), (vec!["private to 2".to_string()], 2));
        assert!(!cursor.has_news());
    }

    #[test]
    fn a_writer_that_has_enough_stops_after_the_frame_that_filled_it() {
        let feed = Feed::new(8, 1 << 20);
        let mut cursor = feed.cursor();
        for text in ["one", "two", "three"] {
            feed.publish(event(1, None, text));
        }
        let mut got = Vec::new();
        let passed = cursor.take(2, 10, |f| {
            got.push(f.to_vec());
            got.len() < 2
        });
        assert_eq!((got.len(), passed), (2, Ok(2)));
        assert_eq!(drain(&mut cursor, 2, 10).0, vec!["three".to_string()]);
    }

    #[test]
    fn a_cursor_left_behind_by_the_ring_says_how_much_it_lost() {
        let feed = Feed::new(3, 1 << 20);
        let mut slow = feed.cursor();
        for _ in 0..5 {
            feed.publish(event(1, None, "x"));
        }
        // Five events behind, of which the ring keeps three: the member is told five.
        assert_eq!(slow.take(2, 10, |_| true), Err(Lagged(5)));
        let mut fresh = feed.cursor();
        feed.publish(event(1, None, "y"));
        assert_eq!(drain(&mut fresh, 2, 10).0, vec!["y".to_string()]);
    }

    #[test]
    fn long_frames_shorten_the_ring_instead_of_growing_it() {
        let feed = Feed::new(100, 1000);
        let mut slow = feed.cursor();
        let big: &'static [u8] = Box::leak(vec![b'x'; 300].into_boxed_slice());
        for _ in 0..10 {
            feed.publish(Delivery {
                origin: 1,
                only: None,
                echo: false,
                frame: Bytes::from_static(big),
            });
        }
        // Three frames fit in 1,000 bytes: a member who took none is ten behind.
        assert_eq!(feed.ring().items.len(), 3);
        assert_eq!(slow.take(2, 10, |_| true), Err(Lagged(10)));
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_the_next_event() {
        let feed = Feed::new(8, 1 << 20);
        let cursor = feed.cursor();
        let waiting = tokio::spawn(async move {
            cursor.news().await;
            cursor.has_news()
        });
        tokio::task::yield_now().await;
        feed.publish(event(1, None, "wake"));
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the writer was never woken")
            .unwrap();
        assert!(woke);
    }
}
