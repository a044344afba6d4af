//! A desktop session for tray tests: a D-Bus session bus of the test's own, a real
//! StatusNotifier host on it (gtk-sni-tray-standalone, which also runs the watcher apps
//! register with, and draws their icons and menus on the X display), and what a panel reads
//! of a tray item over D-Bus: its properties and its menu (com.canonical.dbusmenu), whose
//! entries it can click.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedValue, Value};

use crate::desktop::{Guard, PATIENCE};

/// A D-Bus session bus of the test's own; its address.
pub fn session_bus() -> (Guard, String) {
    use std::io::BufRead;
    let mut daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon (dbus) must be installed");
    let mut address = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    (Guard(daemon, "TERM"), address.trim().to_owned())
}

fn connect(bus: &str) -> Connection {
    zbus::blocking::connection::Builder::address(bus)
        .and_then(|b| b.build())
        .expect("the test's session bus")
}

/// A tray at the bottom of the display: a StatusNotifierWatcher (where items register) and
/// a StatusNotifier host drawing them (gtk-sni-tray-standalone), once both are on the bus.
pub fn tray_host(display: &str, bus: &str) -> (Guard, Guard) {
    let spawn = |program: &str, args: &[&str]| {
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", display)
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            // No accessibility bus: its socket is one per user, and tests run side by side.
            .env("NO_AT_BRIDGE", "1")
            .env("GTK_A11Y", "none")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program} (haskell-gtk-sni-tray-utils) must be installed: {e}")
            });
        Guard(child, "TERM")
    };
    let connection = connect(bus);
    let dbus = zbus::blocking::fdo::DBusProxy::new(&connection).unwrap();
    let wait_for_name = |name: &str| {
        let deadline = Instant::now() + PATIENCE;
        while !dbus
            .name_has_owner(name.try_into().unwrap())
            .unwrap_or(false)
        {
            assert!(
                Instant::now() < deadline,
                "{name} did not come up on the bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let watcher = spawn("status-notifier-watcher", &[]);
    wait_for_name("org.kde.StatusNotifierWatcher");
    let host = spawn(
        "gtk-sni-tray-standalone",
        &["--bottom", "--beginning", "--size", "32"],
    );
    // The host registers with the watcher; items shown before it would be drawn late.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let watcher_proxy = Proxy::new(
            &connection,
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "org.kde.StatusNotifierWatcher",
        )
        .unwrap();
        if watcher_proxy
            .get_property::<bool>("IsStatusNotifierHostRegistered")
            .unwrap_or(false)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tray never registered as a host"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (watcher, host)
}

/// A tray item as the watcher lists it: its bus name and object path.
#[derive(Debug, Clone)]
pub struct Item {
    pub service: String,
    pub path: String,
}

/// The items registered with the watcher.
pub fn registered_items(bus: &str) -> Vec<Item> {
    let connection = connect(bus);
    let watcher = Proxy::new(
        &connection,
        "org.kde.StatusNotifierWatcher",
        "/StatusNotifierWatcher",
        "org.kde.StatusNotifierWatcher",
    )
    .unwrap();
    let names: Vec<String> = watcher
        .get_property("RegisteredStatusNotifierItems")
        .unwrap_or_default();
    names
        .into_iter()
        .map(|entry| match entry.find('/') {
            Some(slash) => Item {
                service: entry[..slash].to_owned(),
                path: entry[slash..].to_owned(),
            },
            // Some watchers keep only the bus name: the item is wherever it is served.
            None => Item {
                path: item_path(&connection, &entry, "/")
                    .unwrap_or_else(|| "/StatusNotifierItem".into()),
                service: entry,
            },
        })
        .collect()
}

/// The object path under `path` serving org.kde.StatusNotifierItem (introspected).
fn item_path(connection: &Connection, service: &str, path: &str) -> Option<String> {
    let proxy = Proxy::new(
        connection,
        service.to_owned(),
        path.to_owned(),
        "org.freedesktop.DBus.Introspectable",
    )
    .ok()?;
    let xml: String = proxy.call("Introspect", &()).ok()?;
    if xml.contains("\"org.kde.StatusNotifierItem\"") {
        return Some(path.to_owned());
    }
    xml.split("<node name=\"").skip(1).find_map(|rest| {
        let child = rest.split('"').next()?;
        let below = format!("{}/{child}", path.trim_end_matches('/'));
        item_path(connection, service, &below)
    })
}

/// Waits for exactly one item (the app's) and returns it.
pub fn the_item(bus: &str) -> Item {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let items = registered_items(bus);
        if items.len() == 1 {
            return items.into_iter().next().unwrap();
        }
        assert!(Instant::now() < deadline, "tray items: {items:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A string property of the item (Title, Status, XAyatanaLabel…); empty if unset.
pub fn item_text(bus: &str, item: &Item, property: &str) -> String {
    let connection = connect(bus);
    let proxy = Proxy::new(
        &connection,
        item.service.as_str(),
        item.path.as_str(),
        "org.kde.StatusNotifierItem",
    )
    .unwrap();
    proxy.get_property::<String>(property).unwrap_or_default()
}

fn menu(connection: &Connection, item: &Item) -> Proxy<'static> {
    let item_proxy = Proxy::new(
        connection,
        item.service.clone(),
        item.path.clone(),
        "org.kde.StatusNotifierItem",
    )
    .unwrap();
    let path: zbus::zvariant::OwnedObjectPath = item_proxy.get_property("Menu").unwrap();
    Proxy::new(
        connection,
        item.service.clone(),
        path,
        "com.canonical.dbusmenu",
    )
    .unwrap()
}

/// A menu entry: its id, label and, for a check item, whether it is ticked.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i32,
    pub label: String,
    pub ticked: Option<bool>,
}

/// The item's menu entries with a label, in id order.
pub fn menu_entries(bus: &str, item: &Item) -> Vec<Entry> {
    let connection = connect(bus);
    let menu = menu(&connection, item);
    let ids: Vec<i32> = (1..64).collect();
    let names = ["label", "toggle-type", "toggle-state"];
    let reply: Vec<(i32, HashMap<String, OwnedValue>)> = menu
        .call("GetGroupProperties", &(ids, names.to_vec()))
        .expect("the tray menu's entries");
    let mut entries: Vec<Entry> = reply
        .into_iter()
        .filter_map(|(id, props)| {
            let label = match props.get("label").map(|v| &**v) {
                Some(Value::Str(s)) => s.as_str().replace('_', ""),
                _ => return None,
            };
            let ticked = match (
                props.get("toggle-type").map(|v| &**v),
                props.get("toggle-state").map(|v| &**v),
            ) {
                (Some(Value::Str(kind)), Some(Value::I32(state))) if !kind.is_empty() => {
                    Some(*state == 1)
                }
                _ => None,
            };
            Some(Entry { id, label, ticked })
        })
        .collect();
    entries.sort_by_key(|e| e.id);
    entries
}

/// Clicks the menu entry labelled `label`, as the panel does when the user picks it.
pub fn click_entry(bus: &str, item: &Item, label: &str) {
    let entries = menu_entries(bus, item);
    let entry = entries
        .iter()
        .find(|e| e.label == label)
        .unwrap_or_else(|| panic!("no {label:?} in the tray menu: {entries:?}"));
    let connection = connect(bus);
    let menu = menu(&connection, item);
    let _: () = menu
        .call("Event", &(entry.id, "clicked", Value::I32(0), 0u32))
        .expect("menu click");
}
