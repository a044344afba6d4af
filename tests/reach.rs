//! Rooms reachable where multicast is not, and the doctor that says why they are not seen:
//! real `lanchat` processes in little LANs of network namespaces built inside each test's
//! sandbox (see tests/discovery.rs), with the failures users meet made for real: a firewall
//! rule dropping mDNS (nftables), a bridge whose ports are isolated (Wi-Fi client
//! isolation), a VPN tunnel and a container bridge, a host whose address changes, two
//! subnets behind a router.
//!
//! Each test prints the doctor's report as a user sees it ("seen:" lines) and its timings
//! ("measured:").

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lan::*;
use common::process::Proc;
use common::sandbox::sandboxed;
use serde_json::Value;

/// Runs `lanchat doctor` in `ns`, as text (printed) and as JSON (returned).
async fn doctor(ns: &str, dir: &Path, when: &str) -> Value {
    let mut text = Proc::spawn_in(Some(ns), &["doctor"], dir);
    for line in text.rest().await {
        println!("seen: doctor in {ns} ({when})| {line}");
    }
    assert!(text.finish().await.0);
    let mut json = Proc::spawn_in(Some(ns), &["doctor", "--json"], dir);
    let report: Value = serde_json::from_str(&json.rest().await.join("\n")).expect("JSON");
    assert!(json.finish().await.0);
    println!(
        "measured: the doctor in {ns} ({when}) took {} ms",
        report["ms"]
    );
    report
}

/// The findings on `topic`, as (level, title, detail, fix).
fn findings(report: &Value, topic: &str) -> Vec<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["topic"] == topic)
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("level"), s("title"), s("detail"), s("fix"))
        })
        .collect()
}

/// The rooms `lanchat rooms --json` lists in `ns` (with `extra` arguments), and its stderr.
async fn rooms(ns: &str, dir: &Path, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec!["rooms", "--json", "--wait", "2"];
    args.extend_from_slice(extra);
    let mut lister = Proc::spawn_in(Some(ns), &args, dir);
    let listed = lister
        .rest()
        .await
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let (ok, stderr) = lister.finish().await;
    assert!(ok, "{stderr}");
    (listed, stderr)
}

fn names(listed: &[Value]) -> Vec<String> {
    listed
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["room"].as_str().unwrap(),
                r["addrs"][0].as_str().unwrap()
            )
        })
        .collect()
}

/// The room link with the host's full key, for a host whose config directory is `dir`.
fn keyed_link(addr: &str, room: &str, dir: &Path) -> String {
    let key = lanchat::identity::Identity::load_or_create(dir)
        .expect("the host made its key")
        .fingerprint()
        .to_hex();
    format!("lanchat://{addr}/{room}?key={key}")
}

fn drop_mdns_in(ns: &str) {
    sh(&format!(
        "ip netns exec {ns} nft add table inet filter
         ip netns exec {ns} nft add chain inet filter input '{{ type filter hook input priority 0; policy accept; }}'
         ip netns exec {ns} nft add rule inet filter input udp dport 5353 drop"
    ));
}

#[tokio::test]
async fn multicast_dropped_by_the_joiners_firewall_is_named_with_its_rule_and_the_scan_still_lists_the_room(
) {
    if !sandboxed("multicast_dropped_by_the_joiners_firewall_is_named_with_its_rule_and_the_scan_still_lists_the_room") {
        return;
    }
    two_hosts();
    drop_mdns_in("b");
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (host, port) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    assert_eq!(port, 47474, "hosts listen on the default port");

    let report = doctor("b", bd.path(), "mDNS dropped").await;
    let firewall = findings(&report, "firewall");
    let (level, title, _, fix) = &firewall[0];
    assert_eq!(level, "problem");
    assert!(
        title.contains("firewall drops mDNS (nftables: udp dport 5353 drop)"),
        "{title}"
    );
    assert_eq!(
        fix,
        "To allow it: `sudo nft insert rule inet filter input udp dport 5353 accept`"
    );
    assert_eq!(report["mdns"][0]["came_back"], false, "{report}");
    assert!(report["summary"]
        .as_str()
        .unwrap()
        .contains("firewall drops mDNS"));
    let hosts = &report["scan"]["hosts"];
    assert_eq!(hosts[0]["addr"], "10.201.0.1:47474", "{report}");
    assert_eq!(hosts[0]["rooms"][0]["name"], "Tokyo");
    println!(
        "measured: the doctor's scan asked {} addresses in {} ms",
        report["scan"]["probed"], report["scan"]["ms"]
    );

    // Discovery alone lists nothing here; the scan lists the room.
    let (listed, _) = rooms("b", bd.path(), &[]).await;
    assert!(listed.is_empty(), "{listed:?}");
    let (listed, stderr) = rooms("b", bd.path(), &["--scan"]).await;
    println!(
        "seen: rooms --scan: {:?}; {}",
        names(&listed),
        stderr.trim()
    );
    assert_eq!(names(&listed), ["Tokyo 10.201.0.1:47474"]);
    assert!(listed[0]["key"].as_str().unwrap().starts_with("scan:"));
    assert_eq!(listed[0]["code"].as_str().unwrap(), host_code(hd.path()));

    // The doctor's own fix, typed as given (this sandbox is root already): rooms appear.
    let fix = fix
        .strip_prefix("To allow it: `sudo ")
        .unwrap()
        .trim_end_matches('`');
    sh(&format!("ip netns exec b {fix}"));
    // The announcement now arrives (its addresses resolve one by one: sometimes the IPv6
    // link-local one alone at first, which joins as well).
    let mut watcher = Proc::spawn_in(Some("b"), &["rooms", "--watch", "--json"], bd.path());
    let seen = room_event(&mut watcher, |v| v["change"] == "appeared").await;
    assert_eq!(seen["room"], "Tokyo");
    assert!(
        seen["key"]
            .as_str()
            .unwrap()
            .ends_with("._lanchat._tcp.local."),
        "announced: {seen}"
    );
    println!(
        "seen: after `{fix}`, discovery lists Tokyo at {:?}",
        addrs(&seen)
    );
    watcher.signal("TERM");
    watcher.finish().await;
    let report = doctor("b", bd.path(), "after the fix").await;
    assert_eq!(report["mdns"][0]["came_back"], true, "{report}");
    assert!(
        findings(&report, "firewall").iter().all(|f| f.0 == "ok"),
        "{report}"
    );
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn on_an_isolated_network_the_doctor_says_nobody_answers_and_joining_by_address_works_where_routed(
) {
    if !sandboxed("on_an_isolated_network_the_doctor_says_nobody_answers_and_joining_by_address_works_where_routed") {
        return;
    }
    // An access point with client isolation: a and b on isolated ports of one bridge, the
    // router r on an ordinary one.
    switched_hosts(&["a", "b", "r"]);
    sh("ip -n sw link set p0 type bridge_slave isolated on
        ip -n sw link set p1 type bridge_slave isolated on
        ip -n r addr flush dev eth0; ip -n r addr add 10.201.0.254/24 dev eth0");
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (host, port) = host_in("a", "Lobby", "host-a", hd.path()).await;

    let report = doctor("b", bd.path(), "isolated").await;
    assert_eq!(report["mdns"][0]["came_back"], true, "{report}");
    let others = findings(&report, "others");
    let (level, title, detail, fix) = &others[0];
    assert_eq!(level, "warning");
    assert_eq!(title, "No other device answers mDNS on eth0");
    assert!(detail.contains("client isolation"), "{detail}");
    assert!(
        fix.contains("link or QR code") && fix.contains("join by address"),
        "{fix}"
    );
    assert_eq!(report["scan"]["hosts"].as_array().unwrap().len(), 0);
    let (listed, _) = rooms("b", bd.path(), &["--scan"]).await;
    assert!(listed.is_empty(), "{listed:?}");

    // Where the access point routes between its clients (a gateway that forwards), joining
    // by the host's address works.
    sh(
        "ip netns exec r sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward
          echo 0 > /proc/sys/net/ipv4/conf/all/send_redirects
          echo 0 > /proc/sys/net/ipv4/conf/eth0/send_redirects'
        ip -n b route add 10.201.0.1/32 via 10.201.0.254
        ip -n a route add 10.201.0.2/32 via 10.201.0.254",
    );
    let link = keyed_link(&format!("10.201.0.1:{port}"), "Lobby", hd.path());
    let mut bob = Proc::spawn_in(
        Some("b"),
        &["join", &link, "--nick", "bob", "--json"],
        bd.path(),
    );
    bob.expect(r#""type":"welcome""#).await;
    bob.say("hello through the gateway").await;
    let line = bob.expect(r#""type":"ack""#).await;
    println!(
        "seen: joined by address across the isolated network; the host took bob's message: {line}"
    );
    let report = doctor("b", bd.path(), "isolated, routed").await;
    let others = findings(&report, "others");
    assert!(
        others[0]
            .2
            .starts_with("Yet LAN Chat hosts answer directly"),
        "{others:?}"
    );
    assert_eq!(report["scan"]["hosts"][0]["addr"], "10.201.0.1:47474");
    bob.say("/leave").await;
    bob.finish().await;
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn a_vpn_tunnel_and_a_container_bridge_are_explained_and_skipped() {
    if !sandboxed("a_vpn_tunnel_and_a_container_bridge_are_explained_and_skipped") {
        return;
    }
    two_hosts();
    // On b: a VPN's tunnel that has taken the default route, and Docker's bridge with a
    // container (namespace c) on it.
    sh("ip netns add c
        ip -n b tuntap add dev tun0 mode tun
        ip -n b addr add 10.8.0.2/24 dev tun0; ip -n b link set tun0 up
        ip -n b route add default dev tun0
        ip -n b link add docker0 type bridge
        ip link add veth3f2a netns b type veth peer name eth0 netns c
        ip -n b link set veth3f2a master docker0
        ip -n b addr add 172.17.0.1/16 dev docker0; ip -n c addr add 172.17.0.2/16 dev eth0
        ip -n b link set veth3f2a up; ip -n c link set eth0 up; ip -n b link set docker0 up");
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (host, _) = host_in("a", "Tokyo", "host-a", hd.path()).await;

    let report = doctor("b", bd.path(), "VPN and Docker").await;
    let titles: Vec<String> = findings(&report, "interfaces")
        .into_iter()
        .map(|f| f.1)
        .collect();
    assert!(
        titles[0].starts_with("Looking for rooms on vb (10.201.0.2/24"),
        "{titles:?}"
    );
    assert!(titles.contains(&"Skipping tun0: a VPN tunnel: people on this network are not behind it, and rooms are not announced into it".to_owned()), "{titles:?}");
    assert!(titles.contains(&"Skipping docker0: a container or virtual machine bridge: only containers or VMs on this computer are behind it".to_owned()), "{titles:?}");
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Skipping veth3f2a: a virtual ethernet pair")),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"A VPN (tun0) carries all traffic".to_owned()),
        "{titles:?}"
    );
    assert_eq!(report["default_route"], "tun0");
    // mDNS and the scan stay on the LAN: the room is found, at its LAN address only.
    assert_eq!(report["mdns"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["mdns"][0]["interface"], "vb");
    let subnets: Vec<&str> = report["scan"]["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["interface"].as_str().unwrap())
        .collect();
    assert_eq!(subnets, ["vb"]);
    assert_eq!(
        report["announced"][0]["answered"], "10.201.0.1:47474",
        "{report}"
    );
    let (listed, _) = rooms("b", bd.path(), &[]).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let at = addrs(&listed[0]);
    assert!(
        at.iter()
            .all(|a| !a.starts_with("10.8.") && !a.starts_with("172.17.")),
        "{at:?}"
    );
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn a_host_that_moved_to_a_new_address_is_found_again_by_its_key() {
    if !sandboxed("a_host_that_moved_to_a_new_address_is_found_again_by_its_key") {
        return;
    }
    two_hosts();
    // Multicast does not reach b either, so only the scan can find where the host went.
    drop_mdns_in("b");
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (host, port) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let link = keyed_link(&format!("10.201.0.1:{port}"), "Tokyo", hd.path());
    let mut bob = Proc::spawn_in(
        Some("b"),
        &["join", &link, "--nick", "bob", "--json"],
        bd.path(),
    );
    bob.expect(r#""type":"welcome""#).await;
    bob.say("before the move").await;
    bob.expect(r#""type":"ack""#).await;

    // The host's computer gets another address (a new lease after a restart).
    host.signal("KILL");
    host.finish().await;
    bob.expect(r#""type":"disconnected""#).await;
    sh("ip -n a addr del 10.201.0.1/24 dev va; ip -n a addr add 10.201.0.7/24 dev va");
    let moved = Instant::now();
    let (host, _) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let line = bob
        .expect_within(r#""type":"relocated""#, Duration::from_secs(40))
        .await;
    let took = moved.elapsed();
    let said: Value = serde_json::from_str(&line).unwrap();
    println!("seen: bob was told: {}", said["message"]);
    println!(
        "measured: the moved host was found again {} ms after its address changed",
        took.as_millis()
    );
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("moved from 10.201.0.1:47474 to 10.201.0.7:47474"),
        "{line}"
    );
    bob.expect(r#""resumed":true"#).await;
    bob.say("after the move").await;
    let line = bob.expect(r#""type":"ack""#).await;
    println!("seen: bob's message after the move was taken: {line}");
    bob.say("/leave").await;
    bob.finish().await;
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn a_host_on_another_subnet_is_added_by_address_and_its_rooms_listed() {
    if !sandboxed("a_host_on_another_subnet_is_added_by_address_and_its_rooms_listed") {
        return;
    }
    routed_hosts();
    let (hd, ad) = (config_dir("h"), config_dir("a"));
    let (host, _) = host_in("b", "Garden", "host-b", hd.path()).await;
    // Discovery stops at the router.
    let (listed, _) = rooms("a", ad.path(), &[]).await;
    assert!(listed.is_empty(), "{listed:?}");
    let report = doctor("a", ad.path(), "another subnet").await;
    let hosts = findings(&report, "hosts");
    assert!(
        hosts[0]
            .1
            .starts_with("No LAN Chat host answers on port 47474 in 10.201.0.0/24"),
        "{hosts:?}"
    );
    assert!(hosts[0].3.contains("Add a host"), "{hosts:?}");

    let mut add = Proc::spawn_in(Some("a"), &["hosts", "add", "10.202.0.2"], ad.path());
    let said = add.rest().await;
    assert!(add.finish().await.0);
    println!("seen: hosts add 10.202.0.2| {}", said.join(" | "));
    assert_eq!(
        said[0],
        "Added 10.202.0.2: host-b answers at 10.202.0.2:47474"
    );
    assert!(said[1].contains("Garden on host-b"), "{said:?}");
    let (listed, _) = rooms("a", ad.path(), &[]).await;
    assert_eq!(names(&listed), ["Garden 10.202.0.2:47474"]);
    assert!(listed[0]["key"].as_str().unwrap().starts_with("added:"));

    // Joined by name, as a discovered room would be.
    let mut ann = Proc::spawn_in(
        Some("a"),
        &["join", "--room", "Garden", "--nick", "ann", "--json"],
        ad.path(),
    );
    ann.expect(r#""type":"welcome""#).await;
    ann.say("hi from the other subnet").await;
    let line = ann.expect(r#""type":"ack""#).await;
    println!("seen: ann joined Garden by name across the router; her message was taken: {line}");
    ann.say("/leave").await;
    ann.finish().await;

    let mut remove = Proc::spawn_in(Some("a"), &["hosts", "remove", "10.202.0.2"], ad.path());
    assert_eq!(remove.rest().await, ["Removed 10.202.0.2"]);
    remove.finish().await;
    let (listed, _) = rooms("a", ad.path(), &[]).await;
    assert!(listed.is_empty(), "{listed:?}");
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn a_host_whose_firewall_drops_its_port_hears_it_from_another_host() {
    if !sandboxed("a_host_whose_firewall_drops_its_port_hears_it_from_another_host") {
        return;
    }
    two_hosts();
    // a's firewall lets this computer's own traffic in, and drops LAN Chat's port from
    // anywhere else: a typical "deny by port" rule.
    sh("ip netns exec a nft add table inet filter
        ip netns exec a nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }'
        ip netns exec a nft add rule inet filter input iif lo accept
        ip netns exec a nft add rule inet filter input tcp dport 47474 drop");
    let (hd, bd) = (config_dir("h"), config_dir("b"));
    let (host, _) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    // Another LAN Chat host on the network: the one asked to connect back.
    let (peer, _) = host_in("b", "Garden", "host-b", bd.path()).await;

    let report = doctor("a", hd.path(), "hosting, port dropped").await;
    let firewall = findings(&report, "firewall");
    assert!(firewall.iter().any(|f| f.0 == "problem" && f.1 == "This computer's firewall drops this host's port 47474 (nftables: tcp dport 47474 drop)"), "{firewall:?}");
    let reach = findings(&report, "reach");
    let (level, title, _, fix) = &reach[0];
    assert_eq!(level, "problem");
    assert_eq!(
        title,
        "host-b (10.201.0.2) cannot reach this host's port 47474"
    );
    assert_eq!(
        fix,
        "To allow it: `sudo nft insert rule inet filter input tcp dport 47474-47483 accept`"
    );
    let hosting = findings(&report, "hosting");
    assert!(
        hosting[0]
            .2
            .contains("lanchat://10.201.0.1:47474/Tokyo?key="),
        "{hosting:?}"
    );

    let fix = fix
        .strip_prefix("To allow it: `sudo ")
        .unwrap()
        .trim_end_matches('`');
    sh(&format!("ip netns exec a {fix}"));
    let report = doctor("a", hd.path(), "hosting, after the fix").await;
    let reach = findings(&report, "reach");
    assert_eq!(reach[0].0, "ok", "{reach:?}");
    assert!(
        reach[0]
            .1
            .starts_with("host-b (10.201.0.2) reached this host's port 47474 in "),
        "{reach:?}"
    );
    peer.signal("TERM");
    peer.finish().await;
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn beside_avahi_on_the_same_computer_the_doctor_still_hears_mdns() {
    if !sandboxed("beside_avahi_on_the_same_computer_the_doctor_still_hears_mdns") {
        return;
    }
    // Most Linux desktops run avahi-daemon, holding UDP 5353: the doctor shares the port.
    two_hosts();
    let (hd, bd, avahi_dir) = (config_dir("h"), config_dir("b"), config_dir("avahi"));
    let _avahi = start_avahi("b", "vb", avahi_dir.path());
    let (host, _) = host_in("a", "Tokyo", "host-a", hd.path()).await;
    let report = doctor("b", bd.path(), "avahi running here").await;
    let mdns = &report["mdns"][0];
    assert_eq!(mdns["error"], Value::Null, "{report}");
    assert_eq!(mdns["came_back"], true, "{report}");
    assert_eq!(
        mdns["responders"],
        serde_json::json!(["10.201.0.1"]),
        "{report}"
    );
    assert_eq!(
        mdns["lanchat"],
        serde_json::json!(["10.201.0.1"]),
        "{report}"
    );
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn a_second_host_on_one_computer_takes_the_next_port_and_is_found_there() {
    if !sandboxed("a_second_host_on_one_computer_takes_the_next_port_and_is_found_there") {
        return;
    }
    two_hosts();
    drop_mdns_in("b");
    let (h1, h2, bd) = (config_dir("h1"), config_dir("h2"), config_dir("b"));
    let (first, port1) = host_in("a", "Tokyo", "host-a", h1.path()).await;
    let (second, port2) = host_in("a", "Kyoto", "host-a2", h2.path()).await;
    println!("seen: two hosts on one computer listen on {port1} and {port2}");
    assert_eq!((port1, port2), (47474, 47475));
    let (listed, stderr) = rooms("b", bd.path(), &["--scan"]).await;
    println!(
        "seen: rooms --scan: {:?}; {}",
        names(&listed),
        stderr.trim()
    );
    let mut found = names(&listed);
    found.sort();
    assert_eq!(found, ["Kyoto 10.201.0.1:47475", "Tokyo 10.201.0.1:47474"]);
    second.signal("TERM");
    second.finish().await;
    first.signal("TERM");
    first.finish().await;
}
