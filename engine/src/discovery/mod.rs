//! Rooms that appear by themselves: DNS-SD over mDNS (`_lanchat._tcp.local.`).
//!
//! A [`Discovery`] owns the process's mDNS daemon, limited to the interfaces an
//! [`InterfacePolicy`] allows. A host runs an [`Announcer`] that keeps one service instance
//! per room announced (and says goodbye on a clean stop); everyone runs a [`RoomBrowser`],
//! a live list of the rooms on the LAN, which also tells the client where a room is
//! ([`RoomLocator`]) and asks the network again when a room stops answering.

mod announce;
mod browse;
mod interfaces;
mod links;

use std::time::Duration;

use mdns_sd::{IfKind, IfPredicate, ServiceDaemon};

pub use announce::{Announcer, HostIdentity};
pub use browse::{BrowserHandle, DiscoveredRoom, RoomBrowser, RoomChange, RoomLocator};
pub use interfaces::{excluded_by_default, lan_addresses, InterfacePolicy, LanAddress};
pub use links::{share_links, ShareLink};

/// The DNS-SD service type of a LAN Chat room.
pub const SERVICE_TYPE: &str = "_lanchat._tcp.local.";

/// The TXT record keys every room announcement carries (see PROTOCOL.md).
pub mod txt {
    /// The room's name.
    pub const ROOM: &str = "room";
    /// The wire protocol version the host speaks.
    pub const VERSION: &str = "v";
    /// The host's display name.
    pub const HOST: &str = "host";
    /// A stable id of the hosting installation.
    pub const HOST_ID: &str = "id";
    /// The SHA-256 fingerprint of the host's certificate, 64 hex digits.
    pub const KEY: &str = "key";
    /// "1" when joining needs a passphrase, else "0".
    pub const LOCKED: &str = "locked";
    /// How many people are in the room (updated at most every 2 s).
    pub const USERS: &str = "users";
}

/// Why mDNS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot start mDNS: {0}")]
    Daemon(#[from] mdns_sd::Error),
}

/// The process's mDNS daemon. Cheap to clone.
#[derive(Clone)]
pub struct Discovery {
    daemon: ServiceDaemon,
    policy: InterfacePolicy,
}

impl Discovery {
    /// Starts mDNS on the interfaces `policy` allows. The choice is re-evaluated as
    /// interfaces come and go.
    pub fn start(policy: InterfacePolicy) -> Result<Self, DiscoveryError> {
        let daemon = ServiceDaemon::new()?;
        let allowed = policy.clone();
        daemon.disable_interface(IfKind::Predicate(IfPredicate::new(move |intf| {
            let all = if_addrs::get_if_addrs().unwrap_or_default();
            !allowed.allows(intf, &all)
        })))?;
        Ok(Self { daemon, policy })
    }

    /// The interface policy in force.
    pub fn policy(&self) -> &InterfacePolicy {
        &self.policy
    }

    /// Starts following the rooms on the LAN.
    pub fn browse(&self) -> Result<RoomBrowser, DiscoveryError> {
        RoomBrowser::start(self.daemon.clone())
    }

    /// Keeps `host`'s rooms announced until [`Announcer::stop`].
    pub fn announce(
        &self,
        host: &crate::host::Host,
        identity: HostIdentity,
        port: u16,
    ) -> Announcer {
        Announcer::start(self.daemon.clone(), host.clone(), identity, port)
    }

    /// Stops the daemon (after the announcer has said its goodbyes).
    pub async fn shutdown(self) {
        if let Ok(status) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(Duration::from_secs(2), status.recv_async()).await;
        }
    }
}
