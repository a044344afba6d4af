//! Keeps a host's rooms announced: one DNS-SD service instance per room, registered as soon
//! as the room exists, its user count refreshed at most every 2 s, and a goodbye for each on
//! a clean stop.

use crate::ids::sleep_until_opt;
use std::collections::HashMap;
use std::time::Duration;

use mdns_sd::{ServiceDaemon, ServiceInfo};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{txt, SERVICE_TYPE};
use crate::host::Host;
use crate::protocol::{self, RoomSummary};

/// Fewer re-announcements than this interval per room: user counts are a nicety, not worth
/// a multicast burst on every join.
const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// DNS labels are at most 63 bytes; the full room name is in the TXT record anyway.
const MAX_INSTANCE_BYTES: usize = 63;

/// Who is hosting, as announced.
#[derive(Debug, Clone)]
pub struct HostIdentity {
    /// Display name ("alice-laptop", or the host user's nickname).
    pub name: String,
    /// Stable per installation (kept in the config directory).
    pub id: String,
    /// The fingerprint of the host's certificate: clients accept no other.
    pub key: crate::identity::Fingerprint,
}

/// The running announcer; [`Announcer::stop`] sends the goodbyes.
pub struct Announcer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Announcer {
    pub(super) fn start(
        daemon: ServiceDaemon,
        host: Host,
        identity: HostIdentity,
        port: u16,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(daemon, host, identity, port, stop.clone()));
        Self { stop, task }
    }

    /// Withdraws every room (goodbye packets) and waits, at most 2 s, until they are sent.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// What has been announced for one room.
struct Announced {
    fullname: String,
    users: u32,
    at: Instant,
}

async fn run(
    daemon: ServiceDaemon,
    host: Host,
    identity: HostIdentity,
    port: u16,
    stop: CancellationToken,
) {
    let mut changes = host.watch_rooms();
    let mut announced: HashMap<String, Announced> = HashMap::new();
    loop {
        changes.mark_unchanged();
        let next_due = sync(&daemon, &host, &identity, port, &mut announced);
        tokio::select! {
            () = stop.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
            () = sleep_until_opt(next_due) => {}
        }
    }
    let mut goodbyes = Vec::new();
    for (_, a) in announced {
        match daemon.unregister(&a.fullname) {
            Ok(done) => goodbyes.push(done),
            Err(e) => tracing::warn!("cannot withdraw {}: {e}", a.fullname),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for done in goodbyes {
            let _ = done.recv_async().await;
        }
    })
    .await;
}

/// Announces new rooms and refreshes changed user counts; returns when the next refresh is
/// due, if one is held back by the rate limit.
fn sync(
    daemon: &ServiceDaemon,
    host: &Host,
    identity: &HostIdentity,
    port: u16,
    announced: &mut HashMap<String, Announced>,
) -> Option<Instant> {
    let mut next_due: Option<Instant> = None;
    for room in host.rooms() {
        let key = protocol::name_key(&room.name);
        let due = match announced.get(&key) {
            None => true,
            Some(a) if a.users == room.users => false,
            Some(a) => {
                let allowed_at = a.at + REFRESH_INTERVAL;
                if Instant::now() >= allowed_at {
                    true
                } else {
                    next_due = Some(next_due.map_or(allowed_at, |d| d.min(allowed_at)));
                    false
                }
            }
        };
        if !due {
            continue;
        }
        match service_info(identity, port, &room) {
            Ok(info) => {
                let fullname = info.get_fullname().to_owned();
                if let Err(e) = daemon.register(info) {
                    tracing::warn!("cannot announce room {}: {e}", room.name);
                    continue;
                }
                tracing::debug!(room = room.name, fullname, users = room.users, "announced");
                announced.insert(
                    key,
                    Announced {
                        fullname,
                        users: room.users,
                        at: Instant::now(),
                    },
                );
            }
            Err(e) => tracing::warn!("cannot announce room {}: {e}", room.name),
        }
    }
    next_due
}

/// The DNS-SD record set for one room.
pub(crate) fn service_info(
    identity: &HostIdentity,
    port: u16,
    room: &RoomSummary,
) -> Result<ServiceInfo, mdns_sd::Error> {
    let instance = truncate(
        &format!("{} on {}", room.name, identity.name),
        MAX_INSTANCE_BYTES,
    );
    // One DNS host name per installation: two hosts on machines with the same name (or in
    // network namespaces of one machine) must not claim the same A records.
    let hostname = format!("lanchat-{}.local.", identity.id);
    let properties: HashMap<String, String> = [
        (txt::ROOM, room.name.clone()),
        (txt::VERSION, protocol::PROTOCOL_VERSION.to_string()),
        (txt::HOST, truncate(&identity.name, 200)),
        (txt::HOST_ID, identity.id.clone()),
        (txt::KEY, identity.key.to_hex()),
        (txt::LOCKED, if room.locked { "1" } else { "0" }.to_owned()),
        (txt::USERS, room.users.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(
        ServiceInfo::new(SERVICE_TYPE, &instance, &hostname, (), port, properties)?
            .enable_addr_auto(),
    )
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_carries_the_documented_txt_keys() {
        let identity = HostIdentity {
            name: "alice-laptop".into(),
            id: "0123456789abcdef".into(),
            key: crate::identity::Fingerprint([0xab; 32]),
        };
        let room = RoomSummary {
            name: "Tokyo".into(),
            users: 3,
            locked: true,
        };
        let info = service_info(&identity, 4000, &room).unwrap();
        assert_eq!(
            info.get_fullname(),
            "Tokyo on alice-laptop._lanchat._tcp.local."
        );
        assert_eq!(info.get_hostname(), "lanchat-0123456789abcdef.local.");
        assert_eq!(info.get_port(), 4000);
        for (key, value) in [
            ("room", "Tokyo"),
            ("v", "2"),
            ("host", "alice-laptop"),
            ("id", "0123456789abcdef"),
            ("key", &"ab".repeat(32)),
            ("locked", "1"),
            ("users", "3"),
        ] {
            assert_eq!(info.get_property_val_str(key), Some(value), "{key}");
        }
    }

    #[test]
    fn long_names_fit_a_dns_label() {
        let identity = HostIdentity {
            name: "h".repeat(40),
            id: "x".repeat(16),
            key: crate::identity::Fingerprint([0; 32]),
        };
        let room = RoomSummary {
            name: "é".repeat(64),
            users: 0,
            locked: false,
        };
        let info = service_info(&identity, 1, &room).unwrap();
        let instance = info
            .get_fullname()
            .strip_suffix("._lanchat._tcp.local.")
            .unwrap();
        assert!(instance.len() <= 63, "{}", instance.len());
        assert_eq!(
            info.get_property_val_str("room"),
            Some("é".repeat(64).as_str())
        );
    }
}
