//! What the desktop app's end-to-end tests share: Xvfb, the app under WebDriver
//! (tauri-driver + WebKitWebDriver), a host in the test's own process, and a client of the
//! test's own on its own thread.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const APP: &str = env!("CARGO_BIN_EXE_lanchat-desktop");

/// The `lanchat` CLI, built beside the app (`cargo test --workspace` builds it; the app's
/// package alone does not).
pub fn lanchat_cli() -> PathBuf {
    let bin = Path::new(APP).with_file_name("lanchat");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p lanchat-cli` (cargo test --workspace does)",
        bin.display()
    );
    bin
}
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Kills a child process when dropped (tauri-driver gets SIGTERM so it stops its
/// WebKitWebDriver too).
pub struct Guard(pub Child, pub &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args([format!("-{}", self.1), self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a free display; returns it and the display name.
pub fn xvfb() -> (Guard, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (Debian's xvfb) must be installed");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let display = format!(":{}", line.trim());
    assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
    (Guard(child, "TERM"), display)
}

/// A tauri-driver, and the app session it drives.
pub struct Driver {
    agent: ureq::Agent,
    base: String,
    session: String,
    /// Where the links the app opened are written, one a line.
    opened: PathBuf,
    _process: Guard,
}

pub fn driver_binary() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/tauri-driver");
    if cargo_bin.exists() {
        cargo_bin
    } else {
        PathBuf::from("tauri-driver")
    }
}

impl Driver {
    /// Launches the app with its own config dir through a tauri-driver on `port`; returns
    /// the driver and how long the window took to become usable.
    pub fn launch(port: u16, display: &str, config_dir: &Path) -> (Driver, Duration) {
        Self::launch_on_bus(port, display, config_dir, None, &[])
    }

    /// [`Driver::launch`] with a D-Bus session bus (`bus`: its address), where one app
    /// instance owns the app's name and a second launch hands it its arguments. Without
    /// one, every launch is an app of its own (what tests of two apps need). `args`: the
    /// app's command line (a `lanchat://` link, as the system passes one).
    pub fn launch_on_bus(
        port: u16,
        display: &str,
        config_dir: &Path,
        bus: Option<&str>,
        args: &[&str],
    ) -> (Driver, Duration) {
        // Links open through xdg-open, which hands them to the default handler of https: here
        // a recorder (a desktop entry in the test's own XDG directories) that writes each to
        // a log (`opened_links`). Not in the config directory: the app makes that owner-only,
        // scripts included.
        let opener = std::env::temp_dir().join(format!("lanchat-test-opener-{port}"));
        let _ = std::fs::remove_dir_all(&opener);
        std::fs::create_dir_all(&opener).unwrap();
        let recorder = opener.join("browser.sh");
        let log = opener.join("opened-links.txt");
        std::fs::write(
            &recorder,
            format!("#!/bin/sh\necho \"$1\" >> '{}'\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(
            &recorder,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let xdg_config = opener.join("xdg-config");
        let xdg_data = opener.join("xdg-data");
        std::fs::create_dir_all(xdg_data.join("applications")).unwrap();
        std::fs::create_dir_all(&xdg_config).unwrap();
        std::fs::write(
            xdg_config.join("mimeapps.list"),
            "[Default Applications]\nx-scheme-handler/http=recorder.desktop\n\
             x-scheme-handler/https=recorder.desktop\n\
             x-scheme-handler/lanchat=lanchat.desktop\n",
        )
        .unwrap();
        std::fs::write(
            xdg_data.join("applications/recorder.desktop"),
            format!(
                "[Desktop Entry]\nType=Application\nName=Recorder\nExec={} %u\n\
                 MimeType=x-scheme-handler/http;x-scheme-handler/https;\n",
                recorder.display()
            ),
        )
        .unwrap();
        // lanchat:// links open the app itself, as its package's desktop entry says.
        std::fs::write(
            xdg_data.join("applications/lanchat.desktop"),
            format!(
                "[Desktop Entry]\nType=Application\nName=LAN Chat\nExec={APP} %u\n\
                 MimeType=x-scheme-handler/lanchat;\n"
            ),
        )
        .unwrap();
        let mut command = Command::new(driver_binary());
        match bus {
            Some(address) => command.env("DBUS_SESSION_BUS_ADDRESS", address),
            None => command.env_remove("DBUS_SESSION_BUS_ADDRESS"),
        };
        let process = command
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &(port + 1).to_string(),
            ])
            .env("DISPLAY", display)
            .env("LANCHAT_CONFIG_DIR", config_dir)
            // Hosted rooms keep their history here, never in the real data directory.
            .env("LANCHAT_DATA_DIR", config_dir.join("data"))
            // Saved files go here, never to the real Downloads folder.
            .env("LANCHAT_DOWNLOAD_DIR", config_dir.join("downloads"))
            .env("LANCHAT_LOG", "warn")
            .env("XDG_CONFIG_HOME", &xdg_config)
            .env("XDG_DATA_HOME", &xdg_data)
            .env("BROWSER", &recorder)
            .env_remove("XDG_CURRENT_DESKTOP")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver (cargo install tauri-driver) must be installed");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let started = Instant::now();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": APP, "args": args}
        }}});
        let mut response = agent
            .post(format!("{base}/session"))
            .send_json(&caps)
            .expect("new session");
        let body: Value = response.body_mut().read_json().unwrap();
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {body}"))
            .to_owned();
        let mut driver = Driver {
            agent,
            base,
            session,
            opened: log,
            _process: Guard(process, "TERM"),
        };
        // An app started for a link may be in its room already.
        driver.wait_until(
            "the first screen",
            "return ['screen-welcome', 'screen-home', 'screen-chat'] \
               .some((id) => !document.getElementById(id).hidden)",
        );
        let usable = started.elapsed();
        (driver, usable)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("POST", Some(body)) => self.agent.post(&url).send_json(&body),
            ("POST", None) => self.agent.post(&url).send_json(json!({})),
            ("DELETE", _) => self.agent.delete(&url).call(),
            _ => unreachable!(),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        response.body_mut().read_json().unwrap_or(Value::Null)
    }

    /// Opens `url` with the system's opener (xdg-open) as a user's click elsewhere would,
    /// in this app's environment (its display, settings, XDG directories and `bus`).
    pub fn xdg_open(&self, url: &str, display: &str, config_dir: &Path, bus: Option<&str>) {
        let opener = self.opened.parent().expect("the opener's directory");
        let mut command = Command::new("xdg-open");
        command
            .arg(url)
            .env("DISPLAY", display)
            .env("LANCHAT_CONFIG_DIR", config_dir)
            .env("LANCHAT_DATA_DIR", config_dir.join("data"))
            .env("LANCHAT_LOG", "info")
            .env("XDG_CONFIG_HOME", opener.join("xdg-config"))
            .env("XDG_DATA_HOME", opener.join("xdg-data"))
            .env_remove("XDG_CURRENT_DESKTOP");
        match bus {
            Some(address) => command.env("DBUS_SESSION_BUS_ADDRESS", address),
            None => command.env_remove("DBUS_SESSION_BUS_ADDRESS"),
        };
        let status = command
            .status()
            .expect("xdg-open (xdg-utils) must be installed");
        assert!(status.success(), "xdg-open {url}: {status}");
    }

    /// The links the app handed to the system's opener so far.
    pub fn opened_links(&self) -> String {
        std::fs::read_to_string(&self.opened).unwrap_or_default()
    }

    /// Runs JavaScript in the page; returns its value.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        let v = self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        );
        assert!(v["value"].get("error").is_none(), "script failed: {v}");
        v["value"].clone()
    }

    pub fn wait_until(&mut self, what: &str, script: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.call(
                "POST",
                "/execute/sync",
                Some(json!({"script": script, "args": []})),
            );
            if v["value"] == json!(true) {
                return;
            }
            if Instant::now() >= deadline {
                let shot = self.failure_screenshot();
                panic!("timed out waiting for {what}; last: {v}; screen: {shot}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            // W3C WebDriver's element reference key.
            if let Some(id) = v["value"]["element-6066-11e4-a52e-4f735466cecf"].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        let v = self.call("POST", &format!("/element/{id}/click"), None);
        if v["value"].get("error").is_some() {
            panic!("click {css}: {v}; screen: {}", self.failure_screenshot());
        }
    }

    /// Shift+Enter on the focused element, as real key presses (WebDriver actions).
    pub fn shift_enter(&self) {
        let keys = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "\u{E008}"},
            {"type": "keyDown", "value": "\u{E007}"},
            {"type": "keyUp", "value": "\u{E007}"},
            {"type": "keyUp", "value": "\u{E008}"}
        ]}]});
        let v = self.call("POST", "/actions", Some(keys));
        assert!(v["value"].get("error").is_none(), "shift+enter: {v}");
    }

    /// Types as a user would (key events, so "is typing" fires); "\u{E007}" is Enter.
    pub fn type_keys(&self, css: &str, text: &str) {
        let id = self.element(css);
        let v = self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
        assert!(v["value"].get("error").is_none(), "type into {css}: {v}");
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.call("GET", &format!("/element/{id}/text"), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the element's text contains `needle`.
    pub fn wait_text(&mut self, css: &str, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text(css);
            if text.contains(needle) {
                return;
            }
            if Instant::now() >= deadline {
                let shot = self.failure_screenshot();
                panic!("{css} never showed {needle:?}; it shows {text:?}; screen: {shot}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn set_size(&self, width: u32, height: u32) {
        let v = self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
        assert!(v["value"].get("error").is_none(), "resize: {v}");
    }

    /// Saves what the window shows when a wait fails, to see why.
    /// The browser link (on this computer) a hosting app shows.
    pub fn browser_link(&mut self) -> String {
        self.wait_text("#hosting-addresses", "https://127.0.0.1:");
        let addresses = self.text("#hosting-addresses");
        addresses
            .split_whitespace()
            .find(|w| w.starts_with("https://127.0.0.1:"))
            .unwrap_or_else(|| panic!("a browser link in {addresses:?}"))
            .to_owned()
    }

    pub fn failure_screenshot(&self) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-failures");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}.png", self.session));
        // A hidden window (in the tray) has no picture: say so rather than hide the failure.
        let v = self.call("GET", "/screenshot", None);
        match v["value"].as_str() {
            Some(data) => {
                let _ = std::fs::write(&path, decode_base64(data));
                path.display().to_string()
            }
            None => format!("no screenshot ({v})"),
        }
    }

    pub fn screenshot(&self, path: &Path) {
        let v = self.call("GET", "/screenshot", None);
        let data = v["value"].as_str().expect("screenshot data");
        std::fs::write(path, decode_base64(data)).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(format!("{}/session/{}", self.base, self.session))
            .call();
    }
}

pub fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => 0,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| value(c) as u32).collect();
        let n = v.iter().fold(0u32, |acc, x| (acc << 6) | x) << (6 * (4 - v.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..v.len() - 1]);
    }
    out
}

pub fn docs_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A host in this process, on a fixed port, that the test can stop and start again.
pub struct InProcessHost {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn host_identity() -> std::sync::Arc<lanchat::identity::Identity> {
    static KEY: std::sync::OnceLock<std::sync::Arc<lanchat::identity::Identity>> =
        std::sync::OnceLock::new();
    KEY.get_or_init(|| std::sync::Arc::new(lanchat::identity::Identity::generate().unwrap()))
        .clone()
}

impl InProcessHost {
    pub fn start(port: u16) -> InProcessHost {
        Self::start_with(port, host_identity(), None)
    }

    pub fn start_with(
        port: u16,
        identity: std::sync::Arc<lanchat::identity::Identity>,
        data_dir: Option<PathBuf>,
    ) -> InProcessHost {
        Self::start_limited(port, identity, data_dir, lanchat::host::Limits::default())
    }

    /// A host with these limits (a flood needs the per-client rate off).
    pub fn start_limited(
        port: u16,
        identity: std::sync::Arc<lanchat::identity::Identity>,
        data_dir: Option<PathBuf>,
        limits: lanchat::host::Limits,
    ) -> InProcessHost {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .unwrap();
                let host = lanchat::host::Host::new(lanchat::host::HostConfig {
                    name: "test-host".into(),
                    rooms: vec!["Lobby".into()],
                    limits,
                    page: true,
                    data_dir,
                    id: "app-test-host".into(),
                    // By default the same key every start, as a real host keeps it in its
                    // config directory: the app accepts no other once it has met the host.
                    identity,
                })
                .unwrap();
                ready.send(()).unwrap();
                host.run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        is_ready.recv_timeout(PATIENCE).expect("host started");
        InProcessHost {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// A client of the test's own, on a runtime of its own thread: joins Lobby, then does `work`.
pub fn with_client<T: Send + 'static>(
    url: String,
    nick: &'static str,
    work: impl FnOnce(
            lanchat::client::Client,
            tokio::sync::mpsc::Receiver<lanchat::client::ClientEvent>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
        + Send
        + 'static,
) -> std::thread::JoinHandle<T> {
    with_client_in(url, "Lobby", nick, work)
}

/// [`with_client`] in room `room`.
pub fn with_client_in<T: Send + 'static>(
    url: String,
    room: &'static str,
    nick: &'static str,
    work: impl FnOnce(
            lanchat::client::Client,
            tokio::sync::mpsc::Receiver<lanchat::client::ClientEvent>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
        + Send
        + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut events) = lanchat::client::Client::connect(
                lanchat::client::ClientOptions::new(url.as_str(), room, nick),
            );
            loop {
                match tokio::time::timeout(PATIENCE, events.recv()).await {
                    Ok(Some(lanchat::client::ClientEvent::Joined { .. })) => break,
                    Ok(Some(_)) => continue,
                    other => panic!("{nick} did not join: {other:?}"),
                }
            }
            work(client, events).await
        })
    })
}
