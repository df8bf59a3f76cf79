//! Presence: which gateway node hosts sessions of which user. Soft state only: it can be
//! rebuilt from the sessions themselves and is never the reason a message is lost (clients
//! `sync` after reconnecting).
//!
//! Redis layout (prefix first): `presence:user:<uid>` is a hash node -> session count;
//! `presence:node:<node>` is the node's liveness key with a TTL it keeps refreshing;
//! `presence:node-users:<node>` is the set of users a node has entries for, and
//! `presence:nodes` the set of nodes that may have entries. Entries of a node whose liveness key
//! has expired are ignored, and removed by any live node's sweep ([`run_sweeper`]). A node that
//! finds its own liveness key gone (it was thought dead and may have been swept) writes its
//! entries again.
//!
//! Each node also publishes on `presence:changes` when a user's first session on it opens and
//! when the last one closes; [`CachedPresence`] keeps `locate`'s answers in memory and follows
//! those changes, so a steady fan-out asks Redis nothing.

mod cached;
mod inproc;
mod redis_presence;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_protocol::UserId;

pub use cached::{CacheConfig, CacheStats, CachedPresence};
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
    /// A session of `user` closed on this node (one whose `session_opened` succeeded).
    async fn session_closed(&self, user: &UserId) -> Result<(), PresenceError>;
    /// The live nodes hosting sessions of these users.
    async fn locate(&self, users: &[UserId]) -> Result<NodeMap, PresenceError>;
    /// Refresh this node's liveness; call every few seconds.
    async fn heartbeat(&self) -> Result<(), PresenceError>;
    /// Remove this node's entries (graceful shutdown).
    async fn leave(&self) -> Result<(), PresenceError>;
    /// Remove at most `batch` entries of nodes that are no longer live (crashed); returns how
    /// many were removed. Safe to run on every node at once.
    async fn sweep(&self, _batch: usize) -> Result<usize, PresenceError> {
        Ok(0)
    }
    fn node_id(&self) -> &str;
}

pub type SharedPresence = Arc<dyn Presence>;

/// Sweep every `every`, at most `batch` entries a round, for as long as the node runs.
pub async fn run_sweeper(presence: SharedPresence, every: Duration, batch: usize) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match presence.sweep(batch.max(1)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "presence entries of dead nodes swept"),
            Err(err) => tracing::warn!(error = %err, "presence sweep failed"),
        }
    }
}
