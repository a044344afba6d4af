//! `lanchat`: the headless host and the terminal client.
//!
//! - `lanchat host --room NAME [--port N] [--bind ADDR] [--passphrase]` serves rooms until
//!   Ctrl-C/SIGTERM, announces them on the LAN and keeps their history in the data directory.
//! - `lanchat rooms [--watch]` lists the rooms on the LAN.
//! - `lanchat join [ADDRESS] --room NAME [--nick NICK] [--json]` chats from a terminal or a
//!   pipe: every stdin line is sent, every room event is one stdout line. Without an
//!   address, the room is found on the LAN by name.
//! - `lanchat nick [NAME]` shows or saves the default nickname.

mod lan;
mod render;

use lanchat::ids::sleep_until_opt;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use lanchat::client::{parse_address, Client, ClientEvent, ClientOptions, CloseReason, Endpoint};
use lanchat::config::ConfigStore;
use lanchat::host::{self, Host, HostConfig, Limits, RoomConfig};
use lanchat::lock::RoomKey;
use lanchat::protocol::{self, EventBody};

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
        /// TCP port; 0 or none lets the system pick a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
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
        /// Use only this network interface (repeatable; remembered; `auto` resets).
        #[arg(long = "interface", value_name = "NAME")]
        interfaces: Vec<String>,
    },
    /// Join a room: each stdin line is sent; each room event is printed as one line.
    ///
    /// Lines starting with / are commands: /msg NICK TEXT (private), /nick NEW,
    /// /location LAT LON, /typing, /users, /leave. Start a line with // to send a
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
    },
    /// Show the saved nickname, or save a new one.
    Nick { name: Option<String> },
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
        } => runtime.block_on(run_host(HostArgs {
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
                data_dir.or_else(host::default_data_dir)
            },
            max_per_address,
            message_rate,
        })),
        Command::Rooms {
            watch,
            wait,
            json,
            interfaces,
        } => runtime.block_on(lan::run_rooms(
            lan::interface_policy(&interfaces),
            seconds(wait),
            watch,
            json,
        )),
        Command::Join {
            address,
            room,
            host,
            wait,
            interfaces,
            nick,
            json,
            passphrase,
        } => runtime.block_on(run_join(JoinArgs {
            address,
            room,
            host,
            wait: seconds(wait),
            interfaces,
            nick,
            json,
            passphrase,
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

/// The machine's name, for `hello` and listings.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "lanchat-host".into())
}

/// A duration from a user-given number of seconds (negative or absurd values clamped).
fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 86_400.0)
    } else {
        0.0
    })
}

struct HostArgs {
    room: String,
    /// `None`: dual-stack `[::]` where IPv6 exists (link-local IPv6 peers can connect), else
    /// `0.0.0.0`.
    bind: Option<IpAddr>,
    port: u16,
    name: Option<String>,
    max_connections: usize,
    /// The interfaces to announce on, or `None` for no announcement.
    discovery: Option<lanchat::discovery::InterfacePolicy>,
    passphrase: bool,
    data_dir: Option<std::path::PathBuf>,
    max_per_address: usize,
    message_rate: f64,
}

/// The passphrase from LANCHAT_PASSPHRASE, or else typed at the terminal (not echoed), or
/// else the first line of stdin.
async fn read_passphrase() -> Result<String, String> {
    if let Ok(passphrase) = std::env::var(PASSPHRASE_ENV) {
        return Ok(passphrase);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // Typed at a terminal: not echoed.
        let typed = tokio::task::spawn_blocking(|| rpassword::prompt_password("Passphrase: "))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the passphrase: {e}"))?;
        if typed.is_empty() {
            return Err("--passphrase: no passphrase given".into());
        }
        return Ok(typed);
    }
    // Byte by byte, unbuffered: for `join`, the lines after it are messages to send.
    let mut bytes = Vec::new();
    let mut stdin = tokio::io::stdin();
    let mut byte = [0u8; 1];
    while bytes.len() <= lanchat::lock::MAX_PASSPHRASE_BYTES + 2 {
        match stdin.read(&mut byte).await {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => bytes.push(byte[0]),
            Err(e) => return Err(format!("cannot read the passphrase: {e}")),
        }
    }
    let line = String::from_utf8(bytes).map_err(|_| "the passphrase is not valid UTF-8")?;
    if line.trim_end_matches(['\r', '\n']).is_empty() {
        return Err(format!(
            "--passphrase: no passphrase given (set {PASSPHRASE_ENV} or type it on the first line)"
        ));
    }
    Ok(line)
}

const PASSPHRASE_ENV: &str = "LANCHAT_PASSPHRASE";

/// Per-client limits from `--message-rate`: messages at that rate in bursts of three times
/// it, frames of any kind ten times as fast. Zero means no limit.
fn rate_limits(message_rate: f64, limits: Limits) -> Limits {
    if message_rate == 0.0 {
        return Limits {
            message_rate: None,
            frame_rate: None,
            ..limits
        };
    }
    let burst = |rate: f64| (rate * 3.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
    let frames = (message_rate * 10.0).max(100.0);
    Limits {
        message_rate: Some(host::Rate::new(message_rate, burst(message_rate))),
        frame_rate: Some(host::Rate::new(frames, burst(frames))),
        ..limits
    }
}

async fn run_host(args: HostArgs) -> Result<(), String> {
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
    let name = args.name.unwrap_or_else(machine_name);
    let key = if args.passphrase {
        let passphrase = read_passphrase().await?;
        let room = args.room.clone();
        let derived = tokio::task::spawn_blocking(move || RoomKey::derive(&passphrase, &room))
            .await
            .map_err(|e| e.to_string())?;
        Some(derived.map_err(|e| format!("--passphrase: {e}"))?)
    } else {
        None
    };
    let locked = key.is_some();
    let config = HostConfig {
        name: name.clone(),
        rooms: vec![RoomConfig {
            name: args.room.clone(),
            key,
        }],
        limits: rate_limits(
            args.message_rate,
            Limits {
                max_connections: args.max_connections,
                max_per_address: args.max_per_address,
                ..Limits::default()
            },
        ),
        page: true,
        data_dir: args.data_dir.clone(),
    };
    let host = Host::new(config).map_err(|e| e.to_string())?;
    // Each connection is a socket; leave room for the listener, history files and mDNS.
    match host::raise_open_file_limit() {
        Ok(files) if files < args.max_connections as u64 + 64 => eprintln!(
            "warning: this system lets the host open {files} files, too few for \
             --max-connections {}; raise `ulimit -n` (its hard limit) or lower it",
            args.max_connections
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: cannot raise the open-file limit: {e}"),
    }
    let listener = match args.bind {
        Some(ip) => host::listen((ip, args.port).into()),
        None => host::listen_everywhere(args.port),
    }
    .map_err(|e| format!("cannot listen on port {}: {e}", args.port))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let room = protocol::validate_room(&args.room).map_err(|e| e.to_string())?;
    println!("LAN Chat host listening on {local}, room \"{room}\"");
    if locked {
        println!("The room is locked: joining needs its passphrase.");
    }
    match &args.data_dir {
        Some(dir) => println!("History is kept in {}", dir.display()),
        None => println!("History is kept in memory only."),
    }
    if local.ip().is_unspecified() {
        let this_machine = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port());
        println!(
            "Join with: lanchat join {this_machine} --room {}",
            shell_word(room)
        );
        let policy = args.discovery.clone().unwrap_or_default();
        let hints = lan::join_hints(local.port(), room, &policy);
        if hints.is_empty() {
            println!("No LAN interface is up: only this machine can join.");
        } else {
            println!("From other machines on the LAN, by address (one per interface):");
            for hint in hints {
                println!("{hint}");
            }
        }
    } else {
        println!(
            "Join with: lanchat join {local} --room {}",
            shell_word(room)
        );
        println!(
            "Link: lanchat://{local}/{}",
            lanchat::discovery::percent_encode(room)
        );
        println!("WebSocket: {}", host::ws_url(local));
    }

    let announcing = match args.discovery {
        Some(policy) => match lan::start_discovery(policy) {
            Ok(discovery) => {
                let id = match ConfigStore::from_env().map(|store| store.host_id()) {
                    Ok((id, None)) => id,
                    Ok((id, Some(e))) => {
                        eprintln!("lanchat: warning: {e}; this host's id changes every run");
                        id
                    }
                    Err(e) => {
                        eprintln!("lanchat: warning: {e}; this host's id changes every run");
                        lanchat::ids::random_hex(8)
                    }
                };
                let identity = lanchat::discovery::HostIdentity {
                    name: name.clone(),
                    id,
                };
                let announcer = discovery.announce(&host, identity, local.port());
                println!(
                    "Announced on the LAN as \"{room} on {name}\": others find it with \
                     `lanchat rooms` and join with `lanchat join --room {}`.",
                    shell_word(room)
                );
                Some((discovery, announcer))
            }
            Err(e) => {
                eprintln!("lanchat: warning: {e}");
                None
            }
        },
        None => None,
    };
    println!("Press Ctrl-C to close the room for everyone.");

    let served = host.run(listener, shutdown).await;
    if let Some((discovery, announcer)) = announcing {
        announcer.stop().await;
        discovery.shutdown().await;
    }
    served.map_err(|e| e.to_string())?;
    println!("Host closed.");
    Ok(())
}

/// Quotes a word for a shell command line if it needs it.
pub(crate) fn shell_word(word: &str) -> String {
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

/// The nickname to join with: `--nick`, else the saved one, else the login name.
fn resolve_nick(given: Option<String>) -> Result<String, String> {
    if let Some(nick) = given {
        return protocol::validate_nick(&nick)
            .map(str::to_owned)
            .map_err(|e| format!("--nick: {e}"));
    }
    match ConfigStore::from_env() {
        Ok(store) => {
            let (settings, warning) = store.load();
            if let Some(warning) = warning {
                eprintln!("lanchat: warning: {warning}");
            }
            if let Some(nick) = settings.nickname {
                return Ok(nick);
            }
        }
        Err(e) => eprintln!("lanchat: warning: {e}"),
    }
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let nick = protocol::validate_nick(&login)
        .unwrap_or("guest")
        .to_owned();
    eprintln!(
        "lanchat: no nickname saved; joining as \"{nick}\" (save one with `lanchat nick NAME`)"
    );
    Ok(nick)
}

struct JoinArgs {
    address: Option<String>,
    room: Option<String>,
    host: Option<String>,
    wait: Duration,
    interfaces: Vec<String>,
    nick: Option<String>,
    json: bool,
    passphrase: bool,
}

async fn run_join(args: JoinArgs) -> Result<(), String> {
    let linked = args
        .address
        .as_deref()
        .and_then(lanchat::discovery::room_from_link);
    let room = args
        .room
        .or(linked)
        .ok_or("--room NAME is required (or a lanchat:// link that names the room)")?;
    let room = protocol::validate_room(&room)
        .map_err(|e| format!("--room: {e}"))?
        .to_owned();
    let nick = resolve_nick(args.nick)?;
    let json = args.json;
    let passphrase = if args.passphrase {
        Some(read_passphrase().await?)
    } else {
        None
    };

    // Discovery keeps running while connected: it tells the client where the room is after
    // its host restarts, and drops the room when it stops answering.
    let mut discovered = None;
    let endpoint = match &args.address {
        Some(address) => Endpoint::Url(parse_address(address).map_err(|e| e.to_string())?),
        None => {
            let discovery = lan::start_discovery(lan::interface_policy(&args.interfaces))?;
            let mut browser = discovery.browse().map_err(|e| e.to_string())?;
            let found = lan::find_room(&mut browser, &room, args.host.as_deref(), args.wait)
                .await
                .and_then(|found| {
                    if found.compatible() {
                        Ok(found)
                    } else {
                        Err(format!(
                            "{} speaks protocol version {}; this lanchat speaks {}",
                            found.label(),
                            found.version,
                            protocol::PROTOCOL_VERSION
                        ))
                    }
                });
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    drop(browser);
                    discovery.shutdown().await;
                    return Err(e);
                }
            };
            eprintln!("lanchat: joining {}", lan::room_line(&found));
            let locator = browser.locator(&found);
            discovered = Some((discovery, browser, found.key.clone()));
            Endpoint::Locate(std::sync::Arc::new(locator))
        }
    };
    let options = ClientOptions {
        passphrase,
        ..ClientOptions::new(endpoint, room, nick.clone())
    };
    let (client, mut events) = Client::connect(options);
    let mut out = Output::new(json, nick);

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    // Ids sent but not yet acknowledged or refused: at end of input we wait for them.
    let mut unconfirmed: HashSet<String> = HashSet::new();
    let mut eof_deadline: Option<tokio::time::Instant> = None;
    let mut exit: Result<(), String> = Ok(());

    loop {
        if eof_deadline.is_some() && unconfirmed.is_empty() {
            client.leave().await;
            eof_deadline = None;
        }
        let deadline = eof_deadline;
        tokio::select! {
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    match input(&client, &line, &mut out).await {
                        Ok(Some(id)) => { unconfirmed.insert(id); }
                        Ok(None) => {}
                        Err(message) => out.local_error(&message).await,
                    }
                }
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    // Give what is in flight a bounded time to be confirmed, then leave.
                    eof_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                }
            },
            () = sleep_until_opt(deadline) => {
                out.local_error(&format!(
                    "{} message(s) were not confirmed by the host before leaving",
                    unconfirmed.len()
                )).await;
                unconfirmed.clear();
                exit = Err("some messages were not delivered".into());
            }
            Some(change) = room_change(&mut discovered) => {
                use lanchat::discovery::RoomChange;
                let line = match change {
                    RoomChange::Gone(r) => format!(
                        "{} is no longer announced on the LAN (its host stopped answering)",
                        r.label()
                    ),
                    RoomChange::Appeared(r) | RoomChange::Updated(r) => {
                        format!("{} is announced on the LAN again", r.label())
                    }
                };
                out.local_note(&line).await;
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                match &event {
                    ClientEvent::Acked { id, .. } | ClientEvent::Refused { id: Some(id), .. } => {
                        unconfirmed.remove(id);
                    }
                    _ => {}
                }
                let closed = match &event {
                    ClientEvent::Closed { reason } => Some(reason.clone()),
                    _ => None,
                };
                out.event(&event).await;
                if let Some(reason) = closed {
                    if !matches!(reason, CloseReason::Left) {
                        exit = Err(match reason {
                            CloseReason::Refused {
                                code: protocol::ErrorCode::PassphraseRequired,
                                message,
                            } => format!("cannot join: {message} (use --passphrase)"),
                            CloseReason::Refused { message, .. } => format!("cannot join: {message}"),
                            CloseReason::Bye { message, .. } => message,
                            CloseReason::Lost(why) => why,
                            CloseReason::Left => unreachable!(),
                        });
                    }
                    break;
                }
            }
        }
    }
    if let Some((discovery, browser, _)) = discovered {
        drop(browser);
        discovery.shutdown().await;
    }
    exit
}

/// The next change to the joined room's announcement (never, when joined by address).
async fn room_change(
    discovered: &mut Option<(
        lanchat::discovery::Discovery,
        lanchat::discovery::RoomBrowser,
        String,
    )>,
) -> Option<lanchat::discovery::RoomChange> {
    use lanchat::discovery::RoomChange;
    let Some((_, browser, key)) = discovered.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        match browser.next().await? {
            RoomChange::Appeared(r) | RoomChange::Gone(r) if r.key == *key => {
                return Some(match browser.rooms().iter().any(|r| r.key == *key) {
                    true => RoomChange::Appeared(r),
                    false => RoomChange::Gone(r),
                })
            }
            _ => continue,
        }
    }
}

/// Acts on one line of input; returns the id of a request that awaits confirmation.
async fn input(client: &Client, line: &str, out: &mut Output) -> Result<Option<String>, String> {
    let text = line.trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Ok(None);
    }
    let result = if let Some(literal) = text.strip_prefix("//") {
        client.send(format!("/{literal}")).await
    } else if let Some(command) = text.strip_prefix('/') {
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "msg" | "w" => {
                let (to, body) = rest.split_once(' ').ok_or("usage: /msg NICK TEXT")?;
                client.send_private(to, body).await
            }
            "nick" => client.rename(rest).await,
            "location" | "loc" => {
                let mut parts = rest.split([' ', ',']).filter(|s| !s.is_empty());
                let parse = |s: Option<&str>| s.and_then(|s| s.parse::<f64>().ok());
                match (parse(parts.next()), parse(parts.next())) {
                    (Some(lat), Some(lon)) => client.send_location(lat, lon).await,
                    _ => return Err("usage: /location LAT LON".into()),
                }
            }
            "typing" => {
                client.typing(true).await.map_err(|e| e.to_string())?;
                return Ok(None);
            }
            "users" => {
                out.users().await;
                return Ok(None);
            }
            "leave" | "quit" => {
                client.leave().await;
                return Ok(None);
            }
            "help" => {
                out.local_note("commands: /msg NICK TEXT, /nick NEW, /location LAT LON, /typing, /users, /leave; // sends a literal /").await;
                return Ok(None);
            }
            other => return Err(format!("unknown command /{other} (try /help)")),
        }
    } else {
        client.send(text).await
    };
    result.map(Some).map_err(|e| e.to_string())
}

/// Writes events to stdout as text lines or JSON lines, keeping the user list current.
struct Output {
    json: bool,
    me: String,
    /// Who is in the room, in joining order (kept from the welcome and join/leave events).
    users: Vec<String>,
    /// The sequence number the user list is exact at; older events do not change it.
    users_seq: u64,
    stdout: tokio::io::Stdout,
}

impl Output {
    fn new(json: bool, me: String) -> Self {
        Self {
            json,
            me,
            users: Vec::new(),
            users_seq: 0,
            stdout: tokio::io::stdout(),
        }
    }

    async fn line(&mut self, line: String) {
        // stdout closed (e.g. `| head`) is not an error worth dying loudly for.
        let _ = self.stdout.write_all(line.as_bytes()).await;
        let _ = self.stdout.write_all(b"\n").await;
        let _ = self.stdout.flush().await;
    }

    async fn local_error(&mut self, message: &str) {
        eprintln!("lanchat: {message}");
    }

    async fn local_note(&mut self, message: &str) {
        if !self.json {
            self.line(format!("* {message}")).await;
        }
    }

    async fn users(&mut self) {
        let list = self
            .users
            .iter()
            .map(|u| render::clean(u))
            .collect::<Vec<_>>();
        let line = format!("* online ({}): {}", list.len(), list.join(", "));
        self.line(line).await;
    }

    fn track(&mut self, event: &protocol::ChatEvent) {
        if event.seq <= self.users_seq {
            return;
        }
        self.users_seq = event.seq;
        let key = protocol::name_key;
        match &event.body {
            EventBody::Joined { nick, also } => {
                for nick in std::iter::once(nick).chain(also) {
                    if !self.users.iter().any(|u| key(u) == key(nick)) {
                        self.users.push(nick.clone());
                    }
                }
            }
            EventBody::Left { nick, .. } => self.users.retain(|u| key(u) != key(nick)),
            EventBody::Renamed { from, to } => {
                for u in &mut self.users {
                    if key(u) == key(from) {
                        *u = to.clone();
                    }
                }
            }
            _ => {}
        }
    }

    async fn event(&mut self, event: &ClientEvent) {
        match event {
            ClientEvent::Joined { welcome, .. } => {
                self.users = welcome.users.clone();
                self.users_seq = welcome.seq;
                self.me = welcome.you.clone();
            }
            ClientEvent::Event(e) => self.track(e),
            ClientEvent::Acked {
                request: lanchat::client::Request::Nick(nick),
                ..
            } => {
                let me = self.me.clone();
                for u in &mut self.users {
                    if protocol::name_key(u) == protocol::name_key(&me) {
                        *u = nick.clone();
                    }
                }
                self.me = nick.clone();
            }
            _ => {}
        }
        if self.json {
            let line = json_line(event);
            self.line(line).await;
            return;
        }
        match event {
            ClientEvent::Joined { welcome, .. } => {
                let status = render::status_line(event).unwrap_or_default();
                self.line(status).await;
                // History first shown with a marker so scripts can tell it from live traffic.
                for e in &welcome.history {
                    let line = format!("(history) {}", render::event_line(e, None));
                    self.line(line).await;
                }
            }
            ClientEvent::Event(e) => {
                let line = render::event_line(e, Some(self.users.len()));
                self.line(line).await;
            }
            ClientEvent::Acked { request, ts, .. } => {
                let me = self.me.clone();
                if let Some(line) = render::acked_line(request, &me, *ts) {
                    self.line(line).await;
                }
            }
            ClientEvent::Refused { .. } => {
                if let Some(line) = render::status_line(event) {
                    eprintln!("{line}");
                }
            }
            other => {
                if let Some(line) = render::status_line(other) {
                    self.line(line).await;
                }
            }
        }
    }
}

/// One JSON line per event: protocol frames keep their wire shape; connection states get
/// `{"type":"disconnected"|"reconnecting"|"closed", ...}`.
fn json_line(event: &ClientEvent) -> String {
    use serde_json::json;
    let value = match event {
        ClientEvent::Joined { welcome, resumed } => {
            let mut v =
                serde_json::to_value(protocol::HostFrame::Welcome(Box::new(welcome.clone())))
                    .unwrap_or_default();
            v["resumed"] = json!(resumed);
            v
        }
        ClientEvent::Event(e) => serde_json::to_value(e).unwrap_or_default(),
        ClientEvent::Typing { nick, active } => {
            json!({"type":"typing","nick":nick,"active":active})
        }
        ClientEvent::Acked { id, seq, ts, .. } => json!({"type":"ack","id":id,"seq":seq,"ts":ts}),
        ClientEvent::Refused {
            id, code, message, ..
        } => {
            json!({"type":"error","id":id,"code":code,"message":message})
        }
        ClientEvent::Disconnected { reason } => json!({"type":"disconnected","reason":reason}),
        ClientEvent::Reconnecting { attempt, delay } => {
            json!({"type":"reconnecting","attempt":attempt,"delay_ms":delay.as_millis() as u64})
        }
        ClientEvent::Closed { reason } => {
            let reason = match reason {
                CloseReason::Left => "left".to_owned(),
                CloseReason::Refused { message, .. } | CloseReason::Bye { message, .. } => {
                    message.clone()
                }
                CloseReason::Lost(why) => why.clone(),
            };
            json!({"type":"closed","reason":reason})
        }
    };
    value.to_string()
}
