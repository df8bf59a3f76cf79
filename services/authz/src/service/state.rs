//! What every rule works on (`AuthzCore`), and the steps several rules share: who the caller is
//! now, the tenant's LINE mode and trusts, hashing passwords off the async threads, the audit
//! trail and change events.

use std::net::IpAddr;
use std::num::NonZeroU32;

use chat_auth::{Principal, Verifier};
use chat_bus::SharedBus;
use chat_protocol::authz::AuthzEvent;
use chat_protocol::{TenantId, UserId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use tracing::warn;

use super::error::AuthzError;
use crate::keys::KeyRing;
use crate::password;
use crate::settings::{LoginSettings, Settings};
use crate::store::{AuditAction, LineMode, Store, StoreError, User};

/// Login attempts per account (`tenant/username`) and per client address.
pub struct Limiters {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl Limiters {
    /// Empty limiters with the configured quotas (at least one attempt per minute).
    pub fn new(settings: &LoginSettings) -> Self {
        Self {
            per_account: RateLimiter::keyed(per_minute(settings.per_account_per_minute)),
            per_address: RateLimiter::keyed(per_minute(settings.per_address_per_minute)),
        }
    }

    /// Count one attempt for `account` from `client`; `RateLimited` with the wait when either
    /// is over its quota (the address first).
    pub(super) fn check(&self, client: Option<IpAddr>, account: String) -> Result<(), AuthzError> {
        let clock = DefaultClock::default();
        if let Some(ip) = client {
            self.per_address
                .check_key(&ip)
                .map_err(|not_until| AuthzError::RateLimited(not_until.wait_time_from(clock.now())))?;
        }
        self.per_account
            .check_key(&account)
            .map_err(|not_until| AuthzError::RateLimited(not_until.wait_time_from(clock.now())))
    }
}

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

    /// A user of `tenant`; anyone else is answered as if absent.
    pub(super) async fn own_user(&self, tenant: &TenantId, id: &UserId) -> Result<User, AuthzError> {
        self.store
            .user(id)
            .await?
            .filter(|user| &user.tenant == tenant)
            .ok_or_else(|| AuthzError::UserNotFound(id.clone()))
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

    /// Append to `tenant`'s audit trail, now.
    pub(super) async fn record(
        &self,
        tenant: &TenantId,
        actor: &str,
        action: AuditAction,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.store.audit(tenant, actor, action, subject, detail, chat_protocol::now_ms()).await
    }

    /// Publish a change event; a failure is logged (the state is already committed).
    pub(super) async fn emit(&self, event: AuthzEvent) {
        let payload = match serde_json::to_vec(&event) {
            Ok(payload) => payload,
            Err(err) => {
                warn!(error = %err, "change event not encoded");
                return;
            }
        };
        if let Err(err) = self.bus.publish_event(payload).await {
            warn!(error = %err, "change event not published");
        }
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

    #[test]
    fn the_address_limit_applies_before_the_account_limit() {
        let limiters = Limiters::new(&LoginSettings { per_account_per_minute: 2, per_address_per_minute: 1 });
        let client: Option<IpAddr> = Some([10, 0, 0, 1].into());
        assert!(limiters.check(client, "acme/bob".into()).is_ok());
        assert!(matches!(limiters.check(client, "acme/carol".into()), Err(AuthzError::RateLimited(_))));
        // Without an address only the account counts: bob has one attempt left.
        assert!(limiters.check(None, "acme/bob".into()).is_ok());
        assert!(
            matches!(limiters.check(None, "acme/bob".into()), Err(AuthzError::RateLimited(wait)) if wait.as_secs() <= 60)
        );
    }
}
