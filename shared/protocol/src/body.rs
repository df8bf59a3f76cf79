//! What a room holds: message bodies written by people and system events written by the room.

use serde::{Deserialize, Serialize};

use crate::call::{CallEndReason, CallId, CallMedia};
use crate::ids::{MessageId, UserId};
use crate::room::{ExclusionReason, RoomKind};

/// A message body as clients send it. Unknown types and unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    Text {
        /// Not blank, at most `limits.max_text_chars` (10 000 by default).
        #[schema(
            max_length = 10000,
            pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000]*$"
        )]
        text: String,
    },
    Sticker {
        /// 1 to 64 bytes.
        #[schema(min_length = 1, max_length = 64, pattern = "^[^\\u0000]*$")]
        package_id: String,
        /// 1 to 64 bytes.
        #[schema(min_length = 1, max_length = 64, pattern = "^[^\\u0000]*$")]
        sticker_id: String,
    },
    Image {
        /// An absolute http(s) URL, at most `limits.max_url_chars` (2048 by default).
        #[schema(
            max_length = 2048,
            pattern = "^https?://[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$"
        )]
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 255, pattern = "^[^\\u0000]*$")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::json_int::option_u64")]
        size: Option<u64>,
    },
    File {
        /// An absolute http(s) URL, at most `limits.max_url_chars` (2048 by default).
        #[schema(
            max_length = 2048,
            pattern = "^https?://[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$"
        )]
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 255, pattern = "^[^\\u0000]*$")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::json_int::option_u64")]
        size: Option<u64>,
    },
    Location {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 255, pattern = "^[^\\u0000]*$")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 255, pattern = "^[^\\u0000]*$")]
        address: Option<String>,
        #[schema(minimum = -90, maximum = 90)]
        latitude: f64,
        #[schema(minimum = -180, maximum = 180)]
        longitude: f64,
    },
}

/// The sticker packages a LINE Official Account may send (LINE's list of sendable stickers);
/// a LINE-purchased sticker received from LINE is shown, but cannot be sent back to LINE.
pub const SENDABLE_STICKER_PACKAGES: &[&str] = &[
    "446", "789", "1070", "6136", "6325", "6359", "6362", "6370", "6632", "8515", "8522", "8525", "11537", "11538",
    "11539",
];

impl Body {
    /// True unless this is a sticker LINE users cannot be sent.
    pub fn is_sendable_to_line(&self) -> bool {
        match self {
            Body::Sticker { package_id, .. } => SENDABLE_STICKER_PACKAGES.contains(&package_id.as_str()),
            _ => true,
        }
    }
}

/// A system event of a room. It takes a `seq` in the room like a message does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    RoomCreated {
        by: UserId,
        kind: RoomKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    MembersJoined {
        by: UserId,
        users: Vec<UserId>,
    },
    MemberLeft {
        user: UserId,
    },
    MemberRemoved {
        by: UserId,
        user: UserId,
    },
    /// Removed by a rule (a withdrawn LINE permission or trust), not by a person.
    MemberExcluded {
        user: UserId,
        reason: ExclusionReason,
    },
    InfoUpdated {
        by: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        photo_url: Option<String>,
    },
    MessageRecalled {
        by: UserId,
        message_id: MessageId,
        message_seq: i64,
    },
    /// A member started a call (its live state goes in `call` frames).
    CallStarted {
        call_id: CallId,
        by: UserId,
        media: CallMedia,
    },
    /// The call ended: its history entry (a missed call, or a call and its duration).
    CallEnded {
        call_id: CallId,
        /// Who started it.
        by: UserId,
        media: CallMedia,
        reason: CallEndReason,
        /// From the answer to the end; `None` for a call nobody answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<i64>,
        /// The invited members who never answered (a missed call for each of them).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missed: Vec<UserId>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        let json = r#"{"type":"sticker","package_id":"446","sticker_id":"1988"}"#;
        let body: Body = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&body).unwrap(), json);
    }

    #[test]
    fn unknown_fields_and_types_are_refused() {
        let unknown_field = serde_json::from_str::<Body>(r#"{"type":"text","text":"a","x":1}"#);
        assert!(unknown_field.unwrap_err().to_string().contains("unknown field"));
        let unknown_type = serde_json::from_str::<Body>(r#"{"type":"video","url":"https://a"}"#);
        assert!(unknown_type.unwrap_err().to_string().contains("unknown variant"));
    }
}
