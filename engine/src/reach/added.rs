//! Hosts added by address ("Add a host"), for rooms on another subnet or behind a network
//! that drops multicast: `hosts.json` in the config directory, a list of `ADDRESS[:PORT]`.
//! Their rooms are listed beside the discovered ones for as long as they answer.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::{probe, HostAnswer, ProbeError};

use super::host_ports;

/// The file in the config directory.
pub const FILE_NAME: &str = "hosts.json";
/// Hosts one can add; beyond this, adding says to remove one first.
pub const MAX_ADDED: usize = 64;

/// Why a host could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum AddedHostsError {
    #[error("{0:?} is not an address: give an IP address, optionally with :PORT")]
    NotAnAddress(String),
    #[error("at most {MAX_ADDED} hosts can be added; remove one first")]
    Full,
    #[error("cannot save {path}: {source}")]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One added host: an address, and a port if the user gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddedHost {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl AddedHost {
    /// "10.0.0.5", "10.0.0.5:47474", "[fe80::1]:47474", "fe80::1".
    pub fn parse(text: &str) -> Result<Self, AddedHostsError> {
        let text = text.trim();
        let text = text.strip_prefix("lanchat://").unwrap_or(text);
        let text = text.split('/').next().unwrap_or(text);
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self {
                ip: addr.ip(),
                port: Some(addr.port()).filter(|p| *p != 0),
            });
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>()
            .map(|ip| Self { ip, port: None })
            .map_err(|_| AddedHostsError::NotAnAddress(text.to_owned()))
    }

    /// The ports to ask, in order: the given one, or those a host picks by itself.
    pub fn ports(&self) -> Vec<u16> {
        self.port.map_or_else(host_ports, |p| vec![p])
    }
}

impl std::fmt::Display for AddedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}", SocketAddr::new(self.ip, port)),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// The list, read from and saved to the config directory.
#[derive(Debug, Clone)]
pub struct AddedHosts {
    path: PathBuf,
}

impl AddedHosts {
    pub fn at(config_dir: &Path) -> Self {
        Self {
            path: config_dir.join(FILE_NAME),
        }
    }

    /// The hosts added (a damaged or missing file is an empty list).
    pub fn list(&self) -> Vec<AddedHost> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Adds `text` (if it is not there already); returns it as saved.
    pub fn add(&self, text: &str) -> Result<AddedHost, AddedHostsError> {
        let host = AddedHost::parse(text)?;
        let mut hosts = self.list();
        if !hosts.contains(&host) {
            if hosts.len() >= MAX_ADDED {
                return Err(AddedHostsError::Full);
            }
            hosts.push(host);
            self.save(&hosts)?;
        }
        Ok(host)
    }

    /// Removes `text`; whether it was there.
    pub fn remove(&self, text: &str) -> Result<bool, AddedHostsError> {
        let host = AddedHost::parse(text)?;
        let mut hosts = self.list();
        let before = hosts.len();
        hosts.retain(|h| *h != host);
        if hosts.len() == before {
            return Ok(false);
        }
        self.save(&hosts)?;
        Ok(true)
    }

    /// Asks every added host at once; the rooms of those that answer, listed as
    /// "added" (see [`super::rooms_of`]).
    pub async fn rooms(&self, patience: Duration) -> Vec<crate::discovery::DiscoveredRoom> {
        let asks = self.list().into_iter().map(|host| ask(host, patience));
        futures_util::future::join_all(asks)
            .await
            .iter()
            .flatten()
            .flat_map(|answer| super::rooms_of(answer, "added"))
            .collect()
    }

    fn save(&self, hosts: &[AddedHost]) -> Result<(), AddedHostsError> {
        let json = serde_json::to_vec_pretty(hosts).expect("addresses serialize");
        if let Some(dir) = self.path.parent() {
            let _ = crate::private::ensure_dir(dir);
        }
        crate::private::write_atomic(&self.path, &json).map_err(|source| AddedHostsError::Save {
            path: self.path.clone(),
            source,
        })
    }
}

/// Asks an added host what it hosts: its port, or each port a host picks by itself until
/// one answers (stopping early when nothing is at the address at all).
pub async fn ask(host: AddedHost, patience: Duration) -> Result<HostAnswer, ProbeError> {
    let mut last = ProbeError::Silent(SocketAddr::new(host.ip, host.ports()[0]));
    for port in host.ports() {
        match probe(SocketAddr::new(host.ip, port), patience, patience).await {
            Ok(answer) => return Ok(answer),
            Err(e @ ProbeError::Silent(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_added_by_address_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = AddedHosts::at(dir.path());
        assert_eq!(hosts.add("10.202.0.2").unwrap().to_string(), "10.202.0.2");
        hosts.add("10.202.0.2").unwrap();
        hosts.add(" 10.202.0.3:5000 ").unwrap();
        hosts
            .add("lanchat://10.202.0.4:47475/Tokyo?key=ab")
            .unwrap();
        let listed: Vec<String> = AddedHosts::at(dir.path())
            .list()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listed,
            ["10.202.0.2", "10.202.0.3:5000", "10.202.0.4:47475"]
        );
        assert!(hosts.remove("10.202.0.3:5000").unwrap());
        assert!(!hosts.remove("10.202.0.3:5000").unwrap());
        assert_eq!(hosts.list().len(), 2);
        assert!(matches!(
            hosts.add("alice's laptop"),
            Err(AddedHostsError::NotAnAddress(_))
        ));
        assert_eq!(AddedHost::parse("10.0.0.1").unwrap().ports()[0], 47474);
    }
}
