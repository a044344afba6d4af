//! Runs a test again inside fresh network, mount and PID namespaces (plus a user namespace
//! when not root), so it can build its own network and run mDNS without touching the machine's
//! real one, and leaves nothing behind. Standard library only: used by the engine's tests
//! and the app's.

use std::io::Write;
use std::process::Command as StdCommand;

const SANDBOX_ENV: &str = "LANCHAT_NETNS_SANDBOX";

/// Runs test `name` again inside a sandbox. Returns true in the sandboxed copy (which then
/// does the work) and false in the outer copy (which has checked the result already).
pub fn sandboxed(name: &str) -> bool {
    if std::env::var_os(SANDBOX_ENV).is_some() {
        // Belt and braces: never do mDNS where a real interface is.
        let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
        assert!(
            !dev.lines()
                .skip(2)
                .any(|l| !l.trim_start().starts_with("lo:")),
            "the sandbox must start with loopback only:\n{dev}"
        );
        return true;
    }
    let exe = std::env::current_exe().expect("test executable");
    // As root, new network and mount namespaces are enough (and let avahi-daemon run);
    // otherwise a user namespace makes us root inside it.
    // A PID namespace too: when the test ends, however it ends (a crash skips its clean-up),
    // the kernel ends everything it started, so nothing it left holds the output pipes open
    // and this run waits for nothing.
    let namespaces: &[&str] = if is_real_root() {
        &["--net", "--mount", "--pid", "--fork"]
    } else {
        &[
            "--user",
            "--map-root-user",
            "--net",
            "--mount",
            "--pid",
            "--fork",
        ]
    };
    let output = StdCommand::new("unshare")
        .args(namespaces)
        .args(["--", "sh", "-c"])
        .arg(r#"mount -t tmpfs tmpfs /run && ip link set lo up && exec "$0" "$@""#)
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(SANDBOX_ENV, "1")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            skip(name, &format!("cannot run unshare: {e}"));
            return false;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && !stdout.contains("running 1 test") {
        skip(
            name,
            &format!("the kernel refused to create namespaces: {}", stderr.trim()),
        );
        return false;
    }
    // What the sandboxed test measured or saw, shown even though the harness captures output.
    for line in stdout
        .lines()
        .filter(|l| l.contains("measured: ") || l.contains("seen: "))
    {
        let _ = writeln!(std::io::stderr(), "{name}: {}", line.trim());
    }
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "sandboxed run of {name} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    false
}

/// Whether this process is root of the machine (not only of a user namespace).
pub fn is_real_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid_zero = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"));
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    uid_zero && uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

/// Says plainly, past the test harness's output capture, that a test did not run.
pub fn skip(name: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {why}");
}
