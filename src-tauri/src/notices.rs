//! Desktop notifications, and opening the room at the message when one is clicked.
//!
//! Sent over the session bus to `org.freedesktop.Notifications` (the desktop's notification
//! server) on one connection kept for the app's life, with a "default" action: the server
//! tells that connection (`ActionInvoked`) when the user clicks the notification, and the
//! page is told which room and message it was about. The last [`KEEP`] notifications are
//! remembered for that; older ones are forgotten (and closed ones at once).

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};
use zbus::blocking::{Connection, MessageIterator, Proxy};
use zbus::zvariant::Value;

use crate::error::CommandError;
use crate::state::lock;

/// The page listens to this for a clicked notification: `{room, seq}`.
pub const OPENED_EVENT: &str = "lanchat://notice-opened";
/// How many sent notifications are remembered for their clicks.
const KEEP: usize = 64;

/// What a notification is about: the room, and the message (its seq) when there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub room: String,
    pub seq: Option<u64>,
}

/// The connection to the notification server, once made.
#[derive(Default)]
pub struct Notices(Mutex<Option<Arc<Server>>>);

struct Server {
    bus: Connection,
    sent: Mutex<VecDeque<(u32, Target)>>,
}

impl Notices {
    fn server(&self, app: &AppHandle) -> Result<Arc<Server>, CommandError> {
        let mut slot = lock(&self.0);
        if let Some(server) = slot.as_ref() {
            return Ok(server.clone());
        }
        let bus = Connection::session().map_err(|e| CommandError::Notify(e.to_string()))?;
        let server = Arc::new(Server {
            bus,
            sent: Mutex::default(),
        });
        listen(app.clone(), server.clone())?;
        *slot = Some(server.clone());
        Ok(server)
    }
}

/// Follows the server's answers: a click opens its room, a close forgets the notification.
fn listen(app: AppHandle, server: Arc<Server>) -> Result<(), CommandError> {
    let failed = |e: zbus::Error| CommandError::Notify(e.to_string());
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.Notifications")
        .map_err(failed)?
        .build();
    let signals = MessageIterator::for_match_rule(rule, &server.bus, Some(64)).map_err(failed)?;
    std::thread::Builder::new()
        .name("notices".into())
        .spawn(move || {
            for message in signals.flatten() {
                let header = message.header();
                let member = header.member().map(|m| m.as_str().to_owned());
                match member.as_deref() {
                    Some("ActionInvoked") => {
                        let Ok((id, action)) = message.body().deserialize::<(u32, String)>() else {
                            continue;
                        };
                        if action != "default" {
                            continue;
                        }
                        let target = server.take(id);
                        crate::tray::show_window(&app);
                        if let Some(target) = target {
                            let _ = app.emit(OPENED_EVENT, target);
                        }
                    }
                    Some("NotificationClosed") => {
                        if let Ok((id, _reason)) = message.body().deserialize::<(u32, u32)>() {
                            server.take(id);
                        }
                    }
                    _ => {}
                }
            }
        })
        .map_err(|e| CommandError::Notify(e.to_string()))?;
    Ok(())
}

impl Server {
    fn send(&self, title: &str, body: &str) -> zbus::Result<u32> {
        let proxy = Proxy::new(
            &self.bus,
            "org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications",
        )?;
        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
        hints.insert("category", Value::from("im.received"));
        hints.insert("desktop-entry", Value::from("lanchat-desktop"));
        proxy.call(
            "Notify",
            &(
                "LAN Chat",
                0u32,
                "lanchat-desktop",
                title,
                body,
                vec!["default", "Open"],
                hints,
                -1i32,
            ),
        )
    }

    fn remember(&self, id: u32, target: Target) {
        let mut sent = lock(&self.sent);
        if sent.len() == KEEP {
            sent.pop_front();
        }
        sent.push_back((id, target));
    }

    fn take(&self, id: u32) -> Option<Target> {
        let mut sent = lock(&self.sent);
        let at = sent.iter().position(|(i, _)| *i == id)?;
        sent.remove(at).map(|(_, target)| target)
    }
}

/// Shows a desktop notification; clicking it brings the window forward and opens `at`.
#[tauri::command]
pub async fn notify(
    app: AppHandle,
    title: String,
    body: String,
    at: Option<Target>,
) -> Result<(), CommandError> {
    tauri::async_runtime::spawn_blocking(move || {
        let server = app.state::<Notices>().server(&app)?;
        let id = server
            .send(&title, &body)
            .map_err(|e| CommandError::Notify(e.to_string()))?;
        if let Some(at) = at {
            server.remember(id, at);
        }
        Ok(())
    })
    .await
    .map_err(|e| CommandError::Notify(e.to_string()))?
}
