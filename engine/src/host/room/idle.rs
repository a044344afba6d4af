//! A room nobody is in: it lets go of the frames it kept for members, and the registry
//! (`Rooms::unload_idle`) takes it out of memory after a while.

use std::time::Instant;

use super::Room;

impl Room {
    /// Since when nobody is in the room, if nobody is.
    pub fn empty_since(&self) -> Option<Instant> {
        self.lock().empty_since
    }

    /// Frees the frames kept for members once the room has been empty for `after` (every
    /// member's writer has let go of them by then).
    pub fn release_frames_if_empty(&self, now: Instant, after: std::time::Duration) {
        let st = self.lock();
        if st
            .empty_since
            .is_some_and(|since| now.duration_since(since) >= after)
        {
            self.events.clear();
        }
    }
}
