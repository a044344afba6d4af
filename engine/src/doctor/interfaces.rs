//! Which interfaces LAN Chat uses, which it skips and why, and where the default route goes.

use std::net::IpAddr;

use serde::Serialize;

use crate::discovery::{excluded_by_default, InterfacePolicy};

/// One interface as the doctor shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceUse {
    pub name: String,
    /// Its addresses ("10.0.0.5/24").
    pub addresses: Vec<String>,
    pub used: bool,
    /// Why it is skipped, in plain words (empty when used).
    pub why: String,
}

/// Every interface, used ones first.
pub fn survey(policy: &InterfacePolicy) -> Vec<InterfaceUse> {
    let all = if_addrs::get_if_addrs().unwrap_or_default();
    let mut names: Vec<String> = all.iter().map(|i| i.name.clone()).collect();
    names.dedup();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let mut uses: Vec<InterfaceUse> = names
        .into_iter()
        .map(|name| {
            let mine: Vec<_> = all.iter().filter(|i| i.name == name).collect();
            let used = mine.iter().any(|i| policy.allows(i, &all));
            let first = mine[0];
            let why = if used {
                String::new()
            } else if !policy.pinned.is_empty() {
                "not among the interfaces chosen in the settings".into()
            } else if first.is_loopback() {
                "loopback: only this computer is there".into()
            } else if let Some(kind) = excluded_by_default(&name) {
                match kind {
                    "VPN tunnel" => "a VPN tunnel: people on this network are not behind it, and rooms are not announced into it".into(),
                    "virtual ethernet pair" => "a virtual ethernet pair: a container's end of a link, not the LAN".into(),
                    _ => "a container or virtual machine bridge: only containers or VMs on this computer are behind it".into(),
                }
            } else if first.is_p2p() {
                "a point-to-point link (a VPN or a modem), not a LAN".into()
            } else if !first.is_oper_up() {
                "down (no cable, or not connected)".into()
            } else {
                "not used".into()
            };
            InterfaceUse {
                addresses: mine
                    .iter()
                    .map(|i| match &i.addr {
                        if_addrs::IfAddr::V4(v4) => format!("{}/{}", v4.ip, v4.prefixlen),
                        if_addrs::IfAddr::V6(v6) => format!("{}/{}", v6.ip, v6.prefixlen),
                    })
                    .collect(),
                name,
                used,
                why,
            }
        })
        .collect();
    uses.sort_by_key(|u| !u.used);
    uses
}

/// The interface the IPv4 default route goes through, if any (`/proc/net/route`).
pub fn default_route() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 7 && f[1] == "00000000" && f[7] == "00000000")
        .min_by_key(|f| f[6].parse::<u32>().unwrap_or(u32::MAX))
        .map(|f| f[0].to_owned())
}

/// This machine's IPv4 addresses.
pub fn own_ipv4() -> Vec<std::net::Ipv4Addr> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect()
}
