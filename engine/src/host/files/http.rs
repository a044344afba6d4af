//! The file endpoints, over TLS on the host's port, one request per connection
//! (PROTOCOL.md, "Files"):
//!
//! - `PUT /files/ID?t=TICKET` uploads bytes at `Upload-Offset` (the first request also
//!   declares the file: `Upload-Length`, `Upload-Name`, `Upload-Sha256`, and `Upload-To` for
//!   a private file). Streamed to disk as it arrives; the request that completes the file
//!   has it checked and announced.
//! - `HEAD /files/ID?t=TICKET` says how far an upload got (`Upload-Offset`).
//! - `GET /files/ID?t=TICKET` downloads, with `Range: bytes=N-` to resume;
//!   `GET /files/ID/thumb?t=TICKET` is an image's thumbnail, `GET /files/ID/image` the
//!   image itself, shown inline (only for files the host decoded as a raster image).
//! - `DELETE /files/ID?t=TICKET`: the uploader gives up an upload in progress.
//!
//! - `GET /history?before=SEQ` (or `after=SEQ`) and `GET /search?q=WORDS`: pages of the
//!   room's past and full-text search (`history.rs`).
//!
//! The ticket may also come as `Authorization: Bearer TICKET`. Downloads are always
//! `application/octet-stream` attachments in a sandbox: a page never renders a shared file.

use std::sync::Arc;

use super::download::{download, progress};
use super::history;
use super::upload::upload;
use super::{FileError, Grant};
use crate::host::admission::Shared;
use crate::host::socket::Link;
use crate::protocol;

/// Bytes moved between socket and disk at a time.
pub(super) const CHUNK: usize = 256 * 1024;

/// A parsed request head.
/// Which representation of a file a request is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The file, as an attachment.
    File,
    /// The thumbnail (PNG the host made).
    Thumb,
    /// An image, inline, with its decoded type.
    Image,
    /// `/history`: a page of the room's past.
    History,
    /// `/search`: events matching words.
    Search,
}

pub(super) struct Request {
    pub(super) method: String,
    pub(super) id: String,
    pub(super) part: Part,
    /// The query string, still percent-encoded.
    pub(super) query: String,
    ticket: Option<String>,
    headers: Vec<(String, String)>,
    /// Body bytes that arrived with the head.
    pub(super) body_start: Vec<u8>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number(&self, name: &str) -> Result<Option<u64>, FileError> {
        self.header(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| FileError::BadRequest(format!("{name} must be a number")))
            })
            .transpose()
    }
}

/// Answers one request for `/files/...` whose head (and perhaps the start of its body) is in
/// `head`, then closes.
/// A host that stops ends its transfers with it (the client resumes with the next host).
pub(crate) async fn serve(
    link: &Link,
    head: Vec<u8>,
    shared: &Arc<Shared>,
    stop: &tokio_util::sync::CancellationToken,
) {
    link.set_bulk();
    let response = match parse(head) {
        Err(e) => error(&e),
        Ok(request) => {
            let handled = tokio::select! {
                handled = handle(link, &request, shared) => handled,
                () = stop.cancelled() => return,
            };
            match handled {
                Ok(Some(response)) => response,
                // Streamed already, or the connection failed mid-way.
                Ok(None) => return,
                Err(e) => error(&e),
            }
        }
    };
    let patience = shared.limits.transfer_idle;
    let _ = tokio::time::timeout(patience, link.write_all_and_close(&response)).await;
}

fn parse(head: Vec<u8>) -> Result<Request, FileError> {
    let bad = |what: &str| FileError::BadRequest(what.to_owned());
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(end)) = parsed.parse(&head) else {
        return Err(bad("malformed request"));
    };
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (id, part) = match path {
        "/history" => ("", Part::History),
        "/search" => ("", Part::Search),
        _ => {
            let rest = path.strip_prefix("/files/").ok_or(FileError::NotFound)?;
            let (id, part) = match rest.split_once('/') {
                None => (rest, Part::File),
                Some((id, "thumb")) => (id, Part::Thumb),
                Some((id, "image")) => (id, Part::Image),
                Some(_) => return Err(FileError::NotFound),
            };
            if !protocol::is_file_id(id) {
                return Err(FileError::NotFound);
            }
            (id, part)
        }
    };
    let mut ticket = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("t="))
        .map(str::to_owned);
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .filter_map(|h| {
            Some((
                h.name.to_owned(),
                std::str::from_utf8(h.value).ok()?.to_owned(),
            ))
        })
        .collect();
    if ticket.is_none() {
        ticket = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
    }
    Ok(Request {
        method: parsed.method.unwrap_or("").to_owned(),
        id: id.to_owned(),
        part,
        query: query.to_owned(),
        ticket,
        headers,
        body_start: head[end..].to_vec(),
    })
}

async fn handle(
    link: &Link,
    request: &Request,
    shared: &Arc<Shared>,
) -> Result<Option<Vec<u8>>, FileError> {
    let ticket = request.ticket.as_deref().ok_or(FileError::BadTicket)?;
    let (grant, me) = shared.grants.check(ticket).ok_or(FileError::BadTicket)?;
    match (request.method.as_str(), request.part) {
        ("GET", Part::History) => history::page(request, &grant, &me).await.map(Some),
        ("GET", Part::Search) => history::search(request, &grant, &me).await.map(Some),
        (_, Part::History | Part::Search) => Err(FileError::BadRequest(
            "use GET for history and search".into(),
        )),
        ("PUT", Part::File) => upload(link, request, shared, &grant, &me).await,
        ("HEAD", Part::File) => progress(request, shared, &grant, &me),
        ("DELETE", Part::File) => {
            shared
                .files
                .give_up(&request.id, &room_key(&grant), me.tag)?;
            Ok(Some(response(204, "No Content", &[])))
        }
        ("GET" | "HEAD", _) => download(link, request, shared, &grant, &me).await,
        _ => Err(FileError::BadRequest(
            "use PUT to upload, GET to download, HEAD to ask how far an upload got, DELETE \
             to give it up"
                .into(),
        )),
    }
}

pub(super) fn room_key(grant: &Grant) -> String {
    protocol::name_key(grant.room.name())
}

/// A response head; the body (if any) follows.
pub(super) fn response(status: u16, reason: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; sandbox\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn error(e: &FileError) -> Vec<u8> {
    let (status, reason) = e.status();
    let body = format!("{e}\n");
    let mut headers = vec![
        ("Content-Type", "text/plain; charset=utf-8".to_owned()),
        ("Content-Length", body.len().to_string()),
    ];
    if let FileError::WrongOffset { current, .. } = e {
        headers.push(("Upload-Offset", current.to_string()));
    }
    let mut out = response(status, reason, &headers);
    out.extend_from_slice(body.as_bytes());
    out
}
