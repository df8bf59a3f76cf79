//! WebSocket frames of `GET /v1/ws` (see the API contract).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::body::{Body, RoomEvent};
use crate::call::{CallId, CallMedia, CallSignal, CallView, DeviceId, IceServer};
use crate::ids::{MessageId, RoomId, UserId};
use crate::refusal::Refusal;

crate::text_enum! {
    /// What a notification tells its user.
    pub enum NotificationKind {
        RoomAdded,
        RoomRemoved,
        LineAccessGranted,
        LineAccessRevoked,
        ExternalGranted,
        ExternalRevoked,
        /// The LINE gateway gave up sending the user's message to a LINE user.
        LineDeliveryFailed,
        /// The user's LINE account was invited into a LINE group: its room was made.
        LineGroupJoined,
        /// The user's LINE account was removed from a LINE group: its room is closed.
        LineGroupLeft,
    }
}

/// Client -> server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        room_id: RoomId,
        client_msg_id: String,
        body: Body,
    },
    /// Room id -> the last seq the client has; the server answers with everything after it.
    Sync {
        rooms: BTreeMap<RoomId, i64>,
    },
    Read {
        room_id: RoomId,
        seq: i64,
    },
    /// A struct variant (not a unit one) so that unknown fields are refused here too.
    Ping {},
    /// Start a call in the room: every other member's devices ring. Answered with
    /// `call_joined` (this device is in the call) and a `call` frame to every member.
    CallStart {
        room_id: RoomId,
        media: CallMedia,
    },
    /// Answer, on this device, a call ringing for the sender (the first device wins; the
    /// others stop ringing).
    CallAccept {
        room_id: RoomId,
        call_id: CallId,
    },
    /// Join a call already going on (a group call, or one declined or missed before).
    CallJoin {
        room_id: RoomId,
        call_id: CallId,
    },
    /// Stop a call ringing for the sender (on every device).
    CallDecline {
        room_id: RoomId,
        call_id: CallId,
    },
    /// The sender's own call, before anyone answered: stop it.
    CallCancel {
        room_id: RoomId,
        call_id: CallId,
    },
    /// Leave the call (it ends when fewer than two participants are left).
    CallHangup {
        room_id: RoomId,
        call_id: CallId,
    },
    /// WebRTC signaling for another participant's device in the same call.
    CallSignal {
        room_id: RoomId,
        call_id: CallId,
        to: UserId,
        signal: CallSignal,
    },
}

/// Server -> client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ack {
        client_msg_id: String,
        room_id: RoomId,
        message_id: MessageId,
        seq: i64,
    },
    Message {
        room_id: RoomId,
        seq: i64,
        message_id: MessageId,
        sender: UserId,
        /// `None` once the message was recalled.
        body: Option<Body>,
        sent_at: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recalled: bool,
    },
    RoomEvent {
        room_id: RoomId,
        seq: i64,
        event: RoomEvent,
        sent_at: String,
    },
    Notification {
        id: String,
        kind: NotificationKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
        text: String,
        created_at: String,
    },
    /// The end of a `sync` answer: the last seq of each room as the server sent it.
    Synced {
        rooms: BTreeMap<RoomId, i64>,
    },
    Error {
        code: Refusal,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        /// The room of the call frame refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
        /// The call of the call frame refused (none for a `call_start`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    Pong,
    /// A room's call as it is now (after every change), to every device of every member.
    Call {
        room_id: RoomId,
        call: CallView,
    },
    /// This device is in the call (its `call_start`, `call_accept` or `call_join` went
    /// through): connect to the other participants with these ICE servers.
    CallJoined {
        room_id: RoomId,
        call_id: CallId,
        device: DeviceId,
        ice_servers: Vec<IceServer>,
    },
    /// Signaling from another participant, to this device only.
    CallSignal {
        room_id: RoomId,
        call_id: CallId,
        from: UserId,
        signal: CallSignal,
    },
}

pub use crate::time::format_time_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_kinds_have_their_stored_names() {
        for (kind, name) in [
            (NotificationKind::RoomAdded, "room_added"),
            (NotificationKind::LineAccessRevoked, "line_access_revoked"),
            (NotificationKind::LineDeliveryFailed, "line_delivery_failed"),
        ] {
            assert_eq!(kind.as_str(), name);
            assert_eq!(NotificationKind::try_from(name.to_owned()).unwrap(), kind);
        }
    }

    #[test]
    fn client_frames_parse_and_refuse_unknown_fields() {
        let f: ClientFrame = serde_json::from_str(
            r#"{"type":"send","room_id":"r","client_msg_id":"c1","body":{"type":"text","text":"hi"}}"#,
        )
        .unwrap();
        assert!(matches!(f, ClientFrame::Send { .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(format_time_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
