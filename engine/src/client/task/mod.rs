//! The client's task: drives a [`Session`] over a real WebSocket, reconnecting with backoff
//! when the connection is lost, until the user leaves or the host refuses for good.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

mod unlock;

use super::dial::{self, DialError, Ws};
use super::session::{Ended, Output, Session, SessionConfig};
use super::{ClientEvent, ClientOptions, CloseReason, Command, VerifiedHost};
use crate::identity::Fingerprint;
use crate::ids::{random_hex, sleep_until_opt};
use crate::lock::RoomKey;
use crate::protocol::{self, ErrorCode, HostFrame};
use crate::tls::Expect;
use crate::trust::Verdict;

struct Driver {
    options: ClientOptions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ClientEvent>,
    /// Counted down as requests are acknowledged or refused (the handle counts them up).
    pending: Arc<watch::Sender<usize>>,
    /// A locked room's passphrase: the room key is stretched from it with the salt the
    /// host's challenge names (kept for the next connection while the salt stays the same).
    passphrase: Option<String>,
    key: Option<RoomKey>,
    /// The key this host proved on the first connection: reconnects accept no other, even
    /// when nothing else says what it must be.
    host_key: Option<Fingerprint>,
    /// Where the handle reads it.
    verified: Arc<std::sync::OnceLock<VerifiedHost>>,
    /// The membership's way to the host's files, from each welcome.
    files: watch::Sender<Option<super::FileAccess>>,
}

impl Driver {
    /// The host id its first `hello` gave, if the host has been met in this run.
    fn met_host_id(&self) -> Option<String> {
        self.verified
            .get()
            .map(|v| v.host_id.clone())
            .filter(|id| !id.is_empty())
    }
}

/// The user went away (every handle and the event receiver dropped).
struct Gone;

pub(super) async fn run(
    mut options: ClientOptions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ClientEvent>,
    pending: Arc<watch::Sender<usize>>,
    verified: Arc<std::sync::OnceLock<VerifiedHost>>,
    files: watch::Sender<Option<super::FileAccess>>,
) {
    let passphrase = options.passphrase.take();
    if let Some(Err(e)) = passphrase.as_deref().map(crate::lock::check_passphrase) {
        let reason = CloseReason::Refused {
            code: ErrorCode::PassphraseWrong,
            message: e.to_string(),
        };
        let _ = events.send(ClientEvent::Closed { reason }).await;
        return;
    }
    let session_id = random_hex(16);
    let mut session = Session::new(SessionConfig {
        room: options.room.clone(),
        nick: options.nick.clone(),
        session: session_id.clone(),
        locked: passphrase.is_some(),
        bound: true,
        // Native clients are their TLS certificate.
        identify: false,
        client_name: options.client_name.clone(),
        outbox_limit: options.outbox_limit,
    });
    let mut driver = Driver {
        options,
        commands,
        events,
        pending,
        passphrase,
        key: None,
        host_key: None,
        verified,
        files,
    };
    let mut attempt: u32 = 0;
    loop {
        let ended = driver.connection(&mut session).await;
        driver.files.send_replace(None);
        if session.is_live() {
            attempt = 0; // it worked: a later loss starts the backoff afresh
        }
        session.disconnected();
        let reason = match ended {
            Ended::Final(reason) => reason,
            Ended::Lost(why) if driver.options.reconnect => {
                if driver
                    .emit(ClientEvent::Disconnected { reason: why })
                    .await
                    .is_err()
                {
                    return;
                }
                attempt = attempt.saturating_add(1);
                match driver.wait_before_retry(&mut session, attempt).await {
                    Ok(None) => continue,
                    Ok(Some(reason)) => reason,
                    Err(Gone) => return,
                }
            }
            Ended::Lost(why) => CloseReason::Lost(why),
        };
        let _ = driver.emit(ClientEvent::Closed { reason }).await;
        return;
    }
}

impl Driver {
    async fn emit(&self, event: ClientEvent) -> Result<(), Gone> {
        if matches!(
            event,
            ClientEvent::Acked { .. }
                | ClientEvent::Refused {
                    request: Some(_),
                    ..
                }
        ) {
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
        self.events.send(event).await.map_err(|_| Gone)
    }

    /// Sleeps for the backoff delay while still taking requests. Returns a reason if the
    /// user left meanwhile.
    async fn wait_before_retry(
        &mut self,
        session: &mut Session,
        attempt: u32,
    ) -> Result<Option<CloseReason>, Gone> {
        let delay = backoff(&self.options, attempt);
        self.emit(ClientEvent::Reconnecting { attempt, delay })
            .await?;
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return Ok(None),
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Leave) => return Ok(Some(CloseReason::Left)),
                    Some(Command::Typing(_)) => {}
                    Some(Command::Status(status)) => {
                        // Offline: nothing goes out, the next join says it.
                        session.set_status(status);
                    }
                    Some(Command::Request { id, request }) => {
                        if let Err(e) = session.request(id, request) {
                            self.pending.send_modify(|n| *n = n.saturating_sub(1));
                            tracing::warn!("request not queued: {e}");
                        }
                    }
                },
            }
        }
    }

    /// The key the host must present: the link's, else the one this run met, else the
    /// announced one (refused at once if it differs from the one remembered for that host),
    /// else any (trust on first use, checked against the pins after `hello`).
    fn expected_key(&self) -> Result<Expect, CloseReason> {
        if let Some(key) = self.options.host_key.or(self.host_key) {
            return Ok(Expect::Key(key));
        }
        let super::Endpoint::Locate(locator) = &self.options.endpoint else {
            return Ok(Expect::FirstUse);
        };
        let Some((host_id, announced)) = locator.announced_key() else {
            return Ok(Expect::FirstUse);
        };
        let pinned = self
            .options
            .known_hosts
            .as_ref()
            .and_then(|k| k.pinned(&host_id));
        match pinned {
            Some(old) if old != announced && !self.options.trust_new_key => {
                Err(CloseReason::host_key(Some(host_id), old, announced, true))
            }
            _ => Ok(Expect::Key(announced)),
        }
    }

    /// Checks the host's `hello` against the pins: a host met before must have the key it
    /// had. Reports the verified key once per run.
    fn check_host(&mut self, host_id: &str, presented: Fingerprint) -> Result<(), Ended> {
        let verdict = match &self.options.known_hosts {
            Some(known) if !host_id.is_empty() => known.check(host_id, presented),
            _ => Verdict::New,
        };
        if let Verdict::Changed { old } = verdict {
            if !self.options.trust_new_key {
                let reason = CloseReason::host_key(Some(host_id.to_owned()), old, presented, true);
                return Err(Ended::Final(reason));
            }
        }
        if let (Some(known), false) = (&self.options.known_hosts, host_id.is_empty()) {
            if let Err(e) = known.remember(host_id, presented) {
                tracing::warn!("cannot remember the host's key: {e}");
            }
        }
        if self.host_key.is_none() {
            self.host_key = Some(presented);
            let _ = self.verified.set(VerifiedHost {
                host_id: host_id.to_owned(),
                key: presented,
                code: presented.short_code(),
                first_use: verdict == Verdict::New,
            });
        }
        Ok(())
    }

    /// One connection, from connect to loss.
    async fn connection(&mut self, session: &mut Session) -> Ended {
        let patience = self.options.connect_timeout;
        let expect = match self.expected_key() {
            Ok(expect) => expect,
            Err(reason) => return Ended::Final(reason),
        };
        let identity = self.options.identity.clone();
        let opened = match dial::open(
            &self.options.endpoint,
            patience,
            identity.as_deref(),
            expect,
        )
        .await
        {
            Ok(opened) => opened,
            Err(DialError::WrongKey {
                expected,
                presented,
                ..
            }) => {
                let remembered = self.host_key.is_some() && self.options.host_key.is_none();
                let host_id = self.met_host_id().filter(|_| remembered);
                let reason = CloseReason::host_key(host_id, expected, presented, remembered);
                return Ended::Final(reason);
            }
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let presented = opened.key;
        let mut ws = opened.ws;
        let join_deadline = Instant::now() + patience;
        let ping_every = self.options.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut last_heard = Instant::now();
        let mut out = session.connected(random_hex(8));
        loop {
            if let Some(ended) = self.perform(&mut ws, session, out).await {
                return ended;
            }
            let waiting_for_welcome = (!session.is_live()).then_some(join_deadline);
            out = tokio::select! {
                message = ws.next() => {
                    last_heard = Instant::now();
                    match message {
                        None => return Ended::Lost("the host closed the connection".into()),
                        Some(Err(e)) => return Ended::Lost(format!("connection lost: {e}")),
                        Some(Ok(Message::Text(text))) => match protocol::decode_host(&text) {
                            Ok(frame) => {
                                if let HostFrame::Hello { id, .. } = &frame {
                                    if let Err(ended) = self.check_host(id, presented) {
                                        return ended;
                                    }
                                }
                                if let HostFrame::Welcome(welcome) = &frame {
                                    let addr = ws.get_ref().get_ref().0.peer_addr();
                                    if let (super::Endpoint::Locate(locator), Ok(addr)) =
                                        (&self.options.endpoint, &addr)
                                    {
                                        if let Some(message) = locator.connected(*addr) {
                                            let relocated = ClientEvent::Relocated { message, address: *addr };
                                            let _ = self.emit(relocated).await;
                                        }
                                    }
                                    if let (Some(ticket), Ok(addr)) = (&welcome.files, addr) {
                                        self.files.send_replace(Some(super::FileAccess {
                                            addr,
                                            key: presented,
                                            ticket: ticket.clone(),
                                            identity: self.options.identity.clone(),
                                        }));
                                    }
                                }
                                session.frame(frame, std::time::Instant::now())
                            }
                            Err(e) => {
                                tracing::warn!("ignoring a frame the client does not understand: {e}");
                                Vec::new()
                            }
                        },
                        Some(Ok(Message::Close(frame))) => {
                            return Ended::Lost(frame.map_or_else(
                                || "the host closed the connection".to_owned(),
                                |f| format!("the host closed the connection ({})", f.reason),
                            ));
                        }
                        Some(Ok(_)) => Vec::new(),
                    }
                }
                // Until the welcome, requests wait in the channel (and the outbox).
                cmd = self.commands.recv(), if session.is_live() => match cmd {
                    None | Some(Command::Leave) => session.leave(random_hex(8)),
                    Some(Command::Typing(active)) => session.typing(active),
                    Some(Command::Status(status)) => session.set_status(status),
                    Some(Command::Request { id, request }) => {
                        session.request(id, request).unwrap_or_else(|e| {
                            self.pending.send_modify(|n| *n = n.saturating_sub(1));
                            tracing::warn!("request not queued: {e}");
                            Vec::new()
                        })
                    }
                },
                () = sleep_until_opt(session.next_wake().map(Instant::from_std)) => {
                    session.wake(std::time::Instant::now())
                }
                () = sleep_until_opt(waiting_for_welcome) => {
                    return Ended::Lost("the host did not answer the join".into());
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > ping_every * 3 {
                        return Ended::Lost(format!(
                            "the host has not answered for {:?}",
                            last_heard.elapsed()
                        ));
                    }
                    if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                        return Ended::Lost(format!("connection lost: {e}"));
                    }
                    Vec::new()
                }
            };
        }
    }

    /// Carries out what the session asked for; the end of the connection if it asked for
    /// that (or the socket failed).
    async fn perform(
        &mut self,
        ws: &mut Ws,
        session: &mut Session,
        out: Vec<Output>,
    ) -> Option<Ended> {
        let mut queue = std::collections::VecDeque::from(out);
        let mut ended = None;
        while let Some(step) = queue.pop_front() {
            match step {
                Output::Send(frame) => {
                    let text = match protocol::encode(&frame) {
                        Ok(text) => text,
                        Err(e) => return Some(Ended::Lost(format!("cannot encode: {e}"))),
                    };
                    if let Err(e) = ws.feed(Message::text(text)).await {
                        return Some(Ended::Lost(format!("connection lost: {e}")));
                    }
                }
                Output::Emit(event) => {
                    if self.emit(event).await.is_err() {
                        ended = Some(Ended::Final(CloseReason::Left));
                    }
                }
                // Never asked of a native client (it presents a certificate).
                Output::Identify { .. } => {}
                Output::Prove(challenge) => match self.answer(&challenge).await {
                    Ok((answer, host_tag)) => {
                        queue.extend(session.join_with_proof(answer, host_tag));
                    }
                    Err(reason) => ended = Some(Ended::Final(reason)),
                },
                Output::End(end) => ended = Some(end),
            }
        }
        if let Err(e) = ws.flush().await {
            return Some(ended.unwrap_or(Ended::Lost(format!("connection lost: {e}"))));
        }
        if matches!(ended, Some(Ended::Final(CloseReason::Left))) {
            close_politely(ws).await;
        }
        ended
    }
}

/// A close handshake, briefly bounded (the leave frame went first).
async fn close_politely(ws: &mut Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        ws.close(None).await?;
        // Drain until the host completes the close handshake.
        while let Some(Ok(_)) = ws.next().await {}
        Ok::<(), tokio_tungstenite::tungstenite::Error>(())
    })
    .await;
}

/// The delay before reconnect attempt `attempt` (1-based): doubling, capped, with +-20%
/// jitter so that a room full of clients does not reconnect in lockstep.
fn backoff(options: &ClientOptions, attempt: u32) -> Duration {
    let base = options
        .backoff_initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(options.backoff_max);
    let jitter = u32::from_str_radix(&random_hex(2), 16).unwrap_or(0) as f64 / 65535.0;
    base.mul_f64(0.8 + 0.4 * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let options = ClientOptions::new("wss://x:1/ws", "r", "n");
        let d1 = backoff(&options, 1);
        assert!(d1 >= Duration::from_millis(200) && d1 <= Duration::from_millis(300));
        let d3 = backoff(&options, 3);
        assert!(d3 >= Duration::from_millis(800) && d3 <= Duration::from_millis(1200));
        let d20 = backoff(&options, 20);
        assert!(d20 <= Duration::from_secs(6) && d20 >= Duration::from_secs(4));
    }
}
