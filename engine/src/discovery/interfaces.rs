//! Which network interfaces LAN Chat uses for mDNS and shows as join addresses.
//!
//! By default: every interface that is up and could reach other people on the LAN. Loopback
//! only when it is all there is (a machine with no network still hosts for itself); never
//! container bridges, virtual ethernet pairs or VPN tunnels, where nobody is to be found and
//! announcing would leak rooms where they do not belong. A user can pin named interfaces
//! instead (remembered in the config).

use std::net::IpAddr;

use if_addrs::Interface;
use serde::{Deserialize, Serialize};

/// Name prefixes of interfaces that are skipped unless pinned: container and VM bridges,
/// virtual ethernet pairs, and VPN tunnels.
const EXCLUDED_PREFIXES: &[&str] = &[
    "docker",
    "br-",
    "virbr",
    "veth",
    "cni",
    "flannel",
    "cali",
    "podman",
    "lxcbr",
    "lxdbr",
    "vboxnet",
    "vmnet",
    "tun",
    "tap",
    "wg",
    "tailscale",
    "zt",
    "utun",
    "ppp",
    "ipsec",
];

/// Which interfaces to use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacePolicy {
    /// Interface names to use exclusively; empty means "choose automatically".
    #[serde(default)]
    pub pinned: Vec<String>,
}

impl InterfacePolicy {
    pub fn automatic() -> Self {
        Self::default()
    }

    pub fn pinned(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            pinned: names.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `intf` is used, given every interface on the machine.
    pub fn allows(&self, intf: &Interface, all: &[Interface]) -> bool {
        if !self.pinned.is_empty() {
            return self.pinned.contains(&intf.name);
        }
        if !intf.is_oper_up() || intf.is_p2p() {
            return false;
        }
        if intf.is_loopback() {
            // Loopback only when nothing else could carry the room.
            return !all.iter().any(|other| self.is_lan(other));
        }
        self.is_lan(intf)
    }

    fn is_lan(&self, intf: &Interface) -> bool {
        intf.is_oper_up()
            && !intf.is_p2p()
            && !intf.is_loopback()
            && excluded_by_default(&intf.name).is_none()
    }
}

/// Why an interface is skipped by default, if it is.
pub fn excluded_by_default(name: &str) -> Option<&'static str> {
    EXCLUDED_PREFIXES
        .iter()
        .find(|prefix| name.starts_with(*prefix))
        .map(|prefix| match *prefix {
            "tun" | "tap" | "wg" | "tailscale" | "zt" | "utun" | "ppp" | "ipsec" => "VPN tunnel",
            "veth" => "virtual ethernet pair",
            _ => "container or VM bridge",
        })
}

/// An address people on the LAN can use to reach this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanAddress {
    pub interface: String,
    pub ip: IpAddr,
    /// The interface index, needed to use an IPv6 link-local address.
    pub scope: u32,
}

/// The machine's addresses on the interfaces the policy allows: IPv4 first, then IPv6
/// (link-local ones last).
pub fn lan_addresses(policy: &InterfacePolicy) -> Vec<LanAddress> {
    let all = if_addrs::get_if_addrs().unwrap_or_default();
    let mut addrs: Vec<LanAddress> = all
        .iter()
        .filter(|intf| policy.allows(intf, &all))
        .map(|intf| LanAddress {
            interface: intf.name.clone(),
            ip: intf.ip(),
            scope: intf.index.unwrap_or(0),
        })
        .collect();
    addrs.sort_by_key(|a| address_rank(a.ip));
    addrs.dedup_by(|a, b| a.ip == b.ip);
    addrs
}

/// Sort key for addresses to try: IPv4, then global IPv6, then link-local IPv6, then
/// loopback.
pub(crate) fn address_rank(ip: IpAddr) -> u8 {
    match ip {
        _ if ip.is_loopback() => 3,
        IpAddr::V4(_) => 0,
        IpAddr::V6(v6) if v6.is_unicast_link_local() => 2,
        IpAddr::V6(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_bridges_and_tunnels_are_skipped_by_default() {
        for name in [
            "docker0",
            "br-1a2b3c",
            "virbr0",
            "veth12ab",
            "tun0",
            "wg0",
            "tailscale0",
        ] {
            assert!(excluded_by_default(name).is_some(), "{name}");
        }
        for name in ["eth0", "enp3s0", "wlan0", "wlp2s0", "va", "vb"] {
            assert!(excluded_by_default(name).is_none(), "{name}");
        }
    }

    #[test]
    fn addresses_rank_ipv4_first_and_loopback_last() {
        let mut ips: Vec<IpAddr> = ["::1", "fe80::1", "127.0.0.1", "2001:db8::1", "10.0.0.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ips.sort_by_key(|ip| address_rank(*ip));
        let shown: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(shown[..3], ["10.0.0.1", "2001:db8::1", "fe80::1"]);
    }
}
