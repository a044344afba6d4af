//! Discovery between simulated LAN hosts, with real `lanchat` processes and real mDNS.
//!
//! Each test re-runs itself inside a fresh user + network + mount namespace (`unshare -rnm`,
//! no root needed, nothing left behind), then builds its own little LAN there out of network
//! namespaces joined by veth pairs or a bridge. mDNS never runs in the machine's own network
//! namespace, where the real network is. If the kernel refuses to make namespaces, each test
//! says so on stderr and is skipped.

mod common;

use std::path::Path;
use std::process::Command as StdCommand;
use std::time::Duration;

use common::lan::*;
use common::process::Proc;
use common::sandbox::{is_real_root, sandboxed, skip};

#[tokio::test]
async fn a_room_in_one_namespace_is_listed_joined_and_gone_from_another() {
    if !sandboxed("a_room_in_one_namespace_is_listed_joined_and_gone_from_another") {
        return;
    }
    two_hosts();
    let (wd, hd, bd, ad) = (
        config_dir("w"),
        config_dir("h"),
        config_dir("b"),
        config_dir("a"),
    );

    // Nothing is there yet, and `rooms` says what to check.
    let mut empty = Proc::spawn_in(Some("b"), &["rooms", "--wait", "1"], wd.path());
    empty
        .expect("No LAN Chat rooms found in 1 s. `lanchat doctor` says what keeps them")
        .await;
    assert!(empty.finish().await.0);

    let mut watcher = Proc::spawn_in(Some("b"), &["rooms", "--watch", "--json"], wd.path());
    let (host, port) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let seen = room_event(&mut watcher, |v| v["change"] == "appeared").await;
    assert_eq!(seen["room"], "Tokyo");
    assert_eq!(seen["host"], "host-a");
    assert_eq!(seen["version"], 2);
    assert_eq!(seen["host_key"].as_str().unwrap().len(), 64, "{seen}");
    // The code the host prints is the one the listing shows.
    assert_eq!(
        host_code(hd.path()),
        seen["code"].as_str().unwrap(),
        "{seen}"
    );
    assert_eq!(seen["locked"], false);
    assert_eq!(seen["users"], 0);
    assert_eq!(seen["host_id"].as_str().unwrap().len(), 16);
    let found = addrs(&seen);
    assert_eq!(found[0], format!("10.201.0.1:{port}"), "{found:?}");
    assert!(found.iter().all(|a| !a.starts_with("127.")), "{found:?}");

    // Joined by name from the other host, with no address typed.
    let mut bob = Proc::spawn_in(
        Some("b"),
        &["join", "--room", "tokyo", "--nick", "bob"],
        bd.path(),
    );
    bob.expect("Welcome to Tokyo, bob").await;
    let local = format!("127.0.0.1:{port}");
    let mut alice = Proc::spawn_in(
        Some("a"),
        &["join", &local, "--room", "Tokyo", "--nick", "alice"],
        ad.path(),
    );
    alice
        .expect("Welcome to Tokyo, alice. Online (2): bob, alice")
        .await;
    bob.say("hello across the LAN").await;
    alice.expect("<bob> hello across the LAN").await;
    alice.say("hi bob").await;
    bob.expect("<alice> hi bob").await;

    // The user count in the announcement follows.
    room_event(&mut watcher, |v| {
        v["change"] == "updated" && v["users"] == 2
    })
    .await;

    // A room created by joining it is announced as well.
    let mut carol = Proc::spawn_in(
        Some("a"),
        &["join", &local, "--room", "Osaka", "--nick", "carol"],
        ad.path(),
    );
    carol.expect("Welcome to Osaka, carol").await;
    let osaka = room_event(&mut watcher, |v| v["change"] == "appeared").await;
    assert_eq!(osaka["room"], "Osaka");
    assert_eq!(osaka["host"], "host-a");
    assert!(carol.finish().await.0);

    assert!(bob.finish().await.0);
    assert!(alice.finish().await.0);
    // A clean exit says goodbye: the room leaves the list without waiting for expiry.
    host.signal("TERM");
    let mut gone = Vec::new();
    while gone.len() < 2 {
        let v = room_event(&mut watcher, |v| v["change"] == "gone").await;
        gone.push(v["room"].as_str().unwrap().to_owned());
    }
    gone.sort();
    assert_eq!(gone, ["Osaka", "Tokyo"], "both rooms say goodbye");
    assert!(host.finish().await.0);
    watcher.signal("TERM");
}

#[tokio::test]
async fn two_hosts_with_a_room_of_the_same_name_are_both_listed() {
    if !sandboxed("two_hosts_with_a_room_of_the_same_name_are_both_listed") {
        return;
    }
    switched_hosts(&["a", "b", "c"]);
    let (ad, cd, bd) = (config_dir("a"), config_dir("c"), config_dir("b"));
    let (_host_a, _) = host_in("a", "Tokyo", "host-a", ad.path()).await;
    let (_host_c, port_c) = host_in("c", "Tokyo", "host-c", cd.path()).await;

    let mut lister = Proc::spawn_in(Some("b"), &["rooms", "--wait", "4", "--json"], bd.path());
    let mut hosts = Vec::new();
    for _ in 0..2 {
        let v = room_event(&mut lister, |v| v["change"] == "appeared").await;
        assert_eq!(v["room"], "Tokyo");
        hosts.push((
            v["host"].as_str().unwrap().to_owned(),
            v["host_id"].as_str().unwrap().to_owned(),
        ));
    }
    hosts.sort();
    assert_eq!(
        (hosts[0].0.as_str(), hosts[1].0.as_str()),
        ("host-a", "host-c")
    );
    assert_ne!(hosts[0].1, hosts[1].1, "distinct host ids");
    // Each room is seen with an IPv4 and an IPv6 address, and is still one entry each.
    let more = lister.rest().await;
    assert!(
        more.iter().all(|l| !l.contains(r#""change":"appeared""#)),
        "{more:?}"
    );
    assert!(lister.finish().await.0);

    // Joining by name alone is ambiguous: in a pipe it fails and says how to choose.
    let ambiguous = Proc::spawn_in(
        Some("b"),
        &["join", "--room", "Tokyo", "--nick", "bob"],
        bd.path(),
    );
    let (ok, stderr) = ambiguous.finish().await;
    assert!(!ok);
    assert!(
        stderr.contains("2 hosts have a room called \"Tokyo\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("host-a") && stderr.contains("host-c") && stderr.contains("--host"),
        "{stderr}"
    );

    // --host picks one.
    let mut bob = Proc::spawn_in(
        Some("b"),
        &[
            "join", "--room", "Tokyo", "--host", "host-c", "--nick", "bob",
        ],
        bd.path(),
    );
    bob.expect("Welcome to Tokyo, bob").await;
    let local = format!("127.0.0.1:{port_c}");
    let mut carol = Proc::spawn_in(
        Some("c"),
        &["join", &local, "--room", "Tokyo", "--nick", "carol"],
        cd.path(),
    );
    carol.expect("Online (2): bob, carol").await;
    bob.finish().await;
    carol.finish().await;
}

#[tokio::test]
async fn a_decoy_bridge_neither_breaks_nor_pollutes_discovery() {
    if !sandboxed("a_decoy_bridge_neither_breaks_nor_pollutes_discovery") {
        return;
    }
    two_hosts();
    // A container-style bridge on the host, as Docker makes them: a br-* bridge with its own
    // subnet, a veth* port for carrier, and nobody at the other end.
    sh("ip -n a link add br-decoy type bridge
        ip -n a link add vethd0 type veth peer name vethd1
        ip -n a link set vethd0 master br-decoy
        ip -n a addr add 172.18.0.1/16 dev br-decoy
        ip -n a link set vethd0 up; ip -n a link set vethd1 up; ip -n a link set br-decoy up");
    wait_up("a", "br-decoy");
    let (hd, wd) = (config_dir("h"), config_dir("w"));

    // Pinned to the decoy on purpose, discovery (and the printed addresses) use only it, and
    // the choice is remembered for the next run...
    let pinned_run = |extra: &[&str]| {
        let mut args = vec!["host", "--room", "Pinned", "--name", "host-a"];
        args.extend_from_slice(extra);
        Proc::spawn_in(Some("a"), &args, hd.path())
    };
    let mut pinned = pinned_run(&["--interface", "br-decoy"]);
    let line = pinned.expect("lanchat join 172.18.0.1:").await;
    assert!(line.contains("br-decoy"), "{line}");
    pinned.signal("TERM");
    assert!(pinned.finish().await.0);
    let config = std::fs::read_to_string(hd.path().join("config.json")).unwrap();
    assert!(config.contains("br-decoy"), "{config}");
    let mut remembered = pinned_run(&[]);
    remembered.expect("lanchat join 172.18.0.1:").await;
    remembered.signal("TERM");
    remembered.finish().await;
    // ...until `--interface auto` goes back to choosing.
    let mut auto = pinned_run(&["--interface", "auto"]);
    auto.expect("lanchat join 10.201.0.1:").await;
    auto.signal("TERM");
    auto.finish().await;
    let config = std::fs::read_to_string(hd.path().join("config.json")).unwrap();
    assert!(!config.contains("br-decoy"), "{config}");
    let mut watcher = Proc::spawn_in(Some("b"), &["rooms", "--watch", "--json"], wd.path());
    let (host, port) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let hints: Vec<String> = host.seen.clone();
    assert!(
        hints
            .iter()
            .any(|l| l.contains(&format!("10.201.0.1:{port}"))),
        "{hints:?}"
    );
    assert!(
        hints
            .iter()
            .all(|l| !l.contains("172.18.") && !l.contains("br-decoy") && !l.contains("vethd")),
        "{hints:?}"
    );

    let seen = room_event(&mut watcher, |v| v["change"] == "appeared").await;
    let found = addrs(&seen);
    assert_eq!(found[0], format!("10.201.0.1:{port}"));
    assert!(found.iter().all(|a| !a.contains("172.18.")), "{found:?}");
    host.signal("TERM");
    host.finish().await;
    watcher.signal("TERM");
}

#[tokio::test]
async fn a_killed_hosts_room_goes_away_after_a_failed_reconnect_and_comes_back_with_it() {
    if !sandboxed("a_killed_hosts_room_goes_away_after_a_failed_reconnect_and_comes_back_with_it") {
        return;
    }
    two_hosts();
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (host, _) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let mut bob = Proc::spawn_in(
        Some("b"),
        &["join", "--room", "Tokyo", "--nick", "bob"],
        bd.path(),
    );
    bob.expect("Welcome to Tokyo, bob").await;

    // No goodbye from a killed host: the record would linger for 120 s, but the failed
    // reconnect asks the network, and nobody answers.
    host.signal("KILL");
    bob.expect("* disconnected").await;
    bob.expect("Tokyo on host-a is no longer announced on the LAN")
        .await;

    // The host comes back (same installation, so same name; a new port): bob finds it again
    // and rejoins by himself.
    let (_host, _) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    bob.expect("Tokyo on host-a is announced on the LAN again")
        .await;
    bob.expect("Back in Tokyo, bob").await;
    bob.finish().await;
}

#[tokio::test]
async fn a_machine_without_a_network_still_hosts_for_itself_over_loopback() {
    if !sandboxed("a_machine_without_a_network_still_hosts_for_itself_over_loopback") {
        return;
    }
    // Only loopback in this namespace: it is all there is, so it is used.
    let (hd, wd) = (config_dir("h"), config_dir("w"));
    let mut host = Proc::spawn(&["host", "--room", "Solo", "--name", "alone"], hd.path());
    host.expect("No LAN interface is up: only this machine can join.")
        .await;
    host.expect("Announced on the LAN").await;
    let mut lister = Proc::spawn(&["rooms", "--wait", "3", "--json"], wd.path());
    let seen = room_event(&mut lister, |v| v["change"] == "appeared").await;
    assert_eq!(seen["room"], "Solo");
    assert!(addrs(&seen)[0].starts_with("127.0.0.1:"), "{seen}");
    let mut me = Proc::spawn(&["join", "--room", "Solo", "--nick", "me"], wd.path());
    me.expect("Welcome to Solo, me").await;
    me.finish().await;
    host.signal("TERM");
    assert!(host.finish().await.0);
}

#[tokio::test]
async fn a_room_reachable_only_over_ipv6_link_local_is_joined_with_its_scope() {
    if !sandboxed("a_room_reachable_only_over_ipv6_link_local_is_joined_with_its_scope") {
        return;
    }
    two_ipv6_link_local_hosts();
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (_host, port) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let mut lister = Proc::spawn_in(Some("b"), &["rooms", "--wait", "3", "--json"], bd.path());
    let seen = room_event(&mut lister, |v| v["change"] == "appeared").await;
    let found = addrs(&seen);
    // [fe80::...%N]: the scope is b's own interface index.
    let index = StdCommand::new("ip")
        .args(["netns", "exec", "b", "cat", "/sys/class/net/vb/ifindex"])
        .output()
        .unwrap();
    let index = String::from_utf8_lossy(&index.stdout).trim().to_owned();
    assert!(
        found[0].starts_with("[fe80::") && found[0].ends_with(&format!("%{index}]:{port}")),
        "{found:?}, vb is {index}"
    );
    lister.finish().await;
    let mut bob = Proc::spawn_in(
        Some("b"),
        &["join", "--room", "Tokyo", "--nick", "bob"],
        bd.path(),
    );
    bob.expect("Welcome to Tokyo, bob").await;
    bob.finish().await;

    // And by address, with the zone written as the interface name.
    let address = found[0].replace(&format!("%{index}]"), "%vb]");
    assert!(address.contains("%vb]"));
    let mut carol = Proc::spawn_in(
        Some("b"),
        &["join", &address, "--room", "Tokyo", "--nick", "carol"],
        bd.path(),
    );
    carol.expect("Welcome to Tokyo, carol").await;
    carol.finish().await;
}

#[tokio::test]
async fn standard_dns_sd_tools_see_lanchat_rooms_and_lanchat_sees_theirs() {
    const NAME: &str = "standard_dns_sd_tools_see_lanchat_rooms_and_lanchat_sees_theirs";
    if !sandboxed(NAME) {
        return;
    }
    if !is_real_root() {
        skip(NAME, "avahi-daemon only starts as the machine's root");
        return;
    }
    two_hosts();
    let (hd, bd, ad) = (config_dir("h"), config_dir("b"), config_dir("avahi"));
    let mut daemons = start_avahi("b", "vb", ad.path());
    let (_host, port) = host_in("a", "Tokyo", "host-a", hd.path()).await;

    // avahi-browse, in the other namespace, resolves the LAN Chat room with its TXT keys.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let resolved = loop {
        let out = StdCommand::new("ip")
            .args(["netns", "exec", "b", "timeout", "5"])
            .args(["avahi-browse", "-rtp", "_lanchat._tcp"])
            .output()
            .expect("avahi-browse (Debian's avahi-utils) must be installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("=;") && l.contains("host-a"))
        {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "avahi-browse never resolved it: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    println!("seen: avahi-browse -rtp _lanchat._tcp => {resolved}");
    let fields: Vec<&str> = resolved.splitn(10, ';').collect();
    assert_eq!(fields[3], r"Tokyo\032on\032host-a", "{resolved}");
    assert_eq!(fields[4], "_lanchat._tcp");
    assert_eq!(fields[7], "10.201.0.1", "{resolved}");
    assert_eq!(fields[8], port.to_string(), "{resolved}");
    for txt in [
        r#""room=Tokyo""#,
        r#""v=2""#,
        r#""key="#,
        r#""host=host-a""#,
        r#""locked=0""#,
        r#""users=0""#,
        r#""id="#,
    ] {
        assert!(fields[9].contains(txt), "{txt} in {resolved}");
    }

    // A room announced by avahi with the documented TXT keys shows up in LAN Chat's list.
    let publisher = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "b",
            "avahi-publish",
            "-s",
            "Paris on avahi-host",
        ])
        .args([
            "_lanchat._tcp",
            "4567",
            "room=Paris",
            "v=2",
            "host=avahi-host",
            &format!("key={}", "ab".repeat(32)),
        ])
        .args(["id=00000000000a1a1a", "locked=0", "users=3"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    daemons.0.push(publisher.id().unwrap());
    let mut lister = Proc::spawn_in(Some("a"), &["rooms", "--wait", "4", "--json"], bd.path());
    let paris = room_event(&mut lister, |v| v["room"] == "Paris").await;
    assert_eq!(paris["host"], "avahi-host");
    assert_eq!(paris["host_id"], "00000000000a1a1a");
    assert_eq!(paris["host_key"], "ab".repeat(32));
    assert_eq!(paris["users"], 3);
    assert_eq!(addrs(&paris)[0], "10.201.0.2:4567");
    lister.finish().await;
    drop(daemons);
}

#[tokio::test]
async fn where_multicast_does_not_reach_joining_by_the_printed_link_still_works() {
    if !sandboxed("where_multicast_does_not_reach_joining_by_the_printed_link_still_works") {
        return;
    }
    routed_hosts();
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let mut host = Proc::spawn_in(
        Some("a"),
        &["host", "--room", "Tokyo", "--name", "host-a"],
        hd.path(),
    );
    // The host prints an address per LAN interface, with a link to share.
    let hint = host.expect("lanchat join 10.201.0.1:").await;
    let link = hint
        .split_whitespace()
        .find(|w| w.starts_with("lanchat://"))
        .expect("a lanchat:// link")
        .to_owned();
    let mut lister = Proc::spawn_in(Some("b"), &["rooms", "--wait", "2"], bd.path());
    lister.expect("No LAN Chat rooms found").await;
    lister.finish().await;
    // The link alone names the host and the room.
    let mut bob = Proc::spawn_in(Some("b"), &["join", &link, "--nick", "bob"], bd.path());
    bob.expect("Welcome to Tokyo, bob").await;
    bob.finish().await;
    host.signal("TERM");
    assert!(host.finish().await.0);
}

#[tokio::test]
async fn a_browser_on_another_subnet_joins_a_locked_room_over_https() {
    if !sandboxed("a_browser_on_another_subnet_joins_a_locked_room_over_https") {
        return;
    }
    routed_hosts();
    let hd = config_dir("h");
    let mut host = Proc::spawn_in(
        Some("a"),
        &[
            "host",
            "--room",
            "Vault",
            "--name",
            "host-a",
            "--passphrase",
        ],
        hd.path(),
    );
    // Not a terminal: the passphrase is the first line of stdin.
    host.say("open sesame").await;
    let line = host.expect("browser: https://10.201.0.1:").await;
    let page = line
        .split_whitespace()
        .find(|w| w.starts_with("https://10.201.0.1:"))
        .expect("a browser link")
        .to_owned();
    // Chromium runs in the other namespace, behind the router: not the host's own computer.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/join-locked.mjs");
    let output = tokio::process::Command::new("ip")
        .args(["netns", "exec", "b", "node"])
        .arg(&script)
        .args([page.as_str(), "Vault", "webby", "open sesame"])
        .output()
        .await
        .expect("node must be installed");
    let said = String::from_utf8_lossy(&output.stdout);
    println!(
        "seen: {page} from 10.202.0.2: {}",
        said.trim().replace('\n', " | ")
    );
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("joined") && said.contains("delivered"),
        "{said}"
    );
    host.signal("TERM");
    host.finish().await;
}
