//! The room's past in `lanchat join`: `/history [N]` shows the N events (20 by default)
//! before the oldest one shown so far, again and again further back; `/search [from:NICK]
//! WORDS` the newest events with those words (or words starting with them).

use lanchat::client::transfer::past::Toward;
use lanchat::client::Client;

use crate::output::Output;

/// Events one `/history` shows when not told.
const PAGE: usize = 20;
/// Results one `/search` shows.
const HITS: usize = 10;

pub async fn history(
    client: &Client,
    rest: &str,
    out: &mut Output,
    transfers: &mut crate::files::Transfers,
) -> Result<(), String> {
    let count = match rest {
        "" => PAGE,
        n => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or("usage: /history [N], N from 1 to 200")?,
    };
    let Some(oldest) = out.oldest else {
        return Err("not in the room yet".into());
    };
    let page = client
        .history(Toward::Before(oldest), count)
        .await
        .map_err(|e| format!("/history: {e}"))?;
    let heading = match (page.events.first(), page.more) {
        (None, _) => "nothing older: this is where the room began".to_owned(),
        (Some(_), true) => format!("{} earlier events (/history for more):", page.events.len()),
        (Some(_), false) => format!(
            "{} earlier events, from the room's start:",
            page.events.len()
        ),
    };
    if let Some(first) = page.events.first() {
        out.oldest = Some(first.seq);
    }
    out.past("history", heading, &page, transfers).await;
    Ok(())
}

pub async fn search(
    client: &Client,
    rest: &str,
    out: &mut Output,
    transfers: &mut crate::files::Transfers,
) -> Result<(), String> {
    let mut from = None;
    let mut words = Vec::new();
    for word in rest.split_whitespace() {
        match word.strip_prefix("from:") {
            Some(nick) if !nick.is_empty() => from = Some(nick),
            _ => words.push(word),
        }
    }
    if words.is_empty() {
        return Err("usage: /search [from:NICK] WORDS".into());
    }
    let query = words.join(" ");
    let mut found = client
        .search(&query, from, None, HITS)
        .await
        .map_err(|e| format!("/search: {e}"))?;
    let heading = match found.events.len() {
        0 => format!("nothing found for \"{query}\""),
        n if found.more => format!("the newest {n} results for \"{query}\" (there are more):"),
        1 => format!("1 result for \"{query}\":"),
        n => format!("{n} results for \"{query}\":"),
    };
    // Newest first from the host; shown oldest first like the rest of the conversation.
    found.events.reverse();
    out.past("found", heading, &found, transfers).await;
    Ok(())
}
