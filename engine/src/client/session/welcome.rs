//! Taking in a welcome: its history (in pieces when it is long) filtered of what was
//! reported before, acknowledgements found in it, and then the resend.

use std::collections::BTreeSet;

use super::{ClientEvent, Output, Phase, Session};
use crate::protocol::{ChatEvent, Since, Welcome};

/// A welcome being put together.
pub(super) struct Joining {
    pub(super) welcome: Welcome,
    resumed: bool,
    /// History up to here was reported before.
    after: u64,
    /// Our own acknowledged events above `after`.
    pub(super) own: BTreeSet<u64>,
    /// Acknowledgements found in the history.
    pub(super) acked: Vec<Output>,
}

impl Session {
    pub(super) fn welcome(&mut self, mut welcome: Welcome) -> Vec<Output> {
        let resumed = self.joined_once;
        if self.since.as_ref().is_none_or(|s| s.epoch != welcome.epoch) {
            // A new room instance: old sequence numbers mean nothing any more.
            self.own.clear();
            self.since = None;
        }
        let events = std::mem::take(&mut welcome.history);
        let more = std::mem::take(&mut welcome.more);
        let mut joining = Joining {
            after: self.since.as_ref().map_or(0, |s| s.seq),
            own: std::mem::take(&mut self.own),
            welcome,
            resumed,
            acked: Vec::new(),
        };
        self.absorb(&mut joining, events);
        if more {
            // The rest of the history follows in `history` frames.
            self.receiving = Some(Box::new(joining));
            return Vec::new();
        }
        self.joined(joining)
    }

    /// A piece of the welcome's history.
    pub(super) fn history_piece(&mut self, events: Vec<ChatEvent>, more: bool) -> Vec<Output> {
        let Some(mut joining) = self.receiving.take() else {
            return Vec::new();
        };
        self.absorb(&mut joining, events);
        if more {
            self.receiving = Some(joining);
            return Vec::new();
        }
        self.joined(*joining)
    }

    /// Keeps the history events not reported before. A request whose ack was lost with the
    /// connection shows up with our id: that is its acknowledgement. It leaves the outbox
    /// (no resend) and the history (it is ours, not news).
    fn absorb(&mut self, joining: &mut Joining, events: Vec<ChatEvent>) {
        for e in events {
            if e.seq <= joining.after || joining.own.contains(&e.seq) {
                continue;
            }
            let queued = e
                .body
                .request_id()
                .and_then(|id| self.outbox.iter().position(|(pid, _)| pid == id));
            match queued.and_then(|pos| self.outbox.remove(pos)) {
                Some((id, request)) => joining.acked.push(Output::Emit(ClientEvent::Acked {
                    id,
                    request,
                    seq: Some(e.seq),
                    ts: Some(e.ts),
                })),
                None => joining.welcome.history.push(e),
            }
        }
    }

    /// The whole welcome is in: report it, then resend what is still unacknowledged.
    fn joined(&mut self, joining: Joining) -> Vec<Output> {
        let Joining {
            welcome,
            resumed,
            after,
            acked,
            ..
        } = joining;
        self.nick = welcome.you.clone();
        self.since = Some(Since {
            epoch: welcome.epoch.clone(),
            seq: welcome.seq.max(after),
        });
        self.joined_once = true;
        self.phase = Phase::Live;
        let mut out = vec![Output::Emit(ClientEvent::Joined { welcome, resumed })];
        out.extend(acked);
        // Everything still unacknowledged goes (again) now, in order.
        out.extend(
            self.outbox
                .iter()
                .map(|(id, request)| Output::Send(request.frame(id))),
        );
        out
    }
}
