//! `lanchat join`: chats from a terminal or a pipe. Every stdin line is sent (commands start
//! with `/`), every room event is one stdout line.
//!
//! A pipe is read only as fast as the host accepts: the next line is read once the previous
//! request is confirmed, so every line is delivered once, in order, however long the host's
//! rate limit makes it take; the exit status says whether everything was.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use lanchat::client::{Client, ClientEvent, ClientOptions, CloseReason, Endpoint};
use lanchat::config::ConfigStore;
use lanchat::ids::sleep_until_opt;
use lanchat::protocol::{self, RoomLink};
use lanchat::reach::HostFinder;

use crate::lan;
use crate::output::Output;
use crate::passphrase::read_passphrase;

/// Requests in flight at once. One keeps a pipe's lines in order even when the host's rate
/// limit refuses one (it is held and sent again before anything after it goes).
const IN_FLIGHT: usize = 1;

/// After stdin ends, how long to wait without any confirmation before giving up.
const STALLED: Duration = Duration::from_secs(30);

pub struct JoinArgs {
    pub address: Option<String>,
    pub room: Option<String>,
    pub host: Option<String>,
    pub wait: Duration,
    pub interfaces: Vec<String>,
    pub nick: Option<String>,
    pub json: bool,
    pub passphrase: bool,
    /// The host's key changed and the user checked the new code: trust it.
    pub trust_new_key: bool,
}

type Discovered = Option<(
    lanchat::discovery::Discovery,
    lanchat::discovery::RoomBrowser,
    String,
)>;

pub async fn run_join(args: JoinArgs) -> Result<(), String> {
    let link = match &args.address {
        Some(address) => Some(RoomLink::parse(address).map_err(|e| e.to_string())?),
        None => None,
    };
    let room = args
        .room
        .or_else(|| link.as_ref().and_then(|l| l.room.clone()))
        .ok_or("--room NAME is required (or a lanchat:// link that names the room)")?;
    let room = protocol::validate_room(&room)
        .map_err(|e| format!("--room: {e}"))?
        .to_owned();
    let nick = resolve_nick(args.nick)?;
    let passphrase = match args.passphrase {
        true => Some(read_passphrase().await?),
        false => None,
    };

    // Discovery keeps running while connected: it tells the client where the room is after
    // its host restarts, and drops the room when it stops answering.
    let mut discovered: Discovered = None;
    let host_key = link.as_ref().and_then(|l| l.key);
    let endpoint = match link {
        // A link with the host's key: the host is known by that key, so when its address
        // changes it is found again (announced, last address, or the scan).
        Some(link) => match (link.key, link.authority.parse::<std::net::SocketAddr>()) {
            (Some(key), Ok(addr)) => {
                let policy = lan::interface_policy(&args.interfaces);
                // A host on this computer is not looked for on the network.
                let browsing = (!addr.ip().is_loopback())
                    .then(|| lan::start_discovery(policy.clone()).ok())
                    .flatten()
                    .and_then(|d| d.browse().ok().map(|b| (d, b)));
                let finder = HostFinder::new(
                    key,
                    format!("the host of {room}"),
                    vec![addr],
                    browsing.as_ref().map(|(_, b)| b.handle()),
                    policy,
                );
                if let Some((discovery, browser)) = browsing {
                    discovered = Some((discovery, browser, String::new()));
                }
                Endpoint::Locate(std::sync::Arc::new(finder))
            }
            _ => Endpoint::Url(link.ws_url()),
        },
        None => {
            let discovery = lan::start_discovery(lan::interface_policy(&args.interfaces))?;
            let mut browser = discovery.browse().map_err(|e| e.to_string())?;
            // Rooms of hosts added by address are found by name too.
            tokio::spawn(lan::find_others(
                browser.handle(),
                lan::interface_policy(&args.interfaces),
                false,
            ));
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
    let (identity, known_hosts) = installation();
    let options = ClientOptions {
        passphrase,
        identity,
        known_hosts,
        host_key,
        trust_new_key: args.trust_new_key,
        ..ClientOptions::new(endpoint, room, nick.clone())
    };
    let (client, events) = Client::connect(options);
    let exit = chat(
        &client,
        events,
        Output::new(args.json, nick),
        &mut discovered,
    )
    .await;
    if let Some((discovery, browser, _)) = discovered {
        drop(browser);
        discovery.shutdown().await;
    }
    exit
}

/// This installation's key (who you are to hosts) and the hosts it has met, from the config
/// directory. Without one (no home, a read-only disk), a key for this run only, and hosts
/// are trusted on first use each time; a warning says so.
fn installation() -> (
    Option<std::sync::Arc<lanchat::identity::Identity>>,
    Option<std::sync::Arc<lanchat::trust::KnownHosts>>,
) {
    let store = match ConfigStore::from_env() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("lanchat: warning: {e}; hosts' keys are not remembered");
            return (None, None);
        }
    };
    let identity = match lanchat::identity::Identity::load_or_create(store.dir()) {
        Ok(identity) => Some(std::sync::Arc::new(identity)),
        Err(e) => {
            eprintln!("lanchat: warning: {e}; using a key for this run only");
            None
        }
    };
    let known = lanchat::trust::KnownHosts::open(store.dir());
    (identity, Some(std::sync::Arc::new(known)))
}

/// Sends stdin, prints the room, until stdin ends and everything is confirmed (or the
/// client stops).
async fn chat(
    client: &Client,
    mut events: tokio::sync::mpsc::Receiver<ClientEvent>,
    mut out: Output,
    discovered: &mut Discovered,
) -> Result<(), String> {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut refused = 0usize;
    // Once stdin has ended: when to give up waiting for confirmations.
    let mut give_up: Option<Instant> = None;
    let mut exit: Result<(), String> = Ok(());
    let mut transfers = crate::files::Transfers::new();
    loop {
        if give_up.is_some() && client.pending() == 0 && transfers.active == 0 {
            client.leave().await;
            give_up = None;
        }
        let ready_for_input = stdin_open && client.pending() < IN_FLIGHT;
        tokio::select! {
            line = stdin.next_line(), if ready_for_input => match line {
                Ok(Some(line)) => {
                    if let Err(message) = input(client, &line, &mut out, &mut transfers).await {
                        out.local_error(&message).await;
                        refused += 1;
                    }
                }
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    give_up = Some(Instant::now() + STALLED);
                }
            },
            Some(note) = transfers.received.recv() => {
                use crate::files::Note;
                if matches!(note, Note::Done { .. } | Note::Failed { .. }) {
                    transfers.ended();
                    if let Some(at) = give_up.as_mut() {
                        *at = Instant::now() + STALLED;
                    }
                }
                if matches!(note, Note::Failed { .. }) {
                    refused += 1;
                }
                out.transfer(&note).await;
            }
            // Wakes the loop when a confirmation makes room for the next line.
            () = client.pending_below(IN_FLIGHT), if stdin_open && !ready_for_input => {}
            () = sleep_until_opt(give_up) => {
                out.local_error(&format!(
                    "{} message(s) were not confirmed by the host within {} s; leaving",
                    client.pending(),
                    STALLED.as_secs()
                )).await;
                exit = Err("some messages were not delivered".into());
                client.leave().await;
                give_up = None;
            }
            Some(change) = room_change(discovered) => {
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
                    ClientEvent::Acked { .. } => {
                        if let Some(at) = give_up.as_mut() {
                            *at = Instant::now() + STALLED; // progress: keep waiting
                        }
                    }
                    ClientEvent::Refused { request: Some(_), .. } => refused += 1,
                    _ => {}
                }
                let closed = match &event {
                    ClientEvent::Closed { reason } => Some(reason.clone()),
                    _ => None,
                };
                out.event(&event, &mut transfers).await;
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
                            CloseReason::HostKey { message, remembered: true, .. } => format!(
                                "{message} To trust the new key, join again with --trust-new-key."
                            ),
                            CloseReason::HostKey { message, .. } => message,
                            CloseReason::HostUnproven => reason.message().to_owned(),
                            CloseReason::Left => unreachable!(),
                        });
                    } else if client.pending() > 0 && exit.is_ok() {
                        exit = Err(format!("{} message(s) were not delivered", client.pending()));
                    }
                    break;
                }
            }
        }
    }
    if refused > 0 && exit.is_ok() {
        exit = Err(format!("{refused} line(s) were refused"));
    }
    exit
}

/// The next change to the joined room's announcement (never, when joined by address).
async fn room_change(discovered: &mut Discovered) -> Option<lanchat::discovery::RoomChange> {
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
async fn input(
    client: &Client,
    line: &str,
    out: &mut Output,
    transfers: &mut crate::files::Transfers,
) -> Result<Option<String>, String> {
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
            "file" | "send" => {
                transfers.share(client, rest)?;
                return Ok(None);
            }
            "save" | "get" => {
                transfers.save(client, rest)?;
                return Ok(None);
            }
            "history" | "older" => {
                crate::past::history(client, rest, out, transfers).await?;
                return Ok(None);
            }
            "search" | "find" => {
                crate::past::search(client, rest, out, transfers).await?;
                return Ok(None);
            }
            "typing" => {
                client.typing(true).await.map_err(|e| e.to_string())?;
                return Ok(None);
            }
            "users" | "who" => {
                out.users().await;
                return Ok(None);
            }
            "status" | "away" | "busy" | "back" => {
                let word = if name == "status" { rest } else { name };
                let status: protocol::Status = word
                    .parse()
                    .map_err(|e: String| format!("{e} (usage: /status available|away|busy)"))?;
                client.set_status(status).await.map_err(|e| e.to_string())?;
                out.local_note(&format!("you are now {}", status.as_str()))
                    .await;
                return Ok(None);
            }
            "leave" | "quit" => {
                client.leave().await;
                return Ok(None);
            }
            "help" => {
                out.local_note("commands: /msg NICK TEXT, /nick NEW, /location LAT LON, /file PATH [NICK], /save N [DIR], /history [N], /search [from:NICK] WORDS, /status available|away|busy, /typing, /users, /leave; // sends a literal /").await;
                return Ok(None);
            }
            other => return Err(format!("unknown command /{other} (try /help)")),
        }
    } else {
        client.send(text).await
    };
    result.map(Some).map_err(|e| e.to_string())
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
