//! Trust between tenants: one grant per side, effective only while both sides have granted.
//! When it becomes effective or stops being so, both sides' audit trails record it, a `trust`
//! event is published and every enabled member of both tenants is told: all in the
//! transaction of the grant or revocation (the two tenants locked, so that two admins acting
//! at once see each other's grant).

use std::collections::BTreeSet;

use chat_auth::Principal;
use chat_protocol::events::ChangeEvent;
use chat_protocol::frames::NotificationKind;
use chat_protocol::{TenantId, UserId};
use serde::Serialize;

use super::error::AuthzError;
use super::state::AuthzCore;
use crate::store::{AuditAction, Tx};

/// The state of a trust as one side sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrustStatus {
    /// Both sides granted.
    Active,
    /// Our grant waits for theirs.
    PendingOurs,
    /// Their grant waits for ours.
    PendingTheirs,
}

/// A tenant we granted trust to, or that granted trust to us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Trust {
    pub tenant: TenantId,
    pub status: TrustStatus,
}

/// Every tenant named by our grants or theirs, by tenant id, with its status.
pub fn trust_statuses(our_grants: Vec<TenantId>, their_grants: Vec<TenantId>) -> Vec<Trust> {
    let ours: BTreeSet<TenantId> = our_grants.into_iter().collect();
    let theirs: BTreeSet<TenantId> = their_grants.into_iter().collect();
    ours.union(&theirs)
        .map(|tenant| {
            let status = match (ours.contains(tenant), theirs.contains(tenant)) {
                (true, true) => TrustStatus::Active,
                (true, false) => TrustStatus::PendingOurs,
                _ => TrustStatus::PendingTheirs,
            };
            Trust { tenant: tenant.clone(), status }
        })
        .collect()
}

impl AuthzCore {
    /// Grant our side of a trust to `other`; `active` when theirs was already granted.
    /// Granting twice changes nothing.
    pub async fn grant_trust(&self, principal: &Principal, other: TenantId) -> Result<Trust, AuthzError> {
        let (me, _) = self.admin(principal).await?;
        if other == me.tenant {
            return Err(AuthzError::SelfTrust(other));
        }
        if self.store.tenant(&other).await?.is_none() {
            return Err(AuthzError::TenantNotFound(other));
        }
        let now = chat_protocol::now_ms();
        let mut tx = self.begin().await?;
        tx.lock_tenants(&[&me.tenant, &other]).await?;
        let was_active = tx.trust_active(&me.tenant, &other).await?;
        if tx.grant_trust(&me.tenant, &other, now).await? {
            tx.audit(&me.tenant, me.id.as_str(), AuditAction::TrustGranted, other.as_str(), "", now).await?;
        }
        let active = tx.trust_active(&me.tenant, &other).await?;
        if active && !was_active {
            let system = UserId::system();
            tx.audit(&other, system.as_str(), AuditAction::TrustActive, me.tenant.as_str(), "", now).await?;
            let event = ChangeEvent::Trust { tenant_a: me.tenant.clone(), tenant_b: other.clone(), active: true };
            self.emit(&mut tx, event, now).await?;
            self.notify_trust(&mut tx, &me.tenant, &other, true, now).await?;
        }
        self.commit(tx).await?;
        let status = if active { TrustStatus::Active } else { TrustStatus::PendingOurs };
        Ok(Trust { tenant: other, status })
    }

    /// Withdraw our side of a trust to `other`. Their grant stands (pending again).
    pub async fn revoke_trust(&self, principal: &Principal, other: &TenantId) -> Result<(), AuthzError> {
        let (me, _) = self.admin(principal).await?;
        let now = chat_protocol::now_ms();
        let mut tx = self.begin().await?;
        tx.lock_tenants(&[&me.tenant, other]).await?;
        let was_active = tx.trust_active(&me.tenant, other).await?;
        if !tx.revoke_trust(&me.tenant, other).await? {
            return Err(AuthzError::TrustNotFound(other.clone()));
        }
        tx.audit(&me.tenant, me.id.as_str(), AuditAction::TrustRevoked, other.as_str(), "", now).await?;
        if was_active {
            let system = UserId::system();
            let detail = "revoked by the other side";
            tx.audit(other, system.as_str(), AuditAction::TrustInactive, me.tenant.as_str(), detail, now).await?;
            let event = ChangeEvent::Trust { tenant_a: me.tenant.clone(), tenant_b: other.clone(), active: false };
            self.emit(&mut tx, event, now).await?;
            self.notify_trust(&mut tx, &me.tenant, other, false, now).await?;
        }
        self.commit(tx).await?;
        Ok(())
    }

    /// Our grants and theirs, with their status.
    pub async fn list_trusts(&self, principal: &Principal) -> Result<Vec<Trust>, AuthzError> {
        let (me, _) = self.admin(principal).await?;
        let (ours, theirs) = self.store.trusts(&me.tenant).await?;
        Ok(trust_statuses(ours, theirs))
    }

    /// Tell every enabled member of both tenants that they can now (or can no longer) chat
    /// with the other.
    async fn notify_trust(
        &self,
        tx: &mut Tx,
        a: &TenantId,
        b: &TenantId,
        active: bool,
        now: i64,
    ) -> Result<(), AuthzError> {
        for (tenant, other) in [(a, b), (b, a)] {
            let other_name = tx.tenant(other).await?.map_or_else(|| other.to_string(), |t| t.name);
            let (kind, text) = if active {
                (NotificationKind::ExternalGranted, format!("You can now chat with {other_name}."))
            } else {
                (NotificationKind::ExternalRevoked, format!("You can no longer chat with {other_name}."))
            };
            for user in tx.users(tenant).await?.into_iter().filter(|user| !user.disabled) {
                let event = ChangeEvent::Notify { tenant: tenant.clone(), user: user.id, kind, text: text.clone() };
                self.emit(tx, event, now).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(ids: &[&str]) -> Vec<TenantId> {
        ids.iter().map(|id| TenantId::new(*id)).collect()
    }

    #[test]
    fn a_trust_is_active_only_with_both_grants() {
        let statuses = trust_statuses(tenants(&["globex", "initech"]), tenants(&["umbrella", "globex"]));
        assert_eq!(
            statuses,
            vec![
                Trust { tenant: TenantId::new("globex"), status: TrustStatus::Active },
                Trust { tenant: TenantId::new("initech"), status: TrustStatus::PendingOurs },
                Trust { tenant: TenantId::new("umbrella"), status: TrustStatus::PendingTheirs },
            ]
        );
        assert!(trust_statuses(vec![], vec![]).is_empty());
    }

    #[test]
    fn trust_statuses_have_their_wire_names() {
        let wire = serde_json::to_value(trust_statuses(tenants(&["a", "b"]), tenants(&["a", "c"]))).unwrap();
        assert_eq!(
            wire,
            serde_json::json!([
                {"tenant": "a", "status": "active"},
                {"tenant": "b", "status": "pending_ours"},
                {"tenant": "c", "status": "pending_theirs"},
            ])
        );
    }
}
