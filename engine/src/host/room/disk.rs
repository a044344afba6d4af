//! Saving a room's events: every event is written before anyone sees it. When the disk fails
//! (full, unwritable), the room carries on from memory, tells its members with a `notice`,
//! and tries again a few seconds later; once writing works, everything in memory is
//! rewritten so the gap is filled, and a second notice says so.

use std::time::Instant;

use super::{Room, State};
use crate::host::store::{Record, RoomLog};
use crate::protocol::NoticeCode;

/// Where the room's history is being saved.
pub(super) enum Disk {
    /// Nowhere: the host runs without a data directory.
    Off,
    Saving(RoomLog),
    /// Writing failed; the next event after `retry_at` tries again.
    Failing {
        retry_at: Instant,
    },
}

impl Room {
    /// Writes `record` to the room's log. Returns a notice to publish when saving stops
    /// working or starts working again.
    pub(super) fn save(&self, st: &mut State, record: &Record) -> Option<(NoticeCode, String)> {
        let now = Instant::now();
        match &mut st.disk {
            Disk::Off => None,
            Disk::Saving(log) => match log.append(record) {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(room = self.name, "history write failed: {e}");
                    let text = not_saved_text(&e.to_string());
                    st.disk = Disk::Failing {
                        retry_at: now + self.limits.disk_retry,
                    };
                    Some((NoticeCode::HistoryNotSaved, text))
                }
            },
            Disk::Failing { retry_at, .. } if now < *retry_at => None,
            Disk::Failing { .. } => {
                let data = self.data.as_ref()?;
                let everything = st.history.iter().chain(std::iter::once(record));
                match data.open_room(&self.name, &self.epoch, self.key.as_ref(), everything) {
                    Ok(log) => {
                        tracing::info!(room = self.name, "history is saved again");
                        st.disk = Disk::Saving(log);
                        Some((
                            NoticeCode::HistorySaved,
                            "History is being saved again, including what was said while \
                             it was not."
                                .to_owned(),
                        ))
                    }
                    Err(e) => {
                        tracing::debug!(room = self.name, "history still not saved: {e}");
                        st.disk = Disk::Failing {
                            retry_at: now + self.limits.disk_retry,
                        };
                        None
                    }
                }
            }
        }
    }
}

pub(super) fn not_saved_text(reason: &str) -> String {
    format!(
        "History is not being saved ({reason}). The chat goes on, but if the host stops, \
         what is said from now on is lost. The host keeps trying."
    )
}
