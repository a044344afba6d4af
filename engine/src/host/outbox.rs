//! The queue between a connection's reader and its writer: what the reader asks the writer
//! to send, bounded so that a client that sends faster than it reads is slowed down.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::admission::Usage;
use super::feed::{Cursor, MemberId};
use super::room::{Room, Welcome};
use crate::protocol::ByeCode;

/// What the reader asks the writer to do.
pub(super) enum Outbound {
    /// Send this frame (ack, error, hello).
    Frame(Utf8Bytes),
    /// Send the welcome, then the rest of its history (`backlog`, from `room`) in pieces,
    /// then forward the room's events from `events` as `member`.
    Enter {
        welcome: Welcome,
        events: Cursor,
        member: MemberId,
        room: Arc<Room>,
        backlog: Vec<u64>,
    },
    /// Stop forwarding room events (the client left the room).
    Exit,
    /// Say goodbye and close the connection, with a close code other than the usual one for
    /// this bye code if given (1009 for an oversized message, 1007 for invalid UTF-8).
    Bye(ByeCode, String, Option<CloseCode>),
    /// Answer the client's ping.
    Pong(Bytes),
    /// The client closed: answer with a close frame of this code and stop.
    CloseReply(u16),
}

/// The reader's requests to the writer: a bounded queue between the two halves of one
/// connection. Unlike a channel it allocates nothing while empty, so an idle connection
/// keeps no block of slots; a connection's task owns it and both halves borrow it.
pub(super) struct Outbox {
    state: std::sync::Mutex<OutboxState>,
    /// Something was queued, or the reader finished.
    queued: Notify,
    /// The writer took what was queued, or finished.
    drained: Notify,
    /// Requests the reader may queue before it waits...
    bound: usize,
    /// ...and bytes.
    byte_bound: usize,
    /// The host's memory in use, which queued bytes count toward.
    usage: Arc<Usage>,
}

#[derive(Default)]
struct OutboxState {
    items: VecDeque<Outbound>,
    /// The bytes of `items`.
    bytes: usize,
    reader_done: bool,
    writer_done: bool,
}

impl Outbox {
    pub(super) fn new(bound: usize, byte_bound: usize, usage: Arc<Usage>) -> Self {
        Self {
            state: Default::default(),
            queued: Notify::new(),
            drained: Notify::new(),
            bound: bound.max(1),
            byte_bound: byte_bound.max(1),
            usage,
        }
    }

    fn is_full(&self, state: &OutboxState) -> bool {
        state.items.len() >= self.bound || state.bytes >= self.byte_bound
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        // Never held across an await; a panic elsewhere leaves the queue itself intact.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request; the writer has ended if it cannot be.
    pub(super) fn push(&self, item: Outbound) -> Result<(), Stop> {
        let mut state = self.state();
        if state.writer_done {
            return Err(Stop::WriterGone);
        }
        let bytes = item.bytes();
        state.bytes += bytes;
        state.items.push_back(item);
        drop(state);
        self.usage.add(bytes);
        self.queued.notify_one();
        Ok(())
    }

    /// Waits until the queue is below its bound.
    pub(super) async fn room_for_more(&self) -> Result<(), Stop> {
        loop {
            {
                let state = self.state();
                if state.writer_done {
                    return Err(Stop::WriterGone);
                }
                if !self.is_full(&state) {
                    return Ok(());
                }
            }
            self.drained.notified().await;
        }
    }

    /// The next request without waiting.
    pub(super) fn take(&self) -> Option<Outbound> {
        let mut state = self.state();
        let was_full = self.is_full(&state);
        let item = state.items.pop_front();
        if let Some(item) = &item {
            let bytes = item.bytes();
            state.bytes -= bytes;
            self.usage.sub(bytes);
            if state.items.is_empty() {
                // An idle connection keeps nothing: most connections are idle most of the
                // time, and a reply costs an allocation for its bytes anyway.
                state.items = VecDeque::new();
            }
            drop(state);
            // Only a full outbox has a reader waiting for room.
            if was_full {
                self.drained.notify_one();
            }
        }
        item
    }

    /// The next request; None once the reader has finished and everything queued was taken.
    pub(super) async fn next(&self) -> Option<Outbound> {
        loop {
            if let Some(item) = self.take() {
                return Some(item);
            }
            if self.state().reader_done {
                return None;
            }
            self.queued.notified().await;
        }
    }

    pub(super) fn reader_finished(&self) {
        self.state().reader_done = true;
        self.queued.notify_one();
    }

    pub(super) fn writer_finished(&self) {
        let mut state = self.state();
        state.writer_done = true;
        // What was never sent is dropped now, not when the connection's task ends.
        state.items = VecDeque::new();
        let bytes = std::mem::take(&mut state.bytes);
        drop(state);
        self.usage.sub(bytes);
        self.drained.notify_one();
    }
}

impl Outbound {
    /// Roughly what it holds in memory.
    fn bytes(&self) -> usize {
        match self {
            Outbound::Frame(frame) => frame.len(),
            Outbound::Enter {
                welcome, backlog, ..
            } => welcome.parts.iter().map(Bytes::len).sum::<usize>() + backlog.len() * 8,
            Outbound::Bye(_, message, _) => message.len(),
            Outbound::Pong(data) => data.len(),
            Outbound::Exit | Outbound::CloseReply(_) => 0,
        }
    }
}

/// Why the reader cannot go on queueing.
#[derive(Debug)]
pub(super) enum Stop {
    /// Stop reading; the writer has been told what to say.
    Violation,
    /// The writer has ended, so nothing more can be sent.
    WriterGone,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    pub(super) fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    pub(super) fn frame(text: &'static str) -> Outbound {
        Outbound::Frame(Utf8Bytes::from_static(text))
    }

    #[test]
    fn the_outbox_holds_the_reader_at_its_bound_and_lets_it_go_when_drained() {
        let outbox = Outbox::new(2, 1 << 20, Default::default());
        outbox.push(frame("a")).unwrap();
        assert!(poll_once(std::pin::pin!(outbox.room_for_more())).is_ready());
        outbox.push(frame("b")).unwrap();
        let mut wait = std::pin::pin!(outbox.room_for_more());
        assert!(poll_once(wait.as_mut()).is_pending(), "full at 2");
        assert!(matches!(outbox.take(), Some(Outbound::Frame(f)) if f.as_str() == "a"));
        assert!(matches!(poll_once(wait.as_mut()), Poll::Ready(Ok(()))));
        // Nothing is lost and the order is kept.
        assert!(matches!(outbox.take(), Some(Outbound::Frame(f)) if f.as_str() == "b"));
        assert!(outbox.take().is_none());
    }

    #[test]
    fn the_outbox_tells_each_side_when_the_other_has_finished() {
        let outbox = Outbox::new(1, 1 << 20, Default::default());
        outbox.push(frame("last")).unwrap();
        outbox.reader_finished();
        // The writer still gets what was queued before the reader finished, then None.
        let mut next = std::pin::pin!(outbox.next());
        assert!(matches!(poll_once(next.as_mut()), Poll::Ready(Some(_))));
        assert!(matches!(
            poll_once(std::pin::pin!(outbox.next())),
            Poll::Ready(None)
        ));

        let outbox = Outbox::new(1, 1 << 20, Default::default());
        outbox.push(frame("unsent")).unwrap();
        let mut wait = std::pin::pin!(outbox.room_for_more());
        assert!(poll_once(wait.as_mut()).is_pending());
        outbox.writer_finished();
        assert!(matches!(
            poll_once(wait.as_mut()),
            Poll::Ready(Err(Stop::WriterGone))
        ));
        assert!(matches!(outbox.push(frame("late")), Err(Stop::WriterGone)));
        assert!(outbox.take().is_none(), "what was never sent is dropped");
    }
}
