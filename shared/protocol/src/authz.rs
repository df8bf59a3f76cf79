//! What the authorization service tells others: change events (fanout `events` exchange) and
//! the answers of its internal decision endpoint.

use serde::{Deserialize, Serialize};

use crate::frames::NotificationKind;
use crate::ids::{RoomId, TenantId, UserId};
use crate::room::ExclusionReason;

/// A change of who may talk to whom. Published only when the effective state changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthzEvent {
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
}

/// A change event as published on the `events` exchange: the change and a unique id. Consumers
/// derive their idempotency keys (exclusion commands, notification ids, audit rows) from the
/// id, so a redelivered event is applied once and an identical second change is a new event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzEnvelope {
    pub event_id: String,
    #[serde(flatten)]
    pub event: AuthzEvent,
}

impl AuthzEnvelope {
    /// The event with a new time-ordered id.
    pub fn new(event: AuthzEvent) -> Self {
        Self { event_id: crate::new_id(), event }
    }
}

/// `POST /internal/v1/decide`: may `actor` (of `tenant`) have these users in a room?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub tenant: TenantId,
    pub actor: UserId,
    pub users: Vec<UserId>,
}

/// One user's verdict. `tenant` is `None` when the user does not exist (or is disabled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub user: UserId,
    pub tenant: Option<TenantId>,
    pub allowed: bool,
    /// Why not: `unknown_user`, `external_not_authorized`, `line_not_authorized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ExclusionReason>,
    /// The user may connect to LINE now (a member whose admin allows it; a LINE user itself).
    /// A room with LINE users keeps out the members who may not, even when they are invited.
    #[serde(default)]
    pub line: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecideResponse {
    /// Whether the actor may connect to LINE now.
    pub actor_line: bool,
    /// Tenants the actor's tenant has an active (bilateral) trust with.
    pub trusted_tenants: Vec<TenantId>,
    pub verdicts: Vec<Verdict>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_the_event_with_its_id_beside_the_type() {
        let envelope =
            AuthzEnvelope::new(AuthzEvent::Trust { tenant_a: "acme".into(), tenant_b: "globex".into(), active: false });
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "trust");
        assert_eq!(json["event_id"], envelope.event_id.as_str());
        assert_eq!(serde_json::from_value::<AuthzEnvelope>(json).unwrap(), envelope);
        assert_ne!(AuthzEnvelope::new(envelope.event.clone()).event_id, envelope.event_id);
    }
}
