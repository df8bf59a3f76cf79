//! What every rule works on (`AuthzCore`), and the steps several rules share: who the caller is
//! now, the tenant's LINE mode and trusts, hashing passwords off the async threads, and the
//! end of a change: its events go to the outbox in the change's transaction, and the relay is
//! woken once it commits.

use std::sync::Arc;

use chat_auth::{Principal, Verifier};
use chat_bus::SharedBus;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::TenantId;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;

use super::error::AuthzError;
use super::limits::Limiters;
use crate::keys::KeyRing;
use crate::password;
use crate::settings::Settings;
use crate::store::{LineMode, Store, StoreError, Tx, User};

/// The authz service: its store, keys and bus, and the rules over them (the methods in
/// `service/*.rs`). Shared by every HTTP worker and the background tasks.
pub struct AuthzCore {
    pub store: Store,
    pub keys: KeyRing,
    pub bus: SharedBus,
    pub settings: Settings,
    pub limiters: Limiters,
    /// Verifies the bearer tokens of API callers with this replica's own keys.
    pub verifier: Verifier,
    /// Wakes the outbox relay when a committed change has left events to publish.
    pub outbox_ready: Arc<Notify>,
}

/// Hash a password on a blocking thread (argon2 is CPU-heavy by design).
pub async fn hash_password(password: SecretString) -> Result<String, AuthzError> {
    tokio::task::spawn_blocking(move || password::hash(password.expose_secret())).await?.map_err(AuthzError::Hashing)
}

/// Check a password against a PHC string on a blocking thread; false if the check fails.
pub(super) async fn verify_password(password: SecretString, phc: String) -> bool {
    tokio::task::spawn_blocking(move || password::verify(password.expose_secret(), &phc)).await.unwrap_or(false)
}

/// The tenants trusted both ways: ours that are also theirs, in our order.
pub(super) fn active_trusts(ours: Vec<TenantId>, theirs: &[TenantId]) -> Vec<TenantId> {
    ours.into_iter().filter(|tenant| theirs.contains(tenant)).collect()
}

impl AuthzCore {
    /// The caller as the store knows them now (a disabled, deleted or moved user is refused),
    /// and their tenant's LINE mode.
    pub(super) async fn caller(&self, principal: &Principal) -> Result<(User, LineMode), AuthzError> {
        let user = self
            .store
            .user(&principal.user_id)
            .await?
            .filter(|user| user.tenant == principal.tenant && !user.disabled)
            .ok_or_else(|| AuthzError::UnknownCaller(principal.user_id.clone()))?;
        let mode = self.line_mode(&user.tenant).await?;
        Ok((user, mode))
    }

    /// The caller, who must be an admin of their tenant now (not only when the token was
    /// issued).
    pub(super) async fn admin(&self, principal: &Principal) -> Result<(User, LineMode), AuthzError> {
        let (user, mode) = self.caller(principal).await?;
        if !user.admin {
            return Err(AuthzError::NotAdmin(user.id));
        }
        Ok((user, mode))
    }

    /// The tenant's LINE mode; `none` for an unknown tenant.
    pub(super) async fn line_mode(&self, tenant: &TenantId) -> Result<LineMode, StoreError> {
        Ok(self.store.tenant(tenant).await?.map_or(LineMode::None, |t| t.line_mode))
    }

    /// The tenants `tenant` has an active (bilateral) trust with.
    pub(super) async fn trusted_tenants(&self, tenant: &TenantId) -> Result<Vec<TenantId>, StoreError> {
        let (ours, theirs) = self.store.trusts(tenant).await?;
        Ok(active_trusts(ours, &theirs))
    }

    /// Begin a change: a transaction for its rows, audit entries and events.
    pub(super) async fn begin(&self) -> Result<Tx, StoreError> {
        self.store.begin().await
    }

    /// Put a change event in the change's outbox (published once the change commits).
    pub(super) async fn emit(&self, tx: &mut Tx, event: ChangeEvent, now: i64) -> Result<(), StoreError> {
        tx.enqueue(&EventEnvelope::new(event), now).await
    }

    /// Commit a change and wake the relay to publish its events.
    pub(super) async fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        tx.commit().await?;
        self.outbox_ready.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_trusts_need_both_grants() {
        let ours = vec![TenantId::new("globex"), TenantId::new("initech"), TenantId::new("umbrella")];
        let theirs = vec![TenantId::new("umbrella"), TenantId::new("hooli"), TenantId::new("globex")];
        assert_eq!(active_trusts(ours, &theirs), vec![TenantId::new("globex"), TenantId::new("umbrella")]);
        assert!(active_trusts(vec![], &theirs).is_empty());
    }
}
