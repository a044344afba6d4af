//! A room's recent history in memory: the last events in order, and which client requests
//! they answer, so that a request resent after a lost acknowledgement is acknowledged again
//! with its original place instead of being stored twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::Placed;
use crate::host::admission::Usage;
use crate::host::store::{Record, SessionTag};
use crate::protocol::{ChatEvent, EventBody, Since};

/// Bytes of events a welcome, or a `history` frame after it, carries at most (their JSON,
/// unless one event alone is larger): a long resume comes in pieces, paced by the client's
/// reading, and no frame grows past what WebSocket libraries accept (many refuse 1 MiB).
pub(crate) const HISTORY_PIECE_BYTES: usize = 64 * 1024;

pub(crate) struct History {
    /// The most recent events, oldest first, at most `cap` of them and `max_bytes`.
    records: VecDeque<Record>,
    /// The size of each record's event on the wire, in the same order.
    sizes: VecDeque<usize>,
    bytes: usize,
    max_bytes: usize,
    /// How many of `records` are joins and leaves.
    presence: usize,
    /// The host's memory in use, which this history counts toward.
    usage: Arc<Usage>,
    /// (session tag, request id) to the place it was given. Rebuilt from saved history on
    /// restart, so de-duplication survives the host too.
    answered: HashMap<(SessionTag, String), Placed>,
    /// The keys of `answered`, oldest first, to bound it.
    answered_order: VecDeque<(SessionTag, String)>,
    cap: usize,
}

/// What a (re)joining member is shown.
pub(crate) struct Wanted<'a> {
    pub tag: SessionTag,
    /// Where the member left off, if it is resuming in this room's epoch.
    pub since: Option<&'a Since>,
    /// The room's last sequence number.
    pub seq: u64,
    /// An event not to show (the member's own join, which its welcome announces).
    pub except: Option<u64>,
    /// In a big room, newcomers get the conversation without joins and leaves.
    pub big_room: bool,
    /// How many recent events a newcomer gets.
    pub recent: usize,
}

impl History {
    /// History restored from disk (or empty), keeping the last `cap` events (and at most
    /// `max_bytes` of them).
    pub fn restore(records: Vec<Record>, cap: usize, max_bytes: usize, usage: Arc<Usage>) -> Self {
        let mut history = Self {
            records: VecDeque::new(),
            sizes: VecDeque::new(),
            bytes: 0,
            max_bytes: max_bytes.max(1),
            presence: 0,
            usage,
            answered: HashMap::new(),
            answered_order: VecDeque::new(),
            cap: cap.max(1),
        };
        // Every record goes through the same policy as live ones, so what a restart keeps
        // is what the running host kept (the conversation over comings and goings).
        for record in records {
            let size = serde_json::to_vec(&record.event).map_or(0, |v| v.len());
            history.push(record, size);
        }
        history.records.shrink_to_fit();
        history
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.records.back().map(|r| r.event.seq)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.records.iter()
    }

    /// Keeps an event of `size` bytes on the wire (dropping the oldest past the caps) and
    /// remembers which request made it.
    pub fn push(&mut self, record: Record, size: usize) {
        if let (Some(by), Some(id)) = (record.by, record.event.body.request_id()) {
            let placed = Placed {
                seq: record.event.seq,
                ts: record.event.ts,
            };
            self.remember((by, id.to_owned()), placed);
        }
        self.presence += usize::from(record.is_presence());
        self.records.push_back(record);
        self.sizes.push_back(size);
        self.bytes += size;
        self.usage.add(size);
        while self.records.len() > self.cap
            || (self.bytes > self.max_bytes && self.records.len() > 1)
        {
            // Comings and goings give way first once they are more than a quarter of what
            // is kept: churn never pushes the conversation out.
            let index = match self.presence > self.cap / 4 {
                true => self
                    .records
                    .iter()
                    .position(Record::is_presence)
                    .unwrap_or(0),
                false => 0,
            };
            let Some(gone) = self.records.remove(index) else {
                break;
            };
            self.presence -= usize::from(gone.is_presence());
            let size = self.sizes.remove(index).unwrap_or(0);
            self.bytes -= size;
            self.usage.sub(size);
        }
    }

    fn remember(&mut self, key: (SessionTag, String), placed: Placed) {
        if self.answered_order.len() >= self.cap {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
        self.answered_order.push_back(key.clone());
        self.answered.insert(key, placed);
    }

    /// Where the request `id` of the session tagged `tag` was placed, if it was.
    pub fn answered(&self, tag: SessionTag, id: &str) -> Option<Placed> {
        self.answered.get(&(tag, id.to_owned())).copied()
    }

    /// The events a (re)joining member gets, and whether nothing it missed is left out:
    /// everything after `since` that is still held, else the most recent ones. Private
    /// messages only to their pair.
    pub fn for_member(&self, wanted: &Wanted<'_>) -> (Vec<&ChatEvent>, bool) {
        let visible = |r: &&Record| r.visible_to(wanted.tag) && Some(r.event.seq) != wanted.except;
        match wanted.since {
            Some(since) => {
                let oldest_held = self
                    .records
                    .front()
                    .map_or(wanted.seq.saturating_add(1), |r| r.event.seq);
                let complete = since.seq.saturating_add(1) >= oldest_held;
                let events = self
                    .records
                    .iter()
                    .filter(|r| r.event.seq > since.seq)
                    .filter(visible)
                    .map(|r| &r.event)
                    .collect();
                (events, complete)
            }
            None => {
                // In a big room, who came and went before you arrived is noise (and a rush
                // of joins would fill the welcome with names): newcomers get the recent
                // conversation. Resuming clients (above) still get every event they missed.
                let presence = |r: &&Record| {
                    wanted.big_room
                        && matches!(
                            r.event.body,
                            EventBody::Joined { .. } | EventBody::Left { .. }
                        )
                };
                // Comings and goings take at most a quarter of what a newcomer is shown: the
                // conversation comes first, however much churn there was.
                let mut comings = 0;
                let mut recent: Vec<&ChatEvent> = self
                    .records
                    .iter()
                    .rev()
                    .filter(visible)
                    .filter(|r| !presence(r))
                    .filter(|r| {
                        if !r.is_presence() {
                            return true;
                        }
                        comings += 1;
                        comings <= wanted.recent / 4
                    })
                    .take(wanted.recent)
                    .map(|r| &r.event)
                    .collect();
                recent.reverse();
                (recent, true)
            }
        }
    }

    /// The event numbered `seq`, if it is still kept.
    pub fn get(&self, seq: u64) -> Option<&ChatEvent> {
        let at = self
            .records
            .binary_search_by_key(&seq, |r| r.event.seq)
            .ok()?;
        Some(&self.records[at].event)
    }
}

/// Splits events into the first piece (for the welcome) and the numbers of the rest, which
/// follow in `history` frames of at most [`HISTORY_PIECE_BYTES`].
pub(crate) fn first_piece(events: Vec<&ChatEvent>) -> (Vec<&ChatEvent>, Vec<u64>) {
    let mut bytes = 0;
    let fits = events
        .iter()
        .take_while(|e| {
            bytes += serde_json::to_vec(e).map_or(0, |v| v.len() + 1);
            bytes <= HISTORY_PIECE_BYTES
        })
        .count()
        .max(1)
        .min(events.len());
    let rest = events[fits..].iter().map(|e| e.seq).collect();
    let mut first = events;
    first.truncate(fits);
    (first, rest)
}

impl Drop for History {
    fn drop(&mut self) {
        self.usage.sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::session_tag;

    fn message(seq: u64, id: &str, text: &str) -> Record {
        Record {
            event: ChatEvent {
                seq,
                ts: seq,
                body: EventBody::Message {
                    id: id.into(),
                    from: "a".into(),
                    text: text.into(),
                },
            },
            by: Some(session_tag("session-a-0000000")),
            pair: None,
        }
    }

    fn wanted(since: Option<&Since>) -> Wanted<'_> {
        Wanted {
            tag: session_tag("session-b-0000000"),
            since,
            seq: 100,
            except: None,
            big_room: false,
            recent: 100,
        }
    }

    #[test]
    fn a_restored_history_still_knows_which_requests_it_answered() {
        let records = (1..=5).map(|s| message(s, &format!("m{s}"), "x")).collect();
        let history = History::restore(records, 3, 1 << 20, Default::default());
        assert_eq!(history.iter().count(), 3);
        let tag = session_tag("session-a-0000000");
        assert_eq!(history.answered(tag, "m5"), Some(Placed { seq: 5, ts: 5 }));
        assert_eq!(
            history.answered(tag, "m1"),
            None,
            "bounded like the history"
        );
        assert_eq!(
            history.answered(session_tag("other-session-00"), "m5"),
            None
        );
    }

    #[test]
    fn comings_and_goings_never_push_the_conversation_out() {
        let mut records: Vec<Record> = (1..=20)
            .map(|s| message(s, &format!("m{s}"), "hi"))
            .collect();
        for seq in 21..=2000 {
            let body = if seq % 2 == 0 {
                EventBody::Joined {
                    nick: "churn".into(),
                    also: Vec::new(),
                }
            } else {
                EventBody::Left {
                    nick: "churn".into(),
                    reason: crate::protocol::LeaveReason::Left,
                    also: Vec::new(),
                }
            };
            records.push(Record {
                event: ChatEvent { seq, ts: seq, body },
                by: None,
                pair: None,
            });
        }
        let history = History::restore(records, 100, 1 << 20, Default::default());
        let messages = history
            .iter()
            .filter(|r| matches!(r.event.body, EventBody::Message { .. }))
            .count();
        assert_eq!(messages, 20, "every message is kept");
        assert_eq!(history.iter().count(), 100);
        assert_eq!(history.last_seq(), Some(2000));
    }

    #[test]
    fn a_long_resume_is_split_into_pieces_and_nothing_is_left_out() {
        let long = "x".repeat(3000);
        let records = (1..=100)
            .map(|s| message(s, &format!("m{s}"), &long))
            .collect();
        let history = History::restore(records, 1000, 1 << 30, Default::default());
        let since = Since {
            epoch: "e".into(),
            seq: 0,
        };
        let (events, complete) = history.for_member(&wanted(Some(&since)));
        assert!(complete);
        assert_eq!(events.len(), 100);
        let (first, rest) = first_piece(events);
        let bytes: usize = first
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap().len())
            .sum();
        assert!(bytes <= HISTORY_PIECE_BYTES, "{bytes}");
        assert_eq!(first.first().unwrap().seq, 1, "the oldest come first");
        assert_eq!(first.len() + rest.len(), 100);
        assert_eq!(rest.first().copied(), Some(first.last().unwrap().seq + 1));
        assert_eq!(history.get(100).map(|e| e.seq), Some(100));
        // Bounded in bytes too: 100 events of 3 kB in 64 kB keep the newest 21 or so, and
        // the host's usage counts exactly what is kept.
        let usage = Arc::new(Usage::default());
        let records = (1..=100)
            .map(|s| message(s, &format!("m{s}"), &long))
            .collect();
        let small = History::restore(records, 1000, 64 * 1024, usage.clone());
        let kept = small.iter().count();
        assert!((15..=22).contains(&kept), "{kept}");
        assert_eq!(small.last_seq(), Some(100));
        assert!(
            usage.bytes() <= 64 * 1024 && usage.bytes() > 60 * 1024,
            "{}",
            usage.bytes()
        );
        drop(small);
        assert_eq!(usage.bytes(), 0);
        // Near the end of the sequence numbers, nothing overflows.
        let far = Since {
            epoch: "e".into(),
            seq: u64::MAX,
        };
        let (events, complete) = history.for_member(&wanted(Some(&far)));
        assert!(events.is_empty() && complete);
    }
}
