//! The engine's vocabulary: ids, the shard function, message bodies, WebSocket frames and the
//! commands and deliveries that travel on the bus. serde only, no I/O.

pub mod authz;
pub mod body;
pub mod bus;
pub mod frames;
pub mod ids;
pub mod limits;

pub use body::{Body, RoomEvent};
pub use ids::{is_valid_client_id, new_id, post_command_id, shard_of};
pub use limits::{LimitError, Limits};

/// Current time in milliseconds since the Unix epoch (the unit of every `*_ms` field).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
