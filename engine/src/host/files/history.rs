//! `GET /history` and `GET /search`: a member's pages of the room's past and full-text
//! search, with the same ticket as files (PROTOCOL.md, "History and search").
//!
//! - `/history?before=SEQ&limit=N` (or `after=SEQ`): up to N events (default 50, at most
//!   200) just before (after) SEQ, in order: `{"events":[...],"more":true}`, `more` when
//!   there are others further that way.
//! - `/search?q=WORDS&from=NICK&before=SEQ&limit=N`: the newest events containing every
//!   word (or a word starting with it), newest first: `{"hits":[...],"more":false}`.
//!
//! Private events only ever reach their two people. The newest events come from the room's
//! memory, older ones from the archive; a page merges both, so it never has a gap where the
//! archivist has not caught up yet.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::http::{response, Request};
use super::{FileError, Grant};
use crate::host::room::MemberInfo;
use crate::host::store::{match_expression, Rows, Search, Toward, MAX_PAGE};
use crate::protocol;

/// Events a page has when the request does not say.
const DEFAULT_PAGE: usize = 50;

/// The value of `name` in the request's query string, decoded.
fn param<'a>(request: &'a Request, name: &str) -> Option<Cow<'a, str>> {
    request.query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if k != name {
            return None;
        }
        let v = v.replace('+', " ");
        Some(Cow::Owned(
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned(),
        ))
    })
}

fn number(request: &Request, name: &str) -> Result<Option<u64>, FileError> {
    param(request, name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| FileError::BadRequest(format!("{name} must be a number")))
        })
        .transpose()
}

fn limit(request: &Request) -> Result<usize, FileError> {
    Ok(number(request, "limit")?
        .map_or(DEFAULT_PAGE, |n| n as usize)
        .clamp(1, MAX_PAGE))
}

/// A page of history next to `before` or `after`.
pub(super) async fn page(
    request: &Request,
    grant: &Grant,
    me: &MemberInfo,
) -> Result<Vec<u8>, FileError> {
    let toward = match (number(request, "before")?, number(request, "after")?) {
        (Some(before), None) => Toward::Before(before),
        (None, Some(after)) => Toward::After(after),
        _ => {
            return Err(FileError::BadRequest(
                "say before=SEQ or after=SEQ (one of them)".into(),
            ))
        }
    };
    let limit = limit(request)?;
    let recent = grant.room.recent_page(me.tag, toward, limit + 1);
    let (archived, archive_more) = match grant.room.archive() {
        Some((archive, id)) => archive.page(&id, me.tag, toward, limit).await?,
        None => (Vec::new(), false),
    };
    let mut merged: BTreeMap<u64, String> = archived.into_iter().collect();
    merged.extend(recent);
    let total = merged.len();
    let rows: Rows = match toward {
        Toward::Before(_) => merged.into_iter().rev().take(limit).rev().collect(),
        Toward::After(_) => merged.into_iter().take(limit).collect(),
    };
    let more = archive_more || total > limit;
    Ok(json_answer("events", &rows, more))
}

/// The newest events matching the words in `q`.
pub(super) async fn search(
    request: &Request,
    grant: &Grant,
    me: &MemberInfo,
) -> Result<Vec<u8>, FileError> {
    let query = param(request, "q").unwrap_or_default();
    let expression = match_expression(&query)
        .ok_or_else(|| FileError::BadRequest("say what to search for: q=WORDS".into()))?;
    let (archive, id) = grant.room.archive().ok_or(FileError::NoArchive)?;
    let search = Search {
        expression,
        from: param(request, "from")
            .filter(|f| !f.trim().is_empty())
            .map(|f| protocol::name_key(f.trim())),
        before: number(request, "before")?,
        limit: limit(request)?,
    };
    let (hits, more) = archive.search(&id, me.tag, search).await?;
    Ok(json_answer("hits", &hits, more))
}

/// `{"<key>":[events...],"more":bool}`, with the events' stored JSON as is.
fn json_answer(key: &str, rows: &Rows, more: bool) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        #[serde(flatten)]
        list: BTreeMap<&'a str, Vec<&'a RawValue>>,
        more: bool,
    }
    let events: Vec<&RawValue> = rows
        .iter()
        .filter_map(|(_, json)| serde_json::from_str(json).ok())
        .collect();
    let answer = Answer {
        list: BTreeMap::from([(key, events)]),
        more,
    };
    let body = serde_json::to_vec(&answer).expect("answers serialize");
    let mut out = response(
        200,
        "OK",
        &[
            ("Content-Type", "application/json".to_owned()),
            ("Content-Length", body.len().to_string()),
            ("Cache-Control", "no-store".to_owned()),
        ],
    );
    out.extend_from_slice(&body);
    out
}
