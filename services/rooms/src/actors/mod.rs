//! The actors of the rooms service: one `ShardActor` per shard (the registry of its rooms),
//! one `RoomActor` per active room, and one session task per WebSocket (`session`, not an
//! actor: one future polling the socket, the hub's pushes and the session's work).
//!
//! Layers point one way: `shard` starts and routes to `room`; `room` decides with `domain`,
//! writes through `store` and leaves answering, fan-out and settling to `delivery`; a room
//! reaches its shard only through the `Recipient`s it is given. `session` sends commands
//! through `dispatch` and checks access with `access`; it imports nothing from `api`.

pub mod context;
pub mod delivery;
pub mod room;
pub mod session;
pub mod shard;

pub use context::{GaveUp, RoomContext, ShardTable, SharedRoomContext};
