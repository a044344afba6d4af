//! A connection's writing half: replies from the outbox and the room's events from its feed,
//! batched, written under a timeout so a stalled peer costs a timer, not a blocked room.

use std::io;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::feed::{Cursor, Lagged, MemberId};
use super::frames;
use super::outbox::{Outbound, Outbox};
use super::room::Room;
use super::socket::FrameWriter;
use super::Limits;
use crate::protocol::{ByeCode, HostFrame};

/// Frames written per flush at most: large enough to amortize the syscall under load, small
/// enough that one busy connection does not hold its task for long.
const MAX_BATCH: usize = 1024;

/// Room events taken per step at most, so replies still get their turn in a busy room.
const EVENTS_PER_STEP: usize = 256;

/// Bytes of room events copied into one batch at most (and one frame more).
const MAX_COPIED: usize = 64 * 1024;

/// How the writer finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriterEnd {
    /// The reader finished and everything queued was sent.
    ReaderGone,
    /// A `bye` with this code was sent (or attempted).
    Said(ByeCode),
    /// Writing failed or timed out: the peer is gone or stalled.
    Broken,
}

pub(super) fn close_code(code: ByeCode) -> (CloseCode, &'static str) {
    match code {
        ByeCode::HostClosing => (CloseCode::Away, "host closing"),
        ByeCode::TooSlow => (CloseCode::Policy, "too slow"),
        ByeCode::Replaced => (CloseCode::Library(4001), "replaced by a newer connection"),
        ByeCode::ProtocolViolation => (CloseCode::Protocol, "protocol violation"),
        ByeCode::HostFull => (CloseCode::Again, "host full"),
        ByeCode::Timeout => (CloseCode::Away, "idle timeout"),
        ByeCode::TooManyConnections => {
            (CloseCode::Policy, "too many connections from your address")
        }
    }
}

/// One thing for the writer to send.
enum Step {
    Out(Outbound),
    /// The room has events this member has not taken.
    News,
    Ping,
}

/// Whether the writer carries on after a step.
enum Flow {
    Continue,
    End(WriterEnd),
}

/// What the writer forwards of a room: the rest of the welcome's history first (if any),
/// then the room's events.
pub(super) struct Subscription {
    events: Cursor,
    member: MemberId,
    /// The welcome's history still to send, and the room to take it from. Boxed: most
    /// connections never have one, and every connection's future holds this field.
    backlog: Option<Box<(Arc<Room>, Vec<u64>)>>,
}

async fn news(sub: &Option<Subscription>) {
    match sub {
        // History still owed goes at once (one piece per batch, paced by the writes).
        Some(s) if s.backlog.is_some() => {}
        Some(s) => s.events.news().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn write_loop(
    mut sink: FrameWriter,
    outbox: &Outbox,
    done: &CancellationToken,
    stop: &CancellationToken,
    limits: &Limits,
) -> WriterEnd {
    let mut sub: Option<Subscription> = None;
    let mut ping =
        tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let first = tokio::select! {
            biased;
            // `done` is a child of `stop`: one branch (one check per wake) covers both.
            () = done.cancelled() => Step::Out(if stop.is_cancelled() {
                Outbound::Bye(ByeCode::HostClosing, "the host closed the room".into(), None)
            } else {
                Outbound::Bye(
                    ByeCode::Replaced,
                    "you joined again from another connection".into(),
                    None,
                )
            }),
            cmd = outbox.next() => match cmd {
                Some(cmd) => Step::Out(cmd),
                None => return WriterEnd::ReaderGone,
            },
            () = news(&sub) => Step::News,
            _ = ping.tick() => Step::Ping,
        };

        let batch = async {
            let mut flow = apply(first, &mut sink, &mut sub);
            let mut written = 1;
            // Alternate between the room's events and our own replies: a member that sends a
            // lot then lags its own echoes by at most the reply queue's length, never by more.
            let mut events_first = true;
            while matches!(flow, Flow::Continue)
                && written < MAX_BATCH
                && sink.copied() < MAX_COPIED
            {
                let next = if events_first {
                    try_event(&sub).or_else(|| outbox.take().map(Step::Out))
                } else {
                    outbox.take().map(Step::Out).or_else(|| try_event(&sub))
                };
                let Some(next) = next else { break };
                events_first = !events_first;
                flow = apply(next, &mut sink, &mut sub);
                written += 1;
            }
            sink.flush().await?;
            Ok::<Flow, io::Error>(flow)
        };
        match tokio::time::timeout(limits.write_timeout, batch).await {
            Ok(Ok(Flow::Continue)) => {}
            Ok(Ok(Flow::End(end))) => return end,
            Ok(Err(e)) => {
                tracing::debug!("write failed: {e}");
                return WriterEnd::Broken;
            }
            Err(_) => {
                tracing::info!("client stalled for {:?}; dropping it", limits.write_timeout);
                return WriterEnd::Broken;
            }
        }
    }
}

/// Room events ready to go in this batch (none while history is still owed: a batch holds
/// at most one piece of it, so its pieces go as fast as the client reads, no faster).
fn try_event(sub: &Option<Subscription>) -> Option<Step> {
    sub.as_ref()
        .is_some_and(|s| s.backlog.is_none() && s.events.has_news())
        .then_some(Step::News)
}

/// Queues one step's frames (without writing).
fn apply(step: Step, sink: &mut FrameWriter, sub: &mut Option<Subscription>) -> Flow {
    match step {
        Step::Out(Outbound::Frame(frame)) => sink.feed(frames::text(frame.as_bytes())),
        Step::Out(Outbound::Enter {
            welcome,
            events,
            member,
            room,
            backlog,
        }) => {
            for part in welcome.parts {
                sink.feed(part);
            }
            *sub = Some(Subscription {
                events,
                member,
                backlog: (!backlog.is_empty()).then(|| Box::new((room, backlog))),
            });
        }
        Step::Out(Outbound::Exit) => *sub = None,
        Step::Out(Outbound::Bye(code, message, close)) => {
            return say_bye(sink, code, message, close);
        }
        Step::Out(Outbound::Pong(data)) => sink.feed(frames::pong(&data)),
        Step::Out(Outbound::CloseReply(code)) => {
            sink.feed(frames::close(code, ""));
            return Flow::End(WriterEnd::ReaderGone);
        }
        Step::News => {
            let Some(Subscription {
                events,
                member,
                backlog,
            }) = sub
            else {
                return Flow::Continue;
            };
            if let Some(owed) = backlog {
                let (room, seqs) = &mut **owed;
                sink.feed(room.history_piece(seqs));
                if seqs.is_empty() {
                    *backlog = None;
                }
                return Flow::Continue;
            }
            let took = events.take(*member, EVENTS_PER_STEP, |frame| {
                sink.copy(frame);
                sink.copied() < MAX_COPIED
            });
            match took {
                Ok(_) => {}
                Err(Lagged(behind)) => return lagged(sink, behind),
            }
        }
        Step::Ping => sink.feed(frames::ping()),
    }
    Flow::Continue
}

/// Tells a member that fell too far behind the room why it is being dropped.
fn lagged(sink: &mut FrameWriter, behind: u64) -> Flow {
    tracing::info!(behind, "member fell behind; dropping it");
    let message = format!(
        "you fell {behind} events behind the room and were disconnected; reconnect to catch up"
    );
    say_bye(sink, ByeCode::TooSlow, message, None)
}

fn say_bye(
    sink: &mut FrameWriter,
    code: ByeCode,
    message: String,
    close: Option<CloseCode>,
) -> Flow {
    sink.feed(frames::text(
        frames::json(&HostFrame::Bye { code, message }).as_bytes(),
    ));
    let (usual, reason) = close_code(code);
    sink.feed(frames::close(close.unwrap_or(usual).into(), reason));
    Flow::End(WriterEnd::Said(code))
}
