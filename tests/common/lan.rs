//! A little LAN of network namespaces, built inside a test's sandbox (see `sandbox`), and
//! `lanchat` hosts in it: what the discovery and reach tests share.

use std::path::Path;
use std::process::Command as StdCommand;
use std::time::Duration;

use serde_json::Value;

use super::process::Proc;

pub fn sh(script: &str) {
    let status = StdCommand::new("sh")
        .args(["-ec", script])
        .status()
        .expect("sh");
    assert!(status.success(), "failed: {script}");
}

/// Waits until the kernel reports `ifname` in `ns` as operationally up (it lags `ip link set
/// up` by up to a second, and mDNS only uses interfaces that are up).
pub fn wait_up(ns: &str, ifname: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = StdCommand::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "cat",
                &format!("/sys/class/net/{ifname}/operstate"),
            ])
            .output()
            .expect("ip netns exec");
        if String::from_utf8_lossy(&out.stdout).trim() == "up" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{ns}/{ifname} never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two hosts on one cable: `a` (10.201.0.1) and `b` (10.201.0.2).
pub fn two_hosts() {
    sh("ip netns add a; ip netns add b
        ip link add va netns a type veth peer name vb netns b
        ip -n a addr add 10.201.0.1/24 dev va; ip -n b addr add 10.201.0.2/24 dev vb
        for n in a b; do ip -n $n link set lo up; done
        ip -n a link set va up; ip -n b link set vb up");
    wait_up("a", "va");
    wait_up("b", "vb");
}

/// Two hosts on one cable with no IPv4 at all: only IPv6 link-local addresses, which need
/// their interface scope to be usable.
pub fn two_ipv6_link_local_hosts() {
    sh("ip netns add a; ip netns add b
        ip link add va netns a type veth peer name vb netns b
        for n in a b; do ip -n $n link set lo up; done
        ip -n a link set va up; ip -n b link set vb up");
    wait_up("a", "va");
    wait_up("b", "vb");
    // Duplicate address detection keeps new IPv6 addresses unusable ("tentative") for a while.
    for (ns, ifname) in [("a", "va"), ("b", "vb")] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = StdCommand::new("ip")
                .args(["-n", ns, "-6", "addr", "show", "dev", ifname])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("scope link") && !text.contains("tentative") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{ns}/{ifname}: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Two hosts on different subnets behind a router `r`: `a` (10.201.0.1) and `b`
/// (10.202.0.2). Unicast is routed; mDNS multicast, link-local by definition, is not.
pub fn routed_hosts() {
    sh("ip netns add a; ip netns add b; ip netns add r
        ip link add va netns a type veth peer name ra netns r
        ip link add vb netns b type veth peer name rb netns r
        ip -n a addr add 10.201.0.1/24 dev va; ip -n r addr add 10.201.0.254/24 dev ra
        ip -n b addr add 10.202.0.2/24 dev vb; ip -n r addr add 10.202.0.254/24 dev rb
        for n in a b r; do ip -n $n link set lo up; done
        ip -n a link set va up; ip -n b link set vb up; ip -n r link set ra up; ip -n r link set rb up
        ip -n a route add default via 10.201.0.254; ip -n b route add default via 10.202.0.254
        ip netns exec r sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'");
    for (ns, ifname) in [("a", "va"), ("b", "vb"), ("r", "ra"), ("r", "rb")] {
        wait_up(ns, ifname);
    }
}

/// Hosts on one switch: namespace `names[i]` gets 10.201.0.(i+1) on a bridge in `sw`.
pub fn switched_hosts(names: &[&str]) {
    sh("ip netns add sw; ip -n sw link add br0 type bridge; ip -n sw link set br0 up");
    for (i, ns) in names.iter().enumerate() {
        sh(&format!(
            "ip netns add {ns}; ip -n {ns} link set lo up
             ip link add eth0 netns {ns} type veth peer name p{i} netns sw
             ip -n sw link set p{i} master br0; ip -n sw link set p{i} up
             ip -n {ns} addr add 10.201.0.{}/24 dev eth0; ip -n {ns} link set eth0 up",
            i + 1
        ));
    }
    for ns in names {
        wait_up(ns, "eth0");
    }
}

pub fn config_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(tag).tempdir().unwrap()
}

/// Starts `lanchat host` in `ns`; returns it and its port.
pub async fn host_in(ns: &str, room: &str, name: &str, dir: &Path) -> (Proc, u16) {
    let mut host = Proc::spawn_in(Some(ns), &["host", "--room", room, "--name", name], dir);
    let first = host.expect("listening on").await;
    let port = first
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a port in the first line");
    host.expect("Announced on the LAN").await;
    (host, port)
}

/// Reads `rooms --json` lines until one satisfies `pred`.
pub async fn room_event(watcher: &mut Proc, mut pred: impl FnMut(&Value) -> bool) -> Value {
    loop {
        let line = watcher.expect(r#""change""#).await;
        let v: Value = serde_json::from_str(&line).unwrap();
        if pred(&v) {
            return v;
        }
    }
}

/// The short code of the host whose config directory is `dir` (its key is kept there).
pub fn host_code(dir: &Path) -> String {
    lanchat::identity::Identity::load_or_create(dir)
        .expect("the host made its key")
        .fingerprint()
        .short_code()
}

pub fn addrs(v: &Value) -> Vec<String> {
    v["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Kills the daemons a test started when it ends, however it ends.
pub struct Daemons(pub Vec<u32>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = StdCommand::new("kill").arg(pid.to_string()).status();
        }
    }
}

pub fn read_pid(path: &Path) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pid in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a private D-Bus system bus and avahi-daemon (limited to `ifname`) in `ns`.
pub fn start_avahi(ns: &str, ifname: &str, dir: &Path) -> Daemons {
    std::fs::write(
        dir.join("dbus.conf"),
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_type="method_call"/>
    <allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("avahi.conf"),
        format!(
            "[server]\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces={ifname}\nenable-dbus=yes\n\
             [wide-area]\nenable-wide-area=no\n\
             [publish]\npublish-hinfo=no\npublish-workstation=no\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/dbus").unwrap();
    let dbus_pid = dir.join("dbus.pid");
    sh(&format!(
        "ip netns exec {ns} dbus-daemon --config-file={} --fork --print-pid > {}",
        dir.join("dbus.conf").display(),
        dbus_pid.display()
    ));
    let mut daemons = Daemons(vec![read_pid(&dbus_pid)]);
    sh(&format!(
        "ip netns exec {ns} avahi-daemon -f {} --no-drop-root --no-chroot --no-rlimits -D",
        dir.join("avahi.conf").display()
    ));
    daemons.0.push(read_pid(Path::new("/run/avahi-daemon/pid")));
    daemons
}
