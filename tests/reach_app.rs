//! "Can't see a room?" in the app (Xvfb, WebDriver), on a little network of namespaces the
//! test builds in its sandbox: this computer drops mDNS (an nftables rule) and has Docker's
//! bridge; host-a is on the same subnet, host-b on another one behind a router. The home
//! screen offers the doctor by itself when no room shows up; the doctor names the rule and
//! gives the command; the rooms its scan found are listed; "Add a host" lists host-b's
//! rooms, and one is joined from the list (docs/doctor.png, docs/add-host.png).

mod desktop;
#[path = "common/sandbox.rs"]
mod sandbox;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use desktop::*;

fn sh(script: &str) {
    let status = Command::new("sh").args(["-ec", script]).status().unwrap();
    assert!(status.success(), "failed: {script}");
}

/// `lanchat host` (the CLI built beside the app) in namespace `ns`, until dropped.
fn cli_host(ns: &str, room: &str, name: &str, dir: &Path) -> Guard {
    let cli = lanchat_cli();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(&cli)
        .args(["host", "--room", room, "--name", name])
        .env("LANCHAT_CONFIG_DIR", dir)
        .env("LANCHAT_DATA_DIR", dir.join("data"))
        .env("LANCHAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Press Ctrl-C"));
    assert!(ready, "{name} did not start");
    // Keep reading, so the host never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Guard(child, "TERM")
}

fn wait_up(ns: Option<&str>, ifname: &str) {
    let path = format!("/sys/class/net/{ifname}/operstate");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = match ns {
            Some(ns) => String::from_utf8(
                Command::new("ip")
                    .args(["netns", "exec", ns, "cat", &path])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap(),
            None => std::fs::read_to_string(&path).unwrap_or_default(),
        };
        if state.trim() == "up" {
            return;
        }
        assert!(Instant::now() < deadline, "{ifname} never came up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_doctor_says_what_blocks_rooms_and_rooms_found_or_added_are_listed_and_joined() {
    const NAME: &str =
        "the_doctor_says_what_blocks_rooms_and_rooms_found_or_added_are_listed_and_joined";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    // This computer (the sandbox itself): eth0 10.203.0.2, mDNS dropped, Docker's bridge.
    // a: host-a at 10.203.0.1, and the router to b's subnet; b: host-b at 10.204.0.2.
    sh("ip netns add a; ip netns add b
        ip link add eth0 type veth peer name va netns a
        ip link add vr netns a type veth peer name vb netns b
        ip addr add 10.203.0.2/24 dev eth0; ip -n a addr add 10.203.0.1/24 dev va
        ip -n a addr add 10.204.0.254/24 dev vr; ip -n b addr add 10.204.0.2/24 dev vb
        for n in a b; do ip -n $n link set lo up; done
        ip link set eth0 up; ip -n a link set va up; ip -n a link set vr up; ip -n b link set vb up
        ip route add 10.204.0.0/24 via 10.203.0.1
        ip -n b route add default via 10.204.0.254
        ip netns exec a sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
        nft add table inet filter
        nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }'
        nft add rule inet filter input udp dport 5353 drop
        ip link add docker0 type bridge; ip addr add 172.17.0.1/16 dev docker0; ip link set docker0 up");
    wait_up(None, "eth0");
    wait_up(Some("a"), "va");
    wait_up(Some("b"), "vb");
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host_a = cli_host("a", "Tokyo", "host-a", ha.path());
    let _host_b = cli_host("b", "Garden", "host-b", hb.path());

    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let started = Instant::now();
    let (mut ivy, _) = Driver::launch(4478, &display, dir.path());
    ivy.set_size(1100, 800);
    ivy.wait_text("#greeting", "Hello, ivy!");

    // No room shows up: the home screen offers the doctor by itself.
    ivy.wait_until(
        "the doctor offered",
        "return !document.getElementById('reach-offer').hidden",
    );
    println!(
        "measured: the doctor was offered {:?} after the app started, no room having appeared",
        started.elapsed()
    );
    let asked = Instant::now();
    ivy.click("#doctor-offer");
    ivy.wait_until(
        "the doctor's report",
        "return document.querySelectorAll('#doctor-findings .finding').length > 0",
    );
    println!(
        "measured: the doctor's report was on screen {:?} after the click",
        asked.elapsed()
    );
    let summary = ivy.text("#doctor-summary");
    println!("measured: doctor screen: {summary}");
    let findings = ivy.js(
        "return [...document.querySelectorAll('#doctor-findings .finding')] \
           .map((f) => f.className.replace('finding ', '') + ': ' + f.innerText.replace(/\\n+/g, ' | '))",
        vec![],
    );
    for f in findings.as_array().unwrap() {
        println!("measured: doctor screen: {}", f.as_str().unwrap());
    }
    assert!(
        summary.starts_with("This computer's firewall drops mDNS (nftables: udp dport 5353 drop)"),
        "{summary}"
    );
    let command = ivy.text("#doctor-findings .finding.problem .command");
    assert_eq!(
        command,
        "sudo nft insert rule inet filter input udp dport 5353 accept"
    );
    let all = findings.to_string();
    assert!(
        all.contains("Skipping docker0: a container or virtual machine bridge"),
        "{all}"
    );
    assert!(
        all.contains("1 LAN Chat host answers on 10.203.0.0/24 on eth0"),
        "{all}"
    );
    assert!(all.contains("host-a at 10.203.0.1:47474"), "{all}");
    ivy.screenshot(&docs_dir().join("doctor.png"));
    ivy.click("#doctor-dialog button[value='close']");

    // What the doctor's scan found is in the list, saying how it was found.
    ivy.wait_until(
        "Tokyo listed as found by the search",
        "return [...document.querySelectorAll('#room-list .room')] \
           .some((r) => r.textContent.includes('Tokyo') && r.textContent.includes('found by searching this network · 10.203.0.1:47474'))",
    );
    ivy.wait_until(
        "no more offer",
        "return document.getElementById('reach-offer').hidden",
    );

    // host-b is on another subnet: added by address, its rooms are listed.
    ivy.type_keys("#add-host-input", "10.204.0.2\u{E007}");
    ivy.wait_text(
        "#add-host-status",
        "host-b answers at 10.204.0.2:47474 (Garden)",
    );
    ivy.wait_until(
        "Garden listed at the added host",
        "return [...document.querySelectorAll('#room-list .room')] \
           .some((r) => r.textContent.includes('Garden') && r.textContent.includes('at a host you added'))",
    );
    assert_eq!(ivy.text("#added-hosts"), "10.204.0.2 Remove");
    ivy.screenshot(&docs_dir().join("add-host.png"));
    let rooms = ivy.js(
        "return [...document.querySelectorAll('#room-list .room .room-info')].map((r) => r.innerText.replace(/\\n+/g, ' | '))",
        vec![],
    );
    println!("measured: the room list: {rooms}");
    let hosts = std::fs::read_to_string(dir.path().join("hosts.json")).unwrap();
    println!("measured: hosts.json: {}", hosts.replace('\n', " "));

    // Joined from the list, across the router.
    ivy.click("#room-list button[aria-label='Join Garden on host-b']");
    ivy.wait_text("#messages", "Welcome to Garden, ivy!");
    println!("measured: ivy joined Garden on host-b (another subnet) from the list");

    // Tokyo, found by the search, is joined too; then its host comes back at another
    // address (a new lease after a restart): the app finds it by its key and says so.
    ivy.click("#room-add");
    ivy.click("#room-list button[aria-label='Join Tokyo on host-a']");
    ivy.wait_text("#messages", "Welcome to Tokyo, ivy!");
    drop(host_a);
    sh("ip -n a addr del 10.203.0.1/24 dev va; ip -n a addr add 10.203.0.7/24 dev va");
    let moved = Instant::now();
    let _host_a = cli_host("a", "Tokyo", "host-a", ha.path());
    let deadline = Instant::now() + PATIENCE * 2;
    while !ivy
        .text("#messages")
        .contains("moved from 10.203.0.1:47474 to 10.203.0.7:47474")
    {
        assert!(
            Instant::now() < deadline,
            "never told the host moved: {}",
            ivy.text("#messages")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    ivy.wait_text("#messages", "Reconnected.");
    // Remembered there: "Join again" goes straight to the new address next time.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let recent = std::fs::read_to_string(dir.path().join("recent.json")).unwrap_or_default();
        if recent.contains("lanchat://10.203.0.7:47474/Tokyo?key=") {
            break;
        }
        assert!(Instant::now() < deadline, "recent.json: {recent}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!(
        "measured: the app found host-a at its new address {:?} after it moved, and said so",
        moved.elapsed()
    );
}
