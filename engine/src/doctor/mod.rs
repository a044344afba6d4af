//! The connectivity doctor: why rooms are not seen, in plain words, each with what to do.
//! It runs live checks at once and answers within a few seconds:
//! - `interfaces`: which are used, which are skipped and why (VPNs, containers, VMs), and
//!   whether a VPN has taken the default route;
//! - `mdns`: whether mDNS leaves and comes back through this computer on each interface,
//!   and whether other devices answer;
//! - `firewall`: this computer's rules for mDNS and the host's ports, where readable, with
//!   the command that allows them;
//! - and, from [`crate::reach`], which LAN Chat hosts answer on their port (the scan), and
//!   whether the rooms announced here can be reached where they are announced.

mod firewall;
mod interfaces;
mod mdns;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use firewall::{Blocking, Firewall};
pub use interfaces::InterfaceUse;
pub use mdns::MdnsProbe;

use crate::client::{probe, reach_back, HostAnswer, ReachBack};
use crate::discovery::{BrowserHandle, DiscoveredRoom, InterfacePolicy, ShareLink};
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
        check_announced(&browser.rooms()).await
    };
    let hosting_port = options.hosting.as_ref().map(|(port, _)| *port);
    let own_for_reach = interfaces::own_ipv4();
    let scan_then_reach = async {
        let scan = scan.await;
        let reach = match (hosting_port, &scan) {
            (Some(port), Some(scan)) => Some(check_reach(port, &scan.hosts, &own_for_reach).await),
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
    report.findings = conclude(&report, &options, &subnets);
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

/// Asks other hosts (at most three, until one answers) to connect back to `port` here.
async fn check_reach(port: u16, hosts: &[HostAnswer], own: &[std::net::Ipv4Addr]) -> ReachCheck {
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

async fn check_announced(rooms: &[DiscoveredRoom]) -> Vec<AnnouncedCheck> {
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

fn host_line(host: &HostAnswer) -> String {
    let rooms: Vec<&str> = host.rooms.iter().map(|r| r.name.as_str()).collect();
    format!(
        "{} at {} (key {}; rooms: {})",
        host.name,
        host.addr,
        host.key.short_code(),
        if rooms.is_empty() {
            "none yet".to_owned()
        } else {
            rooms.join(", ")
        }
    )
}

/// Turns the measurements into findings, most useful first.
fn conclude(report: &Report, options: &DoctorOptions, subnets: &[Subnet]) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |level, topic, title: String, detail: String, fix: Option<String>| Finding {
        level,
        topic,
        title,
        detail,
        fix,
    };

    // Interfaces.
    let used: Vec<&InterfaceUse> = report.interfaces.iter().filter(|i| i.used).collect();
    if used.is_empty() || used.iter().all(|i| i.name == "lo") {
        out.push(finding(
            Level::Problem,
            "interfaces",
            "This computer is on no network: only this computer can join its rooms".into(),
            String::new(),
            Some("Connect to the Wi-Fi or plug in the cable others are on.".into()),
        ));
    } else {
        let names: Vec<String> = used
            .iter()
            .map(|i| format!("{} ({})", i.name, i.addresses.join(", ")))
            .collect();
        out.push(finding(
            Level::Ok,
            "interfaces",
            format!("Looking for rooms on {}", names.join("; ")),
            String::new(),
            None,
        ));
    }
    for skipped in report
        .interfaces
        .iter()
        .filter(|i| !i.used && i.name != "lo")
    {
        out.push(finding(
            Level::Info,
            "interfaces",
            format!("Skipping {}: {}", skipped.name, skipped.why),
            skipped.addresses.join(", "),
            None,
        ));
    }
    if let Some(route) = &report.default_route {
        if let Some(skipped) = report.interfaces.iter().find(|i| {
            &i.name == route
                && !i.used
                && crate::discovery::excluded_by_default(&i.name) == Some("VPN tunnel")
        }) {
            out.push(finding(
                Level::Warning,
                "interfaces",
                format!("A VPN ({}) carries all traffic", skipped.name),
                "Addresses on this network may be sent into the VPN instead of to the people next to you.".into(),
                Some("Allow local network access in the VPN's settings (\"LAN access\", \"split tunnelling\"), or turn it off while chatting.".into()),
            ));
        }
    }

    // The local firewall, read.
    let fw = &report.firewall;
    for block in &fw.mdns {
        out.push(finding(
            Level::Problem,
            "firewall",
            format!(
                "This computer's firewall drops mDNS ({}: {})",
                block.tool, block.rule
            ),
            format!(
                "In {}. Rooms on the network cannot appear here by themselves.",
                block.place
            ),
            Some(format!("To allow it: `{}`", block.fix)),
        ));
    }
    for block in &fw.port {
        let what = match options.hosting {
            Some((port, _)) => format!("this host's port {port}"),
            None => format!(
                "LAN Chat's ports {}-{}",
                reach::DEFAULT_PORT,
                reach::DEFAULT_PORT + reach::FALLBACK_PORTS
            ),
        };
        out.push(finding(
            if options.hosting.is_some() {
                Level::Problem
            } else {
                Level::Info
            },
            "firewall",
            format!(
                "This computer's firewall drops {what} ({}: {})",
                block.tool, block.rule
            ),
            format!("In {}. Others cannot join rooms hosted here.", block.place),
            Some(format!("To allow it: `{}`", block.fix)),
        ));
    }
    if !fw.read.is_empty() && fw.mdns.is_empty() && fw.port.is_empty() {
        out.push(finding(
            Level::Ok,
            "firewall",
            format!(
                "This computer's firewall ({}) lets mDNS and LAN Chat's ports through",
                fw.read.join(", ")
            ),
            String::new(),
            None,
        ));
    }
    if fw.read.is_empty() && !fw.unreadable.is_empty() {
        out.push(finding(
            Level::Info,
            "firewall",
            "The firewall's rules could not be read; judged from the probes instead".into(),
            fw.unreadable.join("; "),
            Some("Run `sudo lanchat doctor` to have the rules read too.".into()),
        ));
    }

    // mDNS on each interface.
    let scan_hosts: &[HostAnswer] = report.scan.as_ref().map_or(&[], |s| &s.hosts);
    let remote_hosts: Vec<&HostAnswer> = scan_hosts
        .iter()
        .filter(|h| {
            !interfaces::own_ipv4()
                .iter()
                .any(|ip| std::net::IpAddr::V4(*ip) == h.addr.ip())
        })
        .collect();
    for probe in &report.mdns {
        let at = format!("{} ({})", probe.interface, probe.address);
        if let Some(error) = &probe.error {
            out.push(finding(
                Level::Warning,
                "mdns",
                format!("mDNS could not be tried on {at}"),
                error.clone(),
                None,
            ));
            continue;
        }
        if !probe.came_back {
            let blamed = !fw.mdns.is_empty();
            out.push(finding(
                Level::Problem,
                "mdns",
                format!("mDNS does not get through this computer on {at}"),
                if blamed {
                    "Its own query never came back: the firewall rule above drops it.".into()
                } else {
                    "Its own query never came back: something on this computer (a firewall) drops mDNS.".into()
                },
                (!blamed).then(|| "Allow UDP port 5353 in the firewall (for example `sudo ufw allow 5353/udp`, or `sudo nft insert rule inet filter input udp dport 5353 accept`).".into()),
            ));
        } else {
            out.push(finding(
                Level::Ok,
                "mdns",
                format!("mDNS gets out and back on {at}"),
                String::new(),
                None,
            ));
        }
        if probe.came_back && probe.responders.is_empty() {
            let found_anyway = remote_hosts.iter().any(|h| {
                subnets.iter().any(|s| {
                    s.interface == probe.interface
                        && s.hosts()
                            .iter()
                            .any(|ip| std::net::IpAddr::V4(*ip) == h.addr.ip())
                })
            });
            let (detail, fix) = if found_anyway {
                (
                    "Yet LAN Chat hosts answer directly (below): the network carries no multicast between devices (Wi-Fi client isolation, a guest network, or a firewall in between).".to_owned(),
                    "Rooms found by the scan are listed anyway; join them from the list.".to_owned(),
                )
            } else {
                (
                    "On a network with other computers, phones or printers, this means the network keeps devices apart (Wi-Fi client isolation, a guest network) or a firewall between them drops mDNS.".to_owned(),
                    "Ask the host for the room's link or QR code (on their hosting screen) and join by address; or add their computer with \"Add a host\". If this is a guest or isolated Wi-Fi, use the main one.".to_owned(),
                )
            };
            out.push(finding(
                Level::Warning,
                "others",
                format!("No other device answers mDNS on {}", probe.interface),
                detail,
                Some(fix),
            ));
        } else if !probe.responders.is_empty() {
            out.push(finding(
                Level::Ok,
                "others",
                format!(
                    "{} other device{} answer{} mDNS on {} ({} with LAN Chat rooms)",
                    probe.responders.len(),
                    if probe.responders.len() == 1 { "" } else { "s" },
                    if probe.responders.len() == 1 { "s" } else { "" },
                    probe.interface,
                    probe.lanchat.len()
                ),
                probe
                    .responders
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                None,
            ));
        }
    }

    // Hosts that answer on their port.
    if let Some(scan) = &report.scan {
        let where_: Vec<String> = scan
            .subnets
            .iter()
            .filter(|s| !s.address.is_loopback())
            .map(|s| format!("{} on {}", s.cidr(), s.interface))
            .collect();
        if scan.hosts.is_empty() {
            out.push(finding(
                Level::Info,
                "hosts",
                format!("No LAN Chat host answers on port {} in {}", reach::DEFAULT_PORT, where_.join(", ")),
                format!("{} addresses asked in {} ms; {} machines answered.", scan.probed, scan.ms, scan.machines),
                Some("A host on another subnet can be added by its address (\"Add a host\", `lanchat hosts add ADDRESS`).".into()),
            ));
        } else {
            out.push(finding(
                Level::Ok,
                "hosts",
                format!(
                    "{} LAN Chat host{} answer{} on {}",
                    scan.hosts.len(),
                    if scan.hosts.len() == 1 { "" } else { "s" },
                    if scan.hosts.len() == 1 { "s" } else { "" },
                    where_.join(", ")
                ),
                format!(
                    "{}. {} addresses asked in {} ms.",
                    scan.hosts
                        .iter()
                        .map(host_line)
                        .collect::<Vec<_>>()
                        .join("; "),
                    scan.probed,
                    scan.ms
                ),
                None,
            ));
        }
    }

    // Announced rooms, checked where they are announced.
    for check in &report.announced {
        match check.answered {
            Some(addr) => out.push(finding(
                Level::Ok,
                "rooms",
                format!("{} on {} answers at {addr}", check.room, check.host),
                String::new(),
                None,
            )),
            None => out.push(finding(
                Level::Problem,
                "rooms",
                format!("{} on {} is announced but does not answer", check.room, check.host),
                format!("Tried {}: the host's firewall probably drops its port, or it is on a network this computer cannot reach.", check.addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
                Some(format!("On {}'s computer, run `lanchat doctor` (or \"Can't see a room?\") to see what blocks it.", check.host)),
            )),
        }
    }

    // Hosting: can others reach the port?
    if let Some(check) = &report.reach {
        let port = check.port;
        let port_fix = fw.port.first().map(|b| format!("To allow it: `{}`", b.fix)).unwrap_or_else(|| {
            format!("Allow TCP port {port} in this computer's firewall (for example `sudo ufw allow {port}/tcp`).")
        });
        match &check.answer {
            Some(answer) if answer.reached => out.push(finding(
                Level::Ok,
                "reach",
                format!("{} ({}) reached this host's port {port} in {} ms", answer.by.name, answer.by.addr.ip(), answer.ms),
                String::new(),
                None,
            )),
            Some(answer) => out.push(finding(
                Level::Problem,
                "reach",
                format!("{} ({}) cannot reach this host's port {port}", answer.by.name, answer.by.addr.ip()),
                "It tried for a second and got no answer: this computer's firewall or the network drops connections to the port, so nobody else can join rooms hosted here.".into(),
                Some(port_fix),
            )),
            None => out.push(finding(
                Level::Info,
                "reach",
                format!("No other LAN Chat host to check port {port} from"),
                "Ask someone on the network to open one of the links below: if it does not answer, this computer's firewall drops the port.".into(),
                None,
            )),
        }
    }

    // Hosting: where others join.
    if let Some((port, links)) = &options.hosting {
        let detail = links
            .iter()
            .map(|l| format!("{}: {} (browsers: {})", l.interface, l.link, l.web))
            .collect::<Vec<_>>()
            .join("\n");
        out.push(finding(
            Level::Info,
            "hosting",
            format!("Others join this computer's room at port {port}"),
            detail,
            (*port != reach::DEFAULT_PORT).then(|| {
                format!(
                    "Port {} was taken, so this host listens on {port}; the scan still finds it.",
                    reach::DEFAULT_PORT
                )
            }),
        ));
    }
    out
}
