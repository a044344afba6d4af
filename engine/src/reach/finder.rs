//! Finding a host met before wherever it is now. A host is known by its key (and id), not
//! by its address: when the address it was reached at stops answering, the client looks for
//! the key where the rooms are announced, then tries the last addresses, and meanwhile asks
//! the local subnets (the scan). When it answers somewhere new, [`Locator::connected`] says
//! so, for the front end to show.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::client::Locator;
use crate::discovery::{BrowserHandle, InterfacePolicy};
use crate::identity::Fingerprint;

use super::{host_ports, scan, Subnet};

/// Where a host with a known key is now, for [`crate::client::Endpoint::Locate`].
#[derive(Clone)]
pub struct HostFinder {
    inner: Arc<Inner>,
}

struct Inner {
    key: Fingerprint,
    label: String,
    browser: Option<BrowserHandle>,
    policy: InterfacePolicy,
    /// The addresses it was last reached at (or the link's), best first.
    last: Mutex<Vec<SocketAddr>>,
    /// Where the latest scan found it.
    scanned: Mutex<Vec<SocketAddr>>,
    /// Where it answered the last time, to notice a move.
    answered_at: Mutex<Option<SocketAddr>>,
    scanning: AtomicBool,
}

impl HostFinder {
    /// A finder for the host with `key`, last seen at `last`; `browser`, if given, is asked
    /// first, and `policy` says which interfaces' subnets to scan.
    pub fn new(
        key: Fingerprint,
        label: impl Into<String>,
        last: Vec<SocketAddr>,
        browser: Option<BrowserHandle>,
        policy: InterfacePolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                key,
                label: label.into(),
                browser,
                policy,
                last: Mutex::new(last),
                scanned: Mutex::new(Vec::new()),
                answered_at: Mutex::new(None),
                scanning: AtomicBool::new(false),
            }),
        }
    }

    /// Where the host's rooms are announced now.
    fn announced(&self) -> Vec<SocketAddr> {
        let Some(browser) = &self.inner.browser else {
            return Vec::new();
        };
        browser
            .rooms()
            .into_iter()
            .filter(|room| room.host_key == Some(self.inner.key))
            .flat_map(|room| room.addrs)
            .collect()
    }

    /// Scans the local subnets for the key in the background (one scan at a time). Not for
    /// a host reached on this computer's loopback: it is here, not somewhere on the network.
    fn start_scan(&self) {
        if lock(&self.inner.last).iter().all(|a| a.ip().is_loopback()) {
            return;
        }
        if self.inner.scanning.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.scanning.store(false, Ordering::Release);
            return;
        };
        let inner = self.inner.clone();
        runtime.spawn(async move {
            // The ports it was seen on first, then those a host picks by itself.
            let mut ports: Vec<u16> = lock(&inner.last).iter().map(SocketAddr::port).collect();
            ports.extend(host_ports());
            let mut seen = std::collections::HashSet::new();
            ports.retain(|p| seen.insert(*p));
            let report = scan(Subnet::local(&inner.policy), &ports).await;
            let found: Vec<SocketAddr> = report
                .hosts
                .iter()
                .filter(|host| host.key == inner.key)
                .map(|host| host.addr)
                .collect();
            tracing::info!(
                "looked for {} on {} addresses in {} ms: {:?}",
                inner.label,
                report.probed,
                report.ms,
                found
            );
            *lock(&inner.scanned) = found;
            inner.scanning.store(false, Ordering::Release);
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Locator for HostFinder {
    fn candidates(&self) -> Vec<SocketAddr> {
        let mut all = self.announced();
        all.extend(lock(&self.inner.scanned).iter().copied());
        all.extend(lock(&self.inner.last).iter().copied());
        let mut seen = std::collections::HashSet::new();
        all.retain(|a| seen.insert(*a));
        all
    }

    fn unreachable(&self) {
        if let Some(browser) = &self.inner.browser {
            for room in browser.rooms() {
                if room.host_key == Some(self.inner.key) {
                    browser.verify(&room.key);
                }
            }
        }
        self.start_scan();
    }

    fn describe(&self) -> String {
        self.inner.label.clone()
    }

    fn connected(&self, addr: SocketAddr) -> Option<String> {
        let before = lock(&self.inner.answered_at).replace(addr);
        let mut last = lock(&self.inner.last);
        last.retain(|a| *a != addr);
        last.insert(0, addr);
        last.truncate(4);
        match before {
            Some(before) if before != addr => Some(format!(
                "{} moved from {before} to {addr}; found again by its key {}",
                self.inner.label,
                self.inner.key.short_code()
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder(last: &str) -> HostFinder {
        HostFinder::new(
            Fingerprint([7; 32]),
            "the host of Tokyo",
            vec![last.parse().unwrap()],
            None,
            // Any scan a test starts asks this computer's loopback only, never a real network.
            InterfacePolicy::pinned(["lo"]),
        )
    }

    #[tokio::test]
    async fn a_host_on_loopback_is_never_looked_for_on_the_network() {
        let here = finder("127.0.0.1:47474");
        here.unreachable();
        assert!(!here.inner.scanning.load(Ordering::Acquire));
        let away = finder("10.9.9.9:47474");
        away.unreachable();
        assert!(
            away.inner.scanning.load(Ordering::Acquire),
            "a scan started"
        );
    }

    #[test]
    fn where_it_was_found_comes_before_where_it_was_and_a_move_is_told() {
        let f = finder("10.0.0.5:47474");
        *lock(&f.inner.scanned) = vec!["10.0.0.7:47474".parse().unwrap()];
        assert_eq!(
            f.candidates(),
            [
                "10.0.0.7:47474".parse().unwrap(),
                "10.0.0.5:47474".parse().unwrap()
            ]
        );
        assert_eq!(f.connected("10.0.0.5:47474".parse().unwrap()), None);
        let told = f.connected("10.0.0.7:47474".parse().unwrap()).unwrap();
        assert_eq!(
            told,
            format!(
                "the host of Tokyo moved from 10.0.0.5:47474 to 10.0.0.7:47474; found again by its key {}",
                Fingerprint([7; 32]).short_code()
            )
        );
        assert_eq!(lock(&f.inner.last)[0], "10.0.0.7:47474".parse().unwrap());
    }
}
