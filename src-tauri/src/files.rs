//! Files in the app, on the Rust side: the page names a file by its path (from the drop or
//! the file picker) and the engine streams it; downloads are written by the engine too.
//! Nothing of a file's content passes through the page except thumbnails (small PNGs the
//! host made).

use lanchat::client::{Incoming, Outgoing};
use lanchat::protocol::FileCard;
use tauri::ipc::{Channel, Response};
use tauri::State;

use crate::error::CommandError;
use crate::state::Shell;

/// At most this many progress reports a second go to the page.
const REPORTS_PER_SECOND: u32 = 10;

/// Calls `report` with the bytes done, at most [`REPORTS_PER_SECOND`] times a second (and
/// always for the last byte).
fn throttled(total: u64, report: Channel<u64>) -> impl FnMut(u64) + Send {
    let every = std::time::Duration::from_secs(1) / REPORTS_PER_SECOND;
    let mut last: Option<std::time::Instant> = None;
    move |done| {
        if done < total && last.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        last = Some(std::time::Instant::now());
        let _ = report.send(done);
    }
}

/// Shares the file at `path` with the room, or privately with `to`. Resolves when the host
/// has it whole and checked (the `file` event follows on the room's channel).
#[tauri::command]
pub async fn share_file(
    shell: State<'_, Shell>,
    path: String,
    to: Option<String>,
    on_progress: Channel<u64>,
) -> Result<(), CommandError> {
    let client = shell.client().ok_or(CommandError::NotInRoom)?;
    let file = Outgoing::prepare(std::path::Path::new(&path), to.filter(|t| !t.is_empty())).await?;
    let mut progress = throttled(file.size, on_progress);
    client.share_file(&file, &mut progress).await?;
    Ok(())
}

/// Downloads a shared file into the Downloads folder; the path it was saved as.
#[tauri::command]
pub async fn save_file(
    shell: State<'_, Shell>,
    id: String,
    card: FileCard,
    on_progress: Channel<u64>,
) -> Result<String, CommandError> {
    let client = shell.client().ok_or(CommandError::NotInRoom)?;
    let dir = std::env::var_os("LANCHAT_DOWNLOAD_DIR")
        .map(std::path::PathBuf::from)
        .or_else(lanchat::client::transfer::downloads_dir)
        .ok_or(CommandError::NotInRoom)?;
    let mut progress = throttled(card.size, on_progress);
    let saved = client
        .download_file(&Incoming { id, card }, &dir, &mut progress)
        .await?;
    Ok(saved.display().to_string())
}

/// An image's thumbnail (PNG bytes, as the host made it).
#[tauri::command]
pub async fn file_thumbnail(shell: State<'_, Shell>, id: String) -> Result<Response, CommandError> {
    let client = shell.client().ok_or(CommandError::NotInRoom)?;
    let access = client.file_access().ok_or(CommandError::NotInRoom)?;
    let png = lanchat::client::transfer::thumbnail(&access, &id).await?;
    Ok(Response::new(png))
}
