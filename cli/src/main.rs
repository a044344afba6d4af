//! `lanchat`: the headless host and the terminal client, over the `lanchat` engine.
//!
//! # Layout
//! - this file: the command line and dispatch; `lanchat nick`.
//! - `host`: `lanchat host` (the hosting itself is `lanchat::hosting`).
//! - `join`: `lanchat join`, stdin paced by the host; `output` and `render`: what it prints.
//! - `lan`: `lanchat rooms`, finding a room by name, choosing interfaces.
//! - `passphrase`: reading a passphrase without echo.
//!
//! - `lanchat host --room NAME [--port N] [--bind ADDR] [--passphrase]` serves rooms until
//!   Ctrl-C/SIGTERM, announces them on the LAN and keeps their history in the data directory.
//! - `lanchat rooms [--watch] [--scan]` lists the rooms on the LAN (and of added hosts).
//! - `lanchat doctor [--json]` says why rooms are not seen; `lanchat hosts [add|remove
//!   ADDRESS]` keeps the hosts added by address (`reach`).
//! - `lanchat join [ADDRESS] --room NAME [--nick NICK] [--json]` chats from a terminal or a
//!   pipe: every stdin line is sent, every room event is one stdout line. Without an
//!   address, the room is found on the LAN by name.
//! - `lanchat nick [NAME]` shows or saves the default nickname.

mod files;
mod host;
mod join;
mod lan;
mod output;
mod passphrase;
mod past;
mod reach;
mod render;

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use lanchat::config::ConfigStore;
use lanchat::host::Limits;

#[derive(Parser)]
#[command(
    name = "lanchat",
    version,
    about = "Chat with people on your local network"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Host rooms on this machine, with no window, until Ctrl-C or SIGTERM.
    Host {
        /// The room to open at start (people can create more by joining them).
        #[arg(long)]
        room: String,
        /// TCP port [default: 47474, where others look when multicast does not reach them,
        /// or when it is taken the next free one up to 47483]; 0 for any free port.
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on (default: every address, IPv6 and IPv4).
        #[arg(long)]
        bind: Option<IpAddr>,
        /// The name others see for this host (default: the machine's name).
        #[arg(long)]
        name: Option<String>,
        /// Connections served at once.
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
        /// Do not announce the rooms on the LAN (people then join by address).
        #[arg(long)]
        no_discovery: bool,
        /// Announce only on this network interface (repeatable; remembered; `auto` resets).
        #[arg(long = "interface", value_name = "NAME")]
        interfaces: Vec<String>,
        /// Lock the room: the passphrase is read from LANCHAT_PASSPHRASE, or else asked for
        /// (not echoed) at a terminal, or else the first line of stdin. Only a key derived
        /// from it is kept.
        #[arg(long)]
        passphrase: bool,
        /// Where room history is kept [default: LANCHAT_DATA_DIR, else the platform's data
        /// directory, e.g. ~/.local/share/lanchat].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<std::path::PathBuf>,
        /// Keep history in memory only: nothing is written, a restart starts afresh.
        #[arg(long, conflicts_with = "data_dir")]
        no_history: bool,
        /// Connections one address may open at once.
        #[arg(long, default_value_t = Limits::default().max_per_address)]
        max_per_address: usize,
        /// Messages a second one client may send (bursts of three times that); 0 for no
        /// limit.
        #[arg(long, default_value_t = 10.0)]
        message_rate: f64,
        /// Megabytes the host may hold for others (replies waiting for slow readers, rooms'
        /// histories) before it refuses new joins and rooms [default: a quarter of memory].
        #[arg(long, value_name = "MB")]
        memory_budget: Option<usize>,
        /// Delete saved rooms (other than this one) nobody has used for this many days.
        #[arg(long, value_name = "DAYS", default_value_t = 30)]
        forget_rooms_after: u64,
        /// The largest file a member may share, in MiB.
        #[arg(long, value_name = "MB", default_value_t = Limits::default().max_file_bytes >> 20)]
        max_file_size: u64,
        /// Space all shared files together may take, in MiB; the oldest files go first
        /// to make room.
        #[arg(long, value_name = "MB", default_value_t = Limits::default().file_quota >> 20)]
        file_quota: u64,
        /// Space the history of every room together may take, in MiB; the oldest events go
        /// first.
        #[arg(long, value_name = "MB", default_value_t = Limits::default().history_quota >> 20)]
        history_quota: u64,
    },
    /// List the rooms on the LAN.
    Rooms {
        /// Keep printing rooms as they appear (+), change (~) and go (-).
        #[arg(long)]
        watch: bool,
        /// How long to listen before exiting, in seconds (without --watch).
        #[arg(long, default_value_t = 2.0)]
        wait: f64,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
        /// Also ask every address of the local subnets (at most a /22 each) on LAN Chat's
        /// ports, for rooms where multicast does not reach.
        #[arg(long)]
        scan: bool,
        /// Use only this network interface (repeatable; remembered; `auto` resets).
        #[arg(long = "interface", value_name = "NAME")]
        interfaces: Vec<String>,
    },
    /// Why rooms are not seen: checks interfaces, mDNS, the firewall and the hosts that
    /// answer, in a few seconds, and says what to do.
    Doctor {
        /// Print the whole report as JSON.
        #[arg(long)]
        json: bool,
        /// Check only this network interface (repeatable; remembered; `auto` resets).
        #[arg(long = "interface", value_name = "NAME")]
        interfaces: Vec<String>,
    },
    /// Hosts added by address (on another subnet, or where multicast does not reach):
    /// their rooms are listed with the others.
    Hosts {
        #[command(subcommand)]
        action: Option<HostsAction>,
    },
    /// Join a room: each stdin line is sent; each room event is printed as one line.
    ///
    /// Lines starting with / are commands: /msg NICK TEXT (private), /nick NEW,
    /// /location LAT LON, /file PATH [NICK] (share a file), /save N [DIR] (save file N,
    /// to Downloads by default), /typing, /users, /leave. Start a line with // to send a
    /// literal slash.
    Join {
        /// The host: HOST:PORT, ws://HOST:PORT/ws or lanchat://HOST:PORT[/ROOM]. Without
        /// it, the room is found on the LAN by name.
        address: Option<String>,
        /// The room (optional with a lanchat:// link that names one).
        #[arg(long)]
        room: Option<String>,
        /// With several rooms of that name on the LAN: the host's name (or id) to pick.
        #[arg(long)]
        host: Option<String>,
        /// How long to look for the room on the LAN, in seconds.
        #[arg(long, default_value_t = 3.0)]
        wait: f64,
        /// Use only this network interface for discovery (repeatable; remembered).
        #[arg(long = "interface", value_name = "NAME")]
        interfaces: Vec<String>,
        /// Nickname for this session (default: the saved one, see `lanchat nick`).
        #[arg(long)]
        nick: Option<String>,
        /// Print events as JSON lines (the protocol's own shapes) instead of text.
        #[arg(long)]
        json: bool,
        /// The room is locked: the passphrase is read from LANCHAT_PASSPHRASE, or else asked
        /// for (not echoed) at a terminal, or else the first line of stdin.
        #[arg(long)]
        passphrase: bool,
        /// The host's key changed since you last joined and you compared its new code with
        /// the host's screen: trust the new key (and remember it).
        #[arg(long)]
        trust_new_key: bool,
    },
    /// Show the saved nickname, or save a new one.
    Nick { name: Option<String> },
}

#[derive(Subcommand)]
enum HostsAction {
    /// Add a host by its address (IP, optionally :PORT).
    Add { address: String },
    /// Remove an added host.
    Remove { address: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LANCHAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,lanchat=info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lanchat: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Host {
            room,
            port,
            bind,
            name,
            max_connections,
            no_discovery,
            interfaces,
            passphrase,
            data_dir,
            no_history,
            max_per_address,
            message_rate,
            memory_budget,
            forget_rooms_after,
            max_file_size,
            file_quota,
            history_quota,
        } => runtime.block_on(host::run_host(host::HostArgs {
            room,
            bind,
            port,
            name,
            max_connections,
            discovery: (!no_discovery).then(|| lan::interface_policy(&interfaces)),
            passphrase,
            data_dir: if no_history {
                None
            } else {
                data_dir.or_else(lanchat::host::default_data_dir)
            },
            max_per_address,
            message_rate,
            memory_budget,
            forget_rooms_after,
            max_file_size,
            file_quota,
            history_quota,
        })),
        Command::Rooms {
            watch,
            wait,
            json,
            scan,
            interfaces,
        } => runtime.block_on(lan::run_rooms(
            lan::interface_policy(&interfaces),
            seconds(wait),
            watch,
            json,
            scan,
        )),
        Command::Doctor { json, interfaces } => {
            runtime.block_on(reach::run_doctor(lan::interface_policy(&interfaces), json))
        }
        Command::Hosts { action } => runtime.block_on(reach::run_hosts(action.map(|a| match a {
            HostsAction::Add { address } => (true, address),
            HostsAction::Remove { address } => (false, address),
        }))),
        Command::Join {
            address,
            room,
            host,
            wait,
            interfaces,
            nick,
            json,
            passphrase,
            trust_new_key,
        } => runtime.block_on(join::run_join(join::JoinArgs {
            address,
            room,
            host,
            wait: seconds(wait),
            interfaces,
            nick,
            json,
            passphrase,
            trust_new_key,
        })),
        Command::Nick { name } => run_nick(name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lanchat: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A duration from a user-given number of seconds (negative or absurd values clamped).
fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 86_400.0)
    } else {
        0.0
    })
}

fn run_nick(name: Option<String>) -> Result<(), String> {
    let store = ConfigStore::from_env().map_err(|e| e.to_string())?;
    match name {
        Some(name) => {
            let nick = store.save_nickname(&name).map_err(|e| e.to_string())?;
            println!("Saved nickname \"{nick}\" in {}", store.path().display());
        }
        None => {
            let (settings, warning) = store.load();
            if let Some(warning) = warning {
                eprintln!("lanchat: warning: {warning}");
            }
            match settings.nickname {
                Some(nick) => println!("{nick}"),
                None => println!("(no nickname saved; set one with `lanchat nick NAME`)"),
            }
        }
    }
    Ok(())
}
