//! What every room actor of this node shares.

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
}

pub type SharedRoomContext = Arc<RoomContext>;
