//! A bare Tauri window (a one-line page, no plugins, no engine): what `scripts/measure-app`
//! compares the app's idle memory with, built and measured in the same run. A page, not
//! about:blank: WebKit starts no web process for that (and a data: URL needs a feature the
//! app does not build with).

use tauri::{WebviewUrl, WebviewWindowBuilder};

fn main() {
    let mut context = tauri::generate_context!();
    // Not the app's window (tauri.conf.json): one of its own, on a page of one line.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .register_uri_scheme_protocol("bare", |_, _| {
            tauri::http::Response::builder()
                .header("content-type", "text/html")
                .body(b"<!doctype html><title>Bare</title><p>A bare Tauri window".to_vec())
                .expect("a response")
        })
        .setup(|app| {
            let page = "bare://localhost/".parse().expect("a URL");
            WebviewWindowBuilder::new(app, "bare", WebviewUrl::CustomProtocol(page))
                .title("Bare Tauri window")
                .inner_size(1000.0, 720.0)
                .build()?;
            Ok(())
        })
        .run(context)
        .expect("the bare window runs");
}
