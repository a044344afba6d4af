//! The conversation view in the real app (Xvfb, WebDriver): a flood of messages with the
//! window's frames measured, scrolling back to the first of 20,000 messages, search that
//! jumps to a message, formatting, a link opened by the system's opener, an @mention.
//! Figures are printed; docs/search.png and docs/conversation.png are written.

mod desktop;
#[path = "common/sandbox.rs"]
mod sandbox;

use std::time::{Duration, Instant};

use desktop::*;
use serde_json::json;

/// The tests here measure frames: one app window at a time, so that no other window's work
/// is in their figures (on 2 cores, three windows side by side doubled the longest gap).
static ONE_WINDOW_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_window_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_WINDOW_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn url(port: u16) -> String {
    format!("wss://127.0.0.1:{port}/ws")
}

/// A host with no per-client rate (one test client plays a whole busy room).
fn busy_host(port: u16, data: &std::path::Path) -> InProcessHost {
    let limits = lanchat::host::Limits::default().with_message_rate(0.0);
    InProcessHost::start_limited(port, host_identity(), Some(data.to_owned()), limits)
}

/// Drops what a test client is told (acks and echoes): a client whose events nobody reads
/// stops to wait for its reader.
async fn drain(mut events: tokio::sync::mpsc::Receiver<lanchat::client::ClientEvent>) {
    while events.recv().await.is_some() {}
}

/// Writes a room "Lobby" whose messages (`(days ago, from, text)`, in order) were said days
/// ago, as the host's journal (PROTOCOL.md "Durable history"): the host takes it over when it
/// starts, like the data directory of a room that has been going for days.
fn lobby_from_days_ago(data: &std::path::Path, messages: &[(u64, &str, &str)]) {
    use sha2::Digest;
    let id: String = sha2::Sha256::digest(b"lobby")[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let room = data.join("rooms").join(id);
    std::fs::create_dir_all(&room).unwrap();
    std::fs::write(
        room.join("room.json"),
        r#"{"name":"Lobby","epoch":"5ca1ab1e0ddba115"}"#,
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut log = String::new();
    for (i, (days, from, text)) in messages.iter().enumerate() {
        let event = json!({"e": {"seq": i + 1, "ts": now - days * 86_400_000, "type": "message",
            "id": format!("old{i}"), "from": from, "text": text}});
        let line = event.to_string();
        log += &format!("{:08x} {line}\n", crc32fast::hash(line.as_bytes()));
    }
    std::fs::write(room.join(format!("{:020}.log", 1)), log).unwrap();
}

/// Starts recording the page's animation frames: the longest gap, how many, and the most
/// list items ever in the conversation.
const RECORD_FRAMES: &str = "
    const m = document.getElementById('messages');
    window.__frames = { count: 0, longest: 0, most: 0, last: performance.now(), gaps: [] };
    const tick = (t) => {
      const f = window.__frames;
      const gap = t - f.last;
      f.last = t;
      f.count += 1;
      f.longest = Math.max(f.longest, gap);
      if (gap > 50) f.gaps.push(Math.round(gap));
      f.most = Math.max(f.most, m.querySelectorAll('li.message, li.system').length);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    return true;";

fn join_lobby(driver: &mut Driver, port: u16, nick: &str) {
    driver.wait_text("#greeting", &format!("Hello, {nick}!"));
    driver.type_keys("#address-input", &format!("127.0.0.1:{port}"));
    driver.type_keys("#address-room", "Lobby\u{E007}");
    driver.wait_text("#messages", &format!("Welcome to Lobby, {nick}!"));
}

/// The resident memory (MB) of the app's page: its WebKitWebProcess (the newest, if several).
fn page_memory_mb() -> f64 {
    let mut newest: Option<(u64, f64)> = None;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if !status.starts_with("Name:\tWebKitWebProces") {
            continue;
        }
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if newest.is_none_or(|(p, _)| pid > p) {
            newest = Some((pid, kb / 1024.0));
        }
    }
    newest.map_or(0.0, |(_, mb)| mb)
}

/// A script: whether the conversation's last chat message says `text`. WebDriver's element text
/// would do, but it computes the rendered text of the whole list (styles of every node, for
/// 500 messages): each poll of it held the page up to 150 ms, longer than the frame gaps the
/// flood test measures.
fn last_message_says(text: &str) -> String {
    format!(
        "const all = document.querySelectorAll('#messages li.message'); \
         return all.length > 0 && all[all.length - 1].textContent.includes({})",
        json!(text)
    )
}

/// Sends `count` messages "{prefix} N" at `per_second`, then returns.
async fn send_at(client: &lanchat::client::Client, prefix: &str, count: usize, per_second: u64) {
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    for i in 0..count {
        every.tick().await;
        client.send(format!("{prefix} {i}")).await.unwrap();
    }
    client.pending_below(1).await;
}

#[test]
fn a_flood_of_messages_keeps_the_window_responsive_and_the_page_bounded() {
    const NAME: &str = "a_flood_of_messages_keeps_the_window_responsive_and_the_page_bounded";
    // Held by the test runner's thread while the test's own process runs (sandbox.rs).
    let _alone = one_window_at_a_time();
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = busy_host(47200, data.path());
    let (mut ivy, _) = Driver::launch(4460, &display, dir.path());
    join_lobby(&mut ivy, 47200, "ivy");
    ivy.js(RECORD_FRAMES, vec![]);

    let memory_before = page_memory_mb();

    // 3,000 messages at 400 a second, a pause, then 1,500 more (a laptop waking up).
    // LANCHAT_FLOOD_AFTER=100000 makes the second part that long (the benchmark of the
    // page's memory; BENCHMARKS.md), at 2,000 a second.
    let after: usize = std::env::var("LANCHAT_FLOOD_AFTER")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let after_rate = if after > 1500 { 2000 } else { 400 };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let hank = with_client(url(47200), "hank", move |hank, events| {
        Box::pin(async move {
            tokio::spawn(drain(events));
            send_at(&hank, "flood", 3000, 400).await;
            let _ = done_tx.send(Instant::now());
            tokio::time::sleep(Duration::from_secs(2)).await;
            send_at(&hank, "after the pause", after, after_rate).await;
            let _ = done_tx.send(Instant::now());
        })
    });
    let first_done = done_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    ivy.wait_until("the 3,000th message", &last_message_says("flood 2999"));
    let memory_warm = page_memory_mb();
    println!(
        "measured: the 3,000th message shown {:?} after it was acknowledged",
        first_done.elapsed()
    );
    let last_done = done_rx.recv_timeout(Duration::from_secs(600)).unwrap();
    ivy.wait_until(
        "the last message",
        &last_message_says(&format!("after the pause {}", after - 1)),
    );
    let shown_after = last_done.elapsed();
    hank.join().unwrap();
    let frames = ivy.js("return window.__frames", vec![]);
    let in_dom = ivy.js(
        "return document.querySelectorAll('#messages li').length",
        vec![],
    );
    let memory_after = page_memory_mb();
    // What stays once the page is quiet (WebKit collects garbage and returns pages lazily).
    let quiet = Duration::from_secs(if after > 1500 { 15 } else { 0 });
    std::thread::sleep(quiet);
    println!(
        "measured: the page's memory: {memory_before:.0} MB before, {memory_warm:.0} MB after \
         the first 3,000 messages, {memory_after:.0} MB after {after} more, {:.0} MB {quiet:?} \
         later",
        page_memory_mb(),
    );
    println!(
        "measured: 3,000 + {after} messages: {} frames, longest gap {:.0} ms, gaps over 50 ms: {}, \
         most messages in the page at once {}, list items now {in_dom}, last one shown {shown_after:?} \
         after it was acknowledged",
        frames["count"], frames["longest"].as_f64().unwrap_or(0.0), frames["gaps"], frames["most"]
    );
    let most = frames["most"].as_u64().unwrap();
    assert!(most <= 520, "the page held {most} messages at once");
    assert!(
        frames["count"].as_u64().unwrap() > 50,
        "the page kept drawing: {frames}"
    );
    // Nothing was lost on the way: scrolling up from the newest shows the ones before.
    let older = format!(
        "const m = document.getElementById('messages'); m.scrollTop = 0; \
         return m.textContent.includes('after the pause {}')",
        after - 600
    );
    ivy.wait_until(
        "the messages before the window, fetched when scrolled to the top",
        &older,
    );
    drop(ivy);
    host.stop();
}

#[test]
fn scrolling_back_reaches_the_first_message_and_search_jumps_to_an_old_one() {
    const NAME: &str = "scrolling_back_reaches_the_first_message_and_search_jumps_to_an_old_one";
    // Held by the test runner's thread while the test's own process runs (sandbox.rs).
    let _alone = one_window_at_a_time();
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let data = tempfile::tempdir().unwrap();
    // The room began three days ago (a zebra on its first day), then twenty thousand messages
    // today before ivy comes.
    lobby_from_days_ago(
        data.path(),
        &[
            (3, "hank", "the very first message mentions a zebra"),
            (2, "hank", "a quiet day in between"),
        ],
    );
    let host = busy_host(47210, data.path());
    let started = Instant::now();
    let hank = with_client(url(47210), "hank", move |hank, events| {
        Box::pin(async move {
            tokio::spawn(drain(events));
            for i in 1..20_000 {
                hank.send(format!("chatter number {i}")).await.unwrap();
                hank.pending_below(200).await;
            }
            hank.pending_below(1).await;
            // Search covers what the archivist copied: at most a quarter second behind.
            tokio::time::sleep(Duration::from_millis(600)).await;
            hank
        })
    });
    let hank_client = hank.join().unwrap();
    println!("measured: 20,000 messages sent in {:?}", started.elapsed());
    let (mut ivy, _) = Driver::launch(4462, &display, dir.path());
    join_lobby(&mut ivy, 47210, "ivy");
    ivy.wait_text("#messages", "chatter number 19999");

    let scrolling = Instant::now();
    ivy.js(RECORD_FRAMES, vec![]);
    let mut polls = 0;
    loop {
        polls += 1;
        let reached = ivy.js(
            "const m = document.getElementById('messages'); m.scrollTop = 0; \
             return m.textContent.includes('the very first message')",
            vec![],
        );
        if reached == json!(true) {
            break;
        }
        assert!(
            scrolling.elapsed() < Duration::from_secs(240),
            "never reached the first message"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let frames = ivy.js("return window.__frames", vec![]);
    println!(
        "measured: scrolled back through 20,000 messages to the first in {:?} ({polls} scrolls to \
         the top), at most {} messages in the page, longest frame gap {:.0} ms",
        scrolling.elapsed(),
        frames["most"],
        frames["longest"].as_f64().unwrap_or(0.0)
    );
    assert!(frames["most"].as_u64().unwrap() <= 520, "{frames}");
    let first_day = ivy.js(
        "return document.querySelector('#messages .day-separator')?.textContent ?? null",
        vec![],
    );
    println!("measured: the separator above the first message says {first_day}");
    let label = first_day.as_str().expect("a date separator at the top");
    assert!(
        !["Today", "Yesterday"].contains(&label),
        "the first day is three days ago, not {label}"
    );

    // Back to the newest, then search for the zebra and jump to it.
    ivy.click("#jump-button");
    ivy.wait_until(
        "the newest again",
        "return document.getElementById('messages').textContent.includes('chatter number 19999')",
    );
    ivy.js(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'f', ctrlKey: true})); return true",
        vec![],
    );
    ivy.wait_until(
        "the search box",
        "return document.activeElement.id === 'search-input'",
    );
    ivy.type_keys("#search-input", "zeb\u{E007}");
    ivy.wait_text("#search-status", "1 result for “zeb”");
    ivy.wait_text("#search-results", "the very first message mentions a zebra");
    ivy.screenshot(&docs_dir().join("search.png"));
    let clicked = Instant::now();
    ivy.click("#search-results .search-hit");
    ivy.wait_until(
        "the conversation around the result, the result highlighted",
        "const f = document.querySelector('#messages .message.found'); \
         return f !== null && f.textContent.includes('zebra')",
    );
    // Opened in its own day: the separator before it names that day, not today.
    let day_of_hit = ivy.js(
        "const f = document.querySelector('#messages .message.found'); \
         const days = [...document.querySelectorAll('#messages .day-separator')] \
           .filter((d) => d.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING); \
         return days.at(-1)?.textContent ?? null",
        vec![],
    );
    assert_eq!(
        day_of_hit.as_str(),
        Some(label),
        "the day the zebra was mentioned"
    );
    println!("measured: search result opened in {:?}", clicked.elapsed());
    assert_eq!(
        ivy.js(
            "return document.querySelector('#messages .message.found .from')?.textContent",
            vec![]
        ),
        json!("hank")
    );
    drop(hank_client);
    drop(ivy);
    host.stop();
}

#[test]
fn messages_show_formatting_open_links_outside_and_mentions_stand_out() {
    const NAME: &str = "messages_show_formatting_open_links_outside_and_mentions_stand_out";
    // Held by the test runner's thread while the test's own process runs (sandbox.rs).
    let _alone = one_window_at_a_time();
    if !sandbox::sandboxed(NAME) {
        return;
    }
    let (_x, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"nickname":"ivy"}"#).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = busy_host(47220, data.path());
    let (mut ivy, _) = Driver::launch(4464, &display, dir.path());
    join_lobby(&mut ivy, 47220, "ivy");
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    let wait_go = move || {
        let go = go_rx.clone();
        tokio::task::spawn_blocking(move || go.lock().unwrap().recv())
    };
    let hank = with_client(url(47220), "hank", move |hank, events| {
        Box::pin(async move {
            tokio::spawn(drain(events));
            hank.send("**Release** is _friday_, see https://example.org/notes?id=4.")
                .await
                .unwrap();
            hank.send("run `cargo test` first:\n```\ncargo test --workspace\n<b>not bold</b>\n```")
                .await
                .unwrap();
            hank.send("@ivy can you check? also <img src=x onerror=alert(1)>")
                .await
                .unwrap();
            hank.pending_below(1).await;
            let _ = wait_go().await;
            hank.send("this one came while you were away")
                .await
                .unwrap();
            hank.send("and this one too").await.unwrap();
            hank.pending_below(1).await;
            let _ = wait_go().await;
        })
    });
    ivy.wait_text("#messages", "can you check?");
    let shown = ivy.js(
        "const texts = [...document.querySelectorAll('#messages .message .text')]; \
         return { strong: texts[0].querySelector('strong')?.textContent, \
                  em: texts[0].querySelector('em')?.textContent, \
                  link: texts[0].querySelector('a')?.getAttribute('href'), \
                  code: texts[1].querySelector(':scope > code')?.textContent, \
                  block: texts[1].querySelector('pre code')?.textContent, \
                  injected: document.querySelectorAll('#messages b, #messages img:not(.thumb)').length, \
                  mention: texts[2].querySelector('.mention.me')?.textContent, \
                  flagged: texts[2].closest('.message').classList.contains('mentions-me') }",
        vec![],
    );
    println!("measured: rendered {shown}");
    assert_eq!(shown["strong"], json!("Release"));
    assert_eq!(shown["em"], json!("friday"));
    assert_eq!(shown["link"], json!("https://example.org/notes?id=4"));
    assert_eq!(shown["code"], json!("cargo test"));
    assert_eq!(
        shown["block"],
        json!("cargo test --workspace\n<b>not bold</b>")
    );
    assert_eq!(
        shown["injected"],
        json!(0),
        "markup in a message stays text"
    );
    assert_eq!(shown["mention"], json!("@ivy"));
    assert_eq!(shown["flagged"], json!(true));
    // Consecutive messages of one person are grouped under one name.
    let grouped = ivy.js(
        "return document.querySelectorAll('#messages .message.grouped').length",
        vec![],
    );
    assert_eq!(grouped, json!(2), "the 2nd and 3rd under the 1st's name");

    // The link opens outside the app (xdg-open, then $BROWSER), the page stays.
    ivy.click("#messages .message .text a");
    let deadline = Instant::now() + PATIENCE;
    while !ivy.opened_links().contains("example.org") {
        assert!(
            Instant::now() < deadline,
            "the link was not handed to the system's opener; the page says: {}",
            ivy.text("#messages")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "measured: opened through xdg-open: {}",
        ivy.opened_links().trim()
    );
    assert_eq!(
        ivy.js(
            "return document.getElementById('messages').textContent.includes('can you check')",
            vec![]
        ),
        json!(true),
        "the app still shows the room"
    );

    // Tab completes a nickname after @.
    ivy.type_keys("#message-input", "thanks @ha\u{E004}");
    assert_eq!(
        ivy.js(
            "return document.getElementById('message-input').value",
            vec![]
        ),
        json!("thanks @hank ")
    );
    ivy.screenshot(&docs_dir().join("conversation.png"));

    // Away from the window, two more arrive: a marker says where the unread ones start.
    ivy.js(
        "window.dispatchEvent(new Event('blur')); return true",
        vec![],
    );
    let _ = go_tx.send(());
    ivy.wait_text("#messages", "and this one too");
    ivy.js(
        "window.dispatchEvent(new Event('focus')); return true",
        vec![],
    );
    let marker = ivy.js(
        "const m = document.querySelector('#messages .unread-marker'); \
         return m && m.nextElementSibling.textContent.includes('while you were away')",
        vec![],
    );
    assert_eq!(
        marker,
        json!(true),
        "the marker is right before the first unread message"
    );
    ivy.screenshot(&docs_dir().join("unread.png"));
    // Sending something means it has been read.
    ivy.js(
        "document.getElementById('message-input').value = ''; return true",
        vec![],
    );
    ivy.type_keys("#message-input", "on it\u{E007}");
    ivy.wait_until(
        "the marker gone",
        "return document.querySelector('#messages .unread-marker') === null",
    );
    let _ = go_tx.send(());
    hank.join().unwrap();
    drop(ivy);
    host.stop();
}
