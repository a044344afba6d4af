//! LAN Chat's engine: everything but the window and the command line. It builds, runs and is
//! tested without Tauri or GTK; the desktop shell (`src-tauri/`) and the `lanchat` CLI
//! (`cli/`) are thin layers over it.
//!
//! # Layout
//! - [`protocol`]: the JSON frames a client and a host exchange (`frames`), the rules for
//!   names, texts, locations, ids and sessions (`rules`), files (`files`: ids, safe names,
//!   transfer headers), and `lanchat://` links (`link`).
//!   A pure codec; PROTOCOL.md documents it.
//! - [`host`]: the room host. `Host::run` takes a listener and a shutdown future, serves many
//!   rooms, sequences and timestamps every event, and enforces every limit in `Limits`.
//!   Inside: `connection` (one client: `reader`, `requests`, `writer`, `outbox`, `socket`
//!   with its TLS `Link`),
//!   `room` (membership, publishing, `history`, `actions`, `welcome`, `rush`, `disk`,
//!   `owners`: which key a nickname belongs to),
//!   `rooms` (the registry), `feed` (events on their way to members), `store` (history on
//!   disk: each room's `log`, the journal; the `archive` of every event with full-text
//!   search, SQLite; the `archivist` copying one into the other), `admission` (who may
//!   connect), `web` (the page for browsers), `files` (shared files: the store, the
//!   tickets, the https endpoints, thumbnails; and `history`, the same tickets' pages of
//!   the past and search).
//! - [`hosting`]: hosting a room the way the CLI and the app both do: key, listener, host,
//!   announcement, links; `HostedRoom::start(options)` and `close().await`.
//! - [`client`]: the client library: `session` is the membership as a state machine without
//!   I/O (shared scenarios with ui/session.js), `task` drives it over a WebSocket with
//!   reconnects, `dial` finds and opens the host, `event` is what it reports, `transfer`
//!   sends and fetches files (resumable, checked end to end) and pages of the room's past
//!   and search results (`transfer::past`).
//! - [`discovery`]: rooms that appear by themselves: mDNS/DNS-SD announce and browse, and
//!   the choice of network interfaces.
//! - [`reach`]: rooms reachable where multicast is not: the fixed default port, the scan of
//!   the local subnets, hosts added by address, and finding a known host after it moved.
//! - [`doctor`]: why rooms are not seen, in plain words: interfaces, mDNS out and back,
//!   other devices, this computer's firewall rules, hosts answering on their port.
//! - [`config`]: the user's saved settings (nickname, host id, pinned interfaces) in the
//!   platform config directory.
//! - [`lock`]: locked rooms: the room key (passphrase stretched with a per-room salt),
//!   `cpace` (the key exchange that proves it, bound to the TLS connection), the attempt
//!   limiter.
//! - [`identity`]: this installation's key and self-signed certificate, its fingerprint and
//!   short code; [`tls`]: the TLS settings of host and client (keys checked by fingerprint);
//!   [`trust`]: hosts met before, pinned to their keys (`known_hosts.json`).
//! - [`private`]: owner-only directories and files (keys, settings, history).
//! - [`limiter`]: token buckets, the one type behind every rate limit.
//! - [`ids`]: random identifiers, the millisecond clock, optional deadlines.
//!
//! # Adding a frame type
//! 1. `protocol/frames.rs`: the variant (client or host frame, or an `EventBody` kind); if it
//!    is a request, `ClientFrame::request_id`; if it is an event a request makes,
//!    `EventBody::request_id`. Pin its JSON in `protocol/mod.rs`'s tests.
//! 2. PROTOCOL.md: the table row, an example, and the rules.
//! 3. Host: a handler in `host/requests.rs`; if it changes a room, a method in
//!    `host/room/` (`actions.rs` for things members say) that publishes through
//!    `Room::publish`.
//! 4. Client: `client/event.rs` (`Request` and its `frame`) and `client/session.rs`; then the
//!    same in `ui/session.js`, with a scenario in `tests/scenarios/session.json` that both
//!    run.
//! 5. Front ends: `cli/src/render.rs` and `cli/src/output.rs` for `lanchat join`;
//!    `ui/app.js` and `ui/view.js` for the page; a command in `src-tauri/src/commands.rs` and
//!    a method in `ui/transport.js` if the page can ask for it.
//! 6. Tests over real sockets in `tests/host.rs` (and `tests/client.rs` for the library).

pub mod client;
pub mod config;
pub mod discovery;
pub mod doctor;
pub mod host;
pub mod hosting;
pub mod identity;
pub mod ids;
pub mod limiter;
pub mod lock;
pub mod private;
pub mod protocol;
pub mod reach;
pub mod tls;
pub mod trust;
