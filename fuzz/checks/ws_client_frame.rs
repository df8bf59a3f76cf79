//! The WebSocket client's side of a session: the bytes a client sends, read by the session's
//! `Reader` (actix-http's codec, fragments reassembled, the size and UTF-8 rules), each text
//! message read as a `ClientFrame` (`client_frame`) and a `send` checked (`check_send`), as the
//! session does. Included by the fuzz target `ws_client_frame` and by
//! `services/rooms/tests/fuzz_regressions.rs`, which replays the seeds and the regressions.
//!
//! Input: byte 0 picks the size limit (255: the default of `ws.max_frame_bytes`, 65536;
//! otherwise 4 times it), byte 1 how the bytes arrive (bits 0-5: chunks of 1-64 bytes; bit 6:
//! the payload is pending before each chunk; bit 7: the connection fails after the last one),
//! the rest is what the client wrote.
//!
//! Invariants: never a panic; the reader ends (no message without bytes to make it, and it
//! stops at a close, an error or the end); a text message is UTF-8 and at most the limit, a
//! ping's payload too; a refusal is one of the four closes (1009, 1007, 1003, 1002); a text is
//! either a frame or an error with one of the frame refusals; a `send` that passes its checks
//! has a valid client_msg_id, a room id that is a UUID and a body within the limits. The fuzz
//! target also checks that no allocation is larger than `alloc_bound` (nothing sized by a
//! length the client merely declares).

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use actix_http::error::PayloadError;
use actix_http::ws::CloseCode;
use actix_http::{BoxedPayloadStream, Payload};
use bytes::Bytes;
use chat_protocol::frames::ClientFrame;
use chat_protocol::{is_valid_client_id, Limits, Refusal};
use futures_util::Stream;
use rooms::actors::session::{check_send, client_frame, Inbound, Reader};

/// The default `ws.max_frame_bytes`.
const DEFAULT_MAX: usize = 65_536;

fn max_of(byte: u8) -> usize {
    if byte == u8::MAX {
        DEFAULT_MAX
    } else {
        usize::from(byte) * 4
    }
}

/// The largest single allocation decoding `data` may need: the bytes received (buffered,
/// grown by doubling) and one message of at most the limit, with room for small things.
#[allow(dead_code)] // the fuzz target's only: the replay test does not measure allocations
pub fn alloc_bound(data: &[u8]) -> usize {
    let max = data.first().map_or(0, |&b| max_of(b));
    2 * (data.len() + max) + 16 * 1024
}

/// The request payload: the client's bytes in chunks, maybe pending between them, maybe failing
/// at the end.
struct Chunks {
    data: Bytes,
    chunk: usize,
    pending: bool,
    fail: bool,
    /// Pending was returned for the next chunk already.
    waited: bool,
}

impl Stream for Chunks {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.data.is_empty() {
            if self.fail {
                self.fail = false;
                return Poll::Ready(Some(Err(PayloadError::Incomplete(None))));
            }
            return Poll::Ready(None);
        }
        if self.pending && !self.waited {
            self.waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.waited = false;
        let n = self.chunk.min(self.data.len());
        let chunk = self.data.split_to(n);
        Poll::Ready(Some(Ok(chunk)))
    }
}

pub fn check(data: &[u8]) {
    let [size, arrival, wire @ ..] = data else { return };
    let max = max_of(*size);
    let chunks = Chunks {
        data: Bytes::copy_from_slice(wire),
        chunk: usize::from(arrival & 0x3f) + 1,
        pending: arrival & 0x40 != 0,
        fail: arrival & 0x80 != 0,
        waited: false,
    };
    let payload = Payload::from(Box::pin(chunks) as BoxedPayloadStream);
    let mut reader = Reader::new(payload, max);
    let mut cx = Context::from_waker(Waker::noop());
    // Every poll takes a chunk, answers pending once before one, or gives a message made of at
    // least two bytes of a frame header: far fewer than this.
    let most_polls = 2 * wire.len() + 8;
    for _ in 0..most_polls {
        match reader.poll_next(&mut cx) {
            Poll::Pending => continue,
            Poll::Ready(None) => return,
            Poll::Ready(Some(Err(close))) => {
                let code = close.code;
                let known = [CloseCode::Size, CloseCode::Invalid, CloseCode::Unsupported, CloseCode::Protocol];
                assert!(known.contains(&code), "closed with {code:?}");
                return; // the session closes the connection: nothing more is read
            }
            Poll::Ready(Some(Ok(message))) => match message {
                Inbound::Text(text) => {
                    assert!(text.len() <= max, "a text of {} bytes with a limit of {max}", text.len());
                    assert!(std::str::from_utf8(&text).is_ok(), "a text that is not UTF-8");
                    frame(&text);
                }
                Inbound::Ping(payload) => assert!(payload.len() <= max, "a ping of {} bytes", payload.len()),
                Inbound::Pong => {}
                // The session ends on a close: nothing more is read.
                Inbound::Close => return,
            },
        }
    }
    panic!("the reader did not end within {most_polls} polls of {} bytes", wire.len());
}

/// A text message, as the session handles it.
fn frame(text: &[u8]) {
    let frame = match client_frame(text) {
        Ok(frame) => frame,
        Err(err) => {
            let codes = [Refusal::MalformedJson, Refusal::UnknownType, Refusal::UnknownField, Refusal::InvalidFrame];
            assert!(codes.contains(&err.code), "a text refused with {:?}", err.code);
            return;
        }
    };
    // What a frame holds reads back the same (the session answers with what it read).
    let json = serde_json::to_string(&frame).expect("a frame serialises");
    let back = client_frame(json.as_bytes()).expect("a serialised frame reads back");
    if let ClientFrame::Send { room_id, client_msg_id, body } = &frame {
        let limits = Limits::default();
        if check_send(&limits, room_id, client_msg_id, body).is_ok() {
            assert!(is_valid_client_id(client_msg_id), "client_msg_id {client_msg_id:?} accepted");
            // The forms a UUID is parsed from: simple, hyphenated, braced, URN.
            let uuid_len = [32, 36, 38, 45].contains(&room_id.as_str().len());
            assert!(uuid_len, "room id {room_id:?} accepted");
            assert_eq!(limits.check_body(body), Ok(()), "{body:?} accepted");
            let ClientFrame::Send { room_id: r, client_msg_id: c, body: b } = back else { panic!("{json} read back") };
            assert!(check_send(&limits, &r, &c, &b).is_ok(), "{json} (read back) refused");
        }
    }
}
