//! Hosting a room, the one way both `lanchat host` and the app do it: derive the room key,
//! listen, serve, announce on the LAN, and say where others can join; then close it for
//! everyone. The front ends only gather the options and present the result.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, ConfigStore};
use crate::discovery::{
    share_links, Announcer, Discovery, HostIdentity, InterfacePolicy, ShareLink,
};
use crate::host::{self, Host, HostConfig, HostError, Limits, RoomConfig};
use crate::identity::{Fingerprint, Identity, IdentityError};
use crate::lock::{PassphraseError, RoomKey};
use crate::protocol::{self, Invalid, RoomLink};
use crate::reach;

/// How to host.
#[derive(Clone)]
pub struct HostingOptions {
    /// The room to open (people can open more on the same host by joining them by name).
    pub room: String,
    /// Locks the room; only a key derived from it is kept.
    pub passphrase: Option<String>,
    /// The host's display name in listings ("alice-laptop", or the host user's nickname).
    pub name: String,
    /// The address to listen on; `None` is every address, IPv6 and IPv4.
    pub bind: Option<IpAddr>,
    /// Which port to listen on.
    pub port: PortChoice,
    pub limits: Limits,
    /// Where history is kept; `None` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// Whether browsers get the chat page on the host's port.
    pub page: bool,
    /// Announce the rooms on the LAN with this mDNS daemon; `None` to join by address only.
    pub discovery: Option<Discovery>,
    /// Where this installation's host id and key are kept; without it both change every run.
    pub config: Option<ConfigStore>,
    /// The installation's key, when the caller has it loaded already (else it comes from
    /// `config`, or is made for this run).
    pub identity: Option<Arc<Identity>>,
}

impl HostingOptions {
    /// Hosting `room` as `name` on the default port (or the next free one), every address, with the default limits,
    /// history in the default data directory, the page served, not announced.
    pub fn new(room: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            room: room.into(),
            passphrase: None,
            name: name.into(),
            bind: None,
            port: PortChoice::Default,
            limits: Limits::default(),
            data_dir: host::default_data_dir(),
            page: true,
            discovery: None,
            config: None,
            identity: None,
        }
    }
}

/// The port a host listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortChoice {
    /// [`reach::DEFAULT_PORT`], or when it is taken the first free one of the
    /// [`reach::FALLBACK_PORTS`] after it, or else any free port: where others look first
    /// when multicast does not reach them (the announcement says which it got).
    Default,
    /// Exactly this one (0: any free port).
    Exactly(u16),
}

/// Why a room could not be hosted.
#[derive(Debug, thiserror::Error)]
pub enum HostingError {
    #[error("invalid room name: {0}")]
    InvalidRoom(#[from] Invalid),
    #[error("passphrase: {0}")]
    Passphrase(#[from] PassphraseError),
    #[error("cannot listen on port {port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// Something that works, but not as well as it should; front ends show it.
#[derive(Debug, thiserror::Error)]
pub enum HostingWarning {
    #[error(
        "this system lets the host open {files} files, too few for {connections} connections; \
         raise `ulimit -n` (its hard limit) or allow fewer connections"
    )]
    OpenFileLimit { files: u64, connections: usize },
    #[error("{0}; this host's id changes every run")]
    HostId(ConfigError),
    #[error("not announced on the LAN: no discovery")]
    NotAnnounced,
}

/// A room being hosted in this process.
pub struct HostedRoom {
    room: String,
    locked: bool,
    key: Fingerprint,
    host: Host,
    local: SocketAddr,
    policy: InterfacePolicy,
    announcer: Option<Announcer>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<(), HostError>>,
    warnings: Vec<HostingWarning>,
}

impl HostedRoom {
    /// Opens the room and starts serving (and announcing) it. Call inside a tokio runtime.
    pub async fn start(options: HostingOptions) -> Result<Self, HostingError> {
        let room = protocol::validate_room(&options.room)?.to_owned();
        let key = match options.passphrase {
            Some(passphrase) => {
                let derived = tokio::task::spawn_blocking(move || RoomKey::create(&passphrase))
                    .await
                    .expect("deriving a key does not panic");
                Some(derived?)
            }
            None => None,
        };
        let locked = key.is_some();
        let mut warnings = Vec::new();
        // Each connection is a socket; leave room for the listener, history files and mDNS.
        let connections = options.limits.max_connections;
        if let Ok((files, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            if files < connections as u64 + 64 {
                warnings.push(HostingWarning::OpenFileLimit { files, connections });
            }
        }
        let id = match &options.config {
            Some(config) => {
                let (id, problem) = config.host_id();
                warnings.extend(problem.map(HostingWarning::HostId));
                id
            }
            None => crate::ids::random_hex(8),
        };
        let identity = match (options.identity, &options.config) {
            (Some(identity), _) => identity,
            (None, Some(config)) => Arc::new(Identity::load_or_create(config.dir())?),
            (None, None) => Arc::new(Identity::generate()?),
        };
        let host_key = identity.fingerprint();
        let host = Host::new(HostConfig {
            name: options.name.clone(),
            id: id.clone(),
            identity,
            rooms: vec![RoomConfig {
                name: room.clone(),
                key,
            }],
            limits: options.limits,
            page: options.page,
            data_dir: options.data_dir,
        })?;
        let listener = listen(options.bind, options.port)?;
        let local = listener
            .local_addr()
            .map_err(|e| HostingError::Host(HostError::Listener(e)))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let runner = host.clone();
        let served = tokio::spawn(async move {
            runner
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        let (policy, announcer) = match &options.discovery {
            Some(discovery) => {
                let identity = HostIdentity {
                    name: options.name,
                    id,
                    key: host_key,
                };
                let announcer = discovery.announce(&host, identity, local.port());
                (discovery.policy().clone(), Some(announcer))
            }
            None => {
                warnings.push(HostingWarning::NotAnnounced);
                (InterfacePolicy::automatic(), None)
            }
        };
        Ok(Self {
            room,
            locked,
            key: host_key,
            host,
            local,
            policy,
            announcer,
            stop,
            served,
            warnings,
        })
    }

    /// The room's name as validated (trimmed).
    pub fn room(&self) -> &str {
        &self.room
    }

    pub fn locked(&self) -> bool {
        self.locked
    }

    /// The host's key: in its links and announcement; its short code is what people compare.
    pub fn key(&self) -> Fingerprint {
        self.key
    }

    /// Where the host listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn announced(&self) -> bool {
        self.announcer.is_some()
    }

    /// The running host (for its room list).
    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn warnings(&self) -> &[HostingWarning] {
        &self.warnings
    }

    /// How people on the LAN reach the room: one address per interface (for a host that
    /// listens everywhere), or the one address it listens on.
    pub fn links(&self) -> Vec<ShareLink> {
        if self.local.ip().is_unspecified() {
            share_links(self.local.port(), &self.room, self.key, &self.policy)
        } else {
            vec![link("listening address", self.local, &self.room, self.key)]
        }
    }

    /// How this computer reaches the room (a browser here, or the only way in on a machine
    /// without a LAN).
    pub fn local_link(&self) -> ShareLink {
        let here = match self.local.ip() {
            ip if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.local.port())
            }
            _ => self.local,
        };
        link("this computer", here, &self.room, self.key)
    }

    /// Withdraws the announcements (goodbye packets), then closes the room for everyone and
    /// waits (bounded by `Limits::shutdown_grace`) until they are told.
    pub async fn close(self) -> Result<(), HostError> {
        if let Some(announcer) = self.announcer {
            announcer.stop().await;
        }
        let _ = self.stop.send(());
        match self.served.await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!("the host task failed: {e}");
                Ok(())
            }
        }
    }
}

/// Listens where `bind` says (every address if `None`) on the port `choice` says.
fn listen(
    bind: Option<IpAddr>,
    choice: PortChoice,
) -> Result<tokio::net::TcpListener, HostingError> {
    let on = |port: u16| match bind {
        Some(ip) => host::listen((ip, port).into()),
        None => host::listen_everywhere(port),
    };
    let ports: Vec<u16> = match choice {
        PortChoice::Exactly(port) => vec![port],
        PortChoice::Default => {
            let mut ports = reach::host_ports();
            ports.push(0);
            ports
        }
    };
    let mut failure = None;
    for port in ports {
        match on(port) {
            Ok(listener) => return Ok(listener),
            Err(source) => failure = Some(HostingError::Listen { port, source }),
        }
    }
    Err(failure.expect("at least one port is tried"))
}

fn link(interface: &str, addr: SocketAddr, room: &str, key: Fingerprint) -> ShareLink {
    ShareLink {
        interface: interface.into(),
        link: RoomLink::new(addr, room).with_key(key).to_string(),
        web: format!("https://{addr}/"),
        address: addr.to_string(),
    }
}
