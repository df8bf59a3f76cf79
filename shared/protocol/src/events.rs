//! Change events: what one service tells the others on the fanout `events` exchange. Every
//! service's event queue receives every event; each consumer acts on the kinds it knows and
//! acknowledges the rest (`ChangeEvent::Unknown` for a kind added by a newer publisher), so a
//! new kind never reaches a dead-letter queue.

use serde::{Deserialize, Serialize};

use crate::body::Body;
use crate::frames::NotificationKind;
use crate::ids::{MessageId, RoomId, TenantId, UserId};
use crate::room::{ExclusionReason, RoomKind};

/// A change, by the service that owns it. Published only when the effective state changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeEvent {
    // ----- authz -----
    /// A member's permission to connect to LINE (from the tenant mode or a per-member grant).
    LineAccess { tenant: TenantId, user: UserId, allowed: bool },
    /// Trust between two tenants became effective (both granted) or stopped being so.
    Trust { tenant_a: TenantId, tenant_b: TenantId, active: bool },
    /// A user was disabled: refuse their tokens and close their sessions.
    UserDisabled { tenant: TenantId, user: UserId, at_secs: u64 },
    /// Tell a member something (stored and pushed by rooms as a notification).
    Notify { tenant: TenantId, user: UserId, kind: NotificationKind, text: String },
    /// Rooms removed a member by rule (recorded in the tenant's audit trail).
    MemberExcluded { tenant: TenantId, user: UserId, room_id: RoomId, reason: ExclusionReason },

    // ----- contacts -----
    /// `user` blocks messages from `peer` from `since_ms` on (contacts' clock). The block is
    /// the period starting then; its end comes with `ContactUnblocked` of the same `since_ms`,
    /// so the two events may be applied in either order.
    #[serde(rename = "contact.blocked")]
    ContactBlocked { tenant: TenantId, user: UserId, peer: UserId, since_ms: i64 },
    /// The block of `user` on `peer` that started at `since_ms` ended at `until_ms`. Messages
    /// sent in between stay hidden from `user`.
    #[serde(rename = "contact.unblocked")]
    ContactUnblocked { tenant: TenantId, user: UserId, peer: UserId, since_ms: i64, until_ms: i64 },
    /// What LINE users see of a member changed (the LINE gateway shows it on the member's
    /// LINE Official Account). `None` fields are empty.
    #[serde(rename = "line.profile_changed")]
    LineProfileChanged {
        tenant: TenantId,
        user: UserId,
        about: Option<String>,
        phone: Option<String>,
        website: Option<String>,
    },

    // ----- line-gateway -----
    /// A LINE user added the member's LINE Official Account as a friend.
    #[serde(rename = "line.follow")]
    LineFollow {
        tenant: TenantId,
        user: UserId,
        line_user: UserId,
        display_name: String,
        #[serde(default)]
        picture_url: Option<String>,
        at_ms: i64,
    },
    /// A LINE user blocked or removed the member's LINE Official Account.
    #[serde(rename = "line.unfollow")]
    LineUnfollow { tenant: TenantId, user: UserId, line_user: UserId, at_ms: i64 },
    /// The member is bound to a LINE Official Account (`basic_id` like `@abc1234x`).
    #[serde(rename = "line.channel_bound")]
    LineChannelBound { tenant: TenantId, user: UserId, basic_id: String },
    /// The member's LINE Official Account binding was removed.
    #[serde(rename = "line.channel_unbound")]
    LineChannelUnbound { tenant: TenantId, user: UserId },

    // ----- rooms -----
    /// A 1:1 room with someone outside the actor's company (`kind` external or LINE) was
    /// created or reopened by `actor`: contacts saves `peer` as the actor's contact.
    #[serde(rename = "room.direct_opened")]
    DirectRoomOpened {
        room_id: RoomId,
        kind: RoomKind,
        actor: UserId,
        actor_tenant: TenantId,
        peer: UserId,
        peer_tenant: TenantId,
    },

    /// A member's message was stored in a room with LINE users: the LINE gateway sends it to
    /// `line_recipients` (published again when the post is replayed; `message_id` makes the
    /// push idempotent).
    #[serde(rename = "room.line_message")]
    RoomLineMessage {
        room_id: RoomId,
        kind: RoomKind,
        /// The sender's tenant.
        tenant: TenantId,
        message_id: MessageId,
        seq: i64,
        sender: UserId,
        body: Body,
        line_recipients: Vec<UserId>,
        sent_at_ms: i64,
    },

    /// A kind this build does not know (published by a newer service): acknowledged, ignored.
    #[serde(other)]
    Unknown,
}

impl ChangeEvent {
    /// True for the changes of who may talk to whom: cached authorization answers are stale.
    pub fn changes_permissions(&self) -> bool {
        matches!(self, ChangeEvent::LineAccess { .. } | ChangeEvent::Trust { .. } | ChangeEvent::UserDisabled { .. })
    }
}

/// A change event as published: the change and a unique id. Consumers derive their idempotency
/// keys (commands, notification ids, audit rows) from the id, so a redelivered event is applied
/// once and an identical second change is a new event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: String,
    #[serde(flatten)]
    pub event: ChangeEvent,
}

impl EventEnvelope {
    /// The event with a new time-ordered id.
    pub fn new(event: ChangeEvent) -> Self {
        Self { event_id: crate::new_id(), event }
    }

    /// The event with an id derived from `key` (a command id, say): publishing it again after a
    /// retry is the same event.
    pub fn keyed(key: &str, event: ChangeEvent) -> Self {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d0c_7e3a_2b41_4c8e_9a77_e1f0_3b6d_a214);
        Self { event_id: uuid::Uuid::new_v5(&NAMESPACE, key.as_bytes()).to_string(), event }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_the_event_with_its_id_beside_the_type() {
        let envelope = EventEnvelope::new(ChangeEvent::Trust {
            tenant_a: "acme".into(),
            tenant_b: "globex".into(),
            active: false,
        });
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "trust");
        assert_eq!(json["event_id"], envelope.event_id.as_str());
        assert_eq!(serde_json::from_value::<EventEnvelope>(json).unwrap(), envelope);
        assert_ne!(EventEnvelope::new(envelope.event.clone()).event_id, envelope.event_id);
    }

    #[test]
    fn dotted_kinds_keep_their_names_and_unknown_kinds_decode_as_unknown() {
        let follow = EventEnvelope::keyed(
            "k",
            ChangeEvent::LineFollow {
                tenant: "acme".into(),
                user: "alice@acme".into(),
                line_user: "line:U1".into(),
                display_name: "Taro".into(),
                picture_url: None,
                at_ms: 1,
            },
        );
        let json = serde_json::to_value(&follow).unwrap();
        assert_eq!(json["type"], "line.follow");
        assert_eq!(serde_json::from_value::<EventEnvelope>(json).unwrap(), follow);
        assert_eq!(EventEnvelope::keyed("k", follow.event.clone()).event_id, follow.event_id);

        let newer = serde_json::json!({"event_id": "e1", "type": "calls.started", "room_id": "r"});
        let decoded = serde_json::from_value::<EventEnvelope>(newer).unwrap();
        assert_eq!(decoded.event, ChangeEvent::Unknown);
        assert!(!decoded.event.changes_permissions());
    }
}
