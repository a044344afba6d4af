//! What `lanchat join` prints: one line per event, as text for people or as JSON lines in
//! the protocol's own shapes for programs, with the user list kept current for `/users`.

use lanchat::client::{ClientEvent, CloseReason};
use lanchat::protocol::{self, EventBody};
use tokio::io::AsyncWriteExt;

use crate::render;

/// Writes events to stdout as text lines or JSON lines, keeping the user list current.
pub struct Output {
    json: bool,
    me: String,
    /// Who is in the room, in joining order (kept from the welcome and join/leave events).
    users: Vec<String>,
    /// The sequence number the user list is exact at; older events do not change it.
    users_seq: u64,
    /// Who is not `available`, by nickname key.
    statuses: std::collections::HashMap<String, protocol::Status>,
    /// The oldest event shown, where `/history` goes on from.
    pub oldest: Option<u64>,
    stdout: tokio::io::Stdout,
}

impl Output {
    pub fn new(json: bool, me: String) -> Self {
        Self {
            json,
            me,
            users: Vec::new(),
            users_seq: 0,
            statuses: std::collections::HashMap::new(),
            oldest: None,
            stdout: tokio::io::stdout(),
        }
    }

    async fn line(&mut self, line: String) {
        // stdout closed (e.g. `| head`) is not an error worth dying loudly for.
        let _ = self.stdout.write_all(line.as_bytes()).await;
        let _ = self.stdout.write_all(b"\n").await;
        let _ = self.stdout.flush().await;
    }

    pub async fn local_error(&mut self, message: &str) {
        eprintln!("lanchat: {message}");
    }

    pub async fn local_note(&mut self, message: &str) {
        if !self.json {
            self.line(format!("* {message}")).await;
        }
    }

    pub async fn users(&mut self) {
        let list = self
            .users
            .iter()
            .map(|u| render::with_status(u, self.statuses.get(&protocol::name_key(u))))
            .collect::<Vec<_>>();
        let line = format!("* online ({}): {}", list.len(), list.join(", "));
        self.line(line).await;
    }

    fn track(&mut self, event: &protocol::ChatEvent) {
        if event.seq <= self.users_seq {
            return;
        }
        self.users_seq = event.seq;
        let key = protocol::name_key;
        match &event.body {
            EventBody::Joined { nick, also } => {
                for nick in std::iter::once(nick).chain(also) {
                    if !self.users.iter().any(|u| key(u) == key(nick)) {
                        self.users.push(nick.clone());
                    }
                }
            }
            EventBody::Left { nick, also, .. } => {
                for nick in std::iter::once(nick).chain(also) {
                    self.users.retain(|u| key(u) != key(nick));
                    self.statuses.remove(&key(nick));
                }
            }
            EventBody::Renamed { from, to, .. } => {
                if let Some(status) = self.statuses.remove(&key(from)) {
                    self.statuses.insert(key(to), status);
                }
                for u in &mut self.users {
                    if key(u) == key(from) {
                        *u = to.clone();
                    }
                }
            }
            _ => {}
        }
    }

    /// Events from the past (`/history`, `/search`): under a heading as text, or as one
    /// `{"type":"page"|"found","events":[...],"more":bool}` line.
    pub async fn past(
        &mut self,
        kind: &str,
        heading: String,
        page: &lanchat::client::transfer::past::Page,
        transfers: &mut crate::files::Transfers,
    ) {
        if self.json {
            let line = serde_json::json!({"type": kind, "events": page.events, "more": page.more});
            self.line(line.to_string()).await;
            return;
        }
        self.line(format!("* {heading}")).await;
        for e in &page.events {
            let line = format!("({kind}) {}", render::event_line(e, None));
            let line = with_save_hint(line, e, transfers);
            self.line(line).await;
        }
    }

    /// A transfer's progress or end.
    pub async fn transfer(&mut self, note: &crate::files::Note) {
        let line = if self.json { note.json() } else { note.text() };
        self.line(line).await;
    }

    pub async fn event(&mut self, event: &ClientEvent, transfers: &mut crate::files::Transfers) {
        match event {
            ClientEvent::Joined { welcome, .. } => {
                self.users = welcome.users.clone();
                self.users_seq = welcome.seq;
                self.statuses = welcome
                    .statuses
                    .iter()
                    .map(|(nick, status)| (protocol::name_key(nick), *status))
                    .collect();
                self.me = welcome.you.clone();
                let first = welcome.history.first().map_or(welcome.seq + 1, |e| e.seq);
                self.oldest = Some(self.oldest.map_or(first, |o| o.min(first)));
                for e in &welcome.history {
                    with_save_hint(String::new(), e, transfers);
                }
            }
            ClientEvent::Event(e) => {
                self.track(e);
                with_save_hint(String::new(), e, transfers);
            }
            ClientEvent::Status { nick, status } => {
                if status.is_available() {
                    self.statuses.remove(&protocol::name_key(nick));
                } else {
                    self.statuses.insert(protocol::name_key(nick), *status);
                }
            }
            ClientEvent::Acked {
                request: lanchat::client::Request::Nick(nick),
                ..
            } => {
                let me = self.me.clone();
                for u in &mut self.users {
                    if protocol::name_key(u) == protocol::name_key(&me) {
                        *u = nick.clone();
                    }
                }
                self.me = nick.clone();
            }
            _ => {}
        }
        if self.json {
            let line = json_line(event);
            self.line(line).await;
            return;
        }
        match event {
            ClientEvent::Joined { welcome, .. } => {
                let status = render::status_line(event).unwrap_or_default();
                self.line(status).await;
                // History first shown with a marker so scripts can tell it from live traffic.
                for e in &welcome.history {
                    let line = format!("(history) {}", render::event_line(e, None));
                    let line = with_save_hint(line, e, transfers);
                    self.line(line).await;
                }
            }
            ClientEvent::Event(e) => {
                let line = render::event_line(e, Some(self.users.len()));
                let line = with_save_hint(line, e, transfers);
                self.line(line).await;
            }
            ClientEvent::Acked { request, ts, .. } => {
                let me = self.me.clone();
                if let Some(line) = render::acked_line(request, &me, *ts) {
                    self.line(line).await;
                }
            }
            ClientEvent::Refused { .. } => {
                if let Some(line) = render::status_line(event) {
                    eprintln!("{line}");
                }
            }
            other => {
                if let Some(line) = render::status_line(other) {
                    self.line(line).await;
                }
            }
        }
    }
}

/// A file card's line ends with how to save it: `[/save 3]`.
fn with_save_hint(
    line: String,
    event: &protocol::ChatEvent,
    transfers: &mut crate::files::Transfers,
) -> String {
    match &event.body {
        EventBody::File { id, file, .. } => {
            let n = transfers.card(lanchat::client::Incoming {
                id: id.clone(),
                card: file.clone(),
            });
            format!("{line}  [/save {n}]")
        }
        _ => line,
    }
}

/// One JSON line per event: protocol frames keep their wire shape; connection states get
/// `{"type":"disconnected"|"reconnecting"|"closed", ...}`.
fn json_line(event: &ClientEvent) -> String {
    use serde_json::json;
    let value = match event {
        ClientEvent::Joined { welcome, resumed } => {
            let mut welcome = welcome.clone();
            // The ticket is this client's to use, not something to print.
            welcome.files = None;
            let mut v = serde_json::to_value(protocol::HostFrame::Welcome(Box::new(welcome)))
                .unwrap_or_default();
            v["resumed"] = json!(resumed);
            v
        }
        ClientEvent::Event(e) => serde_json::to_value(e).unwrap_or_default(),
        ClientEvent::Typing { nick, active } => {
            json!({"type":"typing","nick":nick,"active":active})
        }
        ClientEvent::Status { nick, status } => {
            json!({"type":"status","nick":nick,"status":status})
        }
        ClientEvent::Acked { id, seq, ts, .. } => json!({"type":"ack","id":id,"seq":seq,"ts":ts}),
        ClientEvent::Refused {
            id, code, message, ..
        } => {
            json!({"type":"error","id":id,"code":code,"message":message})
        }
        ClientEvent::Disconnected { reason } => json!({"type":"disconnected","reason":reason}),
        ClientEvent::Relocated { message, address } => {
            json!({"type":"relocated","message":message,"address":address.to_string()})
        }
        ClientEvent::Reconnecting { attempt, delay } => {
            json!({"type":"reconnecting","attempt":attempt,"delay_ms":delay.as_millis() as u64})
        }
        ClientEvent::Closed { reason } => {
            let reason = match reason {
                CloseReason::Left => "left".to_owned(),
                CloseReason::Refused { message, .. }
                | CloseReason::Bye { message, .. }
                | CloseReason::HostKey { message, .. } => message.clone(),
                CloseReason::Lost(why) => why.clone(),
                CloseReason::HostUnproven => reason.message().to_owned(),
            };
            json!({"type":"closed","reason":reason,"code":reason_code(event)})
        }
    };
    value.to_string()
}

fn reason_code(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Closed { reason } => reason.code(),
        _ => String::new(),
    }
}
