//! The room's past for the page: pages of history and search results from the host (the
//! engine's client asks over https), and links opened in the system browser.

use lanchat::client::transfer::past::{Page, Toward};
use tauri::State;

use crate::error::CommandError;
use crate::state::Shell;

/// Up to `limit` events just before `before` or just after `after` (one of them).
#[tauri::command]
pub async fn history_page(
    shell: State<'_, Shell>,
    room: String,
    before: Option<u64>,
    after: Option<u64>,
    limit: usize,
) -> Result<Page, CommandError> {
    let client = crate::commands::client(&shell, &room)?;
    let toward = match (before, after) {
        (Some(seq), _) => Toward::Before(seq),
        (None, Some(seq)) => Toward::After(seq),
        (None, None) => Toward::Before(u64::MAX >> 1),
    };
    Ok(client.history(toward, limit).await?)
}

/// The newest events matching `query` (by `from`, before `before`), newest first.
#[tauri::command]
pub async fn search_history(
    shell: State<'_, Shell>,
    room: String,
    query: String,
    from: Option<String>,
    before: Option<u64>,
    limit: usize,
) -> Result<Page, CommandError> {
    let client = crate::commands::client(&shell, &room)?;
    Ok(client
        .search(&query, from.as_deref(), before, limit)
        .await?)
}

/// Opens a link from a message in the system browser: http and https only, never a file or
/// another scheme a message could smuggle in.
#[tauri::command]
pub fn open_link(url: String) -> Result<(), CommandError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(CommandError::Link("only http and https links open".into()));
    }
    tauri_plugin_opener::open_url(url, None::<&str>).map_err(|e| CommandError::Link(e.to_string()))
}
