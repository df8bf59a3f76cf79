//! Whether a member is in a room, asked of the rooms service's public API with the member's
//! own token (`GET /v1/rooms/{room_id}`: 200 for a member, 404 for anyone else), so the
//! gateway keeps no copy of rooms' membership. Used when a member other than the channel's
//! reads a LINE medium (a colleague in a LINE group's room).

use std::time::Duration;

use chat_protocol::RoomId;
use tracing::Instrument;

/// How long rooms may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Rooms did not answer whether the member is in the room.
#[derive(Debug, thiserror::Error)]
#[error("rooms unavailable: {0}")]
pub struct RoomsUnavailable(pub String);

pub struct RoomMembership {
    /// Empty: nobody but the channel's member (no rooms to ask).
    url: String,
}

impl RoomMembership {
    pub fn new(url: &str) -> Self {
        Self { url: url.trim_end_matches('/').to_owned() }
    }

    /// Whether the holder of `token` is a member of `room_id`.
    pub async fn is_member(&self, token: &str, room_id: &RoomId) -> Result<bool, RoomsUnavailable> {
        if self.url.is_empty() {
            return Ok(false);
        }
        let client = awc::Client::builder().timeout(TIMEOUT).disable_redirects().finish();
        let request = client
            .get(format!("{}/v1/rooms/{}", self.url, room_id.as_str()))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let (request, span) = chat_kit::outbound::traced(request, "rooms", "/v1/rooms/{room_id}");
        let res = request.send().instrument(span.clone()).await.map_err(|err| RoomsUnavailable(err.to_string()))?;
        chat_kit::outbound::record_status(&span, res.status().as_u16());
        match res.status().as_u16() {
            200 => Ok(true),
            401 | 403 | 404 => Ok(false),
            status => Err(RoomsUnavailable(format!("status {status}"))),
        }
    }
}
