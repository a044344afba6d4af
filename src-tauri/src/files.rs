//! Files in the app, on the Rust side: the page names a file by its path (from the drop or
//! the file picker) and the engine streams it; downloads are written by the engine too.
//! Nothing of a file's content passes through the page except images being shown
//! (thumbnails the host made, and a full-size image on request, bounded).

use std::future::Future;
use std::path::PathBuf;

use lanchat::client::{Incoming, Outgoing, TransferError};
use lanchat::protocol::FileCard;
use tauri::ipc::{Channel, Response};
use tauri::State;

use crate::error::CommandError;
use crate::state::{lock, Shell};

/// At most this many progress reports a second go to the page.
const REPORTS_PER_SECOND: u32 = 10;

/// The largest image shown full size in the window; larger ones are saved instead.
const MAX_SHOWN_IMAGE: u64 = 64 << 20;

/// Calls `report` with the bytes done and the total, at most [`REPORTS_PER_SECOND`] times
/// a second (and always for the last byte).
fn throttled(total: u64, report: Channel<(u64, u64)>) -> impl FnMut(u64) + Send {
    let every = std::time::Duration::from_secs(1) / REPORTS_PER_SECOND;
    let mut last: Option<std::time::Instant> = None;
    move |done| {
        if done < total && last.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        last = Some(std::time::Instant::now());
        let _ = report.send((done, total));
    }
}

/// Runs `work` until it ends or the page cancels transfer `id` (`None` then).
async fn cancellable<T>(
    shell: &Shell,
    id: &str,
    work: impl Future<Output = Result<T, TransferError>>,
) -> Result<Option<T>, CommandError> {
    let (cancel, cancelled) = tokio::sync::oneshot::channel();
    lock(&shell.transfers).insert(id.to_owned(), cancel);
    let result = tokio::select! {
        result = work => result.map(Some).map_err(CommandError::from),
        _ = cancelled => Ok(None),
    };
    lock(&shell.transfers).remove(id);
    result
}

/// Shares the file at `path` with the room, or privately with `to`. Resolves when the host
/// has it whole and checked (the `file` event follows on the room's channel); `false` if
/// the page cancelled it (the host then deletes what it had).
#[tauri::command]
pub async fn share_file(
    shell: State<'_, Shell>,
    room: String,
    path: String,
    to: Option<String>,
    transfer: String,
    on_progress: Channel<(u64, u64)>,
) -> Result<bool, CommandError> {
    let result = share(&shell, &room, &path, to, &transfer, on_progress).await;
    forget_pasted(path.as_ref());
    result
}

async fn share(
    shell: &Shell,
    room: &str,
    path: &str,
    to: Option<String>,
    transfer: &str,
    on_progress: Channel<(u64, u64)>,
) -> Result<bool, CommandError> {
    let client = crate::commands::client(shell, room)?;
    let to = to.filter(|t| !t.is_empty());
    let prepared = cancellable(shell, transfer, Outgoing::prepare(path.as_ref(), to)).await?;
    let Some(file) = prepared else {
        return Ok(false);
    };
    let mut progress = throttled(file.size, on_progress);
    let sent = cancellable(shell, transfer, client.share_file(&file, &mut progress)).await?;
    if sent.is_none() {
        client.cancel_upload(&file.id).await;
    }
    Ok(sent.is_some())
}

/// Where saved files go: `LANCHAT_DOWNLOAD_DIR`, else the Downloads folder.
fn download_dir() -> Result<PathBuf, CommandError> {
    std::env::var_os("LANCHAT_DOWNLOAD_DIR")
        .map(PathBuf::from)
        .or_else(lanchat::client::transfer::downloads_dir)
        .ok_or(CommandError::NoDownloads)
}

/// Downloads a shared file into the Downloads folder; the path it was saved as (`None` if
/// the page cancelled it).
#[tauri::command]
pub async fn save_file(
    shell: State<'_, Shell>,
    room: String,
    id: String,
    card: FileCard,
    transfer: String,
    on_progress: Channel<(u64, u64)>,
) -> Result<Option<String>, CommandError> {
    let client = crate::commands::client(&shell, &room)?;
    let dir = download_dir()?;
    let mut progress = throttled(card.size, on_progress);
    let file = Incoming {
        id: id.clone(),
        card,
    };
    let saved = cancellable(
        &shell,
        &transfer,
        client.download_file(&file, &dir, &mut progress),
    )
    .await?;
    let Some(saved) = saved else {
        lanchat::client::transfer::forget_download(&dir, &id).await;
        return Ok(None);
    };
    let shown = saved.display().to_string();
    lock(&shell.saved).insert(saved);
    Ok(Some(shown))
}

/// Cancels a transfer the page started (nothing if it has ended).
#[tauri::command]
pub fn cancel_transfer(shell: State<'_, Shell>, transfer: String) {
    if let Some(cancel) = lock(&shell.transfers).remove(&transfer) {
        let _ = cancel.send(());
    }
}

/// Shows a file this app saved in the system's file manager (on the user's click).
#[tauri::command]
pub fn show_in_folder(shell: State<'_, Shell>, path: String) -> Result<(), CommandError> {
    let path = PathBuf::from(path);
    if !lock(&shell.saved).contains(&path) {
        return Err(CommandError::NotSaved);
    }
    tauri_plugin_opener::reveal_item_in_dir(&path).map_err(|e| CommandError::Open(e.to_string()))
}

/// An image's thumbnail (PNG bytes, as the host made it).
#[tauri::command]
pub async fn file_thumbnail(
    shell: State<'_, Shell>,
    room: String,
    id: String,
) -> Result<Response, CommandError> {
    let client = crate::commands::client(&shell, &room)?;
    let access = client.file_access().ok_or(CommandError::NotInRoom)?;
    let png = lanchat::client::transfer::thumbnail(&access, &id).await?;
    Ok(Response::new(png))
}

/// An image at full size, for showing it (bounded; larger ones are saved instead).
#[tauri::command]
pub async fn file_image(
    shell: State<'_, Shell>,
    room: String,
    id: String,
) -> Result<Response, CommandError> {
    let client = crate::commands::client(&shell, &room)?;
    let access = client.file_access().ok_or(CommandError::NotInRoom)?;
    let bytes = lanchat::client::transfer::image(&access, &id, MAX_SHOWN_IMAGE).await?;
    Ok(Response::new(bytes))
}

/// The largest pasted file taken (it comes through the page's memory, unlike picked ones).
const MAX_PASTED: usize = 64 << 20;

/// Where pasted files wait while they are shared: a folder only this user can read.
fn pasted_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lanchat-pasted-{}", std::process::id()))
}

/// Takes a file pasted into the page (an image from the clipboard has no path): the raw
/// bytes, named by the `x-name` header. Writes it where `share_file` can read it and
/// returns that path; `share_file` deletes it when done.
#[tauri::command]
pub fn stash_pasted(request: tauri::ipc::Request<'_>) -> Result<String, CommandError> {
    let tauri::ipc::InvokeBody::Raw(bytes) = request.body() else {
        return Err(CommandError::Pasted("expected the file's bytes".into()));
    };
    if bytes.len() > MAX_PASTED {
        return Err(CommandError::Pasted(format!(
            "pasted files are limited to {}; use File or drop it on the window",
            lanchat::protocol::human_size(MAX_PASTED as u64)
        )));
    }
    let name = request
        .headers()
        .get("x-name")
        .and_then(|v| v.to_str().ok())
        .and_then(lanchat::protocol::decode_header_value)
        .unwrap_or_else(|| "pasted image.png".into());
    let dir = pasted_dir().join(lanchat::ids::random_hex(8));
    lanchat::private::ensure_dir(&dir).map_err(|e| CommandError::Pasted(e.to_string()))?;
    let path = dir.join(lanchat::protocol::safe_file_name(&name));
    lanchat::private::write_atomic(&path, bytes)
        .map_err(|e| CommandError::Pasted(e.to_string()))?;
    Ok(path.display().to_string())
}

/// Deletes a pasted file once it has been shared (or not).
fn forget_pasted(path: &std::path::Path) {
    if path.starts_with(pasted_dir()) {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
