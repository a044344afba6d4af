//! The app as a desktop citizen (Xvfb, WebDriver): its status goes away by itself after the
//! configured idle time (the X display's idle time: nobody touches Xvfb's keyboard), comes
//! back at the next input, busy is picked by hand, and others' statuses show in the online
//! list (an engine client in the room sees what the app says; docs/status.png); a
//! `lanchat://` link opened with xdg-open reaches the app already running (one instance, on
//! a D-Bus session bus of the test's own).

mod desktop;
#[path = "common/sandbox.rs"]
mod sandbox;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use desktop::*;
use lanchat::client::ClientEvent;
use lanchat::protocol::Status;

const PORT: u16 = 47230;

/// The next status `nick` is said to have (a test client reads its events until then).
async fn next_status_of(
    events: &mut tokio::sync::mpsc::Receiver<ClientEvent>,
    nick: &str,
) -> Status {
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(ClientEvent::Status { nick: who, status })) if who == nick => return status,
            Ok(Some(_)) => continue,
            other => panic!("no status of {nick}: {other:?}"),
        }
    }
}

#[test]
fn the_app_goes_away_by_itself_comes_back_and_shows_others_statuses() {
    const NAME: &str = "the_app_goes_away_by_itself_comes_back_and_shows_others_statuses";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"nickname":"ivy","away_after_seconds":2}"#,
    )
    .unwrap();
    let host = InProcessHost::start(PORT);
    let (mut ivy, _) = Driver::launch(4466, &display, dir.path());
    ivy.wait_text("#greeting", "Hello, ivy!");

    // bob reports what he sees of ivy, and goes away himself when told.
    let (seen_tx, seen_rx) = mpsc::channel::<(Status, Instant)>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let bob = with_client(
        format!("wss://127.0.0.1:{PORT}/ws"),
        "bob",
        move |bob, mut events| {
            Box::pin(async move {
                for _ in 0..3 {
                    let status = next_status_of(&mut events, "ivy").await;
                    let _ = seen_tx.send((status, Instant::now()));
                }
                tokio::task::spawn_blocking(move || go_rx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                bob.set_status(Status::Away).await.unwrap();
                // Until the test is over: leaving would take bob off ivy's list.
                while events.recv().await.is_some() {}
            })
        },
    );

    ivy.type_keys("#address-input", &format!("127.0.0.1:{PORT}"));
    ivy.type_keys("#address-room", "Lobby\u{E007}");
    ivy.wait_text("#messages", "Welcome to Lobby, ivy!");
    let joined = Instant::now();

    // Nobody touches the display: after 2 s ivy is away by herself.
    let (first, at) = seen_rx.recv_timeout(PATIENCE).unwrap();
    println!(
        "measured: bob saw ivy {first:?} {:?} after she joined (away after 2 s idle)",
        at - joined
    );
    assert_eq!(first, Status::Away);
    ivy.wait_until(
        "ivy's own status shown as away",
        "return document.getElementById('status-select').value === 'away'",
    );

    // Input in the window: available again.
    let typed = Instant::now();
    ivy.type_keys("#message-input", "back");
    let (second, at) = seen_rx.recv_timeout(PATIENCE).unwrap();
    println!(
        "measured: bob saw ivy {second:?} {:?} after she typed",
        at - typed
    );
    assert_eq!(second, Status::Available);

    // Busy by hand: stays busy however idle.
    ivy.js(
        "const s = document.getElementById('status-select'); s.value = 'busy'; \
         s.dispatchEvent(new Event('change')); return true",
        vec![],
    );
    let (third, _) = seen_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(third, Status::Busy);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        ivy.js(
            "return document.getElementById('status-select').value",
            vec![]
        ),
        serde_json::json!("busy"),
        "busy by hand is not replaced by away"
    );

    // bob goes away: ivy's online list says so, in words and with a dot.
    go_tx.send(()).unwrap();
    ivy.wait_until(
        "bob away in ivy's list",
        "const b = [...document.querySelectorAll('#user-list .user')] \
           .find((u) => u.textContent.startsWith('bob')); \
         return b !== undefined && b.dataset.status === 'away' && b.textContent.includes('away')",
    );
    let list = ivy.js(
        "return [...document.querySelectorAll('#user-list .user')].map((u) => u.textContent)",
        vec![],
    );
    println!("measured: ivy's online list: {list}");
    ivy.screenshot(&docs_dir().join("status.png"));
    drop(ivy);
    host.stop();
    drop(bob);
}

/// A D-Bus session bus of the test's own (the single-instance plugin finds the running app
/// on it); its address.
fn session_bus() -> (Guard, String) {
    use std::io::BufRead;
    let mut daemon = std::process::Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dbus-daemon (dbus) must be installed");
    let mut address = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    (Guard(daemon, "TERM"), address.trim().to_owned())
}

/// How many app processes with these settings run now.
fn apps_running(config_dir: &std::path::Path) -> usize {
    let setting = format!("LANCHAT_CONFIG_DIR={}", config_dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let app = std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == "lanchat-desktop");
            app && std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == setting.as_bytes()))
        })
        .count()
}

#[test]
fn a_lanchat_link_opened_anywhere_reaches_the_running_app() {
    const NAME: &str = "a_lanchat_link_opened_anywhere_reaches_the_running_app";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let (_bus, bus) = session_bus();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let host = InProcessHost::start(PORT + 2);
    let (mut ivy, _) = Driver::launch_on_bus(4468, &display, dir.path(), Some(&bus), &[]);
    ivy.wait_text("#greeting", "Hello, ivy!");
    assert_eq!(apps_running(dir.path()), 1);

    // A link clicked elsewhere: the system starts the app for it, which hands it over.
    let link = format!("lanchat://127.0.0.1:{}/Tea%20Room", PORT + 2);
    let clicked = Instant::now();
    ivy.xdg_open(&link, &display, dir.path(), Some(&bus));
    ivy.wait_text("#messages", "Welcome to Tea Room, ivy!");
    println!(
        "measured: {link} opened with xdg-open; the running app was in the room {:?} later",
        clicked.elapsed()
    );
    // The second launch is gone: one app, one window.
    let deadline = Instant::now() + PATIENCE;
    while apps_running(dir.path()) > 1 {
        assert!(Instant::now() < deadline, "the second launch stayed");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "measured: app processes after the link: {}",
        apps_running(dir.path())
    );

    // Another link while in a room, with the host's key as the host's screen gives it: the
    // app moves to that room (named without the key).
    let keyed = format!(
        "lanchat://127.0.0.1:{}/Lobby?key={}",
        PORT + 2,
        host_identity().fingerprint().to_hex()
    );
    ivy.xdg_open(&keyed, &display, dir.path(), Some(&bus));
    ivy.wait_text("#messages", "Welcome to Lobby, ivy!");
    assert_eq!(
        ivy.js(
            "return document.getElementById('room-name').textContent",
            vec![]
        ),
        serde_json::json!("Lobby")
    );
    drop(ivy);

    // An app that is not running yet is started for the link and goes straight in.
    let kim_dir = tempfile::tempdir().unwrap();
    std::fs::write(kim_dir.path().join("config.json"), r#"{"nickname":"kim"}"#).unwrap();
    let link = format!("lanchat://127.0.0.1:{}/Lobby", PORT + 2);
    let (mut kim, _) = Driver::launch_on_bus(4470, &display, kim_dir.path(), None, &[&link]);
    kim.wait_text("#messages", "Welcome to Lobby, kim!");
    println!("measured: an app started for {link} joined its room");
    drop(kim);
    host.stop();
}
