//! This node's side of delivery: the local sessions of each user, the callers waiting for a
//! command's result, and the consumer of this node's queue (`gw.deliver`, key = node id).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::Recipient;
use chat_bus::{Replies, Subscription};
use chat_protocol::bus::NodeMessage;
use chat_protocol::{RoomId, UserId};
use tracing::{debug, warn};

use crate::metrics::metrics;

/// A serialized server frame for a session, and the room it belongs to (none for a frame of no
/// room): a session holds a room's pushes back while it answers a `sync` of it.
#[derive(actix::Message, Clone)]
#[rtype(result = "()")]
pub struct Push {
    pub room: Option<RoomId>,
    /// The event's seq in the room, when it has one.
    pub seq: Option<i64>,
    pub frame: Arc<str>,
}

/// Tells a session to close because it cannot keep up.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct SlowConsumer;

/// Tells a session to close, and why.
#[derive(actix::Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum GoingAway {
    /// This node shuts down: the client reconnects elsewhere (close code 1012).
    Restart,
    /// The user's access was revoked (disabled): close code 1008.
    Revoked,
}

/// How the hub reaches one session.
pub struct SessionHandle {
    pub push: Recipient<Push>,
    pub slow: Recipient<SlowConsumer>,
    pub going_away: Recipient<GoingAway>,
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

    /// Close every local session (shutdown): clients reconnect to another node and sync.
    pub fn close_all(&self) {
        if let Ok(sessions) = self.sessions.read() {
            for s in sessions.values().flatten() {
                s.handle.going_away.do_send(GoingAway::Restart);
            }
        }
    }

    /// Close every local session of one user (disabled).
    pub fn close_user(&self, user: &UserId) {
        if let Ok(sessions) = self.sessions.read() {
            for s in sessions.get(user).into_iter().flatten() {
                s.handle.going_away.do_send(GoingAway::Revoked);
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

    /// Push a frame (of `room`, if any) to every local session of these users. A session whose
    /// mailbox is full is told to close (it will `sync` when it comes back); nothing waits for it.
    pub fn deliver(&self, recipients: &[UserId], room: Option<&RoomId>, seq: Option<i64>, frame: Arc<str>) -> usize {
        let Ok(sessions) = self.sessions.read() else {
            return 0;
        };
        let mut pushed = 0;
        for user in recipients {
            for s in sessions.get(user).into_iter().flatten() {
                match s.handle.push.try_send(Push { room: room.cloned(), seq, frame: frame.clone() }) {
                    Ok(()) => pushed += 1,
                    Err(_) => s.handle.slow.do_send(SlowConsumer),
                }
            }
        }
        pushed
    }

    /// The callers of this node waiting for a command's answer.
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// Consume this node's queue until it ends (a batch's items in order). Its messages need no
    /// settling: the queue is consumed without acks.
    pub async fn run(self: Arc<Self>, mut queue: Subscription) {
        while let Some(delivery) = queue.recv().await {
            match serde_json::from_slice::<NodeMessage>(&delivery.payload) {
                Ok(message) => message.into_items().for_each(|item| self.handle(item)),
                Err(err) => warn!(error = %err, "undecodable node message dropped"),
            }
            // A no-op (node queues are consumed without acks), for any bus that acks them.
            let _ = delivery.ack().await;
        }
        debug!("node queue ended");
    }

    /// One reply or delivery from this node's queue.
    fn handle(&self, message: NodeMessage) {
        match message {
            NodeMessage::Reply { correlation_id, outcome } => self.replies.resolve(&correlation_id, outcome),
            NodeMessage::Deliver { recipients, seq, frame, committed_at_ms, room_id } => {
                // The frame's text as the room encoded it: shared by every session, not re-encoded.
                self.deliver(&recipients, room_id.as_ref(), seq, Arc::from(frame));
                let latency_ms = chat_protocol::now_ms().saturating_sub(committed_at_ms).max(0);
                metrics().delivery_latency.observe(latency_ms as f64 / 1000.0);
            }
            NodeMessage::Batch { .. } => {} // unrolled by `into_items`
        }
    }
}
