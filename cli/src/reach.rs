//! `lanchat doctor` (why rooms are not seen) and `lanchat hosts` (hosts added by address).

use std::time::Duration;

use lanchat::config::ConfigStore;
use lanchat::discovery::InterfacePolicy;
use lanchat::doctor::{DoctorOptions, Level, Report};
use lanchat::reach::{ask_added, rooms_of, AddedHosts};

use crate::lan;

/// `lanchat doctor [--json]`.
pub async fn run_doctor(policy: InterfacePolicy, json: bool) -> Result<(), String> {
    // Discovery runs beside the checks, so announced rooms are checked where they are.
    let discovery = lan::start_discovery(policy.clone()).ok();
    let browser = discovery.as_ref().and_then(|d| d.browse().ok());
    let hosting = local_host(&policy).await;
    let report = lanchat::doctor::run(DoctorOptions {
        policy,
        browser: browser.as_ref().map(|b| b.handle()),
        hosting,
        scan: true,
    })
    .await;
    drop(browser);
    if let Some(discovery) = discovery {
        discovery.shutdown().await;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// A LAN Chat host running on this computer (`lanchat host`, or the app hosting), if one
/// answers on LAN Chat's ports: the doctor then checks it as a host, with its links.
async fn local_host(policy: &InterfacePolicy) -> Option<(u16, Vec<lanchat::discovery::ShareLink>)> {
    for port in lanchat::reach::host_ports() {
        let here = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let short = Duration::from_millis(300);
        if let Ok(answer) = lanchat::client::probe(here, short, Duration::from_secs(2)).await {
            let room = answer.rooms.first().map_or("Lobby", |r| r.name.as_str());
            return Some((
                port,
                lanchat::discovery::share_links(port, room, answer.key, policy),
            ));
        }
    }
    None
}

/// The report as text, one finding per paragraph.
pub fn render(report: &Report) -> String {
    let mut out = format!("LAN Chat doctor ({} ms): {}\n\n", report.ms, report.summary);
    for f in &report.findings {
        let mark = match f.level {
            Level::Ok => "ok",
            Level::Info => "--",
            Level::Warning => "!!",
            Level::Problem => "XX",
        };
        out.push_str(&format!("{mark} {}\n", f.title));
        for line in f.detail.lines().filter(|l| !l.is_empty()) {
            out.push_str(&format!("   {line}\n"));
        }
        if let Some(fix) = &f.fix {
            out.push_str(&format!("   => {fix}\n"));
        }
    }
    out
}

/// `lanchat hosts [add|remove ADDRESS]`.
pub async fn run_hosts(action: Option<(bool, String)>) -> Result<(), String> {
    let store = ConfigStore::from_env().map_err(|e| e.to_string())?;
    let hosts = AddedHosts::at(store.dir());
    match action {
        Some((true, address)) => {
            let host = hosts.add(&address).map_err(|e| e.to_string())?;
            match ask_added(host, Duration::from_secs(2)).await {
                Ok(answer) => {
                    println!("Added {host}: {} answers at {}", answer.name, answer.addr);
                    for room in rooms_of(&answer, "added") {
                        println!("  {}", lan::room_line(&room));
                    }
                }
                Err(e) => println!(
                    "Added {host}, but it does not answer now ({e}); its rooms are listed when it does."
                ),
            }
        }
        Some((false, address)) => match hosts.remove(&address).map_err(|e| e.to_string())? {
            true => println!("Removed {address}"),
            false => println!("{address} was not added"),
        },
        None => {
            let list = hosts.list();
            if list.is_empty() {
                println!(
                    "No hosts added. Add one on another subnet with `lanchat hosts add ADDRESS`."
                );
            }
            for host in list {
                println!("{host}");
            }
        }
    }
    Ok(())
}
