//! This node's side of delivery: the local sessions of each user, the callers waiting for a
//! command's result, and the consumer of this node's queue (`gw.deliver`, key = node id).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use chat_bus::{Replies, Subscription};
use chat_protocol::bus::NodeMessage;
use chat_protocol::{RoomId, UserId};
use futures_util::task::AtomicWaker;
use serde::Serialize;
use tracing::{debug, warn};

use crate::metrics::metrics;

/// A server frame as it goes on the wire: a whole WebSocket text frame (header and JSON text),
/// built once and written as it is to every socket it goes to (server frames are not masked),
/// so a clone is a reference count, not a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame(Bytes);

/// The most a text frame header takes: opcode byte, length byte, 8-byte extended length.
const MAX_HEADER: usize = 10;

impl WireFrame {
    /// The text frame of `json`, a serialized server frame.
    pub fn text(json: &str) -> Self {
        let mut buf = BytesMut::with_capacity(header_len(json.len()) + json.len());
        put_header(&mut buf, 0x81, json.len());
        buf.put_slice(json.as_bytes());
        Self(buf.freeze())
    }

    /// The text frame of `frame` serialized straight behind the room left for its header.
    pub fn encode<T: Serialize + ?Sized>(frame: &T) -> Result<Self, serde_json::Error> {
        let mut buf = BytesMut::with_capacity(128);
        buf.put_bytes(0, MAX_HEADER);
        let mut writer = buf.writer();
        serde_json::to_writer(&mut writer, frame)?;
        let mut buf = writer.into_inner();
        let len = buf.len() - MAX_HEADER;
        buf.advance(MAX_HEADER - header_len(len));
        let mut header = &mut buf[..header_len(len)];
        put_header(&mut header, 0x81, len);
        Ok(Self(buf.freeze()))
    }

    /// The frame's bytes, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The frame's bytes, header included.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The frame's payload (for a text frame, its JSON).
    #[cfg(test)]
    pub fn payload(&self) -> &[u8] {
        let len = self.0.get(1).map_or(0, |b| b & 0x7f);
        let header = match len {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        self.0.get(header..).unwrap_or_default()
    }
}

/// How long the header of a server frame with a payload of `len` bytes is.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

/// Write the header of an unmasked, final frame: `first` is FIN and the opcode (0x81 text).
pub fn put_header(buf: &mut impl BufMut, first: u8, len: usize) {
    buf.put_u8(first);
    match len {
        0..=125 => buf.put_u8(len as u8),
        126..=0xffff => {
            buf.put_u8(126);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(127);
            buf.put_u64(len as u64);
        }
    }
}

/// A frame for a session, and the room it belongs to (none for a frame of no room): a session
/// holds a room's pushes back while it answers a `sync` of it. One per delivery, shared by every
/// session it goes to.
#[derive(Debug)]
pub struct Push {
    pub room: Option<RoomId>,
    /// The event's seq in the room, when it has one.
    pub seq: Option<i64>,
    pub frame: WireFrame,
}

/// Tells a session to close, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoingAway {
    /// This node shuts down: the client reconnects elsewhere (close code 1012).
    Restart,
    /// The user's access was revoked (disabled): close code 1008.
    Revoked,
    /// Its queue of pushes was full: the client is not reading (1008; it will `sync`).
    Slow,
}

impl GoingAway {
    fn code(self) -> u8 {
        match self {
            GoingAway::Restart => 1,
            GoingAway::Revoked => 2,
            GoingAway::Slow => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(GoingAway::Restart),
            2 => Some(GoingAway::Revoked),
            3 => Some(GoingAway::Slow),
            _ => None,
        }
    }
}

/// What the hub shares with one session: the pushes waiting for it (a bounded queue whose
/// buffer grows only while pushes wait, and is let go once they are taken) and why it must
/// close (set once, the first reason stands). One small allocation per session; the session's
/// task is woken through `waker` for either.
struct Inbox {
    queue: Mutex<VecDeque<Arc<Push>>>,
    capacity: usize,
    reason: AtomicU8,
    /// The session has ended: its pushes are dropped.
    ended: AtomicBool,
    waker: AtomicWaker,
}

/// An emptied queue keeps its buffer up to this many pushes.
const KEEP_QUEUE: usize = 16;

impl Inbox {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Arc<Push>>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What became of a push offered to a session.
enum Offer {
    Queued,
    /// The session's queue is full: it does not keep up.
    Full,
    /// The session has ended.
    Ended,
}

/// How the hub reaches one session: its queue of pushes and its close signal.
pub struct SessionHandle(Arc<Inbox>);

impl SessionHandle {
    fn offer(&self, push: &Arc<Push>) -> Offer {
        if self.0.ended.load(Ordering::Acquire) {
            return Offer::Ended;
        }
        {
            let mut queue = self.0.queue();
            if queue.len() >= self.0.capacity {
                return Offer::Full;
            }
            queue.push_back(push.clone());
        }
        self.0.waker.wake();
        Offer::Queued
    }

    fn close(&self, why: GoingAway) {
        if self.0.reason.compare_exchange(0, why.code(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.0.waker.wake();
        }
    }
}

/// The session's end of its link with the hub. Dropping it tells the hub the session ended.
pub struct SessionLink(Arc<Inbox>);

impl SessionLink {
    fn pop(&self) -> Option<Arc<Push>> {
        let mut queue = self.0.queue();
        let push = queue.pop_front();
        if queue.is_empty() && queue.capacity() > KEEP_QUEUE {
            *queue = VecDeque::new();
        }
        push
    }

    /// The next push waiting for the session.
    pub fn poll_push(&self, cx: &Context<'_>) -> Poll<Arc<Push>> {
        if let Some(push) = self.pop() {
            return Poll::Ready(push);
        }
        self.0.waker.register(cx.waker());
        self.pop().map_or(Poll::Pending, Poll::Ready)
    }

    fn reason(&self) -> Option<GoingAway> {
        GoingAway::from_code(self.0.reason.load(Ordering::Acquire))
    }

    /// Ready once the hub has told the session to close, with why.
    pub fn poll_going_away(&self, cx: &Context<'_>) -> Poll<GoingAway> {
        if let Some(why) = self.reason() {
            return Poll::Ready(why);
        }
        self.0.waker.register(cx.waker());
        self.reason().map_or(Poll::Pending, Poll::Ready)
    }
}

impl Drop for SessionLink {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
        *self.0.queue() = VecDeque::new();
    }
}

/// A session's link with the hub: the handle to register and the session's end. `capacity`
/// bounds the pushes waiting for the session; past it the session is told it is too slow.
pub fn session_link(capacity: usize) -> (SessionHandle, SessionLink) {
    let inbox = Arc::new(Inbox {
        queue: Mutex::new(VecDeque::new()),
        capacity: capacity.max(1),
        reason: AtomicU8::new(0),
        ended: AtomicBool::new(false),
        waker: AtomicWaker::new(),
    });
    (SessionHandle(inbox.clone()), SessionLink(inbox))
}

struct LocalSession {
    id: u64,
    handle: SessionHandle,
}

pub struct Hub {
    node_id: String,
    sessions: RwLock<HashMap<UserId, Vec<LocalSession>>>,
    replies: Replies,
    next_session: AtomicU64,
}

impl Hub {
    pub fn new(node_id: &str) -> Self {
        Self {
            node_id: node_id.to_owned(),
            sessions: RwLock::new(HashMap::new()),
            replies: Replies::default(),
            next_session: AtomicU64::new(1),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register(&self, user: &UserId, id: u64, handle: SessionHandle) {
        if let Ok(mut sessions) = self.sessions.write() {
            sessions.entry(user.clone()).or_default().push(LocalSession { id, handle });
        }
    }

    /// Whether session `id` of `user` is open here.
    pub fn has_session(&self, user: &UserId, id: u64) -> bool {
        self.sessions
            .read()
            .is_ok_and(|sessions| sessions.get(user).is_some_and(|list| list.iter().any(|s| s.id == id)))
    }

    /// Close every local session (shutdown): clients reconnect to another node and sync.
    pub fn close_all(&self) {
        if let Ok(sessions) = self.sessions.read() {
            for s in sessions.values().flatten() {
                s.handle.close(GoingAway::Restart);
            }
        }
    }

    /// Close every local session of one user (disabled).
    pub fn close_user(&self, user: &UserId) {
        if let Ok(sessions) = self.sessions.read() {
            for s in sessions.get(user).into_iter().flatten() {
                s.handle.close(GoingAway::Revoked);
            }
        }
    }

    pub fn unregister(&self, user: &UserId, id: u64) {
        if let Ok(mut sessions) = self.sessions.write() {
            if let Some(list) = sessions.get_mut(user) {
                list.retain(|s| s.id != id);
                if list.is_empty() {
                    sessions.remove(user);
                }
            }
        }
    }

    /// Push a frame (of `room`, if any) to every local session of these users. The WebSocket
    /// frame is built once, and only when some recipient has a session here; every session gets
    /// the same bytes. A session whose queue is full is told to close (it will `sync` when it
    /// comes back); nothing waits for it.
    pub fn deliver(&self, recipients: &[UserId], room: Option<&RoomId>, seq: Option<i64>, frame: &str) -> usize {
        let Ok(sessions) = self.sessions.read() else {
            return 0;
        };
        let mut push: Option<Arc<Push>> = None;
        let mut pushed = 0;
        for user in recipients {
            for s in sessions.get(user).into_iter().flatten() {
                let push = push
                    .get_or_insert_with(|| Arc::new(Push { room: room.cloned(), seq, frame: WireFrame::text(frame) }));
                match s.handle.offer(push) {
                    Offer::Queued => pushed += 1,
                    Offer::Full => s.handle.close(GoingAway::Slow),
                    Offer::Ended => {} // it unregisters itself
                }
            }
        }
        pushed
    }

    /// Push a frame (of `room`) to one session of these users (a call's signaling goes to the
    /// one device in the call). Returns 1 if it was queued, else 0.
    pub fn deliver_to_session(&self, recipients: &[UserId], session: u64, room: Option<&RoomId>, frame: &str) -> usize {
        let Ok(sessions) = self.sessions.read() else {
            return 0;
        };
        let target = recipients.iter().flat_map(|u| sessions.get(u).into_iter().flatten()).find(|s| s.id == session);
        let Some(s) = target else { return 0 };
        let push = Arc::new(Push { room: room.cloned(), seq: None, frame: WireFrame::text(frame) });
        match s.handle.offer(&push) {
            Offer::Queued => 1,
            Offer::Full => {
                s.handle.close(GoingAway::Slow);
                0
            }
            Offer::Ended => 0,
        }
    }

    /// The callers of this node waiting for a command's answer.
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// Consume this node's queue until it ends (a batch's items in order). Its messages need no
    /// settling: the queue is consumed without acks.
    pub async fn run(self: Arc<Self>, mut queue: Subscription) {
        while let Some(delivery) = queue.recv().await {
            delivery.process_span().in_scope(|| match serde_json::from_slice::<NodeMessage>(&delivery.payload) {
                Ok(message) => message.into_items().for_each(|item| self.handle(item)),
                Err(err) => warn!(error = %err, "undecodable node message dropped"),
            });
            // A no-op (node queues are consumed without acks), for any bus that acks them.
            let _ = delivery.ack().await;
        }
        debug!("node queue ended");
    }

    /// One reply or delivery from this node's queue.
    fn handle(&self, message: NodeMessage) {
        match message {
            NodeMessage::Reply { correlation_id, outcome } => self.replies.resolve(&correlation_id, outcome),
            NodeMessage::Deliver { recipients, seq, frame, committed_at_ms, room_id, session } => {
                // The frame's text as the room encoded it, framed once for every session.
                match session {
                    Some(session) => self.deliver_to_session(&recipients, session, room_id.as_ref(), frame.get()),
                    None => self.deliver(&recipients, room_id.as_ref(), seq, frame.get()),
                };
                let latency_ms = chat_protocol::now_ms().saturating_sub(committed_at_ms).max(0);
                metrics().delivery_latency.observe(latency_ms as f64 / 1000.0);
            }
            NodeMessage::Batch { .. } => {} // unrolled by `into_items`
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn a_delivery_is_framed_once_and_the_same_bytes_go_to_every_session() {
        let hub = Hub::new("n");
        let (alice, bob, carol) = (UserId::new("alice"), UserId::new("bob"), UserId::new("carol"));
        let (h1, l1) = session_link(4);
        let (h2, l2) = session_link(4);
        let (h3, l3) = session_link(4);
        hub.register(&alice, 1, h1);
        hub.register(&alice, 2, h2);
        hub.register(&bob, 3, h3);
        let room = RoomId::new("r");
        assert_eq!(hub.deliver(&[alice, bob, carol], Some(&room), Some(7), r#"{"type":"message"}"#), 3);
        let got: Vec<Arc<Push>> = [&l1, &l2, &l3]
            .iter()
            .map(|l| match l.poll_push(&cx()) {
                Poll::Ready(push) => push,
                Poll::Pending => panic!("no push"),
            })
            .collect();
        assert!(got.iter().all(|p| Arc::ptr_eq(p, &got[0])), "one push for all");
        assert_eq!(got[0].frame.payload(), br#"{"type":"message"}"#);
        assert_eq!(got[0].frame.bytes()[..2], [0x81, 18], "a final text frame, unmasked");
        assert_eq!((got[0].room.as_ref(), got[0].seq), (Some(&room), Some(7)));
        assert!(l1.poll_push(&cx()).is_pending());
        assert!(l1.poll_going_away(&cx()).is_pending());
    }

    #[test]
    fn a_full_queue_closes_its_session_as_slow_and_an_ended_one_gets_nothing() {
        let hub = Hub::new("n");
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
        let (h1, l1) = session_link(2);
        let (h2, l2) = session_link(2);
        hub.register(&alice, 1, h1);
        hub.register(&bob, 2, h2);
        drop(l2); // bob's session ended (not yet unregistered)
        for _ in 0..2 {
            assert_eq!(hub.deliver(&[alice.clone(), bob.clone()], None, None, "{}"), 1);
        }
        assert!(l1.poll_going_away(&cx()).is_pending());
        assert_eq!(hub.deliver(std::slice::from_ref(&alice), None, None, "{}"), 0, "full");
        assert_eq!(l1.poll_going_away(&cx()), Poll::Ready(GoingAway::Slow));
        hub.close_all();
        assert_eq!(l1.poll_going_away(&cx()), Poll::Ready(GoingAway::Slow), "the first reason stands");
        assert!(l1.poll_push(&cx()).is_ready(), "what was queued is still there");
        hub.unregister(&alice, 1);
        assert_eq!(hub.deliver(&[alice], None, None, "{}"), 0);
    }

    #[test]
    fn going_away_reaches_every_session_or_one_users() {
        let hub = Hub::new("n");
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
        let (h1, l1) = session_link(2);
        let (h2, l2) = session_link(2);
        hub.register(&alice, 1, h1);
        hub.register(&bob, 2, h2);
        hub.close_user(&bob);
        assert!(l1.poll_going_away(&cx()).is_pending());
        assert_eq!(l2.poll_going_away(&cx()), Poll::Ready(GoingAway::Revoked));
        hub.close_all();
        assert_eq!(l1.poll_going_away(&cx()), Poll::Ready(GoingAway::Restart));
    }

    #[test]
    fn a_frame_encoded_in_place_matches_one_framed_from_text() {
        let json = serde_json::json!({"type": "pong"});
        assert_eq!(WireFrame::encode(&json).expect("encodable"), WireFrame::text(&json.to_string()));
    }
}
