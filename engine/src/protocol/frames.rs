//! Every frame a client and a host exchange, and the codes they carry.

use serde::{Deserialize, Serialize};

pub use super::status::Status;

/// A frame sent by a client to a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Must be the first frame on a connection.
    Hello {
        version: u32,
        /// Free-form client name and version, for the host's logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Enter a room (created on first join). A connection is in at most one room at a time.
    Join {
        id: String,
        room: String,
        nick: String,
        /// A secret the client picks once per run and repeats on every rejoin, so that the host
        /// can replace a stale connection of the same client and drop resent duplicates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The room epoch and last sequence number the client already has: the welcome then
        /// carries only what came after it, if the host still holds it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Since>,
        /// For a locked room: the client's side of the key exchange the host's `challenge`
        /// started (see PROTOCOL.md, "Locked rooms").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unlock: Option<UnlockAnswer>,
        /// How available the member is from the start (a client that was away before a
        /// reconnect stays away without a flash of "available").
        #[serde(default, skip_serializing_if = "Status::is_available")]
        status: Status,
    },
    /// Proves a key the client holds, for a client that has no TLS certificate to present
    /// (a browser): `key` is an uncompressed P-256 public key (65 bytes), `sig` an
    /// ECDSA-SHA256 signature (64 bytes, r || s) over `"lanchat-identity-v1\0"` followed by
    /// this connection's `hello` nonce, both hex. Send it after `hello`, before `join`.
    Identify { key: String, sig: String },
    /// Before joining a locked room: asks for its salt and the host's share of the key
    /// exchange. `bound`: the client binds the exchange to the TLS connection (native
    /// clients do, to the host certificate's hash; a page cannot see the certificate).
    Unlock {
        id: String,
        room: String,
        bound: bool,
    },
    /// Leave the current room; the connection stays open and may join another.
    Leave { id: String },
    /// A message to everyone in the room.
    Send { id: String, text: String },
    /// A message to one user in the room.
    SendPrivate {
        id: String,
        to: String,
        text: String,
    },
    /// Share a location with everyone in the room.
    SendLocation { id: String, lat: f64, lon: f64 },
    /// "I am typing" (`true`) or "I stopped" (`false`). Expires on the host by itself.
    Typing { active: bool },
    /// Change nickname in the current room.
    Nick { id: String, nick: String },
    /// "I am available / away / busy": shown next to the member's name. Not sequenced.
    Status { status: Status },
    /// Before joining: "connect back to me on this TCP port". The host tries once, for at
    /// most a second, at the address this connection comes from (no other), and answers
    /// `reached`: how a host's doctor learns whether others can reach its own port.
    Reach { id: String, port: u16 },
}

impl ClientFrame {
    /// The client-chosen id of a request, for the frames that have one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientFrame::Join { id, .. }
            | ClientFrame::Reach { id, .. }
            | ClientFrame::Unlock { id, .. }
            | ClientFrame::Leave { id }
            | ClientFrame::Send { id, .. }
            | ClientFrame::SendPrivate { id, .. }
            | ClientFrame::SendLocation { id, .. }
            | ClientFrame::Nick { id, .. } => Some(id),
            ClientFrame::Hello { .. }
            | ClientFrame::Typing { .. }
            | ClientFrame::Status { .. }
            | ClientFrame::Identify { .. } => None,
        }
    }
}

/// The client's half of a locked room's key exchange, in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockAnswer {
    /// The client's share, a ristretto255 point (64 hex digits).
    pub share: String,
    /// HMAC-SHA256 confirmation tag (64 hex digits).
    pub tag: String,
}

/// Where a rejoining client left off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    pub epoch: String,
    pub seq: u64,
}

/// A frame sent by a host to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostFrame {
    /// The answer to the client's `hello`.
    Hello {
        version: u32,
        /// The host's display name (its machine or nickname).
        host: String,
        /// The hosting installation's stable id: clients pin it to the key the host proved.
        #[serde(default)]
        id: String,
        /// The fingerprint of the host's certificate, for pages to show (native clients
        /// check the certificate itself).
        #[serde(default)]
        key: String,
        rooms: Vec<RoomSummary>,
        /// Fresh for every connection: what a `join` proof for a locked room is made over.
        #[serde(default)]
        nonce: String,
    },
    /// The answer to `join`: the room's state as of sequence number `seq`.
    Welcome(Box<Welcome>),
    /// The answer to `unlock`: the room's salt and the host's share of the key exchange;
    /// both absent when the room is not locked.
    Challenge {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        salt: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<String>,
    },
    /// More of the welcome's history, in order; `more` until the last piece.
    History {
        events: Vec<ChatEvent>,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
    },
    /// The host accepted request `id`; for chat events, `seq` and `ts` place it in the room.
    Ack {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
    /// Request `id` (or an unparseable frame) was refused. The connection stays usable unless
    /// a `bye` follows.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
    /// The answer to `reach`: whether a TCP connection to the client's address on `port`
    /// was accepted, and how long it took.
    Reached {
        id: String,
        port: u16,
        reached: bool,
        ms: u64,
    },
    /// The host is about to close this connection, and why.
    Bye { code: ByeCode, message: String },
    /// Someone started or stopped typing. Ephemeral: no sequence number, never in history.
    Typing { nick: String, active: bool },
    /// Someone's status changed (or a newcomer's is not `available`). Not sequenced, never in
    /// history: the welcome's `statuses` says where everyone stands.
    Status { nick: String, status: Status },
    /// A chat event (message, join, leave, ...). Must stay the last variant: it is untagged
    /// at this level because the event carries its own `type`.
    #[serde(untagged)]
    Event(ChatEvent),
}

/// The body of a `welcome` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The `id` of the `join` this answers.
    pub id: String,
    /// The room's display name.
    pub room: String,
    /// Changes whenever the host loses the room's sequence (a restart without history), so a
    /// client knows its old sequence numbers no longer mean anything.
    pub epoch: String,
    /// The room's sequence number at the moment of joining; `users` is exact as of here.
    pub seq: u64,
    /// The nickname the client joined with (trimmed).
    pub you: String,
    /// Everyone in the room, the newcomer included, in joining order.
    pub users: Vec<String>,
    /// The members whose status is not `available`, by nickname.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub statuses: std::collections::BTreeMap<String, Status>,
    /// Recent events (or, with `since`, the ones after it) in sequence order.
    pub history: Vec<ChatEvent>,
    /// False when the host no longer held everything after `since`.
    pub complete: bool,
    /// False while the host cannot write the room's history to disk (it still serves it
    /// from memory); a `notice` event says so when it happens.
    #[serde(default = "yes")]
    pub history_saved: bool,
    /// True when more of `history` follows in `history` frames (a long resume comes in
    /// pieces of at most 64 KiB, paced by the client's reading).
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
    /// For a locked room: the host's confirmation tag, which only a host that knows the
    /// room key can make (the client stops if it is wrong or missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock: Option<String>,
    /// This membership's ticket for files (`/files/...` on the host's port, see PROTOCOL.md,
    /// "Files"): valid while the member is in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// One room as listed in the host's `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub name: String,
    pub users: u32,
    /// Joining needs the room's passphrase.
    #[serde(default)]
    pub locked: bool,
}

/// A sequenced, timestamped event in a room's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    /// Per-room, strictly increasing; not contiguous from one client's view, because private
    /// messages between others take numbers too.
    pub seq: u64,
    /// Host time, milliseconds since the Unix epoch.
    pub ts: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    Message {
        id: String,
        from: String,
        text: String,
    },
    Private {
        id: String,
        from: String,
        to: String,
        text: String,
    },
    Location {
        id: String,
        from: String,
        lat: f64,
        lon: f64,
    },
    /// `nick` joined; during a rush of joins into a big room, the host announces the others
    /// who joined within the same moment in `also`, in one event (see PROTOCOL.md).
    Joined {
        nick: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<String>,
    },
    /// `nick` left; in a busy room, the others who left within the same moment are in
    /// `also` (their reasons may differ from `reason`, which is `nick`'s).
    Left {
        nick: String,
        reason: LeaveReason,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<String>,
    },
    Renamed {
        /// The `nick` request's id, for renames a member asked for (not for a takeover that
        /// changed the nickname): a client resuming after a lost ack recognises it by this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        from: String,
        to: String,
    },
    /// A message from the host itself, about the room (history no longer saved, and so on).
    Notice { code: NoticeCode, text: String },
    /// A file `from` shared, uploaded completely and checked against its SHA-256; with `to`,
    /// privately (only the two of them see it, or may download it). `id` is the file's id
    /// on the host (`/files/ID`), chosen by the uploader.
    File {
        id: String,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        #[serde(flatten)]
        file: FileCard,
    },
}

/// What a file event shows about the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCard {
    /// The file's name, made safe (see `protocol::safe_file_name`).
    pub name: String,
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Media type, from the name (images: from the content).
    pub mime: String,
    /// For an image the host could decode: its size in pixels; it has a thumbnail
    /// (`/files/ID/thumb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSize>,
}

/// An image's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

impl EventBody {
    /// The id of the client request that made this event (messages, locations, and renames
    /// a member asked for): in a resumed history it is that request's acknowledgement.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            EventBody::Message { id, .. }
            | EventBody::Private { id, .. }
            | EventBody::Location { id, .. }
            | EventBody::File { id, .. } => Some(id),
            EventBody::Renamed { id, .. } => id.as_deref(),
            EventBody::Joined { .. } | EventBody::Left { .. } | EventBody::Notice { .. } => None,
        }
    }
}

/// What a host notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeCode {
    /// Writing history to disk failed (disk full, unwritable); the room goes on from memory.
    HistoryNotSaved,
    /// Writing history works again; what was said meanwhile is saved too.
    HistorySaved,
}

/// Why someone is no longer in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They left on purpose.
    Left,
    /// Their connection closed or failed.
    Disconnected,
    /// The host dropped them (too slow to keep up).
    Dropped,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a frame this protocol knows.
    BadFrame,
    /// A binary WebSocket frame; the protocol is text only.
    BinaryFrame,
    /// The first frame was not `hello`.
    HelloRequired,
    /// A second `hello`.
    AlreadyHello,
    UnsupportedVersion,
    BadId,
    BadSession,
    NickInvalid,
    NickTaken,
    RoomInvalid,
    TooManyRooms,
    NotInRoom,
    AlreadyInRoom,
    NoSuchUser,
    TextEmpty,
    TextTooLong,
    TextInvalid,
    LocationInvalid,
    /// The host has reached its connection cap.
    HostFull,
    /// The host holds as much memory for others as it may; it takes no new joins or rooms
    /// for a moment.
    HostBusy,
    /// This address already has as many connections as the host allows one address.
    TooManyConnections,
    /// The room is locked and the join carried no proof.
    PassphraseRequired,
    /// The join's proof does not match the room's passphrase.
    PassphraseWrong,
    /// Too many passphrase attempts from this address; wait and try again.
    TooManyAttempts,
    /// The client sent messages faster than the host allows; this one was not delivered.
    RateLimited,
}

/// Why the host is closing a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeCode {
    /// The host is shutting down (the room closes for everyone).
    HostClosing,
    /// The client fell too far behind the room's traffic.
    TooSlow,
    /// The same client session joined again on another connection.
    Replaced,
    /// The client sent something that ends the conversation (wrong version, oversized frame).
    ProtocolViolation,
    /// The host has reached its connection cap.
    HostFull,
    /// The client sent nothing for too long.
    Timeout,
    /// This address already has as many connections as the host allows one address.
    TooManyConnections,
}
