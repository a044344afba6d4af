//! Server-to-client WebSocket frames (RFC 6455, section 5.2), built by the host itself:
//! final, unmasked. A room frames each event once; members' writers copy those bytes into
//! their batches (see `feed`), never re-encode them.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A host frame's JSON, serialized once for the wire.
pub(crate) fn json<T: serde::Serialize>(frame: &T) -> Utf8Bytes {
    // These types always serialize (string keys only, validated finite floats).
    Utf8Bytes::from(crate::protocol::encode(frame).unwrap_or_else(|e| {
        tracing::error!("failed to encode a host frame: {e}");
        String::from(r#"{"type":"error","code":"bad_frame","message":"internal encoding error"}"#)
    }))
}

/// A text frame carrying `payload` (UTF-8 JSON).
pub(crate) fn text(payload: &[u8]) -> Bytes {
    frame(0x1, payload)
}

/// A ping with no data.
pub(crate) fn ping() -> Bytes {
    Bytes::from_static(&[0x80 | 0x9, 0])
}

/// The answer to a client's ping (control frames carry at most 125 bytes).
pub(crate) fn pong(data: &[u8]) -> Bytes {
    frame(0xA, &data[..data.len().min(125)])
}

/// A close frame with a status code and a short reason.
pub(crate) fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    frame(0x8, &payload)
}

/// The header of a text frame whose payload (`len` bytes) is written after it in pieces,
/// so shared bytes can go out without being copied into one buffer.
pub(crate) fn text_header(len: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(10);
    put_header(&mut out, 0x1, len);
    out.freeze()
}

fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    put_header(&mut out, opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

fn put_header(out: &mut BytesMut, opcode: u8, len: usize) {
    out.put_u8(0x80 | opcode);
    match len {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= 0xFFFF => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    fn tungstenite(frame: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    /// Byte for byte what tungstenite itself writes, at every length encoding.
    #[test]
    fn frames_match_tungstenites() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
            let payload = vec![b'x'; len];
            let theirs = Frame::message(payload.clone(), OpCode::Data(Data::Text), true);
            assert_eq!(
                &text(&payload)[..],
                &tungstenite(theirs)[..],
                "length {len}"
            );
            let mut pieces = text_header(len).to_vec();
            pieces.extend_from_slice(&payload);
            assert_eq!(&pieces[..], &text(&payload)[..], "header of length {len}");
        }
        assert_eq!(&ping()[..], &tungstenite(Frame::ping(Vec::new()))[..]);
        assert_eq!(
            &pong(b"abc")[..],
            &tungstenite(Frame::pong(b"abc".to_vec()))[..]
        );
        let theirs = Frame::close(Some(CloseFrame {
            code: CloseCode::Size,
            reason: "too big".into(),
        }));
        assert_eq!(&close(1009, "too big")[..], &tungstenite(theirs)[..]);
    }
}
