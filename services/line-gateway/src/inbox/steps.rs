//! What every inbox event handler shares: the outcome of an event, the room a LINE message
//! goes to, the LINE user's participant id, and the keyed publish of a change event.

use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::ids::LINE_USER_PREFIX;
use chat_protocol::{now_ms, RoomId, UserId};

use crate::metrics::metrics;
use crate::rooms::RoomsError;
use crate::service::{LineCore, LineError};
use crate::store::{Channel, InboxRow, StoreError};

/// Attempts before an event is given up.
pub const MAX_ATTEMPTS: i64 = 10;

/// What became of one claimed event.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done, with the outcome label (`applied`, `ignored`, `suspended`, ...).
    Done(&'static str),
    /// Failed for now: free it again after a backoff.
    Retry(String),
    /// Never going to work: processed, failed.
    GiveUp(&'static str, String),
}

impl From<StoreError> for Outcome {
    fn from(err: StoreError) -> Self {
        Outcome::Retry(err.to_string())
    }
}

impl From<RoomsError> for Outcome {
    fn from(err: RoomsError) -> Self {
        match err {
            RoomsError::Refused(refusal) => {
                Outcome::GiveUp("refused", format!("{}: {}", refusal.code, refusal.message))
            }
            RoomsError::Timeout | RoomsError::Bus(_) => Outcome::Retry(err.to_string()),
            RoomsError::Encode(_) | RoomsError::Unexpected => Outcome::GiveUp("failed", err.to_string()),
        }
    }
}

impl From<LineError> for Outcome {
    fn from(err: LineError) -> Self {
        Outcome::Retry(err.to_string())
    }
}

pub(crate) fn line_user(line_user_id: &str) -> UserId {
    UserId::new(format!("{LINE_USER_PREFIX}{line_user_id}"))
}

/// The event's age, from the webhook's arrival to now (the room's answer).
pub(crate) fn observe_room_answer(row: &InboxRow) {
    let millis = (now_ms() - row.received_at_ms).max(0);
    metrics().webhook_to_room.observe(millis as f64 / 1000.0);
}

/// Create or reopen the member's room with the LINE user.
pub(crate) async fn open_room(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    line_user: &UserId,
) -> Result<RoomId, Outcome> {
    let key = row.key.webhook_event_id.as_str();
    let room = core.rooms.open_line_direct(&channel.user_id, &channel.tenant, line_user, key).await?;
    Ok(room)
}

/// Where a LINE message goes: the room, who writes it there, and whether it is the LINE
/// user's 1:1 room (remembered in `line_users`, where outbound messages find their channel).
pub(crate) struct Place {
    pub room: RoomId,
    pub speaker: UserId,
    /// The LINE user id of a 1:1 chat posted into their 1:1 room.
    pub direct: Option<String>,
    /// The LINE user id of a 1:1 chat routed to the member's room that wrote to them last
    /// (their 1:1 room is the fallback).
    pub routed: Option<String>,
}

/// Publish the change of this event, with an id derived from the event: published again
/// after a retry, it is the same event.
pub(crate) async fn publish_keyed(core: &LineCore, row: &InboxRow, event: ChangeEvent) -> Outcome {
    let key = format!("line-inbox:{}:{}", row.key.destination, row.key.webhook_event_id);
    match core.publish(&EventEnvelope::keyed(&key, event)).await {
        Ok(()) => Outcome::Done("applied"),
        Err(err) => err.into(),
    }
}
