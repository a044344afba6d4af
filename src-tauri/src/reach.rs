//! "Can't see a room?": the connectivity doctor, the scan of the local subnets, and hosts
//! added by address, for the home screen. Rooms found by the scan or at an added host go
//! into the same list as the announced ones (see `commands::watch_rooms`).

use std::time::Duration;

use lanchat::doctor::{DoctorOptions, Report};
use lanchat::reach::{host_ports, rooms_of, AddedHosts, Subnet};
use serde::Serialize;
use tauri::State;

use crate::error::CommandError;
use crate::state::{lock, Shell};

/// How long an added host has to answer.
const ADDED_PATIENCE: Duration = Duration::from_secs(2);

fn added(shell: &Shell) -> AddedHosts {
    AddedHosts::at(shell.config.dir())
}

/// Lists the rooms of the added hosts (in the room list, as "added").
pub async fn refresh_added(shell: &Shell) {
    let Some(browser) = shell.browser() else {
        return;
    };
    let rooms = added(shell).rooms(ADDED_PATIENCE).await;
    browser.set_found("added", rooms);
}

/// Runs the doctor: this computer's interfaces, mDNS, firewall, the hosts answering on
/// the local subnets, the rooms listed now checked where they are announced, and, while
/// hosting, where others join.
#[tauri::command]
pub async fn run_doctor(shell: State<'_, Shell>) -> Result<Report, CommandError> {
    let policy = shell
        .discovery()
        .map(|d| d.policy().clone())
        .unwrap_or_default();
    let hosting = lock(&shell.hosting).as_ref().map(|hosted| {
        let mut links = hosted.links();
        links.push(hosted.local_link());
        (hosted.local_addr().port(), links)
    });
    let report = lanchat::doctor::run(DoctorOptions {
        policy,
        browser: shell.browser(),
        hosting,
        scan: true,
    })
    .await;
    // What the doctor's scan found is listed too.
    if let (Some(browser), Some(scan)) = (shell.browser(), &report.scan) {
        browser.set_found(
            "scan",
            scan.hosts
                .iter()
                .flat_map(|h| rooms_of(h, "scan"))
                .collect(),
        );
    }
    Ok(report)
}

#[derive(Serialize)]
pub struct ScanView {
    /// LAN Chat hosts that answered.
    hosts: usize,
    /// Addresses asked.
    probed: usize,
    /// "10.0.0.0/24" for each subnet asked.
    subnets: Vec<String>,
    ms: u64,
}

/// Asks every address of the local subnets on LAN Chat's ports; the rooms found join the
/// room list.
#[tauri::command]
pub async fn scan_network(shell: State<'_, Shell>) -> Result<ScanView, CommandError> {
    let policy = shell.discovery()?.policy().clone();
    let report = lanchat::reach::scan(Subnet::local(&policy), &host_ports()).await;
    if let Some(browser) = shell.browser() {
        browser.set_found(
            "scan",
            report
                .hosts
                .iter()
                .flat_map(|h| rooms_of(h, "scan"))
                .collect(),
        );
    }
    Ok(ScanView {
        hosts: report.hosts.len(),
        probed: report.probed,
        subnets: report.subnets.iter().map(Subnet::cidr).collect(),
        ms: report.ms,
    })
}

#[derive(Serialize)]
pub struct AddedView {
    /// The host as saved ("10.0.0.5" or "10.0.0.5:47474").
    address: String,
    /// Its name and rooms when it answered; why not otherwise.
    answer: Result<AddedAnswer, String>,
}

#[derive(Serialize)]
pub struct AddedAnswer {
    name: String,
    at: String,
    rooms: Vec<String>,
}

/// Adds a host by address ("Add a host"), asks it at once, and lists its rooms from then on.
#[tauri::command]
pub async fn add_host(shell: State<'_, Shell>, address: String) -> Result<AddedView, CommandError> {
    let host = added(&shell).add(&address)?;
    let answer = lanchat::reach::ask_added(host, ADDED_PATIENCE)
        .await
        .map(|a| AddedAnswer {
            name: a.name.clone(),
            at: a.addr.to_string(),
            rooms: a.rooms.iter().map(|r| r.name.clone()).collect(),
        })
        .map_err(|e| e.to_string());
    refresh_added(&shell).await;
    Ok(AddedView {
        address: host.to_string(),
        answer,
    })
}

/// Forgets an added host; its rooms leave the list.
#[tauri::command]
pub async fn remove_host(shell: State<'_, Shell>, address: String) -> Result<bool, CommandError> {
    let removed = added(&shell).remove(&address)?;
    refresh_added(&shell).await;
    Ok(removed)
}

/// The hosts added so far.
#[tauri::command]
pub fn added_hosts(shell: State<'_, Shell>) -> Vec<String> {
    added(&shell)
        .list()
        .iter()
        .map(ToString::to_string)
        .collect()
}
