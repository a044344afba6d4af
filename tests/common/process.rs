//! A `lanchat` process with piped stdio, as the CLI and discovery tests run it.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::PATIENCE;

/// The `lanchat` binary: set for the tests of the `lanchat-cli` package (cli/Cargo.toml),
/// which are the ones that run it; the engine's tests share this module but never spawn it.
pub const BIN: Option<&str> = option_env!("CARGO_BIN_EXE_lanchat");

fn bin() -> &'static str {
    BIN.expect("only the lanchat-cli package's tests run the lanchat binary")
}

/// A running `lanchat` process with piped stdio.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every stdout line read so far, for failure messages.
    pub seen: Vec<String>,
}

impl Proc {
    pub fn spawn(args: &[&str], config_dir: &Path) -> Proc {
        Self::spawn_in(None, args, config_dir)
    }

    /// Runs `lanchat ARGS` inside network namespace `netns` (via `ip netns exec`), or here.
    pub fn spawn_in(netns: Option<&str>, args: &[&str], config_dir: &Path) -> Proc {
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin()]);
                c
            }
            None => Command::new(bin()),
        };
        let mut child = command
            .args(args)
            .env("LANCHAT_CONFIG_DIR", config_dir)
            // Hosts keep room history next to the test's config, never in the real one.
            .env("LANCHAT_DATA_DIR", config_dir.join("data"))
            .env("LANCHAT_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn lanchat");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Proc {
            child,
            stdin,
            stdout,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line contains `needle`; returns that line.
    pub async fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, PATIENCE * 2).await
    }

    /// [`Proc::expect`] with a patience of its own, for what takes longer by design.
    pub async fn expect_within(&mut self, needle: &str, patience: std::time::Duration) -> String {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match tokio::time::timeout_at(deadline, self.stdout.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                other => panic!(
                    "no line containing {needle:?} ({other:?}); lines so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Reads stdout until every needle has been seen on some line, in whatever order the lines
    /// come (events from the host and local notices race); returns the lines, one per needle.
    pub async fn expect_each(&mut self, needles: &[&str]) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE * 2;
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        while found.iter().any(Option::is_none) {
            match tokio::time::timeout_at(deadline, self.stdout.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    for (needle, slot) in needles.iter().zip(found.iter_mut()) {
                        if slot.is_none() && line.contains(needle) {
                            *slot = Some(line.clone());
                        }
                    }
                }
                other => panic!(
                    "no lines containing all of {needles:?} ({other:?}); lines so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Every stdout line from here until the process exits (bounded by the patience window).
    pub async fn rest(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE * 2;
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout_at(deadline, self.stdout.next_line()).await
        {
            lines.push(line);
        }
        lines
    }

    pub async fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Closes stdin and waits for the exit; returns (success, stderr).
    pub async fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let mut stderr = self.child.stderr.take().unwrap();
        let status = tokio::time::timeout(PATIENCE * 3, self.child.wait())
            .await
            .expect("exits in time")
            .unwrap();
        let mut err = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err)
            .await
            .unwrap();
        (status.success(), err)
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {pid}");
    }
}
