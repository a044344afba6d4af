//! The desktop app end to end: two real app instances in real windows (Xvfb), driven through
//! WebDriver (tauri-driver + WebKitWebDriver), find each other over mDNS, host, join, chat,
//! type and leave; then a real browser (chromium, playwright-core) opens the host's link and
//! chats with the app user. Everything runs in a sandbox with only loopback, so mDNS never
//! touches the machine's network.
//!
//! Needs Xvfb, tauri-driver, WebKitWebDriver, node and chromium (scripts/setup installs them).
//! Screenshots of the home, chat and hosting screens are written to docs/.

#[path = "common/sandbox.rs"]
mod sandbox;

mod desktop;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use desktop::*;
use serde_json::json;

#[test]
fn two_apps_find_each_other_host_join_chat_and_a_browser_joins_too() {
    const NAME: &str = "two_apps_find_each_other_host_join_chat_and_a_browser_joins_too";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let (mut alice, usable_a) = Driver::launch(4444, &display, dir_a.path());
    let (mut bob, usable_b) = Driver::launch(4446, &display, dir_b.path());
    println!("measured: launch to usable window: {usable_a:?} and {usable_b:?}");

    // First run: each asks for a nickname, checks it, and greets by name.
    for (app, nick) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        app.wait_until(
            "the nickname form",
            "return !document.getElementById('screen-welcome').hidden",
        );
        app.type_keys("#nick-input", "   \u{E007}");
        app.wait_text("#nick-error", "empty");
        app.type_keys("#nick-input", &format!("{nick}\u{E007}"));
        app.wait_text("#greeting", &format!("Hello, {nick}!"));
    }
    assert!(std::fs::read_to_string(dir_a.path().join("config.json"))
        .unwrap()
        .contains("\"alice\""));

    // Alice hosts; the app shows where others can join.
    alice.type_keys("#host-room", "Tokyo\u{E007}");
    alice.wait_text("#messages", "Welcome to Tokyo, alice!");
    let web = alice.browser_link();
    // The hosting screen shows this computer's code and a QR code of its link.
    alice.wait_until(
        "the host's code and QR code",
        "return /^\\d{5} \\d{5} \\d{5} \\d{5}$/.test(document.getElementById('hosting-code').textContent) \
         && document.getElementById('hosting-qr').width > 100",
    );
    let code = alice.text("#hosting-code");
    alice.screenshot(&docs_dir().join("hosting.png"));

    // Bob sees the room appear in his list and joins with one click.
    bob.wait_text("#room-list", "Tokyo");
    bob.wait_text("#room-list", "on alice");
    // The user count in the list follows (alice's own client has joined by now).
    bob.wait_text("#room-list", "1 person");
    // The list shows the host's code, so two rooms of one name from two computers differ.
    bob.wait_text("#room-list", &format!("key {code}"));
    bob.screenshot(&docs_dir().join("home.png"));
    bob.click("#room-list button");
    // In the room, the same code as on alice's screen: compared by voice, they match.
    bob.wait_text("#room-key", &format!("Encrypted · host code {code}"));
    bob.wait_text("#messages", "Welcome to Tokyo, bob!");
    alice.wait_text("#messages", "bob joined");
    alice.wait_text("#user-count", "2");

    // Typing shows on the other side, then the message arrives and is ticked.
    bob.type_keys("#message-input", "hello alice");
    alice.wait_text("#typing", "bob is typing");
    bob.type_keys("#message-input", "\u{E007}");
    alice.wait_text("#messages", "hello alice");
    bob.wait_until("the delivery tick", "const t = document.querySelector('.message.own .tick'); return t !== null && t.textContent === '✓'");
    alice.wait_until(
        "typing to end",
        "return document.getElementById('typing').textContent === ''",
    );
    assert_eq!(
        bob.js(
            "return document.getElementById('message-input').value",
            vec![]
        ),
        json!("")
    );

    // A multi-line message: Shift+Enter is a new line, Enter sends; the lines arrive as typed.
    bob.type_keys("#message-input", "first line");
    bob.shift_enter();
    bob.type_keys("#message-input", "second line\u{E007}");
    alice.wait_until(
        "a two-line message",
        "return [...document.querySelectorAll('#messages .message .text')] \
         .some(e => e.textContent === 'first line\\nsecond line')",
    );
    // Too long is refused with the count, never cut: the text stays in the box.
    bob.js(
        "const box = document.getElementById('message-input'); \
         box.value = 'x'.repeat(5000); box.dispatchEvent(new Event('input'));",
        vec![],
    );
    bob.type_keys("#message-input", "\u{E007}");
    bob.wait_text("#message-error", "5,000 characters");
    assert_eq!(
        bob.js(
            "return document.getElementById('message-input').value.length",
            vec![]
        ),
        json!(5000)
    );
    bob.js(
        "const box = document.getElementById('message-input'); box.value = ''; \
         box.dispatchEvent(new Event('input'));",
        vec![],
    );

    // Peer text is never HTML.
    alice.type_keys(
        "#message-input",
        "<img src=x onerror=\"document.title='pwned'\">\u{E007}",
    );
    bob.wait_text("#messages", "<img src=x");
    assert_eq!(
        bob.js(
            "return document.querySelectorAll('#messages img').length",
            vec![]
        ),
        json!(0)
    );
    assert_ne!(bob.js("return document.title", vec![]), json!("pwned"));

    // A private message, picked from the online list.
    bob.click("#user-list button[aria-label='Send a private message to alice']");
    bob.type_keys("#message-input", "just for you\u{E007}");
    alice.wait_text("#messages", "just for you");
    alice.wait_until("the private badge", "return [...document.querySelectorAll('.message.private')].some(m => m.textContent.includes('just for you'))");
    bob.click("#private-cancel");
    bob.screenshot(&docs_dir().join("chat.png"));

    // A narrow window: nothing overflows sideways, and the online list opens on demand.
    bob.set_size(380, 720);
    bob.wait_until("a narrow layout", "return window.innerWidth <= 400");
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth";
    bob.wait_until("the chat to fit", fits);
    bob.click("#users-toggle");
    bob.wait_until(
        "the online list",
        "return document.getElementById('users-panel').classList.contains('open')",
    );
    bob.wait_until(
        "the list to slide in",
        "return getComputedStyle(document.getElementById('users-panel')).transform === 'none'",
    );
    std::thread::sleep(Duration::from_millis(300));
    bob.screenshot(&docs_dir().join("narrow.png"));
    bob.click("#users-toggle");
    bob.set_size(1000, 720);

    // Someone without the app opens the host's link in a browser and chats with alice.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/join.mjs");
    let mut browser = Command::new("node")
        .arg(&script)
        .args([web.as_str(), "Tokyo", "carol", "hi carol"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node must be installed");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().map(|l| l.unwrap()).as_deref(), Some("joined"));
    alice.wait_text("#messages", "carol joined");
    alice.wait_text("#messages", "hello from the browser");
    assert_eq!(
        lines.next().map(|l| l.unwrap()).as_deref(),
        Some("delivered")
    );
    alice.type_keys("#message-input", "hi carol\u{E007}");
    assert_eq!(
        lines.next().map(|l| l.unwrap()).as_deref(),
        Some("received hi carol")
    );
    assert_eq!(
        lines.next().map(|l| l.unwrap()).as_deref(),
        Some("kept carol")
    );
    assert_eq!(
        lines.next().map(|l| l.unwrap()).as_deref(),
        Some("joined without storage")
    );
    alice.wait_text("#messages", "carol2 joined");
    let status = browser.wait().unwrap();
    let mut err = String::new();
    browser
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "browser script failed: {err}");

    // With alice's window unfocused, a new message counts in her title (and notifies).
    // (Under Xvfb without a window manager nothing has focus: start from a known state.)
    alice.js("window.dispatchEvent(new Event('focus'))", vec![]);
    alice.wait_until(
        "no unread count",
        "return document.title === 'Tokyo – LAN Chat'",
    );
    alice.js("window.dispatchEvent(new Event('blur'))", vec![]);
    bob.type_keys("#message-input", "are you there?\u{E007}");
    alice.wait_until(
        "the unread count",
        "return document.title === '(1) Tokyo – LAN Chat'",
    );
    alice.js("window.dispatchEvent(new Event('focus'))", vec![]);
    alice.wait_until(
        "the count to clear",
        "return document.title === 'Tokyo – LAN Chat'",
    );

    // Bob leaves; alice sees it.
    bob.click("#leave-button");
    bob.wait_until(
        "the home screen",
        "return !document.getElementById('screen-home').hidden",
    );
    alice.wait_text("#messages", "bob left");

    // Leaving while hosting asks first: cancel keeps the room, confirm closes it.
    alice.click("#leave-button");
    alice.wait_text("#confirm-title", "Close “Tokyo” for everyone?");
    alice.click("#confirm-dialog button[value='cancel']");
    alice.wait_until(
        "the chat to stay",
        "return !document.getElementById('screen-chat').hidden \
         && !document.getElementById('confirm-dialog').open",
    );
    alice.click("#leave-button");
    alice.click("#confirm-ok");
    alice.wait_until(
        "the home screen",
        "return !document.getElementById('screen-home').hidden",
    );
    // And the room leaves bob's list (goodbye packets).
    bob.wait_until(
        "the room to leave the list",
        "return document.querySelectorAll('#room-list li').length === 0",
    );
}

#[test]
fn the_app_shows_reconnecting_and_carries_on_when_the_host_comes_back() {
    const NAME: &str = "the_app_shows_reconnecting_and_carries_on_when_the_host_comes_back";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"dana"}"#).unwrap();
    let host = InProcessHost::start(47000);
    let (mut dana, _) = Driver::launch(4444, &display, dir.path());
    // A saved nickname: straight to the home screen, greeted by name.
    dana.wait_text("#greeting", "Hello, dana!");
    dana.type_keys("#address-input", "127.0.0.1:47000");
    dana.type_keys("#address-room", "Lobby\u{E007}");
    dana.wait_text("#messages", "Welcome to Lobby, dana!");

    // An empty message is refused (nothing sent, nothing shown).
    dana.type_keys("#message-input", "   \u{E007}");
    assert_eq!(
        dana.js(
            "return document.querySelectorAll('.message').length",
            vec![]
        ),
        json!(0)
    );
    // No location service under Xvfb: a clear notice, not a silent failure.
    dana.click("#location-button");
    dana.wait_text("#messages", "Cannot share a location");

    host.stop();
    // A room its host closed says so, once, in words, and offers to go home meanwhile; who
    // is online is unknown while away (not shown as online).
    dana.wait_text(
        "#status-banner",
        "The host closed the room. Waiting for it to come back",
    );
    dana.wait_text("#user-count", "?");
    dana.wait_text("#room-meta", "who is online is unknown");
    dana.wait_until(
        "a way home and the details",
        "return document.getElementById('banner-home') !== null \
         && document.querySelector('#status-banner details').textContent.includes('host')",
    );
    // Typed while the host is away: shown at once, pending.
    dana.type_keys("#message-input", "typed while away\u{E007}");
    dana.wait_until(
        "a pending message",
        "const m = document.querySelector('.message.own'); \
         return m !== null && m.classList.contains('pending')",
    );

    let host = InProcessHost::start(47000);
    dana.wait_text("#messages", "Reconnected.");
    dana.wait_text("#user-count", "1");
    let said: usize = serde_json::from_value(dana.js(
        "return [...document.querySelectorAll('#messages li')] \
         .filter(e => e.textContent.includes('The host closed the room.')).length",
        vec![],
    ))
    .unwrap();
    assert_eq!(
        said, 1,
        "the host's closing is said once, however many attempts"
    );
    dana.wait_until(
        "the banner to go",
        "return document.getElementById('status-banner').hidden",
    );
    // Delivered after the reconnect, and ticked.
    dana.wait_until(
        "the tick",
        "const t = document.querySelector('.message.own .tick'); \
         return t !== null && t.textContent === '✓'",
    );
    dana.screenshot(&docs_dir().join("identity.png"));

    // The host comes back with another key (same id, same address): a blocking warning
    // with both codes; nothing goes on until dana trusts the new key.
    host.stop();
    let other = std::sync::Arc::new(lanchat::identity::Identity::generate().unwrap());
    let host = InProcessHost::start_with(47000, other.clone(), None);
    dana.wait_until(
        "the key warning",
        "return document.getElementById('key-dialog').open",
    );
    dana.wait_text("#key-title", "identity has changed");
    dana.wait_text("#key-presented", &other.fingerprint().short_code());
    dana.wait_text("#key-expected", &host_identity().fingerprint().short_code());
    dana.screenshot(&docs_dir().join("key-changed.png"));
    dana.click("#key-trust");
    dana.wait_text("#messages", "Welcome to Lobby, dana!");
    dana.wait_text("#room-key", &other.fingerprint().short_code());
    drop(dana);
    host.stop();
}

#[test]
fn a_locked_room_shows_its_lock_asks_for_the_passphrase_and_says_when_history_is_not_saved() {
    const NAME: &str =
        "a_locked_room_shows_its_lock_asks_for_the_passphrase_and_says_when_history_is_not_saved";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, nick) in [(&dir_a, "alice"), (&dir_b, "bob")] {
        let config = format!(r#"{{"nickname":"{nick}"}}"#);
        std::fs::write(dir.path().join("config.json"), config).unwrap();
    }
    // Alice's data directory cannot be created (a file is in the way): her room must still
    // work, and say that its history is not being saved.
    std::fs::write(dir_a.path().join("data"), b"in the way").unwrap();
    let (mut alice, _) = Driver::launch(4444, &display, dir_a.path());
    let (mut bob, _) = Driver::launch(4446, &display, dir_b.path());

    alice.wait_text("#greeting", "Hello, alice!");
    alice.type_keys("#host-room", "Vault");
    alice.type_keys("#host-passphrase", "open sesame\u{E007}");
    alice.wait_text("#messages", "Welcome to Vault, alice!");
    alice.wait_text("#messages", "History is not being saved");
    alice.wait_until(
        "the notice to stand out",
        "return document.querySelector('#messages .system.warn') !== null",
    );

    // Bob's list shows the lock; joining asks for the passphrase.
    bob.wait_text("#room-list", "Vault");
    bob.wait_until(
        "the lock",
        "const l = document.querySelector('#room-list .lock'); \
         return l !== null && l.getAttribute('aria-label') === 'locked'",
    );
    bob.wait_text("#room-list", "1 person");
    bob.screenshot(&docs_dir().join("locked.png"));
    bob.click("#room-list button");
    bob.wait_until(
        "the passphrase dialog",
        "return document.getElementById('passphrase-dialog').open",
    );
    // A wrong passphrase: refused, and asked again with the reason.
    bob.type_keys("#passphrase-input", "open says me\u{E007}");
    bob.wait_text("#passphrase-error", "Wrong passphrase");
    bob.wait_until(
        "the dialog to ask again",
        "return document.getElementById('passphrase-dialog').open",
    );
    bob.type_keys("#passphrase-input", "open sesame\u{E007}");
    bob.wait_text("#messages", "Welcome to Vault, bob!");
    alice.wait_text("#messages", "bob joined");
    alice.type_keys("#message-input", "the plan is ready\u{E007}");
    bob.wait_text("#messages", "the plan is ready");

    // A browser on the host's own machine (a secure page, so it has WebCrypto) joins too,
    // after one wrong try.
    let web = alice.browser_link();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/join-locked.mjs");
    let browser = Command::new("node")
        .arg(&script)
        .args([web.as_str(), "Vault", "carol", "open sesame"])
        .output()
        .expect("node must be installed");
    let steps = String::from_utf8_lossy(&browser.stdout);
    assert!(
        browser.status.success(),
        "{steps}{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    assert_eq!(
        steps.lines().collect::<Vec<_>>(),
        ["asked", "refused", "joined", "delivered"]
    );
    alice.wait_text("#messages", "hello from a browser behind the lock");

    // The passphrase itself is not kept anywhere on bob's side.
    let saved = std::fs::read_to_string(dir_b.path().join("config.json")).unwrap();
    assert!(!saved.contains("sesame"), "{saved}");
}

/// `lanchat host` as a separate process (built with the workspace, next to this test's own
/// binary), so the test can kill it with SIGKILL and start it again on the same data.
fn lanchat_host(port: u16, dir: &Path) -> Guard {
    let child = Command::new(lanchat_cli())
        .args([
            "host",
            "--room",
            "Lobby",
            "--bind",
            "127.0.0.1",
            "--no-discovery",
        ])
        .args(["--port", &port.to_string()])
        .env("LANCHAT_CONFIG_DIR", dir)
        .env("LANCHAT_DATA_DIR", dir.join("data"))
        .env("LANCHAT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run lanchat host");
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "lanchat host did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Guard(child, "KILL")
}

/// A browser driven line by line (tests/browser/reconnect.mjs).
struct Browser {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Browser {
    fn join(url: &str, nick: &str) -> Browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/reconnect.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .args([url, "Lobby", nick])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node must be installed");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut browser = Browser { child, lines };
        assert_eq!(browser.line(), "joined");
        browser
    }

    fn line(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(line)) => line,
            other => panic!("the browser script stopped: {other:?}"),
        }
    }

    fn run(&mut self, command: &str) -> Option<String> {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let verb = command.split(' ').next().unwrap();
        let first = self.line();
        if first == format!("ok {verb}") {
            return None;
        }
        assert_eq!(self.line(), format!("ok {verb}"), "after {first}");
        Some(first)
    }

    fn texts(&mut self) -> Vec<String> {
        serde_json::from_str(&self.run("texts").expect("a JSON line")).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every text in `expected` is shown exactly once, and nothing else from the chat is.
fn shown_once(side: &str, texts: &[String], expected: &[&str]) {
    for want in expected {
        let n = texts.iter().filter(|t| t.as_str() == *want).count();
        assert_eq!(n, 1, "{side} shows {want:?} {n} times: {texts:?}");
    }
    assert_eq!(texts.len(), expected.len(), "{side}: {texts:?}");
}

#[test]
fn a_browser_and_the_app_show_every_message_once_across_a_host_crash() {
    const NAME: &str = "a_browser_and_the_app_show_every_message_once_across_a_host_crash";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"dana"}"#).unwrap();
    let host = lanchat_host(47100, dir.path());
    let (mut dana, _) = Driver::launch(4444, &display, dir.path());
    dana.wait_text("#greeting", "Hello, dana!");
    dana.type_keys("#address-input", "127.0.0.1:47100");
    dana.type_keys("#address-room", "Lobby\u{E007}");
    dana.wait_text("#messages", "Welcome to Lobby, dana!");
    let mut web = Browser::join("https://127.0.0.1:47100/", "webby");

    // Before: both say something and see each other's, all delivered. The browser speaks
    // last, so its own acknowledged messages are the newest events it knows of: a resumed
    // history holds them again, and they must not be shown twice.
    dana.type_keys("#message-input", "app before 1\u{E007}");
    web.run("expect app before 1");
    web.run("send web before 1");
    web.run("send web before 2");
    dana.wait_text("#messages", "web before 2");
    web.run("delivered");

    // The host dies mid-chat (no goodbye); both keep typing while it is away.
    drop(host);
    dana.wait_text("#status-banner", "Reconnecting");
    web.run("send web during");
    dana.type_keys("#message-input", "app during\u{E007}");
    std::thread::sleep(Duration::from_millis(500));

    // It comes back on the same port and data: both resume, and what was typed goes.
    let host = lanchat_host(47100, dir.path());
    dana.wait_text("#messages", "Reconnected.");
    web.run("expect app during");
    dana.wait_text("#messages", "web during");
    web.run("send web after");
    dana.type_keys("#message-input", "app after\u{E007}");
    web.run("expect app after");
    dana.wait_text("#messages", "web after");
    web.run("delivered");

    let all = [
        "web before 1",
        "web before 2",
        "app before 1",
        "web during",
        "app during",
        "web after",
        "app after",
    ];
    let in_browser = web.texts();
    let in_app: Vec<String> = serde_json::from_value(dana.js(
        "return [...document.querySelectorAll('#messages .message .text')].map(e => e.textContent)",
        vec![],
    ))
    .unwrap();
    println!("seen: browser {in_browser:?}");
    println!("seen: app {in_app:?}");
    shown_once("the browser", &in_browser, &all);
    shown_once("the app", &in_app, &all);
    // The browser never left as far as the app could tell: its rejoin after the host's
    // restart is not announced again.
    let joins: usize = serde_json::from_value(dana.js(
        "return [...document.querySelectorAll('#messages li')] \
         .filter(e => e.textContent.includes('webby joined')).length",
        vec![],
    ))
    .unwrap();
    println!("seen: \"webby joined\" shown {joins} time(s) across the host's restart");
    assert_eq!(joins, 1, "no phantom join after the restart");
    drop(web);
    drop(dana);
    drop(host);
}

#[test]
fn the_app_shares_a_file_shows_an_image_s_thumbnail_and_saves_it() {
    const NAME: &str = "the_app_shares_a_file_shows_an_image_s_thumbnail_and_saves_it";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"erin"}"#).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = InProcessHost::start_with(47100, host_identity(), Some(data.path().to_owned()));
    let (mut erin, _) = Driver::launch(4454, &display, dir.path());
    erin.wait_text("#greeting", "Hello, erin!");
    erin.type_keys("#address-input", "127.0.0.1:47100");
    erin.type_keys("#address-room", "Lobby\u{E007}");
    erin.wait_text("#messages", "Welcome to Lobby, erin!");

    // Frank shares a photo: the app shows its card with the host's thumbnail.
    let work = tempfile::tempdir().unwrap();
    let photo = work.path().join("harbour at dusk.png");
    lanchat_test_image(&photo);
    let photo_bytes = std::fs::read(&photo).unwrap();
    let big = work.path().join("site survey.bin");
    let survey: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &survey).unwrap();
    let frank = with_client("wss://127.0.0.1:47100/ws".into(), "frank", {
        let photo = photo.clone();
        move |frank, mut events| {
            Box::pin(async move {
                let outgoing = lanchat::client::Outgoing::prepare(&photo, None)
                    .await
                    .unwrap();
                frank.share_file(&outgoing, &mut |_| {}).await.unwrap();
                // Then waits for erin's file and fetches it.
                loop {
                    let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
                        .await
                        .expect("erin's file")
                        .expect("frank is running");
                    if let lanchat::client::ClientEvent::Event(e) = event {
                        if let lanchat::protocol::EventBody::File { id, from, file, .. } = e.body {
                            if from == "erin" {
                                let into = tempfile::tempdir().unwrap();
                                let path = frank
                                    .download_file(
                                        &lanchat::client::Incoming { id, card: file },
                                        into.path(),
                                        &mut |_| {},
                                    )
                                    .await
                                    .unwrap();
                                return std::fs::read(path).unwrap();
                            }
                        }
                    }
                }
            })
        }
    });
    erin.wait_until(
        "the thumbnail",
        "const img = document.querySelector('.message.file.other img.thumb'); \
         return img !== null && img.complete && img.naturalWidth > 0",
    );
    erin.wait_text(".message.file.other", "harbour at dusk.png");

    // Erin drops a file on the window (the drop event Tauri gives the page): the engine
    // streams it from its path, with a progress bar meanwhile.
    erin.js(
        "window.__TAURI__.event.emit('tauri://drag-drop', {paths: [arguments[0]], position: {x: 10, y: 10}}); return true",
        vec![json!(big.display().to_string())],
    );
    erin.wait_until(
        "the transfer's progress (or its end)",
        "const bar = document.querySelector('.transfer progress'); \
         return (bar !== null && bar.value > bar.max / 5) \
           || document.querySelector('.message.file.own') !== null",
    );
    erin.screenshot(&docs_dir().join("files.png"));
    erin.wait_text(".message.file.own", "site survey.bin");
    let fetched = frank.join().unwrap();
    println!(
        "measured: frank fetched erin's {} bytes, identical: {}",
        fetched.len(),
        fetched == survey
    );
    assert!(fetched == survey);

    // The thumbnail opens the picture at full size.
    erin.click(".message.file.other img.thumb");
    erin.wait_until(
        "the full-size picture",
        "const img = document.querySelector('.image-dialog[open] img'); \
         return img !== null && img.complete && img.naturalWidth === 1600",
    );
    erin.click(".image-dialog");

    // An image pasted into the message box (a screenshot from the clipboard) is shared too:
    // its bytes go to the app, which shares it like a dropped file.
    erin.js(
        "const canvas = document.createElement('canvas'); canvas.width = 320; canvas.height = 200; \
         const g = canvas.getContext('2d'); g.fillStyle = '#2a6'; g.fillRect(0, 0, 320, 200); \
         canvas.toBlob((blob) => { \
           const data = new DataTransfer(); \
           data.items.add(new File([blob], 'screenshot.png', { type: 'image/png' })); \
           document.getElementById('message-input').dispatchEvent( \
             new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true })); \
         }, 'image/png'); return true",
        vec![],
    );
    erin.wait_until(
        "the pasted image's thumbnail",
        "return [...document.querySelectorAll('.message.file.own')] \
           .some(m => m.textContent.includes('screenshot.png') \
             && m.querySelector('img.thumb')?.naturalWidth === 320)",
    );

    // Save: into the Downloads folder, checked, under its own name, with a way to its folder.
    erin.click(".message.file.other .file-line button");
    erin.wait_text(".message.file.other .file-status", "Saved as");
    erin.wait_text(".message.file.other .file-status", "Show in folder");
    let saved = dir.path().join("downloads").join("harbour at dusk.png");
    assert!(std::fs::read(&saved).unwrap() == photo_bytes);
    drop(erin);
    host.stop();
}

/// A picture with something to see in its thumbnail: a sky over a harbour.
fn lanchat_test_image(path: &Path) {
    let (w, h) = (1600u32, 900u32);
    image::RgbImage::from_fn(w, h, |x, y| {
        if y < h * 3 / 5 {
            image::Rgb([
                250 - (y * 120 / h) as u8,
                140 + (x * 60 / w) as u8,
                90 + (y * 100 / h) as u8,
            ])
        } else {
            image::Rgb([
                20 + (x * 40 / w) as u8,
                50 + ((x + y) % 40) as u8,
                90 + (y * 60 / h) as u8,
            ])
        }
    })
    .save(path)
    .unwrap();
}
