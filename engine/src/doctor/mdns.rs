//! Does mDNS get out and back on an interface, and who else answers? One query (for LAN
//! Chat rooms and for every service type) sent to 224.0.0.251 from the interface, then
//! listening: our own query coming back through this computer's network stack says the
//! local firewall lets mDNS through; answers from other addresses say other devices can be
//! heard (none at all on a real network suggests isolation or a firewall in between).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const PORT: u16 = 5353;

/// What one interface saw.
#[derive(Debug, Clone, Serialize)]
pub struct MdnsProbe {
    pub interface: String,
    pub address: Ipv4Addr,
    /// Our own query was received back (it left and re-entered through the local firewall).
    pub came_back: bool,
    /// Other addresses that answered (or asked) over mDNS meanwhile.
    pub responders: Vec<Ipv4Addr>,
    /// Those whose answers name LAN Chat rooms.
    pub lanchat: Vec<Ipv4Addr>,
    /// Why the probe could not run, if it could not.
    pub error: Option<String>,
}

/// Probes `interface` (address `address`) for `listen`; `own` are this machine's addresses.
/// Blocking: run it on a blocking thread.
pub fn probe(interface: &str, address: Ipv4Addr, own: &[Ipv4Addr], listen: Duration) -> MdnsProbe {
    let mut result = MdnsProbe {
        interface: interface.to_owned(),
        address,
        came_back: false,
        responders: Vec::new(),
        lanchat: Vec::new(),
        error: None,
    };
    if let Err(e) = exchange(&mut result, own, listen) {
        result.error = Some(e.to_string());
    }
    result.responders.sort();
    result.responders.dedup();
    result.lanchat.sort();
    result.lanchat.dedup();
    result
}

fn exchange(result: &mut MdnsProbe, own: &[Ipv4Addr], listen: Duration) -> std::io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Only this interface's traffic, not every group member's on the machine.
    socket.set_multicast_all_v4(false)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)).into())?;
    socket.join_multicast_v4(&GROUP, &result.address)?;
    socket.set_multicast_if_v4(&result.address)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(255)?;
    let socket: std::net::UdpSocket = socket.into();
    socket.send_to(&query(), SocketAddrV4::new(GROUP, PORT))?;
    let deadline = Instant::now() + listen;
    let mut buf = [0u8; 9000];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        socket.set_read_timeout(Some(left))?;
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let (SocketAddr::V4(from), Some(packet)) = (from, buf.get(..len)) else {
            continue;
        };
        let from = *from.ip();
        let is_answer = packet.len() > 3 && packet[2] & 0x80 != 0;
        if own.contains(&from) {
            if !is_answer && packet == query().as_slice() {
                result.came_back = true;
            }
            continue;
        }
        result.responders.push(from);
        if is_answer && contains(packet, b"\x08_lanchat\x04_tcp") {
            result.lanchat.push(from);
        }
    }
}

/// A standard mDNS query (id 0, two PTR questions): `_lanchat._tcp.local` and
/// `_services._dns-sd._udp.local` (every responder that announces anything answers it).
fn query() -> Vec<u8> {
    let mut q = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0];
    for name in [
        &["_lanchat", "_tcp", "local"][..],
        &["_services", "_dns-sd", "_udp", "local"][..],
    ] {
        for label in name {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 12, 0, 1]);
    }
    q
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
