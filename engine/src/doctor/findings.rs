//! The doctor's measurements turned into findings: plain words, most useful first, each
//! with what to do.

use super::{interfaces, DoctorOptions, Finding, InterfaceUse, Level, Report};
use crate::client::HostAnswer;
use crate::reach::{self, Subnet};

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
pub(super) fn conclude(
    report: &Report,
    options: &DoctorOptions,
    subnets: &[Subnet],
) -> Vec<Finding> {
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
