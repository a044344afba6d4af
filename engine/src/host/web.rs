//! The page a host serves to browsers on its own port, so someone without the app can open
//! the host's link and join: the same `ui/` the desktop app shows, talking WebSocket.
//!
//! Deliberately tiny: a fixed table of files compiled into the binary (nothing is read from
//! disk, so no path can escape it), GET and HEAD only, one request per connection, every
//! response with a strict Content-Security-Policy.
//!
//! Only over https: plain http gets a page saying where the https one is. Every request must
//! name the host by an IP address, `localhost` or a `.local` name (a page on some other
//! domain that rebinds its name to this host's address is refused), and a WebSocket upgrade
//! that comes from a page must come from this host's own page (`Origin`).

use std::time::Duration;

use super::socket::Link;
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
    ui_file!("/cpace.js", "cpace.js", "text/javascript; charset=utf-8"),
    ui_file!("/sha256.js", "sha256.js", "text/javascript; charset=utf-8"),
    ui_file!(
        "/conversation.js",
        "conversation.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!("/format.js", "format.js", "text/javascript; charset=utf-8"),
    ui_file!("/status.js", "status.js", "text/javascript; charset=utf-8"),
    ui_file!("/dom.js", "dom.js", "text/javascript; charset=utf-8"),
    ui_file!(
        "/sharing.js",
        "sharing.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/attention.js",
        "attention.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/files-view.js",
        "files-view.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/search-view.js",
        "search-view.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/reach-view.js",
        "reach-view.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/desktop-view.js",
        "desktop-view.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/identity.js",
        "identity.js",
        "text/javascript; charset=utf-8"
    ),
    ui_file!(
        "/vendor/noble-ristretto255.js",
        "vendor/noble-ristretto255.js",
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
    /// A shared file's endpoint (`/files/...`), or a page of history or a search
    /// (`/history`, `/search`): the endpoints members reach with their ticket.
    Files(Vec<u8>),
    Page(Vec<u8>),
    /// The head did not end within [`MAX_HEAD`] bytes.
    TooLarge,
    /// Refused before anything is served: the full response (a foreign `Host` or `Origin`).
    Refused(Vec<u8>),
}

/// Reads the request head, waiting for the socket to be readable between reads (no
/// polling), within `patience`. `None` when the peer closes or sends nothing usable in time.
pub(crate) async fn route(link: &Link, patience: Duration) -> Option<Route> {
    let read = async {
        let mut head = Vec::with_capacity(1024);
        loop {
            let at = head.len();
            head.resize(at + 1024, 0);
            let read = std::future::poll_fn(|cx| {
                let mut buf = tokio::io::ReadBuf::new(&mut head[at..]);
                link.poll_read(cx, &mut buf).map_ok(|()| buf.filled().len())
            })
            .await;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => head.truncate(at + n),
            }
            let searched = &head[..head.len().min(MAX_HEAD)];
            if let Some(end) = searched.windows(4).position(|w| w == b"\r\n\r\n") {
                let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(end);
                let line = std::str::from_utf8(&head[..line_end]).ok()?;
                let target = line.split(' ').nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                if let Err(response) = check_origin(&head) {
                    return Some(Route::Refused(response));
                }
                return Some(if path == protocol::WS_PATH {
                    Route::WebSocket(head)
                } else if path.starts_with("/files/") || path == "/history" || path == "/search" {
                    Route::Files(head)
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

/// Answers one HTTP request whose head was read already, from `assets` (over TLS) or with
/// the way to the https page (plain http), then closes.
pub(crate) async fn serve(link: &Link, head: Option<&[u8]>, assets: &[Asset], patience: Duration) {
    let response = match head {
        Some(head) if link.is_tls() => respond(head, assets),
        Some(head) => to_https(head),
        None => status(431, "Request Header Fields Too Large"),
    };
    send(link, &response, patience).await;
}

/// Sends a whole response and closes, within `patience`.
pub(crate) async fn send(link: &Link, response: &[u8], patience: Duration) {
    let _ = tokio::time::timeout(patience, link.write_all_and_close(response)).await;
}

/// The request's `Host` and `Origin` headers, if present; `Err` if one is not text.
fn host_and_origin(head: &[u8]) -> Result<(Option<String>, Option<String>), ()> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        // Malformed heads are answered 400 by `respond` or refused by the handshake.
        _ => return Ok((None, None)),
    }
    let find = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8(h.value.to_vec()).map_err(|_| ()))
            .transpose()
    };
    Ok((find("host")?, find("origin")?))
}

/// Whether a `Host` header names this host the way LAN peers do: an IP address,
/// `localhost`, or a `.local` (mDNS) name, with an optional port. Any other name means a
/// page somewhere pointed its own domain at this address (DNS rebinding).
pub(crate) fn allowed_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once(']') else {
            return false;
        };
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(is_port)) {
            return false;
        }
        return ip.parse::<std::net::Ipv6Addr>().is_ok();
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if name.parse::<std::net::Ipv4Addr>().is_ok() || name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    lower.len() > ".local".len()
        && lower.ends_with(".local")
        && lower
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses requests for another name than this host's, and WebSocket upgrades (or any
/// request) from a page of another origin. Native clients send no `Origin`.
fn check_origin(head: &[u8]) -> Result<(), Vec<u8>> {
    let Ok((host, origin)) = host_and_origin(head) else {
        return Err(status(400, "Bad Request"));
    };
    let Some(host) = host else {
        // HTTP/1.1 requires it; the WebSocket handshake refuses its absence itself.
        return Ok(());
    };
    if !allowed_host(&host) {
        return Err(status(421, "Misdirected Request"));
    }
    match origin {
        None => Ok(()),
        Some(origin) if origin.eq_ignore_ascii_case(&format!("https://{host}")) => Ok(()),
        Some(_) => Err(status(403, "Forbidden")),
    }
}

/// Plain http: a page that says where the https page is (the same address, over https).
fn to_https(head: &[u8]) -> Vec<u8> {
    let host = host_and_origin(head)
        .ok()
        .and_then(|(host, _)| host)
        .filter(|h| allowed_host(h));
    let Some(host) = host else {
        return status(421, "Misdirected Request");
    };
    let url = format!("https://{host}/");
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>LAN Chat</title>\n\
         <p>This LAN Chat room is encrypted. Open <a href=\"{url}\">{url}</a>.</p>\n\
         <p>Your browser will warn that it does not know the certificate: LAN Chat hosts \
         make their own. Compare the code it shows with the one on the host's screen.</p>\n"
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: {CSP}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
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

    #[test]
    fn every_module_of_the_page_is_served() {
        // A module missing here breaks the page in browsers only (the app reads ui/ itself).
        let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(&ui).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let served = UI.iter().any(|a| a.path.trim_start_matches('/') == name);
            let page = name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".html");
            if page && !served {
                missing.push(name);
            }
        }
        assert!(missing.is_empty(), "not served to browsers: {missing:?}");
    }

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
