//! The actors of the rooms service: one `ShardActor` per shard (the registry of its rooms),
//! one `RoomActor` per active room, one `SessionActor` per WebSocket.

pub mod room;
pub mod session;
pub mod shard;

use std::sync::Arc;
use std::time::Duration;

use chat_bus::SharedBus;
use chat_presence::SharedPresence;
use chat_protocol::Limits;

use crate::store::Store;

/// What every room actor needs, shared.
pub struct RoomContext {
    pub store: Store,
    pub bus: SharedBus,
    pub presence: SharedPresence,
    pub limits: Limits,
    pub dedup_window: usize,
    pub passivate_after: Duration,
    /// This process's fencing epoch (above every fence in the store at boot).
    pub epoch: i64,
}

pub type SharedRoomContext = Arc<RoomContext>;
