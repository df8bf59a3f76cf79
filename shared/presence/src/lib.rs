//! Presence: which gateway node hosts sessions of which user. Soft state only: it can be
//! rebuilt from the sessions themselves and is never the reason a message is lost (clients
//! `sync` after reconnecting).
//!
//! Redis layout (prefix first): `presence:user:<uid>` is a hash node -> session count;
//! `presence:node:<node>` is the node's liveness key with a TTL it keeps refreshing. Entries
//! of a node whose liveness key has expired are ignored.

mod inproc;
mod redis_presence;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chat_protocol::UserId;

pub use inproc::InProcPresence;
pub use redis_presence::RedisPresence;

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("redis: {0}")]
    Redis(String),
}

/// Users grouped by the node that hosts at least one of their sessions.
pub type NodeMap = HashMap<String, Vec<UserId>>;

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// A session of `user` opened on this node.
    async fn session_opened(&self, user: &UserId) -> Result<(), PresenceError>;
    /// A session of `user` closed on this node.
    async fn session_closed(&self, user: &UserId) -> Result<(), PresenceError>;
    /// The live nodes hosting sessions of these users.
    async fn locate(&self, users: &[UserId]) -> Result<NodeMap, PresenceError>;
    /// Refresh this node's liveness; call every few seconds.
    async fn heartbeat(&self) -> Result<(), PresenceError>;
    /// Remove this node's entries (graceful shutdown).
    async fn leave(&self) -> Result<(), PresenceError>;
    fn node_id(&self) -> &str;
}

pub type SharedPresence = Arc<dyn Presence>;
