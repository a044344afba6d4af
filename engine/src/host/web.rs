//! The page a host serves to browsers on its own port, so someone without the app can open
//! the host's link and join: the same `ui/` the desktop app shows, talking WebSocket.
//!
//! Deliberately tiny: a fixed table of files compiled into the binary (nothing is read from
//! disk, so no path can escape it), GET and HEAD only, one request per connection, every
//! response with a strict Content-Security-Policy.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::protocol;

/// One file of the page.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! ui_file {
    ($path:literal, $file:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/", $file)),
        }
    };
}

/// The desktop app's UI, as served to browsers.
pub static UI: &[Asset] = &[
    ui_file!("/", "index.html", "text/html; charset=utf-8"),
    ui_file!("/index.html", "index.html", "text/html; charset=utf-8"),
    ui_file!("/style.css", "style.css", "text/css; charset=utf-8"),
    ui_file!("/app.js", "app.js", "text/javascript; charset=utf-8"),
    ui_file!(
        "/transport.js",
        "transport.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!("/view.js", "view.js", "text/javascript; charset=utf-8"),
    ui_file!(
        "/session.js",
        "session.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!("/icon.png", "icon.png", "image/png"),
];

/// Only same-origin scripts, styles, images and the WebSocket; no inline code, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Longest request head accepted, terminator included: a head of exactly this many bytes
/// is read, one byte more gets 431.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// What a request asks for, with everything read so far (the head, and whatever the client
/// sent after it, which the WebSocket handshake reads first).
pub(crate) enum Route {
    WebSocket(Vec<u8>),
    Page(Vec<u8>),
    /// The head did not end within [`MAX_HEAD`] bytes.
    TooLarge,
}

/// Reads the request head, waiting for the socket to be readable between reads (no
/// polling), within `patience`. `None` when the peer closes or sends nothing usable in time.
pub(crate) async fn route(stream: &TcpStream, patience: Duration) -> Option<Route> {
    let read = async {
        let mut head = Vec::with_capacity(1024);
        loop {
            stream.readable().await.ok()?;
            let at = head.len();
            head.resize(at + 1024, 0);
            match stream.try_read(&mut head[at..]) {
                Ok(0) => return None,
                Ok(n) => head.truncate(at + n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    head.truncate(at);
                    continue;
                }
                Err(_) => return None,
            }
            let searched = &head[..head.len().min(MAX_HEAD)];
            if let Some(end) = searched.windows(4).position(|w| w == b"\r\n\r\n") {
                let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(end);
                let line = std::str::from_utf8(&head[..line_end]).ok()?;
                let target = line.split(' ').nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                return Some(if path == protocol::WS_PATH {
                    Route::WebSocket(head)
                } else {
                    Route::Page(head)
                });
            }
            if head.len() >= MAX_HEAD {
                return Some(Route::TooLarge);
            }
        }
    };
    tokio::time::timeout(patience, read).await.ok().flatten()
}

/// Answers one HTTP request whose head was read already, from `assets`, then closes.
pub(crate) async fn serve(
    mut stream: TcpStream,
    head: Option<&[u8]>,
    assets: &[Asset],
    patience: Duration,
) {
    let response = match head {
        Some(head) => respond(head, assets),
        None => status(431, "Request Header Fields Too Large"),
    };
    let _ = tokio::time::timeout(patience, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
}

/// The full response to a request head.
fn respond(head: &[u8], assets: &[Asset]) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = request.parse(head) else {
        return status(400, "Bad Request");
    };
    let method = request.method.unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return status(405, "Method Not Allowed");
    }
    let path = request.path.unwrap_or("/").split('?').next().unwrap_or("/");
    let Some(asset) = assets.iter().find(|a| a.path == path) else {
        return status(404, "Not Found");
    };
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nContent-Security-Policy: {CSP}\r\n\
         Connection: close\r\n\r\n",
        asset.content_type,
        asset.body.len()
    )
    .into_bytes();
    if method == "GET" {
        response.extend_from_slice(asset.body);
    }
    response
}

fn status(code: u16, reason: &str) -> Vec<u8> {
    let body = format!("{code} {reason}\n");
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nContent-Security-Policy: {CSP}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(response: Vec<u8>) -> String {
        String::from_utf8_lossy(&response).into_owned()
    }

    #[test]
    fn serves_only_the_embedded_files_with_a_strict_policy() {
        let ok = text(respond(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", UI));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/html"));
        assert!(ok.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"));
        assert!(ok.contains("<!doctype html>") || ok.contains("<!DOCTYPE html>"));
        let js = text(respond(b"GET /app.js?v=1 HTTP/1.1\r\n\r\n", UI));
        assert!(js.contains("Content-Type: text/javascript"));
        let head = text(respond(b"HEAD /style.css HTTP/1.1\r\n\r\n", UI));
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body");
        for bad in [
            &b"GET /../Cargo.toml HTTP/1.1\r\n\r\n"[..],
            b"GET /etc/passwd HTTP/1.1\r\n\r\n",
            b"GET /%2e%2e/Cargo.toml HTTP/1.1\r\n\r\n",
        ] {
            assert!(text(respond(bad, UI)).starts_with("HTTP/1.1 404"));
        }
        assert!(text(respond(b"POST / HTTP/1.1\r\n\r\n", UI)).starts_with("HTTP/1.1 405"));
        assert!(text(respond(b"\x00\x01garbage\r\n\r\n", UI)).starts_with("HTTP/1.1 400"));
    }
}
