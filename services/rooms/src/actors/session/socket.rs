//! The session's socket: the response body that feeds the connection's writer (actix-http's
//! dispatcher) from two bounded queues of finished WebSocket frames, and the reader that turns
//! the request payload into client messages.
//!
//! Writing. A frame is queued as the bytes the socket gets (`WireFrame`: header and payload,
//! built once, shared between sessions), and the dispatcher copies it into its write buffer as
//! it goes; it polls the body only while that buffer has room, so the queues fill when the
//! client does not read. Live frames (acks, errors, pushes, pings, pongs) go first, at most
//! `live_cap` of them: a full live queue is the caller's to act on (the session closes the
//! client as too slow). Sync frames wait for room (at most `SYNC_QUEUE`). A close frame goes
//! ahead of everything still queued, and ends the body.
//!
//! Reading. Frames are decoded with actix-http's codec (at most `max` bytes each), fragmented
//! messages reassembled (at most `max` bytes in all), text checked to be UTF-8; what breaks a
//! rule is a close reason (1009, 1007, 1003, 1002). The payload is read only when the session
//! asks for the next message.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::Decoder;
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, ProtocolError};
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::Payload;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

use crate::hub::{header_len, put_header, WireFrame};

/// Frames of `sync` answers waiting for the socket (they wait for room, never close).
pub const SYNC_QUEUE: usize = 64;

/// A queue emptied by the writer keeps its buffer up to this many frames; a larger one is let go
/// (an idle session holds no buffer sized for its busiest moment).
const KEEP_QUEUE: usize = 16;

/// The session is closing or its connection is gone: nothing more is written.
#[derive(Debug)]
pub struct Gone;

/// The live queue is full: the client is not reading.
#[derive(Debug)]
pub struct Full;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A close frame is queued or written; the body ends after it.
    Closing,
    /// The dispatcher dropped the body: the connection is over.
    Gone,
}

struct Outbox {
    live: VecDeque<Bytes>,
    live_cap: usize,
    sync: VecDeque<Bytes>,
    close: Option<Bytes>,
    state: State,
    /// The dispatcher, waiting for a frame.
    writer: Option<Waker>,
    /// The session task, waiting for room in the live queue or for the connection to go.
    session: Option<Waker>,
    /// The sync answer in progress, waiting for room in (or the emptying of) the sync queue.
    sync_side: Option<Waker>,
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Let go of an empty queue's buffer when it has grown past `KEEP_QUEUE`.
fn trim(queue: &mut VecDeque<Bytes>) {
    if queue.is_empty() && queue.capacity() > KEEP_QUEUE {
        *queue = VecDeque::new();
    }
}

/// The session's side of the outbound queues. Clones share them (the sync answer in progress
/// holds one).
#[derive(Clone)]
pub struct Socket(Rc<RefCell<Outbox>>);

/// The response body: the dispatcher's side of the outbound queues.
pub struct Body(Rc<RefCell<Outbox>>);

/// A socket and the body that writes what it queues; `live_cap` bounds the live queue.
pub fn socket(live_cap: usize) -> (Socket, Body) {
    let outbox = Rc::new(RefCell::new(Outbox {
        live: VecDeque::new(),
        live_cap: live_cap.max(1),
        sync: VecDeque::new(),
        close: None,
        state: State::Open,
        writer: None,
        session: None,
        sync_side: None,
    }));
    (Socket(outbox.clone()), Body(outbox))
}

impl Socket {
    /// Queue a live frame; `Full` when the live queue is. After a close, frames are dropped.
    pub fn push(&self, frame: Bytes) -> Result<(), Full> {
        let mut o = self.0.borrow_mut();
        if o.state != State::Open {
            return Ok(());
        }
        if o.live.len() >= o.live_cap {
            return Err(Full);
        }
        o.live.push_back(frame);
        wake(&mut o.writer);
        Ok(())
    }

    /// Whether the live queue has room for one more frame.
    pub fn has_room(&self) -> bool {
        let o = self.0.borrow();
        o.live.len() < o.live_cap
    }

    /// Ready once the connection is gone (the dispatcher dropped the body). Until then the task
    /// is woken when it goes, and when the live queue gets room again after it was full.
    pub fn poll_gone(&self, cx: &Context<'_>) -> Poll<()> {
        let mut o = self.0.borrow_mut();
        if o.state == State::Gone {
            return Poll::Ready(());
        }
        park(&mut o.session, cx);
        Poll::Pending
    }

    /// Queue a sync frame, waiting for room.
    pub async fn push_sync(&self, frame: Bytes) -> Result<(), Gone> {
        let mut frame = Some(frame);
        poll_fn(|cx| {
            let mut o = self.0.borrow_mut();
            if o.state != State::Open {
                return Poll::Ready(Err(Gone));
            }
            if o.sync.len() >= SYNC_QUEUE {
                park(&mut o.sync_side, cx);
                return Poll::Pending;
            }
            if let Some(frame) = frame.take() {
                o.sync.push_back(frame);
            }
            wake(&mut o.writer);
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Wait until the writer has taken every queued sync frame: what is queued next, live or
    /// not, goes out after them.
    pub async fn sync_written(&self) -> Result<(), Gone> {
        poll_fn(|cx| {
            let mut o = self.0.borrow_mut();
            if o.state != State::Open {
                return Poll::Ready(Err(Gone));
            }
            if o.sync.is_empty() {
                return Poll::Ready(Ok(()));
            }
            park(&mut o.sync_side, cx);
            Poll::Pending
        })
        .await
    }

    /// Write a close frame ahead of what is still queued (dropped), and end the body after it.
    /// Only the first close counts.
    pub fn close(&self, reason: Option<CloseReason>) {
        let mut o = self.0.borrow_mut();
        if o.state != State::Open {
            return;
        }
        o.state = State::Closing;
        o.live = VecDeque::new();
        o.sync = VecDeque::new();
        o.close = Some(close_frame(reason));
        wake(&mut o.writer);
        wake(&mut o.sync_side);
    }
}

impl MessageBody for Body {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let mut o = self.0.borrow_mut();
        if let Some(close) = o.close.take() {
            return Poll::Ready(Some(Ok(close)));
        }
        if o.state != State::Open {
            return Poll::Ready(None);
        }
        if let Some(frame) = o.live.pop_front() {
            if o.live.len() + 1 >= o.live_cap {
                wake(&mut o.session); // it was full: the session may read the client again
            }
            trim(&mut o.live);
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(frame) = o.sync.pop_front() {
            wake(&mut o.sync_side);
            trim(&mut o.sync);
            return Poll::Ready(Some(Ok(frame)));
        }
        park(&mut o.writer, cx);
        Poll::Pending
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let mut o = self.0.borrow_mut();
        o.state = State::Gone;
        o.live = VecDeque::new();
        o.sync = VecDeque::new();
        o.close = None;
        wake(&mut o.session);
        wake(&mut o.sync_side);
    }
}

/// A ping with no payload.
pub fn ping_frame() -> Bytes {
    Bytes::from_static(&[0x89, 0x00])
}

/// A pong answering a ping's payload (at most 125 bytes of it, as for any control frame).
pub fn pong_frame(payload: &[u8]) -> Bytes {
    let payload = &payload[..payload.len().min(125)];
    let mut buf = BytesMut::with_capacity(2 + payload.len());
    put_header(&mut buf, 0x8a, payload.len());
    buf.put_slice(payload);
    buf.freeze()
}

/// A close frame: the code and the reason's text (at most 123 bytes, cut at a character).
pub fn close_frame(reason: Option<CloseReason>) -> Bytes {
    let Some(reason) = reason else {
        return Bytes::from_static(&[0x88, 0x00]);
    };
    let mut text = reason.description.as_deref().unwrap_or_default();
    if text.len() > 123 {
        let mut end = 123;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
    }
    let len = 2 + text.len();
    let mut buf = BytesMut::with_capacity(header_len(len) + len);
    put_header(&mut buf, 0x88, len);
    buf.put_u16(u16::from(reason.code));
    buf.put_slice(text.as_bytes());
    buf.freeze()
}

/// A text frame of the session's own (an ack, an error, a sync page's event).
pub fn text_frame<T: serde::Serialize + ?Sized>(frame: &T) -> Option<WireFrame> {
    WireFrame::encode(frame).ok()
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A text message, checked to be UTF-8.
    Text(Bytes),
    Ping(Bytes),
    Pong,
    Close,
}

/// A fragmented message being reassembled.
enum Partial {
    Text(BytesMut),
    /// Refused once whole (text frames only); only its size is kept, for the size check.
    Binary(usize),
}

fn reason(code: CloseCode, text: &str) -> CloseReason {
    CloseReason { code, description: Some(text.into()) }
}

/// The close of a protocol error.
pub fn close_for(err: &ProtocolError) -> CloseReason {
    match err {
        ProtocolError::Overflow => reason(CloseCode::Size, "frame too large"),
        ProtocolError::Io(io) if io.kind() == io::ErrorKind::InvalidData => reason(CloseCode::Invalid, "invalid utf-8"),
        ProtocolError::Io(io) if io.to_string().contains("size") => reason(CloseCode::Size, "message too large"),
        _ => reason(CloseCode::Protocol, "protocol error"),
    }
}

fn too_large() -> CloseReason {
    reason(CloseCode::Size, "message too large")
}

fn not_text() -> CloseReason {
    reason(CloseCode::Unsupported, "text frames only")
}

fn text(bytes: Bytes) -> Result<Inbound, CloseReason> {
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok(Inbound::Text(bytes)),
        Err(_) => Err(reason(CloseCode::Invalid, "invalid utf-8")),
    }
}

/// The client's messages, read from the request payload.
pub struct Reader {
    payload: Payload,
    buf: BytesMut,
    codec: Codec,
    max: usize,
    partial: Option<Partial>,
    eof: bool,
}

impl Reader {
    /// Frames and reassembled messages of at most `max` bytes.
    pub fn new(payload: Payload, max: usize) -> Self {
        Self { payload, buf: BytesMut::new(), codec: Codec::new().max_size(max), max, partial: None, eof: false }
    }

    /// The next message; an error is the close the client gets; `None` once the payload ended.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Inbound, CloseReason>>> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => match self.frame(frame) {
                    Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                    Ok(None) => continue,
                    Err(close) => return Poll::Ready(Some(Err(close))),
                },
                Ok(None) => {}
                Err(err) => return Poll::Ready(Some(Err(close_for(&err)))),
            }
            if self.buf.is_empty() && self.buf.capacity() > 0 {
                self.buf = BytesMut::new(); // nothing buffered between messages
            }
            if self.eof {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::from(chunk);
                    } else {
                        self.buf.extend_from_slice(&chunk);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    self.eof = true;
                    return Poll::Ready(Some(Err(close_for(&ProtocolError::Io(io::Error::other(err))))));
                }
                Poll::Ready(None) => self.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// One decoded frame: a message, nothing yet (a fragment), or the close it calls for.
    fn frame(&mut self, frame: Frame) -> Result<Option<Inbound>, CloseReason> {
        match frame {
            Frame::Text(bytes) => text(bytes).map(Some),
            Frame::Binary(_) => Err(not_text()),
            Frame::Ping(bytes) => Ok(Some(Inbound::Ping(bytes))),
            Frame::Pong(_) => Ok(Some(Inbound::Pong)),
            Frame::Close(_) => Ok(Some(Inbound::Close)),
            Frame::Continuation(item) => self.fragment(item),
        }
    }

    fn fragment(&mut self, item: Item) -> Result<Option<Inbound>, CloseReason> {
        let (bytes, last) = match item {
            Item::FirstText(bytes) => {
                self.partial = Some(Partial::Text(BytesMut::new()));
                (bytes, false)
            }
            Item::FirstBinary(bytes) => {
                self.partial = Some(Partial::Binary(0));
                (bytes, false)
            }
            Item::Continue(bytes) => (bytes, false),
            Item::Last(bytes) => (bytes, true),
        };
        let max = self.max;
        let size = match self.partial.as_mut() {
            Some(Partial::Text(buf)) => {
                let size = buf.len() + bytes.len();
                if size <= max {
                    buf.extend_from_slice(&bytes);
                }
                size
            }
            Some(Partial::Binary(size)) => {
                *size += bytes.len();
                *size
            }
            None => return Err(close_for(&ProtocolError::ContinuationNotStarted)),
        };
        if size > max {
            self.partial = None;
            return Err(too_large());
        }
        if !last {
            return Ok(None);
        }
        match self.partial.take() {
            Some(Partial::Text(buf)) => text(buf.freeze()).map(Some),
            _ => Err(not_text()),
        }
    }

    /// Wait for the next message.
    #[cfg(test)]
    pub async fn next(&mut self) -> Option<Result<Inbound, CloseReason>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use actix_codec::Encoder;
    use actix_http::ws::{Message, OpCode, Parser};

    use super::*;

    /// A payload carrying these client frames (masked, as a client sends them).
    fn payload(messages: Vec<Message>) -> Payload {
        let mut codec = Codec::new().client_mode();
        let mut buf = BytesMut::new();
        for m in messages {
            codec.encode(m, &mut buf).expect("encodable");
        }
        Payload::from(buf.freeze())
    }

    fn decode_server(bytes: &Bytes) -> Frame {
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = Codec::new().client_mode().max_size(1 << 20).decode(&mut buf).expect("a frame").expect("whole");
        assert!(buf.is_empty(), "one frame exactly");
        frame
    }

    #[actix_rt::test]
    async fn messages_are_read_and_fragments_reassembled() {
        let mut r = Reader::new(
            payload(vec![
                Message::Text("hello".into()),
                Message::Continuation(Item::FirstText(Bytes::from_static(b"{\"a\":"))),
                Message::Ping(Bytes::from_static(b"p")),
                Message::Continuation(Item::Continue(Bytes::from_static(b"1"))),
                Message::Continuation(Item::Last(Bytes::from_static(b"}"))),
                Message::Pong(Bytes::new()),
                Message::Close(None),
            ]),
            1024,
        );
        assert_eq!(r.next().await, Some(Ok(Inbound::Text(Bytes::from_static(b"hello")))));
        assert_eq!(r.next().await, Some(Ok(Inbound::Ping(Bytes::from_static(b"p")))));
        assert_eq!(r.next().await, Some(Ok(Inbound::Text(Bytes::from_static(b"{\"a\":1}")))));
        assert_eq!(r.next().await, Some(Ok(Inbound::Pong)));
        assert_eq!(r.next().await, Some(Ok(Inbound::Close)));
    }

    fn closed_with(messages: Vec<Message>, max: usize) -> CloseCode {
        let mut r = Reader::new(payload(messages), max);
        futures_util::FutureExt::now_or_never(r.next()).flatten().expect("an answer").expect_err("a close").code
    }

    #[test]
    fn broken_rules_close_with_their_codes() {
        let big = Bytes::from(vec![b'a'; 20]);
        assert_eq!(
            closed_with(vec![Message::Text(String::from_utf8(big.to_vec()).unwrap().into())], 10),
            CloseCode::Size
        );
        assert_eq!(
            closed_with(
                vec![
                    Message::Continuation(Item::FirstText(big.slice(..8))),
                    Message::Continuation(Item::Last(big.slice(..8))),
                ],
                10
            ),
            CloseCode::Size
        );
        assert_eq!(closed_with(vec![Message::Binary(Bytes::from_static(b"x"))], 10), CloseCode::Unsupported);
        assert_eq!(
            closed_with(
                vec![
                    Message::Continuation(Item::FirstBinary(big.slice(..2))),
                    Message::Continuation(Item::Last(big.slice(..2))),
                ],
                10
            ),
            CloseCode::Unsupported
        );
        assert_eq!(
            closed_with(
                vec![
                    Message::Continuation(Item::FirstText(Bytes::from_static(&[0xc3]))),
                    Message::Continuation(Item::Last(Bytes::from_static(&[0x28]))),
                ],
                10
            ),
            CloseCode::Invalid
        );
        // What the client codec would not write: a text frame that is not UTF-8, a continuation
        // that never started.
        for (payload, op, code) in
            [([0xffu8], OpCode::Text, CloseCode::Invalid), ([b'x'], OpCode::Continue, CloseCode::Protocol)]
        {
            let mut raw = BytesMut::new();
            Parser::write_message(&mut raw, payload, op, true, true);
            let mut r = Reader::new(Payload::from(raw.freeze()), 10);
            let got = futures_util::FutureExt::now_or_never(r.next()).flatten().expect("an answer");
            assert_eq!(got.expect_err("a close").code, code);
        }
    }

    #[test]
    fn control_frames_are_well_formed() {
        assert_eq!(decode_server(&ping_frame()), Frame::Ping(Bytes::new()));
        assert_eq!(decode_server(&pong_frame(b"abc")), Frame::Pong(Bytes::from_static(b"abc")));
        let long = "é".repeat(100);
        match decode_server(&close_frame(Some(reason(CloseCode::Policy, &long)))) {
            Frame::Close(Some(r)) => {
                assert_eq!(r.code, CloseCode::Policy);
                assert_eq!(r.description.as_deref().map(str::len), Some(122), "cut at a character");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decode_server(&close_frame(None)), Frame::Close(None));
    }

    #[test]
    fn text_frames_carry_their_json_with_the_right_length() {
        for len in [0, 125, 126, 65535, 65536] {
            let json = "x".repeat(len);
            let frame = WireFrame::text(&json);
            assert_eq!(decode_server(frame.bytes()), Frame::Text(Bytes::from(json.clone())), "{len}");
            let encoded = WireFrame::encode(&json).expect("encodable");
            assert_eq!(decode_server(encoded.bytes()), Frame::Text(Bytes::from(format!("\"{json}\""))), "{len}");
            assert_eq!(encoded.payload(), format!("\"{json}\"").as_bytes());
        }
    }

    #[actix_rt::test]
    async fn live_frames_go_first_a_close_ends_the_body_and_a_full_live_queue_says_so() {
        let (socket, mut body) = socket(2);
        let next =
            |body: &mut Body| futures_util::FutureExt::now_or_never(poll_fn(|cx| Pin::new(&mut *body).poll_next(cx)));
        socket.push_sync(Bytes::from_static(b"s1")).await.expect("queued");
        socket.push(Bytes::from_static(b"l1")).expect("room");
        socket.push(Bytes::from_static(b"l2")).expect("room");
        assert!(socket.push(Bytes::from_static(b"l3")).is_err(), "full");
        assert!(!socket.has_room());
        assert!(matches!(next(&mut body), Some(Some(Ok(b))) if b == "l1"));
        assert!(socket.has_room());
        assert!(matches!(next(&mut body), Some(Some(Ok(b))) if b == "l2"));
        assert!(matches!(next(&mut body), Some(Some(Ok(b))) if b == "s1"));
        assert!(next(&mut body).is_none(), "nothing queued: pending");
        socket.sync_written().await.expect("written");
        socket.push(Bytes::from_static(b"dropped")).expect("room");
        socket.close(None);
        assert!(matches!(next(&mut body), Some(Some(Ok(b))) if b == close_frame(None)));
        assert!(matches!(next(&mut body), Some(None)), "ended after the close");
        assert!(socket.push_sync(Bytes::from_static(b"late")).await.is_err());
        drop(body);
        assert!(poll_fn(|cx| Poll::Ready(socket.poll_gone(cx))).await.is_ready());
    }
}
