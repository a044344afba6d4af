//! Every bound the host enforces, in one place.

use std::time::Duration;

use crate::limiter::Rate;

/// Every bound the host enforces, in one place. The defaults suit a LAN chat; tests shrink
/// them to provoke each limit quickly.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; the next one is told `host_full` and closed.
    pub max_connections: usize,
    /// Rooms on one host; joining a new room past it is refused with `too_many_rooms`.
    pub max_rooms: usize,
    /// Largest WebSocket message (and frame) accepted, in bytes. Larger ones close the
    /// connection with code 1009. Generous next to the 4,000-character text limit.
    pub max_frame_bytes: usize,
    /// Replies (acks, errors, welcome) waiting for one client's writer. A client that sends
    /// requests but does not read the replies is disconnected when this fills.
    pub client_queue: usize,
    /// ...and their bytes: a client that does not read holds at most about this much of the
    /// host's memory (plus one batch being written) until it is dropped as stalled.
    pub client_queue_bytes: usize,
    /// Memory the host may hold for others (queued replies, rooms' histories); past it, new
    /// joins and new rooms are refused with `host_busy` until it drops. 0: no budget.
    pub memory_budget: usize,
    /// Bytes of events each room keeps in memory at most (besides `history_len` events).
    pub history_bytes: usize,
    /// Rooms one address (an IPv6 /64) may have opened and still open.
    pub max_rooms_per_address: usize,
    /// A room nobody is in is taken out of memory after this (it comes back from disk when
    /// joined; without a data directory its history goes). The host's own rooms stay.
    pub room_idle: Duration,
    /// Saved rooms nobody has used for this long are deleted when the host starts.
    pub forget_rooms_after: Duration,
    /// Events a room keeps for its slowest member. A member further behind than this is
    /// disconnected with `too_slow`; nobody else waits for it. Keep it well above
    /// `client_queue`: a member's own echoes may lag by that much while it sends.
    pub room_buffer: usize,
    /// ...and at most this many bytes of them (long messages make the buffer shorter).
    pub room_buffer_bytes: usize,
    /// Events each room keeps in memory for late joiners and rejoining clients; also how
    /// many events one history segment on disk holds (older ones go once archived).
    pub history_len: usize,
    /// Bytes after which a history segment on disk is closed and a new one started.
    pub history_segment_bytes: u64,
    /// Rooms with more members than this announce a rush of joins (each within
    /// `join_rush_window` of the previous one) in one `joined` event per window.
    pub join_rush_members: usize,
    pub join_rush_window: Duration,
    /// How often saved history is flushed to stable storage (`fsync`): a power cut can
    /// cost the events of the last interval; a crash of the host process costs nothing.
    pub sync_interval: Duration,
    /// After a failed history write, how long a room waits before trying the disk again.
    pub disk_retry: Duration,
    /// Connections one address may have open at once.
    pub max_per_address: usize,
    /// Chat messages (and renames) one client may send: more get `rate_limited`.
    pub message_rate: Option<Rate>,
    /// Frames of any kind one client may send; beyond it the host reads that client more
    /// slowly (nobody else notices).
    pub frame_rate: Option<Rate>,
    /// Joins, leaves and renames one connection may make; beyond it a join or rename gets
    /// `rate_limited` (a leave always happens, and counts). One address may make
    /// `max_per_address` a second in bursts of twice that, all its connections together.
    pub presence_rate: Option<Rate>,
    /// "Is typing" announcements one connection may start; beyond it they are not passed on.
    pub typing_rate: Option<Rate>,
    /// Wrong passphrases one address may try in a burst, and how often one more is allowed.
    pub passphrase_attempts: u32,
    pub passphrase_refill: Duration,
    /// Wrong passphrases one room takes in a burst from all addresses together, and how
    /// often one more is allowed (guessing spread over many addresses stays slow).
    pub passphrase_attempts_per_room: u32,
    pub passphrase_room_refill: Duration,
    /// Events a newcomer's welcome carries.
    pub welcome_history: usize,
    /// Time for a new TCP connection to complete the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// Time for one batch of frames to be written to a client before it counts as stalled.
    pub write_timeout: Duration,
    /// A client that sends nothing (not even a pong) for this long is disconnected.
    pub idle_timeout: Duration,
    /// How often the host pings each client, so idle but live clients answer with pongs.
    pub ping_interval: Duration,
    /// "Is typing" ends by itself this long after the last `typing: true`.
    pub typing_ttl: Duration,
    /// How long shutdown waits for connections to say goodbye.
    pub shutdown_grace: Duration,
    /// Largest file one member may share (`--max-file-size`).
    pub max_file_bytes: u64,
    /// Space all shared files together may take (`--file-quota`); to make room for a new
    /// one, the oldest go first (their cards then say the host no longer has them).
    pub file_quota: u64,
    /// Bytes the archive of every room's history (the data directory's `history.sqlite`)
    /// may use; past it, the oldest events go first.
    pub history_quota: u64,
    /// An upload nobody has continued for this long is given up and its partial file
    /// deleted.
    pub upload_patience: Duration,
    /// A transfer that moves no byte for this long is closed (the client may resume it).
    pub transfer_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_rooms: 64,
            max_frame_bytes: 64 * 1024,
            client_queue: 256,
            client_queue_bytes: 256 * 1024,
            memory_budget: default_memory_budget(),
            history_bytes: 4 << 20,
            max_rooms_per_address: 8,
            room_idle: Duration::from_secs(600),
            forget_rooms_after: Duration::from_secs(30 * 24 * 3600),
            room_buffer: 4096,
            room_buffer_bytes: 8 << 20,
            history_len: 1000,
            history_segment_bytes: 1 << 20,
            join_rush_members: 64,
            join_rush_window: Duration::from_millis(100),
            sync_interval: Duration::from_secs(1),
            disk_retry: Duration::from_secs(5),
            max_per_address: 64,
            message_rate: Some(Rate::new(10.0, 30)),
            frame_rate: Some(Rate::new(100.0, 200)),
            presence_rate: Some(Rate::new(1.0, 10)),
            typing_rate: Some(Rate::new(1.0, 5)),
            passphrase_attempts: 5,
            passphrase_refill: Duration::from_secs(30),
            passphrase_attempts_per_room: 20,
            passphrase_room_refill: Duration::from_secs(3),
            welcome_history: 100,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            typing_ttl: Duration::from_secs(6),
            shutdown_grace: Duration::from_secs(3),
            max_file_bytes: 2 << 30,
            file_quota: 10 << 30,
            history_quota: 4 << 30,
            upload_patience: Duration::from_secs(24 * 3600),
            transfer_idle: Duration::from_secs(60),
        }
    }
}

/// A quarter of the machine's memory (1 GiB where it cannot be read).
pub fn default_memory_budget() -> usize {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .to_owned();
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        });
    total_kb.map_or(1 << 30, |kb| kb * 1024 / 4)
}

impl Limits {
    /// New connections one address may open: `max_per_address` four times over per second
    /// (in bursts as large). Each costs the host a TLS handshake, a signature of its own;
    /// past this, a connection is closed at once, before any of that work.
    pub fn handshakes_per_address(&self) -> Rate {
        let n = (self.max_per_address.max(4) as f64 * 4.0).min(f64::from(u32::MAX));
        Rate::new(n, n as u32)
    }

    /// Joins, leaves and renames all connections of one address may make together.
    pub fn presence_per_address(&self) -> Option<Rate> {
        self.presence_rate.map(|_| {
            let per_address = self.max_per_address.max(1) as f64;
            Rate::new(
                per_address / 4.0,
                (per_address * 2.0).min(f64::from(u32::MAX)) as u32,
            )
        })
    }

    /// Per-client limits for `per_second` chat messages a second (0: none): bursts of three
    /// times that; frames of any kind ten times as fast (at least 100 a second), in bursts of
    /// twice their rate. The defaults are this with 10.
    pub fn with_message_rate(self, per_second: f64) -> Self {
        if per_second <= 0.0 {
            return Self {
                message_rate: None,
                frame_rate: None,
                ..self
            };
        }
        let burst =
            |rate: f64, times: f64| (rate * times).ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        let frames = (per_second * 10.0).max(100.0);
        Self {
            message_rate: Some(Rate::new(per_second, burst(per_second, 3.0))),
            frame_rate: Some(Rate::new(frames, burst(frames, 2.0))),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_rates_are_the_defaults_and_the_flag_s_formula() {
        let defaults = Limits::default();
        assert_eq!(defaults.message_rate, Some(Rate::new(10.0, 30)));
        assert_eq!(defaults.frame_rate, Some(Rate::new(100.0, 200)));
        let derived = Limits::default().with_message_rate(10.0);
        assert_eq!(derived.message_rate, defaults.message_rate);
        assert_eq!(derived.frame_rate, defaults.frame_rate);
        let unlimited = Limits::default().with_message_rate(0.0);
        assert_eq!((unlimited.message_rate, unlimited.frame_rate), (None, None));
    }
}
