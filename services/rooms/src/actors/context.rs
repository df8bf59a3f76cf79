//! What every room actor of this node shares.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_bus::SharedBus;
use chat_presence::SharedPresence;
use chat_protocol::Limits;
use tokio::sync::mpsc;

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
    /// How long an unanswered call rings.
    pub ring_timeout: Duration,
    /// What each shard of this node is doing now (readiness, the ops view, metrics).
    pub shards: ShardTable,
    /// Where a shard says it gave itself up (its owner must release the lease).
    pub gave_up: mpsc::Sender<GaveUp>,
}

impl RoomContext {
    /// The same context with another store (an arbiter's own connections).
    pub fn with_store(&self, store: Store) -> RoomContext {
        RoomContext {
            store,
            bus: self.bus.clone(),
            presence: self.presence.clone(),
            limits: self.limits.clone(),
            dedup_window: self.dedup_window,
            passivate_after: self.passivate_after,
            ring_timeout: self.ring_timeout,
            shards: self.shards.clone(),
            gave_up: self.gave_up.clone(),
        }
    }
}

/// A shard stopped on its own while it held a lease: a write of it was fenced out (a newer owner
/// exists), or its epoch could not be recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaveUp {
    pub shard: u16,
    pub epoch: i64,
}

/// One entry per shard, written by its `ShardActor`, read by anyone.
struct ShardState {
    /// Its consumer is subscribed.
    consuming: AtomicBool,
    /// Room actors alive (or stopping) in it.
    rooms: AtomicU32,
}

#[derive(Clone)]
pub struct ShardTable(Arc<[ShardState]>);

impl ShardTable {
    pub fn new(shards: u16) -> Self {
        Self((0..shards).map(|_| ShardState { consuming: AtomicBool::new(false), rooms: AtomicU32::new(0) }).collect())
    }

    fn get(&self, shard: u16) -> Option<&ShardState> {
        self.0.get(usize::from(shard))
    }

    pub fn set_consuming(&self, shard: u16, consuming: bool) {
        if let Some(s) = self.get(shard) {
            s.consuming.store(consuming, Ordering::Relaxed);
        }
    }

    pub fn set_rooms(&self, shard: u16, rooms: usize) {
        if let Some(s) = self.get(shard) {
            s.rooms.store(u32::try_from(rooms).unwrap_or(u32::MAX), Ordering::Relaxed);
        }
    }

    pub fn rooms(&self, shard: u16) -> u32 {
        self.get(shard).map_or(0, |s| s.rooms.load(Ordering::Relaxed))
    }

    pub fn len(&self) -> u16 {
        self.0.len() as u16
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shards not consuming now.
    pub fn idle(&self) -> Vec<u16> {
        (0..self.len()).filter(|s| !self.0[usize::from(*s)].consuming.load(Ordering::Relaxed)).collect()
    }
}

pub type SharedRoomContext = Arc<RoomContext>;
