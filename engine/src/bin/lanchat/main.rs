//! `lanchat`: the headless host and the terminal client.
//!
//! - `lanchat host --room NAME [--port N] [--bind ADDR]` serves rooms until Ctrl-C/SIGTERM.
//! - `lanchat join ADDRESS --room NAME [--nick NICK] [--json]` chats from a terminal or a
//!   pipe: every stdin line is sent, every room event is one stdout line.
//! - `lanchat nick [NAME]` shows or saves the default nickname.

mod render;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use lanchat::client::{parse_address, Client, ClientEvent, ClientOptions, CloseReason};
use lanchat::config::ConfigStore;
use lanchat::host::{self, Host, HostConfig, Limits};
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
        /// Address to listen on.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
        bind: IpAddr,
        /// The name others see for this host (default: the machine's name).
        #[arg(long)]
        name: Option<String>,
        /// Connections served at once.
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
    },
    /// Join a room: each stdin line is sent; each room event is printed as one line.
    ///
    /// Lines starting with / are commands: /msg NICK TEXT (private), /nick NEW,
    /// /location LAT LON, /typing, /users, /leave. Start a line with // to send a
    /// literal slash.
    Join {
        /// The host: HOST:PORT, ws://HOST:PORT/ws or lanchat://HOST:PORT
        address: String,
        #[arg(long)]
        room: String,
        /// Nickname for this session (default: the saved one, see `lanchat nick`).
        #[arg(long)]
        nick: Option<String>,
        /// Print events as JSON lines (the protocol's own shapes) instead of text.
        #[arg(long)]
        json: bool,
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
        } => runtime.block_on(run_host(
            room,
            SocketAddr::new(bind, port),
            name,
            max_connections,
        )),
        Command::Join {
            address,
            room,
            nick,
            json,
        } => runtime.block_on(run_join(address, room, nick, json)),
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

async fn run_host(
    room: String,
    addr: SocketAddr,
    name: Option<String>,
    max_connections: usize,
) -> Result<(), String> {
    let config = HostConfig {
        name: name.unwrap_or_else(machine_name),
        rooms: vec![room.clone()],
        limits: Limits {
            max_connections,
            ..Limits::default()
        },
    };
    let host = Host::new(config).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let shown = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port())
    } else {
        local
    };
    let room = protocol::validate_room(&room).map_err(|e| e.to_string())?;
    println!("LAN Chat host listening on {local}, room \"{room}\"");
    println!(
        "Join with: lanchat join {shown} --room {}",
        shell_word(room)
    );
    println!("WebSocket: {}", host::ws_url(shown));
    if local.ip().is_unspecified() {
        println!(
            "Others on the LAN use this machine's LAN address with port {}.",
            local.port()
        );
    }
    println!("Press Ctrl-C to close the room for everyone.");
    host.run(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    println!("Host closed.");
    Ok(())
}

/// Quotes a word for a shell command line if it needs it.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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

async fn run_join(
    address: String,
    room: String,
    nick: Option<String>,
    json: bool,
) -> Result<(), String> {
    let url = parse_address(&address).map_err(|e| e.to_string())?;
    let room = protocol::validate_room(&room)
        .map_err(|e| format!("--room: {e}"))?
        .to_owned();
    let nick = resolve_nick(nick)?;
    let (client, mut events) = Client::connect(ClientOptions::new(url, room, nick.clone()));
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
    exit
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
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
            EventBody::Joined { nick } if !self.users.iter().any(|u| key(u) == key(nick)) => {
                self.users.push(nick.clone());
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
