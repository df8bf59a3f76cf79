//! The audit trail: what admins did, what followed by rule, and the exclusions rooms performed.

use chat_auth::Principal;
use chat_protocol::room::ExclusionReason;
use chat_protocol::{RoomId, TenantId, UserId};

use super::error::AuthzError;
use super::state::AuthzCore;
use crate::store::{AuditAction, AuditRow, StoreError};

/// How many entries the audit endpoint answers with, newest first.
const TRAIL_LENGTH: i64 = 500;

impl AuthzCore {
    /// The newest entries of the admin's tenant's audit trail.
    pub async fn audit_trail(&self, principal: &Principal) -> Result<Vec<AuditRow>, AuthzError> {
        let (me, _) = self.admin(principal).await?;
        Ok(self.store.audit_trail(&me.tenant, TRAIL_LENGTH).await?)
    }

    /// Record that rooms removed `user` from `room_id` by rule (a `member_excluded` event).
    /// The entry's id is the event's, so a redelivered event is recorded once (false then).
    pub async fn record_exclusion(
        &self,
        event_id: &str,
        tenant: &TenantId,
        user: &UserId,
        room_id: &RoomId,
        reason: ExclusionReason,
    ) -> Result<bool, StoreError> {
        let detail = format!("room {room_id}: {reason}");
        let system = UserId::system();
        let (action, now) = (AuditAction::MemberExcluded, chat_protocol::now_ms());
        self.store.audit_once(event_id, tenant, system.as_str(), action, user.as_str(), &detail, now).await
    }
}
