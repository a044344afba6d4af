//! The CLI's use of discovery: listing rooms, finding one to join by name, choosing the
//! interfaces, and the addresses and links a host prints.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use lanchat::config::ConfigStore;
use lanchat::discovery::{
    BrowserHandle, DiscoveredRoom, Discovery, InterfacePolicy, RoomBrowser, RoomChange,
};
use lanchat::protocol;
use lanchat::reach::{host_ports, rooms_of, AddedHosts, Subnet};

/// The interfaces to use: `--interface` values (saved for next time; `auto` clears the
/// pin), else the saved ones, else automatic.
pub fn interface_policy(given: &[String]) -> InterfacePolicy {
    let store = ConfigStore::from_env().ok();
    if !given.is_empty() {
        let names: Vec<String> = if given.iter().any(|g| g == "auto") {
            Vec::new()
        } else {
            given.to_vec()
        };
        if let Some(store) = &store {
            if let Err(e) = store.save_interfaces(&names) {
                eprintln!("lanchat: warning: {e}");
            }
        }
        return InterfacePolicy::pinned(names);
    }
    let saved = store.map(|s| s.load().0.interfaces).unwrap_or_default();
    InterfacePolicy::pinned(saved)
}

pub fn start_discovery(policy: InterfacePolicy) -> Result<Discovery, String> {
    Discovery::start(policy).map_err(|e| {
        format!("{e}. Without multicast, join by address instead (the host prints it).")
    })
}

/// One line describing a room: "Tokyo on alice-laptop (2 users) 10.0.0.5:4000".
pub fn room_line(room: &DiscoveredRoom) -> String {
    let mut line = room.label();
    if let Some(users) = room.users {
        line.push_str(&format!(
            " ({users} {})",
            if users == 1 { "user" } else { "users" }
        ));
    }
    if room.locked {
        line.push_str(" [locked]");
    }
    if let Some(code) = room.code() {
        line.push_str(&format!(" [key {code}]"));
    }
    if !room.compatible() {
        line.push_str(&format!(
            " [protocol v{}: needs another LAN Chat version]",
            room.version
        ));
    }
    let addrs: Vec<String> = room.addrs.iter().map(show_addr).collect();
    format!("{line}  {}", addrs.join(" "))
}

fn show_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            format!("[{}%{}]:{}", v6.ip(), v6.scope_id(), v6.port())
        }
        other => other.to_string(),
    }
}

/// `lanchat rooms`: prints rooms as they are found for `wait`, or changes forever with
/// `watch`.
pub async fn run_rooms(
    policy: InterfacePolicy,
    wait: Duration,
    watch: bool,
    json: bool,
    scan: bool,
) -> Result<(), String> {
    let discovery = start_discovery(policy.clone())?;
    let mut browser = discovery.browse().map_err(|e| e.to_string())?;
    // Hosts added by address, and with --scan the local subnets, are listed beside the
    // announced rooms, through the same list.
    let mut others = tokio::spawn(find_others(browser.handle(), policy, scan));
    let mut others_done = false;
    let mut deadline = Instant::now() + wait;
    let mut seen = 0usize;
    loop {
        let change = if watch {
            browser.next().await
        } else {
            tokio::select! {
                change = tokio::time::timeout_at(deadline, browser.next()) => match change {
                    Ok(change) => change,
                    Err(_) if others_done => break,
                    // Not done asking: list what it finds, then a moment for the changes.
                    Err(_) => {
                        let _ = (&mut others).await;
                        others_done = true;
                        deadline = Instant::now() + Duration::from_millis(100);
                        continue;
                    }
                },
                _ = &mut others, if !others_done => {
                    others_done = true;
                    continue;
                }
            }
        };
        let Some(change) = change else { break };
        let (mark, room, kind) = match &change {
            RoomChange::Appeared(r) => ("+", r, "appeared"),
            RoomChange::Updated(r) => ("~", r, "updated"),
            RoomChange::Gone(r) => ("-", r, "gone"),
        };
        if !watch && !matches!(change, RoomChange::Appeared(_)) {
            continue;
        }
        seen += 1;
        if json {
            println!("{}", room_json(kind, room));
        } else if watch {
            println!("{mark} {}", room_line(room));
        } else {
            println!("{}", room_line(room));
        }
    }
    if !watch && seen == 0 && !json {
        println!(
            "No LAN Chat rooms found in {:.0} s. `lanchat doctor` says what keeps them from \
             this computer (firewall, VPN, an isolated or guest network){}; joining by address \
             works without discovery.",
            wait.as_secs_f64(),
            if scan {
                ""
            } else {
                "; `lanchat rooms --scan` asks every address of this network"
            }
        );
    }
    drop(browser);
    discovery.shutdown().await;
    Ok(())
}

/// Lists the rooms of the hosts added by address (`lanchat hosts add`), and with `scan` those
/// of every LAN Chat host answering on the local subnets.
pub async fn find_others(browser: BrowserHandle, policy: InterfacePolicy, scan: bool) {
    let added = async {
        let Ok(store) = ConfigStore::from_env() else {
            return;
        };
        let rooms = AddedHosts::at(store.dir())
            .rooms(Duration::from_secs(2))
            .await;
        browser.set_found("added", rooms);
    };
    let scanned = async {
        if !scan {
            return;
        }
        let report = lanchat::reach::scan(Subnet::local(&policy), &host_ports()).await;
        eprintln!(
            "lanchat: asked {} addresses of {} in {} ms: {} LAN Chat host(s)",
            report.probed,
            report
                .subnets
                .iter()
                .map(Subnet::cidr)
                .collect::<Vec<_>>()
                .join(", "),
            report.ms,
            report.hosts.len()
        );
        let rooms = report
            .hosts
            .iter()
            .flat_map(|h| rooms_of(h, "scan"))
            .collect();
        browser.set_found("scan", rooms);
    };
    tokio::join!(added, scanned);
}

fn room_json(change: &str, room: &DiscoveredRoom) -> String {
    serde_json::json!({
        "change": change,
        "room": room.room,
        "host": room.host,
        "host_id": room.host_id,
        "version": room.version,
        "locked": room.locked,
        "users": room.users,
        "addrs": room.addrs.iter().map(show_addr).collect::<Vec<_>>(),
        "key": room.key,
        "host_key": room.host_key.map(|k| k.to_hex()),
        "code": room.code(),
    })
    .to_string()
}

/// Finds the room called `name` on the LAN (optionally on the host called `host`). Waits up
/// to `wait` for a first match, then briefly for others of the same name; asks which one on
/// a terminal, or fails clearly, when several hosts have it.
pub async fn find_room(
    browser: &mut RoomBrowser,
    name: &str,
    host: Option<&str>,
    wait: Duration,
) -> Result<DiscoveredRoom, String> {
    let key = protocol::name_key(name);
    let wanted = |r: &DiscoveredRoom| {
        protocol::name_key(&r.room) == key
            && host.is_none_or(|h| {
                protocol::name_key(h) == protocol::name_key(&r.host) || h == r.host_id
            })
    };
    let mut deadline = Instant::now() + wait;
    let mut settled = false;
    loop {
        let matches: Vec<DiscoveredRoom> = browser.rooms().into_iter().filter(wanted).collect();
        if !matches.is_empty() && !settled {
            // Others of the same name answer within a few hundred milliseconds too.
            deadline = deadline.min(Instant::now() + Duration::from_millis(500));
            settled = true;
        }
        if tokio::time::timeout_at(deadline, browser.next())
            .await
            .is_err()
        {
            break;
        }
    }
    let mut matches: Vec<DiscoveredRoom> = browser.rooms().into_iter().filter(wanted).collect();
    match matches.len() {
        0 => {
            let others: Vec<String> = browser.rooms().iter().map(|r| r.label()).collect();
            let seen = if others.is_empty() {
                "no rooms at all were found (is multicast blocked?)".to_owned()
            } else {
                format!("rooms seen: {}", others.join(", "))
            };
            Err(format!(
                "no room named \"{name}\"{} on the LAN within {:.0} s; {seen}. \
                 Join by address instead: lanchat join HOST:PORT --room {name}",
                host.map(|h| format!(" on host \"{h}\""))
                    .unwrap_or_default(),
                wait.as_secs_f64()
            ))
        }
        1 => Ok(matches.remove(0)),
        _ => choose(matches).await,
    }
}

/// Asks which of several rooms of the same name to join, on a terminal; fails clearly in a
/// pipe.
async fn choose(rooms: Vec<DiscoveredRoom>) -> Result<DiscoveredRoom, String> {
    let list: Vec<String> = rooms
        .iter()
        .enumerate()
        .map(|(i, r)| format!("  {}. {}", i + 1, room_line(r)))
        .collect();
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "{} hosts have a room called \"{}\":\n{}\nPick one with --host NAME, or join by address.",
            rooms.len(),
            rooms[0].room,
            list.join("\n")
        ));
    }
    eprintln!(
        "Several hosts have a room called \"{}\":\n{}",
        rooms[0].room,
        list.join("\n")
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("Join which one (1-{})? ", rooms.len());
        let Ok(Some(line)) = lines.next_line().await else {
            return Err("no choice made".into());
        };
        if let Ok(n) = line.trim().parse::<usize>() {
            if (1..=rooms.len()).contains(&n) {
                return Ok(rooms[n - 1].clone());
            }
        }
    }
}
