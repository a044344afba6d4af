//! `lanchat host`: hosts rooms with no window until Ctrl-C or SIGTERM, and prints where
//! people can join. The hosting itself is the engine's (`lanchat::hosting`).

use std::net::IpAddr;
use std::path::PathBuf;

use lanchat::config::ConfigStore;
use lanchat::discovery::InterfacePolicy;
use lanchat::host::Limits;
use lanchat::hosting::{HostedRoom, HostingOptions, HostingWarning, PortChoice};

use crate::lan;
use crate::passphrase::read_passphrase;

pub struct HostArgs {
    pub room: String,
    /// `None`: dual-stack `[::]` where IPv6 exists (link-local IPv6 peers can connect), else
    /// `0.0.0.0`.
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
    pub name: Option<String>,
    pub max_connections: usize,
    /// The interfaces to announce on, or `None` for no announcement.
    pub discovery: Option<InterfacePolicy>,
    pub passphrase: bool,
    pub data_dir: Option<PathBuf>,
    pub max_per_address: usize,
    pub message_rate: f64,
    /// In megabytes; `None` for the default.
    pub memory_budget: Option<usize>,
    /// In days.
    pub forget_rooms_after: u64,
    /// In MiB.
    pub max_file_size: u64,
    pub file_quota: u64,
    pub history_quota: u64,
}

/// The machine's name, for `hello` and listings.
fn machine_name() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "lanchat-host".into())
}

pub async fn run_host(args: HostArgs) -> Result<(), String> {
    // Before anything else: a SIGTERM that arrives while starting must still close cleanly.
    let shutdown = shutdown_signal()?;
    if args.max_connections == 0 || args.max_per_address == 0 {
        return Err("--max-connections and --max-per-address must be at least 1".into());
    }
    if !(args.message_rate.is_finite() && args.message_rate >= 0.0) {
        return Err(format!(
            "--message-rate {}: give messages a second per client, or 0 for no limit",
            args.message_rate
        ));
    }
    let passphrase = match args.passphrase {
        true => Some(read_passphrase().await?),
        false => None,
    };
    // Each connection is a socket: raise the open-file limit first (the host warns if it
    // is still too low).
    if let Err(e) = lanchat::host::raise_open_file_limit() {
        eprintln!("lanchat: warning: cannot raise the open-file limit: {e}");
    }
    let discovery = match &args.discovery {
        Some(policy) => match lan::start_discovery(policy.clone()) {
            Ok(discovery) => Some(discovery),
            Err(e) => {
                eprintln!("lanchat: warning: {e}");
                None
            }
        },
        None => None,
    };
    let options = HostingOptions {
        passphrase,
        bind: args.bind,
        port: args.port.map_or(PortChoice::Default, PortChoice::Exactly),
        limits: Limits {
            max_connections: args.max_connections,
            max_per_address: args.max_per_address,
            memory_budget: args
                .memory_budget
                .map_or_else(lanchat::host::default_memory_budget, |mb| mb << 20),
            forget_rooms_after: std::time::Duration::from_secs(
                args.forget_rooms_after.saturating_mul(24 * 3600),
            ),
            max_file_bytes: args.max_file_size.saturating_mul(1 << 20),
            file_quota: args.file_quota.saturating_mul(1 << 20),
            history_quota: args.history_quota.saturating_mul(1 << 20),
            ..Limits::default()
        }
        .with_message_rate(args.message_rate),
        data_dir: args.data_dir.clone(),
        discovery: discovery.clone(),
        config: ConfigStore::from_env().ok(),
        ..HostingOptions::new(&args.room, args.name.unwrap_or_else(machine_name))
    };
    let hosted = match HostedRoom::start(options).await {
        Ok(hosted) => hosted,
        Err(e) => {
            if let Some(discovery) = discovery {
                discovery.shutdown().await;
            }
            return Err(e.to_string());
        }
    };
    for warning in hosted.warnings() {
        match warning {
            HostingWarning::NotAnnounced => {}
            HostingWarning::OpenFileLimit { files, connections } => eprintln!(
                "warning: this system lets the host open {files} files, too few for \
                 --max-connections {connections}; raise `ulimit -n` (its hard limit) or lower it"
            ),
            other => eprintln!("lanchat: warning: {other}"),
        }
    }
    present(&hosted, args.data_dir.as_deref());
    println!("Press Ctrl-C to close the room for everyone.");

    shutdown.await;
    let closed = hosted.close().await;
    if let Some(discovery) = discovery {
        discovery.shutdown().await;
    }
    closed.map_err(|e| e.to_string())?;
    println!("Host closed.");
    Ok(())
}

/// What a host prints: where it listens, where history goes, and how others join.
fn present(hosted: &HostedRoom, data_dir: Option<&std::path::Path>) {
    let room = hosted.room();
    let word = shell_word(room);
    println!(
        "LAN Chat host listening on {}, room \"{room}\"",
        hosted.local_addr()
    );
    println!(
        "Host key code: {}  (people joining see it too; compare it by voice)",
        hosted.key().short_code()
    );
    if hosted.locked() {
        println!("The room is locked: joining needs its passphrase.");
    }
    match data_dir {
        Some(dir) => println!("History is kept in {}", dir.display()),
        None => println!("History is kept in memory only."),
    }
    let here = hosted.local_link();
    println!("Join with: lanchat join '{}'", here.link);
    if hosted.local_addr().ip().is_unspecified() {
        let links = hosted.links();
        if links.is_empty() {
            println!("No LAN interface is up: only this machine can join.");
        } else {
            println!("From other machines on the LAN, by address (one per interface):");
            for l in links {
                println!(
                    "  {:<10} lanchat join {} --room {word}    {}    browser: {}",
                    l.interface, l.address, l.link, l.web
                );
            }
        }
    } else {
        println!("Link: {}", here.link);
        println!(
            "WebSocket: {}",
            lanchat::protocol::ws_url(hosted.local_addr())
        );
    }
    if hosted.announced() {
        let name = hosted.host().name();
        println!(
            "Announced on the LAN as \"{room} on {name}\": others find it with \
             `lanchat rooms` and join with `lanchat join --room {word}`."
        );
    }
}

/// Quotes a word for a shell command line if it needs it.
pub fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Installs the Ctrl-C and SIGTERM handlers now; the future completes on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let cannot = |e: std::io::Error| format!("cannot handle signals: {e}");
        let mut interrupt = signal(SignalKind::interrupt()).map_err(cannot)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(cannot)?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
