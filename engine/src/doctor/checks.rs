//! The checks that ask other hosts: the announced rooms where they are announced, and
//! another host connecting back to this one's port.

use std::time::Duration;

use super::{AnnouncedCheck, ReachCheck};
use crate::client::{probe, reach_back, HostAnswer};
use crate::discovery::DiscoveredRoom;

/// Asks other hosts (at most three, until one answers) to connect back to `port` here.
pub(super) async fn check_reach(
    port: u16,
    hosts: &[HostAnswer],
    own: &[std::net::Ipv4Addr],
) -> ReachCheck {
    let others = hosts
        .iter()
        .filter(|h| !matches!(h.addr.ip(), std::net::IpAddr::V4(ip) if own.contains(&ip) || ip.is_loopback()))
        .take(3);
    let mut check = ReachCheck {
        port,
        asked: Vec::new(),
        answer: None,
    };
    for host in others {
        check.asked.push(host.addr);
        if let Ok(answer) = reach_back(host.addr, port, Duration::from_millis(1500)).await {
            check.answer = Some(answer);
            break;
        }
    }
    check
}

pub(super) async fn check_announced(rooms: &[DiscoveredRoom]) -> Vec<AnnouncedCheck> {
    let checks = rooms.iter().map(|room| async move {
        let mut answered = None;
        for addr in &room.addrs {
            if probe(
                *addr,
                Duration::from_millis(700),
                Duration::from_millis(1500),
            )
            .await
            .is_ok()
            {
                answered = Some(*addr);
                break;
            }
        }
        AnnouncedCheck {
            room: room.room.clone(),
            host: room.host.clone(),
            addrs: room.addrs.clone(),
            answered,
        }
    });
    futures_util::future::join_all(checks).await
}
