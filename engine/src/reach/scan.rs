//! Asking every address of the local subnets whether a LAN Chat host is there, for when
//! multicast finds nothing. Bounded: at most a /22 per interface, at most
//! [`CONCURRENCY`] connections at once, each silent address given up after
//! [`CONNECT_TIMEOUT`]. Only the default port is asked everywhere; the fallback ports only
//! where a machine answered on it (a host, or a refusal), so a /24 takes about one connect
//! timeout.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::client::{probe, HostAnswer, ProbeError};
use crate::discovery::InterfacePolicy;

/// Connections in flight at once (also below the kernel's default neighbour table size, so
/// address resolution for silent addresses does not overflow it).
pub const CONCURRENCY: usize = 256;
/// A machine that has not answered by now is taken as absent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(700);
/// A host that accepted the connection has this long to say `hello`.
pub const HELLO_TIMEOUT: Duration = Duration::from_millis(1500);
/// The widest subnet scanned per interface: a /22 (1,022 addresses).
pub const WIDEST_PREFIX: u8 = 22;

/// One interface's IPv4 subnet, as scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub interface: String,
    /// This machine's address on it.
    pub address: Ipv4Addr,
    /// The prefix length scanned (the interface's, or [`WIDEST_PREFIX`] if it is wider).
    pub prefix: u8,
    /// The interface's own prefix length.
    pub own_prefix: u8,
}

impl Subnet {
    /// The subnets of the interfaces `policy` allows (IPv4; loopback only when it is all
    /// there is, as for mDNS).
    pub fn local(policy: &InterfacePolicy) -> Vec<Subnet> {
        let all = if_addrs::get_if_addrs().unwrap_or_default();
        all.iter()
            .filter(|intf| policy.allows(intf, &all))
            .filter_map(|intf| match &intf.addr {
                if_addrs::IfAddr::V4(v4) => Some(Subnet {
                    interface: intf.name.clone(),
                    address: v4.ip,
                    prefix: v4.prefixlen.max(WIDEST_PREFIX),
                    own_prefix: v4.prefixlen,
                }),
                if_addrs::IfAddr::V6(_) => None,
            })
            .collect()
    }

    /// Its addresses but the network and broadcast ones (a /31 or /32 is all hosts).
    pub fn hosts(&self) -> Vec<Ipv4Addr> {
        if self.address.is_loopback() {
            return vec![self.address];
        }
        let bits = 32 - u32::from(self.prefix.min(32));
        let mask = if bits == 32 { 0 } else { u32::MAX << bits };
        let network = u32::from(self.address) & mask;
        let size = 1u64 << bits;
        let range = if size <= 2 { 0..size } else { 1..size - 1 };
        range.map(|i| Ipv4Addr::from(network + i as u32)).collect()
    }

    /// "10.0.0.0/24".
    pub fn cidr(&self) -> String {
        let bits = 32 - u32::from(self.prefix.min(32));
        let mask = if bits == 32 { 0 } else { u32::MAX << bits };
        format!(
            "{}/{}",
            Ipv4Addr::from(u32::from(self.address) & mask),
            self.prefix
        )
    }
}

/// What a scan found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    pub subnets: Vec<Subnet>,
    pub hosts: Vec<HostAnswer>,
    /// Addresses where a machine answered (LAN Chat or not).
    pub machines: usize,
    /// Connections tried.
    pub probed: usize,
    pub ms: u64,
}

/// Asks every address of `subnets` on `ports` (the first everywhere, the others where a
/// machine answered on the first), at most [`CONCURRENCY`] at once.
pub async fn scan(subnets: Vec<Subnet>, ports: &[u16]) -> ScanReport {
    let started = Instant::now();
    let Some((&first, others)) = ports.split_first() else {
        return ScanReport::default();
    };
    let addresses: BTreeSet<Ipv4Addr> = subnets.iter().flat_map(Subnet::hosts).collect();
    let targets: Vec<SocketAddr> = addresses
        .iter()
        .map(|ip| SocketAddr::new(IpAddr::V4(*ip), first))
        .collect();
    let mut probed = targets.len();
    let results = ask(targets).await;
    let mut hosts = Vec::new();
    // Machines that answered at all: a second host on one of them took a fallback port.
    let mut there = Vec::new();
    for result in results {
        match result {
            Ok(answer) => {
                there.push(answer.addr.ip());
                hosts.push(answer);
            }
            Err(ProbeError::Refused(addr)) => there.push(addr.ip()),
            Err(_) => {}
        }
    }
    let machines = there.len();
    if !others.is_empty() && !there.is_empty() {
        let targets: Vec<SocketAddr> = there
            .iter()
            .flat_map(|ip| others.iter().map(|port| SocketAddr::new(*ip, *port)))
            .collect();
        probed += targets.len();
        hosts.extend(ask(targets).await.into_iter().filter_map(Result::ok));
    }
    hosts.sort_by_key(|h| h.addr);
    ScanReport {
        subnets,
        hosts,
        machines,
        probed,
        ms: started.elapsed().as_millis() as u64,
    }
}

async fn ask(targets: Vec<SocketAddr>) -> Vec<Result<HostAnswer, ProbeError>> {
    stream::iter(targets)
        .map(|addr| probe(addr, CONNECT_TIMEOUT, HELLO_TIMEOUT))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(address: &str, prefix: u8) -> Subnet {
        Subnet {
            interface: "eth0".into(),
            address: address.parse().unwrap(),
            prefix: prefix.max(WIDEST_PREFIX),
            own_prefix: prefix,
        }
    }

    #[test]
    fn a_24_is_its_254_hosts_and_a_wider_subnet_is_cut_to_a_22() {
        let hosts = subnet("10.1.2.3", 24).hosts();
        assert_eq!(hosts.len(), 254);
        assert_eq!(hosts[0], Ipv4Addr::new(10, 1, 2, 1));
        assert_eq!(hosts[253], Ipv4Addr::new(10, 1, 2, 254));
        let wide = subnet("10.1.6.9", 8);
        assert_eq!(wide.cidr(), "10.1.4.0/22");
        assert_eq!(wide.hosts().len(), 1022);
        assert_eq!(subnet("10.1.2.3", 31).hosts().len(), 2);
        assert_eq!(subnet("10.1.2.3", 32).hosts(), [Ipv4Addr::new(10, 1, 2, 3)]);
    }
}
