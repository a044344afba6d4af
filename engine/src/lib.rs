//! LAN Chat's engine: everything but the window. It builds, runs and is tested without Tauri
//! or GTK; the desktop shell and the `lanchat` CLI are thin layers over it.
//!
//! # Layout
//! - [`protocol`]: the JSON frames a client and a host exchange, and the validation rules
//!   (nicknames, room names, texts, locations). A pure codec; PROTOCOL.md documents it.
//! - [`host`]: the room host. `Host::run` takes a listener and a shutdown future, serves many
//!   rooms, sequences and timestamps every event, and enforces every limit in `Limits`.
//! - [`client`]: the client library: connect, join, send, a stream of events, and automatic
//!   reconnect with backoff that rejoins the room and resumes where it left off.
//! - [`discovery`]: rooms that appear by themselves: mDNS/DNS-SD announce and browse, and
//!   the choice of network interfaces.
//! - [`config`]: the user's saved settings (nickname, host id, pinned interfaces) in the
//!   platform config directory.
//! - [`ids`]: random identifiers, the millisecond clock, optional deadlines.
//! - [`lock`]: locked rooms: the passphrase key, the join proof, the attempt limiter.

pub mod client;
pub mod config;
pub mod discovery;
pub mod host;
pub mod ids;
pub mod lock;
pub mod protocol;
