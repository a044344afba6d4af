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

    // Both rooms are joined at once (the link added Lobby beside Tea Room): leaving Lobby
    // shows Tea Room, leaving that goes home, where both are in the recent rooms, newest
    // first; one joins again.
    ivy.click("#leave-button");
    ivy.wait_until(
        "Tea Room shown after leaving Lobby",
        "return document.getElementById('room-name').textContent === 'Tea Room' \
           && !document.getElementById('screen-chat').hidden",
    );
    ivy.click("#leave-button");
    ivy.wait_until(
        "the recent rooms",
        "return document.querySelectorAll('#recent-list .recent-room').length === 2",
    );
    let recent = ivy.js(
        "return [...document.querySelectorAll('#recent-list .recent-room')] \
           .map((r) => r.querySelector('.room-info').textContent)",
        vec![],
    );
    println!("measured: recent rooms on the home screen: {recent}");
    assert!(recent[0].as_str().unwrap().starts_with("Lobby"), "{recent}");
    assert!(
        recent[1].as_str().unwrap().starts_with("Tea Room"),
        "{recent}"
    );
    ivy.click("#recent-list button[aria-label='Join Tea Room again']");
    ivy.wait_text("#messages", "Welcome to Tea Room, ivy!");
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
    // Each link has a Copy button: the link lands on the desktop's clipboard.
    let link = ivy.js(
        "return document.querySelector('#hosting-addresses .share-link').textContent",
        vec![],
    );
    ivy.click("#hosting-addresses button.copy");
    ivy.wait_until(
        "the button saying copied",
        "return document.querySelector('#hosting-addresses button.copy').textContent === 'Copied'",
    );
    let pasted = std::process::Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", &display)
        .output()
        .expect("xclip must be installed");
    let pasted = String::from_utf8_lossy(&pasted.stdout).into_owned();
    println!("measured: Copy put {pasted:?} on the clipboard");
    assert_eq!(pasted, link.as_str().unwrap());
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

    // Started at login (the autostart entry's --hidden): in the tray, no window, until
    // Show LAN Chat.
    let (ivy, _) = Driver::launch_on_bus(4472, &display, dir.path(), Some(&bus), &["--hidden"]);
    let item = sni::the_item(&bus);
    std::thread::sleep(Duration::from_millis(500));
    let window = x.window("LAN Chat");
    println!(
        "measured: started with --hidden: tray item {}, window shown: {:?}",
        item.path,
        window.map(|w| w.mapped)
    );
    assert!(!window.is_some_and(|w| w.mapped), "the window showed");
    sni::click_entry(&bus, &item, "Show LAN Chat");
    wait_for("the window shown from the tray", || {
        x.window("LAN Chat").is_some_and(|w| w.mapped)
    });
    drop(ivy);
}

/// A notification server of the test's own (dunst, on the test's bus and display), keeping
/// each notification on screen until it is clicked or closed.
fn notification_server(display: &str, bus: &str, dir: &std::path::Path) -> Guard {
    let config = dir.join("dunstrc");
    std::fs::write(
        &config,
        "[urgency_low]\ntimeout = 0\n[urgency_normal]\ntimeout = 0\n[urgency_critical]\ntimeout = 0\n",
    )
    .unwrap();
    let server = std::process::Command::new("dunst")
        .args(["-config", config.to_str().unwrap()])
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        // No accessibility bus: its socket is one per user, and tests run side by side.
        .env("NO_AT_BRIDGE", "1")
        .env("GTK_A11Y", "none")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dunst must be installed");
    let guard = Guard(server, "TERM");
    // Its name on the bus, not a dunstctl call: that would have the bus start a dunst of
    // its own (without a display) if this one is not there yet.
    let connection = zbus::blocking::connection::Builder::address(bus)
        .and_then(|b| b.build())
        .unwrap();
    let dbus = zbus::blocking::fdo::DBusProxy::new(&connection).unwrap();
    wait_for("the notification server", || {
        dbus.name_has_owner("org.freedesktop.Notifications".try_into().unwrap())
            .unwrap_or(false)
    });
    guard
}

/// dunstctl's answer, on the test's bus.
fn dunstctl(bus: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("dunstctl")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn shown_notifications(bus: &str) -> usize {
    dunstctl(bus, &["count", "displayed"])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Summaries and bodies of the notifications closed so far, newest first.
fn notification_history(bus: &str) -> Vec<(String, String)> {
    let json: serde_json::Value =
        serde_json::from_str(&dunstctl(bus, &["history"]).unwrap()).unwrap();
    json["data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["summary"]["data"].as_str().unwrap_or("").to_owned(),
                n["body"]["data"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_room_notifies_as_chosen_and_a_click_opens_it_at_the_message() {
    const NAME: &str = "a_room_notifies_as_chosen_and_a_click_opens_it_at_the_message";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let (_bus, bus) = session_bus();
    let _tray = sni::tray_host(&display, &bus);
    let dir = tempfile::tempdir().unwrap();
    let _notices = notification_server(&display, &bus, dir.path());
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let host = InProcessHost::start(PORT + 6);
    let (mut ivy, _) = Driver::launch_on_bus(4474, &display, dir.path(), Some(&bus), &[]);
    ivy.wait_text("#greeting", "Hello, ivy!");
    ivy.type_keys("#address-input", &format!("127.0.0.1:{}", PORT + 6));
    ivy.type_keys("#address-room", "Lobby\u{E007}");
    ivy.wait_text("#messages", "Welcome to Lobby, ivy!");

    // bob says what he is told to, when he is told.
    let (say_tx, bob) = talker(format!("wss://127.0.0.1:{}/ws", PORT + 6), "Lobby", "bob");
    let x = x11::X::open(&display);
    let window = x.window("LAN Chat").expect("ivy's window");
    let shown_in_page = |ivy: &mut Driver, text: &str| {
        ivy.wait_until(
            "bob's message in ivy's page",
            &format!(
                "return document.getElementById('messages').textContent.includes({})",
                serde_json::json!(text)
            ),
        )
    };

    // Mentions only, then the window closed to the tray: a plain message makes no
    // notification, a mention does.
    ivy.click("#notify-select option[value='mentions']");
    x.close(window.window);
    wait_for("the window hidden", || !x.placed(window.window).mapped);
    say_tx.send("plain hello from bob".into()).unwrap();
    shown_in_page(&mut ivy, "plain hello from bob");
    std::thread::sleep(Duration::from_millis(1000));
    let after_plain = shown_notifications(&bus);
    say_tx.send("@ivy look at this".into()).unwrap();
    let waited = wait_for("the mention's notification", || {
        shown_notifications(&bus) == 1
    });
    println!(
        "measured: mentions only: a plain message made {after_plain} notifications, a mention \
         made one, on screen {waited:?} after it was sent"
    );
    assert_eq!(after_plain, 0);
    x.screenshot(
        &docs_dir().join("notification.png"),
        (1280 - 440, 0, 440, 160),
    );

    // Clicked: the window comes back, open at that message.
    let clicked = Instant::now();
    dunstctl(&bus, &["action", "0"]).unwrap();
    wait_for("the window back", || x.placed(window.window).mapped);
    ivy.wait_until(
        "the conversation open at the mention",
        "const f = document.querySelector('#messages .found'); \
         return f !== null && f.textContent.includes('@ivy look at this')",
    );
    println!(
        "measured: the notification clicked: the window was back, open at the message, {:?} later",
        clicked.elapsed()
    );
    // Closed, it goes to the server's history, which says what it showed.
    dunstctl(&bus, &["close-all"]).unwrap();
    let history = notification_history(&bus);
    println!("measured: notifications shown: {history:?}");
    assert_eq!(
        history,
        [(
            "bob mentioned you in Lobby".to_owned(),
            "@ivy look at this".to_owned()
        )]
    );
    // As the screen shows it (WebKit's own snapshot of a window shown again can hang).
    std::thread::sleep(Duration::from_millis(300));
    let w = x.placed(window.window);
    x.screenshot(
        &docs_dir().join("notify-settings.png"),
        (w.x, w.y, w.width.min(1280), w.height.min(800)),
    );

    // Nothing: not even a mention makes one (the unread count still grows in the tray).
    ivy.click("#notify-select option[value='none']");
    x.close(window.window);
    wait_for("the window hidden", || !x.placed(window.window).mapped);
    say_tx.send("@ivy are you there?".into()).unwrap();
    // (The conversation shows the past around the clicked message now, so the new one is
    // not in the page yet: the tray's count says it arrived.)
    let item = sni::the_item(&bus);
    wait_for("the mention counted in the tray", || {
        sni::item_text(&bus, &item, "XAyatanaLabel") == "1"
    });
    std::thread::sleep(Duration::from_millis(1000));
    let label = sni::item_text(&bus, &item, "XAyatanaLabel");
    println!(
        "measured: nothing: {} notifications on screen, {} in all; the tray says {label:?} unread",
        shown_notifications(&bus),
        notification_history(&bus).len()
    );
    assert_eq!(shown_notifications(&bus), 0);
    assert_eq!(notification_history(&bus).len(), 1);
    assert_eq!(label, "1");
    drop(say_tx);
    drop(ivy);
    host.stop();
    drop(bob);
}

/// A client in `room` who says each line it is given, and otherwise just listens.
fn talker(
    url: String,
    room: &'static str,
    nick: &'static str,
) -> (mpsc::Sender<String>, std::thread::JoinHandle<()>) {
    let (say_tx, say_rx) = mpsc::channel::<String>();
    let thread = with_client_in(url, room, nick, move |client, mut events| {
        Box::pin(async move {
            let (tx, mut told) = tokio::sync::mpsc::channel::<String>(8);
            std::thread::spawn(move || {
                while let Ok(text) = say_rx.recv() {
                    if tx.blocking_send(text).is_err() {
                        break;
                    }
                }
            });
            loop {
                tokio::select! {
                    text = told.recv() => match text {
                        Some(text) => { client.send(text).await.unwrap(); }
                        None => break,
                    },
                    event = events.recv() => if event.is_none() { break },
                }
            }
        })
    });
    (say_tx, thread)
}

/// What the sidebar shows: each room's name, whether it is shown, and its two counts.
fn sidebar(app: &Driver) -> serde_json::Value {
    app.js(
        "return [...document.querySelectorAll('#room-tabs .room-tab')].map((t) => ({ \
           room: t.dataset.room, shown: t.getAttribute('aria-current') === 'true', \
           unread: Number(t.querySelector('.count.unread')?.textContent ?? 0), \
           mentions: Number((t.querySelector('.count.mention')?.textContent ?? '@0').slice(1)) }))",
        vec![],
    )
}

#[test]
fn two_rooms_at_once_each_counts_what_arrives_while_the_other_is_shown() {
    const NAME: &str = "two_rooms_at_once_each_counts_what_arrives_while_the_other_is_shown";
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let port = PORT + 8;
    let host = InProcessHost::start(port);
    let url = format!("wss://127.0.0.1:{port}/ws");
    let (mut ivy, _) = Driver::launch(4476, &display, dir.path());
    ivy.wait_text("#greeting", "Hello, ivy!");
    ivy.type_keys("#address-input", &format!("127.0.0.1:{port}"));
    ivy.type_keys("#address-room", "Lobby\u{E007}");
    ivy.wait_text("#messages", "Welcome to Lobby, ivy!");
    // A second room, from the sidebar's "+": the first stays joined.
    ivy.click("#room-add");
    ivy.wait_text("#greeting", "Hello, ivy!");
    ivy.type_keys("#address-input", &format!("127.0.0.1:{port}"));
    ivy.type_keys("#address-room", "Garden\u{E007}");
    ivy.wait_text("#messages", "Welcome to Garden, ivy!");

    let (bob, bob_thread) = talker(url.clone(), "Lobby", "bob");
    let (carol, carol_thread) = talker(url, "Garden", "carol");
    ivy.wait_text("#messages", "carol joined");
    // Lobby is not on screen: bob's lines (one naming ivy) are counted there.
    for text in [
        "first in the lobby",
        "@ivy are you in the garden?",
        "third in the lobby",
    ] {
        bob.send(text.into()).unwrap();
    }
    carol.send("roses are out".into()).unwrap();
    ivy.wait_text("#messages", "roses are out");
    ivy.wait_until(
        "Lobby's counts",
        "const t = document.querySelector('#room-tabs .room-tab[data-room=\"Lobby\"]'); \
         return t.querySelector('.count.unread')?.textContent === '3'",
    );
    let focused = ivy.js("return document.hasFocus()", vec![]);
    let bar = sidebar(&ivy);
    println!("measured: sidebar while Garden is shown (window focused: {focused}): {bar}");
    assert_eq!(bar[0]["room"], "Lobby");
    assert_eq!(bar[0]["shown"], false);
    assert_eq!(bar[0]["unread"], 3);
    assert_eq!(bar[0]["mentions"], 1);
    assert_eq!(bar[1]["room"], "Garden");
    assert_eq!(bar[1]["shown"], true);
    // Garden is on screen: counted only when the window is not looked at.
    let garden_unread = if focused == serde_json::json!(true) {
        0
    } else {
        1
    };
    assert_eq!(bar[1]["unread"], garden_unread);
    ivy.screenshot(&docs_dir().join("rooms.png"));

    // A draft in Garden, and Lobby read from its top: both are as they were when shown again.
    ivy.type_keys("#message-input", "half a thought");
    // (20: more at once than this is a flood the host refuses, past its burst of 30.)
    for i in 0..20 {
        bob.send(format!("lobby line {i}")).unwrap();
    }
    ivy.click("#room-tabs .room-tab[data-room='Lobby']");
    ivy.wait_text("#messages", "lobby line 19");
    let bar = sidebar(&ivy);
    assert_eq!(
        (bar[0]["shown"].clone(), bar[0]["unread"].clone()),
        (true.into(), 0.into())
    );
    assert_eq!(
        ivy.js(
            "return document.getElementById('message-input').value",
            vec![]
        ),
        serde_json::json!("")
    );
    let top = ivy.js(
        "const m = document.getElementById('messages'); m.scrollTop = 40; return m.scrollTop",
        vec![],
    );
    ivy.click("#room-tabs .room-tab[data-room='Garden']");
    ivy.wait_text("#room-name", "Garden");
    assert_eq!(
        ivy.js(
            "return document.getElementById('message-input').value",
            vec![]
        ),
        serde_json::json!("half a thought")
    );
    ivy.click("#room-tabs .room-tab[data-room='Lobby']");
    ivy.wait_text("#room-name", "Lobby");
    let back = ivy.js(
        "return document.getElementById('messages').scrollTop",
        vec![],
    );
    println!("measured: Lobby scrolled to {top} before switching away, at {back} when back; Garden's draft kept");
    assert_eq!(top, back);

    // Switching, timed in the page: from the click until the next frame is painted.
    let times = ivy.js(
        "const times = []; \
         const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); \
         return (async () => { \
           for (let i = 0; i < 20; i++) { \
             const room = i % 2 ? 'Lobby' : 'Garden'; \
             const t0 = performance.now(); \
             document.querySelector(`#room-tabs .room-tab[data-room=\"${room}\"]`).click(); \
             await frame(); \
             if (document.getElementById('room-name').textContent !== room) return 'not switched'; \
             times.push(performance.now() - t0); \
           } \
           return times; })()",
        vec![],
    );
    let mut times: Vec<f64> = times
        .as_array()
        .unwrap_or_else(|| panic!("switching: {times}"))
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "measured: 20 room switches, click to painted: median {:.1} ms, slowest {:.1} ms",
        times[times.len() / 2],
        times[times.len() - 1]
    );

    // Ctrl+K: a room by the start of its name.
    ivy.type_keys("#message-input", "\u{E009}k\u{E000}");
    ivy.wait_until(
        "the room switcher",
        "return document.getElementById('switch-dialog').open",
    );
    let shown = ivy.js(
        "return document.getElementById('room-name').textContent",
        vec![],
    );
    let other = if shown == serde_json::json!("Lobby") {
        "Garden"
    } else {
        "Lobby"
    };
    ivy.type_keys(
        "#switch-input",
        &format!("{}\u{E007}", &other[..3].to_lowercase()),
    );
    ivy.wait_text("#room-name", other);
    println!(
        "measured: Ctrl+K, \"{}\", Enter: {other} shown",
        &other[..3].to_lowercase()
    );

    drop(bob);
    drop(carol);
    drop(ivy);
    host.stop();
    drop((bob_thread, carol_thread));
}
