//! The connectivity doctor: why rooms are not seen, in plain words, each with what to do.
//! It runs live checks at once and answers within a few seconds:
//! - `interfaces`: which are used, which are skipped and why (VPNs, containers, VMs), and
//!   whether a VPN has taken the default route;
//! - `mdns`: whether mDNS leaves and comes back through this computer on each interface,
//!   and whether other devices answer;
//! - `firewall`: this computer's rules for mDNS and the host's ports, where readable, with
//!   the command that allows them;
//! - from [`crate::reach`], which LAN Chat hosts answer on their port (the scan);
//! - `checks`: whether the rooms announced here answer where they are announced, and, while
//!   hosting, whether another host can connect back to this one's port (`reach`);
//! - `findings`: all of it in plain words, most useful first, each with what to do.

mod checks;
mod findings;
mod firewall;
mod interfaces;
mod mdns;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use firewall::{Blocking, Firewall};
pub use interfaces::InterfaceUse;
pub use mdns::MdnsProbe;

use crate::client::ReachBack;
use crate::discovery::{BrowserHandle, InterfacePolicy, ShareLink};
use crate::reach::{self, ScanReport, Subnet};

/// How long each interface listens for mDNS answers.
const MDNS_LISTEN: Duration = Duration::from_millis(1200);

/// What the doctor is told about this computer.
#[derive(Clone, Default)]
pub struct DoctorOptions {
    pub policy: InterfacePolicy,
    /// The caller's discovery: the rooms it lists once the mDNS probe has listened are
    /// checked where they are announced.
    pub browser: Option<BrowserHandle>,
    /// When this computer hosts: the port it listens on and its links.
    pub hosting: Option<(u16, Vec<ShareLink>)>,
    /// Scan the local subnets for hosts too.
    pub scan: bool,
}

/// How a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warning,
    Problem,
}

/// One finding, said plainly.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    /// "interfaces", "mdns", "others", "firewall", "hosts", "rooms", "hosting".
    pub topic: &'static str,
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What to do, if anything: a command to run or a thing to try.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Everything the doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The one-line answer: the first problem, or that all is well.
    pub summary: String,
    pub findings: Vec<Finding>,
    pub interfaces: Vec<InterfaceUse>,
    pub default_route: Option<String>,
    pub mdns: Vec<MdnsProbe>,
    pub firewall: Firewall,
    pub scan: Option<ScanReport>,
    /// Announced rooms checked where they are announced.
    pub announced: Vec<AnnouncedCheck>,
    /// While hosting: whether another LAN Chat host could connect back to this one's port.
    pub reach: Option<ReachCheck>,
    pub ms: u64,
}

/// Another host asked to connect back to this host's port (`reach` in PROTOCOL.md).
#[derive(Debug, Clone, Serialize)]
pub struct ReachCheck {
    pub port: u16,
    /// Other hosts asked, in order, until one answered.
    pub asked: Vec<SocketAddr>,
    /// What the one that answered said.
    pub answer: Option<ReachBack>,
}

/// An announced room, checked at its announced addresses.
#[derive(Debug, Clone, Serialize)]
pub struct AnnouncedCheck {
    pub room: String,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
    pub answered: Option<SocketAddr>,
}

/// Runs every check at once.
pub async fn run(options: DoctorOptions) -> Report {
    let started = Instant::now();
    let interfaces = interfaces::survey(&options.policy);
    let default_route = interfaces::default_route();
    let subnets = Subnet::local(&options.policy);
    let ports = reach::host_ports();
    let port_range = (ports[0], *ports.last().expect("a range"));
    let own = interfaces::own_ipv4();
    let mdns_probes = {
        let subnets = subnets.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let running: Vec<_> = subnets
                    .iter()
                    .filter(|s| !s.address.is_loopback())
                    .map(|s| {
                        scope.spawn(|| mdns::probe(&s.interface, s.address, &own, MDNS_LISTEN))
                    })
                    .collect();
                running
                    .into_iter()
                    .filter_map(|t| t.join().ok())
                    .collect::<Vec<_>>()
            })
        })
    };
    let hosting_ports = options.hosting.as_ref().map(|(port, _)| *port);
    let firewall_range = match hosting_ports {
        Some(port) if !(port_range.0..=port_range.1).contains(&port) => (port, port),
        _ => port_range,
    };
    let firewall = tokio::task::spawn_blocking(move || firewall::read(firewall_range));
    let scan = async {
        match options.scan {
            true => Some(reach::scan(subnets.clone(), &ports).await),
            false => None,
        }
    };
    let announced = async {
        let Some(browser) = &options.browser else {
            return Vec::new();
        };
        // Give the announcements as long as the mDNS probe listens.
        tokio::time::sleep(MDNS_LISTEN).await;
        checks::check_announced(&browser.rooms()).await
    };
    let hosting_port = options.hosting.as_ref().map(|(port, _)| *port);
    let own_for_reach = interfaces::own_ipv4();
    let scan_then_reach = async {
        let scan = scan.await;
        let reach = match (hosting_port, &scan) {
            (Some(port), Some(scan)) => {
                Some(checks::check_reach(port, &scan.hosts, &own_for_reach).await)
            }
            _ => None,
        };
        (scan, reach)
    };
    let (mdns_probes, firewall, (scan, reach), announced) =
        tokio::join!(mdns_probes, firewall, scan_then_reach, announced);
    let mut report = Report {
        summary: String::new(),
        findings: Vec::new(),
        interfaces,
        default_route,
        mdns: mdns_probes.unwrap_or_default(),
        firewall: firewall.unwrap_or_default(),
        scan,
        announced,
        reach,
        ms: 0,
    };
    report.findings = findings::conclude(&report, &options, &subnets);
    report.summary = report
        .findings
        .iter()
        .find(|f| f.level == Level::Problem)
        .or_else(|| report.findings.iter().find(|f| f.level == Level::Warning))
        .map_or_else(
            || "Everything LAN Chat needs works on this computer.".to_owned(),
            |f| f.title.clone(),
        );
    report.ms = started.elapsed().as_millis() as u64;
    report
}
