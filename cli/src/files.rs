//! Files in `lanchat join`: `/file PATH [NICK]` shares one, `/save N [DIR]` saves the file
//! of card N (numbered as they appear). Transfers run beside the chat, report progress at
//! most once a second (speed and time left), and resume by themselves after a lost
//! connection or a host restart (see `Client::share_file`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lanchat::client::{Client, Incoming, Outgoing};
use lanchat::protocol::human_size;
use tokio::sync::mpsc;

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// What a transfer reports to the chat loop.
#[derive(Debug)]
pub enum Note {
    Progress {
        direction: Direction,
        name: String,
        done: u64,
        total: u64,
        /// Bytes a second, over the transfer so far.
        rate: f64,
    },
    Done {
        direction: Direction,
        name: String,
        saved: Option<PathBuf>,
    },
    Failed {
        direction: Direction,
        name: String,
        error: String,
    },
}

impl Note {
    /// The line `lanchat join` prints.
    pub fn text(&self) -> String {
        match self {
            Note::Progress {
                direction,
                name,
                done,
                total,
                rate,
            } => {
                let percent = if *total == 0 { 100 } else { done * 100 / total };
                let left = if *rate > 0.0 {
                    format!(", {} s left", ((total - done) as f64 / rate).ceil() as u64)
                } else {
                    String::new()
                };
                format!(
                    "* {} of \"{name}\": {percent}% ({} of {}, {}/s{left})",
                    direction.word(),
                    human_size(*done),
                    human_size(*total),
                    human_size(*rate as u64)
                )
            }
            Note::Done {
                direction: Direction::Upload,
                name,
                ..
            } => format!("* sent \"{name}\": the host has it whole and checked"),
            Note::Done { saved, name, .. } => match saved {
                Some(path) => format!("* saved \"{name}\" as {} (SHA-256 checked)", path.display()),
                None => format!("* saved \"{name}\""),
            },
            Note::Failed {
                direction,
                name,
                error,
            } => format!("* {} of \"{name}\" failed: {error}", direction.word()),
        }
    }

    /// The JSON line `lanchat join --json` prints.
    pub fn json(&self) -> String {
        use serde_json::json;
        match self {
            Note::Progress {
                direction,
                name,
                done,
                total,
                rate,
            } => json!({"type":"transfer","direction":direction.word(),"name":name,
                        "state":"progress","done":done,"total":total,"rate":*rate as u64}),
            Note::Done {
                direction,
                name,
                saved,
            } => json!({"type":"transfer","direction":direction.word(),"name":name,
                        "state":"done","path":saved}),
            Note::Failed {
                direction,
                name,
                error,
            } => json!({"type":"transfer","direction":direction.word(),"name":name,
                        "state":"failed","error":error}),
        }
        .to_string()
    }
}

/// Told the bytes done so far.
type Progress = Box<dyn FnMut(u64) + Send>;
/// A transfer: where the file was saved, for a download.
type Work =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<PathBuf>, String>> + Send>>;

/// Transfers in progress and the cards `/save` can name.
pub struct Transfers {
    notes: mpsc::Sender<Note>,
    pub received: mpsc::Receiver<Note>,
    /// Transfers still running: `lanchat join` does not leave before they end.
    pub active: usize,
    /// Every file card seen, numbered from 1 in order.
    cards: Vec<Incoming>,
}

impl Transfers {
    pub fn new() -> Self {
        let (notes, received) = mpsc::channel(64);
        Self {
            notes,
            received,
            active: 0,
            cards: Vec::new(),
        }
    }

    /// Remembers a card; its number for `/save`.
    pub fn card(&mut self, file: Incoming) -> usize {
        if let Some(at) = self.cards.iter().position(|c| c.id == file.id) {
            return at + 1;
        }
        self.cards.push(file);
        self.cards.len()
    }

    /// A transfer ended (its `Done` or `Failed` note arrived).
    pub fn ended(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    /// `/file PATH [NICK]`: hashes the file and uploads it in the background.
    pub fn share(&mut self, client: &Client, args: &str) -> Result<(), String> {
        let (path, to) = split_path_and_nick(args).ok_or("usage: /file PATH [NICK]")?;
        let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("{} is not a file", path.display()));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.spawn(Direction::Upload, name, meta.len(), {
            let client = client.clone();
            move |mut progress: Progress| {
                Box::pin(async move {
                    let file = Outgoing::prepare(&path, to)
                        .await
                        .map_err(|e| e.to_string())?;
                    client
                        .share_file(&file, &mut *progress)
                        .await
                        .map(|()| None)
                        .map_err(|e| e.to_string())
                })
            }
        });
        Ok(())
    }

    /// `/save N [DIR]`: downloads card N into DIR or the Downloads folder.
    pub fn save(&mut self, client: &Client, args: &str) -> Result<(), String> {
        let (number, dir) = args.split_once(' ').unwrap_or((args, ""));
        let card = number
            .trim()
            .trim_start_matches('#')
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| self.cards.get(n))
            .ok_or_else(|| {
                format!(
                    "usage: /save N [DIR], N being a file's number (1-{})",
                    self.cards.len()
                )
            })?
            .clone();
        let dir = match dir.trim() {
            "" => lanchat::client::transfer::downloads_dir()
                .ok_or("no Downloads folder here; name one: /save N DIR")?,
            dir => PathBuf::from(dir),
        };
        let name = card.card.name.clone();
        let size = card.card.size;
        self.spawn(Direction::Download, name, size, {
            let client = client.clone();
            move |mut progress: Progress| {
                Box::pin(async move {
                    client
                        .download_file(&card, &dir, &mut *progress)
                        .await
                        .map(Some)
                        .map_err(|e| e.to_string())
                })
            }
        });
        Ok(())
    }

    fn spawn(
        &mut self,
        direction: Direction,
        name: String,
        total: u64,
        work: impl FnOnce(Progress) -> Work + Send + 'static,
    ) {
        self.active += 1;
        let notes = self.notes.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut last = Instant::now() - Duration::from_secs(1);
            let mut first: Option<u64> = None;
            let progress_notes = notes.clone();
            let progress_name = name.clone();
            let progress: Progress = Box::new(move |done: u64| {
                let from = *first.get_or_insert(done);
                if last.elapsed() < Duration::from_secs(1) || done >= total || done == from {
                    return;
                }
                last = Instant::now();
                let rate = (done - from) as f64 / started.elapsed().as_secs_f64().max(0.001);
                let _ = progress_notes.try_send(Note::Progress {
                    direction,
                    name: progress_name.clone(),
                    done,
                    total,
                    rate,
                });
            });
            let note = match work(progress).await {
                Ok(saved) => Note::Done {
                    direction,
                    name,
                    saved,
                },
                Err(error) => Note::Failed {
                    direction,
                    name,
                    error,
                },
            };
            let _ = notes.send(note).await;
        });
    }
}

/// "PATH" or "PATH NICK"; a path with spaces can be quoted ("my file.pdf" bob).
fn split_path_and_nick(args: &str) -> Option<(PathBuf, Option<String>)> {
    let args = args.trim();
    if args.is_empty() {
        return None;
    }
    if let Some(rest) = args.strip_prefix('"') {
        let (path, nick) = rest.split_once('"')?;
        let nick = nick.trim();
        return Some((
            PathBuf::from(path),
            (!nick.is_empty()).then(|| nick.to_owned()),
        ));
    }
    if std::path::Path::new(args).exists() {
        return Some((PathBuf::from(args), None));
    }
    match args.rsplit_once(' ') {
        Some((path, nick)) => Some((PathBuf::from(path.trim()), Some(nick.to_owned()))),
        None => Some((PathBuf::from(args), None)),
    }
}
