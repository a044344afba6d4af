//! The app as a desktop citizen (Xvfb, WebDriver): its status goes away by itself after the
//! configured idle time (the X display's idle time: nobody touches Xvfb's keyboard), comes
//! back at the next input, busy is picked by hand, and others' statuses show in the online
//! list (an engine client in the room sees what the app says; docs/status.png); a
//! `lanchat://` link opened with xdg-open reaches the app already running (one instance, on
//! a D-Bus session bus of the test's own); with a tray (a real StatusNotifier host), closing
//! the window keeps a hosted room running, the tray item shows the unread count and its menu
//! sets the status, shows the window and quits (asking, while hosting); without one, closing
//! quits and the home screen says so.

mod desktop;
#[path = "common/sandbox.rs"]
mod sandbox;
#[path = "desktop/sni.rs"]
mod sni;
#[path = "desktop/x11.rs"]
mod x11;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use desktop::*;
use lanchat::client::ClientEvent;
use lanchat::protocol::Status;
use sni::session_bus;

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
    // No tray on this bus: the home screen says closing quits.
    ivy.wait_until(
        "the home screen saying closing quits",
        "const n = document.getElementById('tray-note'); \
         return n.dataset.tray === 'false' && n.textContent.includes('closing the window quits')",
    );

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
    // Without a tray, the close button quits (kim is not hosting: no question).
    let x = x11::X::open(&display);
    let window = x.window("LAN Chat").expect("kim's window");
    x.close(window.window);
    let gone = wait_for("kim's app gone", || apps_running(kim_dir.path()) == 0);
    println!("measured: no tray: closing the window quit the app {gone:?} later");
    drop(kim);
    host.stop();
}

/// Waits until `check` holds, polling; says what it waited for when it does not.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < PATIENCE, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn closed_to_the_tray_the_app_keeps_hosting_and_its_menu_acts() {
    const NAME: &str = "closed_to_the_tray_the_app_keeps_hosting_and_its_menu_acts";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let (_bus, bus) = session_bus();
    let _tray = sni::tray_host(&display, &bus);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let (mut ivy, _) = Driver::launch_on_bus(4472, &display, dir.path(), Some(&bus), &[]);
    ivy.wait_text("#greeting", "Hello, ivy!");
    ivy.wait_until(
        "the home screen saying the app stays in the tray",
        "return document.getElementById('tray-note').dataset.tray === 'true'",
    );
    let item = sni::the_item(&bus);
    let entries = sni::menu_entries(&bus, &item);
    println!("measured: tray item {item:?}, menu {entries:?}");
    let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Show LAN Chat",
            "Available",
            "Away",
            "Busy (do not disturb)",
            "Quit LAN Chat"
        ]
    );

    // Start at login, as the user ticks it: an autostart entry that starts it hidden.
    ivy.click("#start-at-login");
    let autostart =
        std::env::temp_dir().join("lanchat-test-opener-4472/xdg-config/autostart/lanchat.desktop");
    wait_for("the autostart entry", || autostart.is_file());
    let entry = std::fs::read_to_string(&autostart).unwrap();
    let exec = entry.lines().find(|l| l.starts_with("Exec=")).unwrap();
    println!(
        "measured: start at login wrote {}: {exec}",
        autostart.display()
    );
    assert!(exec.ends_with(" --hidden"), "{entry}");
    ivy.click("#start-at-login");
    wait_for("the autostart entry gone", || !autostart.exists());

    // ivy hosts a room, then closes the window as a window manager's close button does.
    ivy.type_keys("#host-room", "Lobby\u{E007}");
    ivy.wait_text("#messages", "Welcome to Lobby, ivy!");
    let port = ivy.js(
        "const l = [...document.querySelectorAll('#hosting-addresses .share-link')] \
           .map((c) => c.textContent).find((t) => t.includes('127.0.0.1')); \
         return Number(/:(\\d+)\\//.exec(l)[1])",
        vec![],
    );
    let port = port.as_u64().unwrap();
    let x = x11::X::open(&display);
    let window = x.window("LAN Chat").expect("the app's window");
    assert!(window.mapped);
    x.close(window.window);
    let hidden = wait_for("the window hidden", || !x.placed(window.window).mapped);
    println!("measured: closed; the window was hidden {hidden:?} later, the app still running");

    // The room is still hosted: bob joins and talks, ivy's tray counts it.
    let (said_tx, said_rx) = mpsc::channel::<()>();
    let (seen_tx, seen_rx) = mpsc::channel::<Status>();
    let bob = with_client(
        format!("wss://127.0.0.1:{port}/ws"),
        "bob",
        move |bob, mut events| {
            Box::pin(async move {
                for i in 1..=3 {
                    bob.send(format!("message {i} while the window is closed"))
                        .await
                        .unwrap();
                }
                let _ = said_tx.send(());
                let status = next_status_of(&mut events, "ivy").await;
                let _ = seen_tx.send(status);
                // Until the test is over (after the room closes, bob tries to reconnect).
                while events.recv().await.is_some() {}
            })
        },
    );
    said_rx
        .recv_timeout(PATIENCE)
        .expect("bob joined the hosted room and spoke");
    let counted = wait_for("the unread count on the tray item", || {
        sni::item_text(&bus, &item, "XAyatanaLabel") == "3"
    });
    println!(
        "measured: bob joined the room hosted by the closed app and sent 3 messages; the tray \
         item's label became {:?} {counted:?} later",
        sni::item_text(&bus, &item, "XAyatanaLabel")
    );

    // The tray as the user sees it: its icon with the unread dot, and its menu (a right
    // click on the panel's icon; the window is closed).
    match x.window("gtk-sni-tray") {
        Some(panel) => {
            x.click(panel.x + 16, panel.y + 16, 3);
            std::thread::sleep(Duration::from_millis(700));
            let area = (panel.x, panel.y + 32 - 240, 420, 240);
            x.screenshot(&docs_dir().join("tray.png"), area);
            x.click(panel.x + 600, panel.y - 300, 1);
        }
        None => println!("measured: no panel window to photograph"),
    }

    // The tray menu: busy reaches the room, and the window's status menu too.
    sni::click_entry(&bus, &item, "Busy (do not disturb)");
    let status = seen_rx
        .recv_timeout(PATIENCE)
        .expect("bob saw ivy's status");
    println!("measured: Busy picked in the tray menu; bob saw ivy {status:?}");
    assert_eq!(status, Status::Busy);
    let ticked: Vec<_> = sni::menu_entries(&bus, &item)
        .into_iter()
        .filter(|e| e.ticked == Some(true))
        .map(|e| e.label)
        .collect();
    assert_eq!(ticked, ["Busy (do not disturb)"]);
    sni::click_entry(&bus, &item, "Show LAN Chat");
    // (By the window, not its title: the title now has the unread count.)
    let shown = wait_for("the window shown", || x.placed(window.window).mapped);
    println!("measured: Show LAN Chat: the window was back {shown:?} later");
    ivy.wait_until(
        "the status menu saying busy",
        "return document.getElementById('status-select').value === 'busy'",
    );

    // Quitting from the tray while hosting asks first, as leaving does.
    sni::click_entry(&bus, &item, "Quit LAN Chat");
    ivy.wait_until(
        "the question before closing the room",
        "const d = document.getElementById('confirm-dialog'); \
         return d.open && d.textContent.includes('Quitting closes it for everyone')",
    );
    ivy.click("#confirm-ok");
    let gone = wait_for("the app gone", || apps_running(dir.path()) == 0);
    println!("measured: Quit from the tray, confirmed: the app was gone {gone:?} later");
    drop(ivy);
    drop(bob);
}
