//! What every room actor of this node shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_bus::SharedBus;
use chat_presence::SharedPresence;
use chat_protocol::Limits;

use crate::store::Store;

pub struct RoomContext {
    pub store: Store,
    /// Replies and deliveries go out here.
    pub bus: SharedBus,
    /// Which nodes host sessions of which users (the fan-out's targets).
    pub presence: SharedPresence,
    pub limits: Limits,
    /// Command ids (and results) each room keeps in memory to answer repeats without the store.
    pub dedup_window: usize,
    /// A room idle this long asks its shard to stop it.
    pub passivate_after: Duration,
    /// This process's fencing epoch (above every fence in the store at boot).
    pub epoch: i64,
    /// Which shards are consuming their queue now (readiness).
    pub consuming: ConsumingShards,
}

/// One flag per shard: true while its consumer is subscribed.
#[derive(Clone)]
pub struct ConsumingShards(Arc<[AtomicBool]>);

impl ConsumingShards {
    pub fn new(shards: u16) -> Self {
        Self((0..shards).map(|_| AtomicBool::new(false)).collect())
    }

    pub fn set(&self, shard: u16, consuming: bool) {
        if let Some(flag) = self.0.get(usize::from(shard)) {
            flag.store(consuming, Ordering::Relaxed);
        }
    }

    /// The shards not consuming now.
    pub fn idle(&self) -> Vec<u16> {
        (0..self.0.len()).filter(|i| !self.0[*i].load(Ordering::Relaxed)).map(|i| i as u16).collect()
    }
}

pub type SharedRoomContext = Arc<RoomContext>;
