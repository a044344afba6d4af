//! Pages of the room's past and search results, from the host's `/history` and `/search`
//! (PROTOCOL.md, "History and search"), over the same verified https as files.

use serde::{Deserialize, Serialize};

use super::http::get_small;
use super::{FileAccess, TransferError};
use crate::protocol::ChatEvent;

/// Most bytes of one answer (200 events of the longest texts fit).
const MAX_ANSWER: u64 = 16 << 20;

/// Events in sequence order (a page) or newest first (search results), and whether there
/// are more beyond them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    #[serde(alias = "hits")]
    pub events: Vec<ChatEvent>,
    pub more: bool,
}

/// Which part of the past a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// Just before this sequence number (scrolling up).
    Before(u64),
    /// Just after it (coming back down, or the conversation after a search result).
    After(u64),
}

/// Up to `limit` events next to the anchor, in order.
pub async fn history(
    access: &FileAccess,
    toward: Toward,
    limit: usize,
) -> Result<Page, TransferError> {
    let anchor = match toward {
        Toward::Before(seq) => format!("before={seq}"),
        Toward::After(seq) => format!("after={seq}"),
    };
    fetch(access, &format!("/history?{anchor}&limit={limit}")).await
}

/// The newest events with every word of `query` (or words starting with them), by `from`
/// if given, before `before` if given (the next page of results), newest first.
pub async fn search(
    access: &FileAccess,
    query: &str,
    from: Option<&str>,
    before: Option<u64>,
    limit: usize,
) -> Result<Page, TransferError> {
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut path = format!("/search?q={}&limit={limit}", encode(query));
    if let Some(from) = from {
        path.push_str(&format!("&from={}", encode(from)));
    }
    if let Some(before) = before {
        path.push_str(&format!("&before={before}"));
    }
    fetch(access, &path).await
}

async fn fetch(access: &FileAccess, path: &str) -> Result<Page, TransferError> {
    let body = get_small(access, path, MAX_ANSWER).await?;
    serde_json::from_slice(&body).map_err(|e| TransferError::Refused {
        status: 502,
        message: format!("the host's answer is not a page of history: {e}"),
    })
}
