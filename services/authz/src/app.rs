//! Starting the authz service: signing keys, the token verifier, login rate limiters (and their
//! sweeper), the outbox relay, the consumer of rooms' exclusions and the key refresher; and
//! the administrative commands (bootstrap a tenant, seed the demo tenants).

use std::sync::Arc;
use std::time::Duration;

use chat_auth::{AuthSettings, KeyProvider, Verifier};
use chat_bus::{BusError, Delivery, SharedBus};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::TenantId;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tracing::{warn, Instrument};

use crate::keys::KeyRing;
use crate::relay::Relay;
use crate::service::{hash_password, AuthzCore, AuthzError, Limiters};
use crate::settings::Settings;
use crate::store::{AuditAction, Store, StoreError, User};

/// The demo tenants and members: (tenant, tenant name, username, display name, admin).
pub const DEMO_USERS: &[(&str, &str, &str, &str, bool)] = &[
    ("acme", "Acme", "admin", "Acme Admin", true),
    ("acme", "Acme", "alice", "Alice Anders", false),
    ("acme", "Acme", "bob", "Bob Brown", false),
    ("globex", "Globex", "admin", "Globex Admin", true),
    ("globex", "Globex", "carol", "Carol Chen", false),
    ("globex", "Globex", "dave", "Dave Diaz", false),
];

/// The demo password of a demo user (listed in the README; never for production).
pub fn demo_password(username: &str) -> String {
    format!("{username}-demo-pass")
}

/// The shortest service token accepted.
const MIN_INTERNAL_TOKEN_LEN: usize = 32;

/// How often the signing keys are checked for staleness (they are re-read every few seconds).
const KEY_REFRESH_TICK: Duration = Duration::from_secs(1);

/// How often the login limiters forget idle keys (a key is idle after a minute).
const LIMITER_SWEEP_TICK: Duration = Duration::from_secs(60);

/// The namespace of the ids given to change events published without one (before envelopes).
const LEGACY_EVENT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d1c_0e8a_7b42_4c39_9a6e_2f81_c0d4_e713);

/// A change event and its id: an `EventEnvelope`, or a bare `ChangeEvent` from a publisher
/// that predates envelopes, whose id is then derived from its bytes (a redelivery has the same).
fn parse_event(payload: &[u8]) -> Option<EventEnvelope> {
    if let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(payload) {
        return Some(envelope);
    }
    let event = serde_json::from_slice::<ChangeEvent>(payload).ok()?;
    Some(EventEnvelope { event_id: uuid::Uuid::new_v5(&LEGACY_EVENT_NAMESPACE, payload).to_string(), event })
}

/// Create a tenant unless it exists.
async fn ensure_tenant(store: &Store, tenant: &TenantId, name: &str, now: i64) -> Result<(), StoreError> {
    match store.create_tenant(tenant, name, now).await {
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(err) => Err(err),
    }
}

impl AuthzCore {
    /// Load (or create) the signing keys, start the background tasks, and return the service.
    pub async fn start(settings: Settings, store: Store, bus: SharedBus) -> anyhow::Result<Arc<Self>> {
        if settings.internal.token.expose_secret().len() < MIN_INTERNAL_TOKEN_LEN {
            anyhow::bail!("internal.token must be set (CHAT__INTERNAL__TOKEN), at least 32 characters");
        }
        let keys = KeyRing::load(store.clone()).await?;
        let auth = AuthSettings {
            jwt_secret: SecretString::from(String::new()),
            jwks_url: String::new(),
            issuer: settings.tokens.issuer.clone(),
            audience: settings.tokens.audience.clone(),
            leeway_secs: 5,
        };
        let verifier = Verifier::local(Arc::new(keys.clone()) as Arc<dyn KeyProvider>, &auth);
        let limiters = Limiters::new(&settings.login)?;
        let outbox_ready = Arc::new(Notify::new());
        let core = Arc::new(Self { store, keys, bus, settings, limiters, verifier, outbox_ready });
        core.spawn_background().await?;
        Ok(core)
    }

    async fn spawn_background(self: &Arc<Self>) -> Result<(), BusError> {
        // Change events leave the outbox once their change committed (and after an outage).
        let relay = Relay::new(self.store.clone(), self.bus.clone(), Arc::clone(&self.outbox_ready));
        tokio::spawn(relay.run());
        let core = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LIMITER_SWEEP_TICK);
            loop {
                tick.tick().await;
                core.limiters.sweep();
            }
        });
        // Exclusions done by rooms land in the tenant's audit trail (once per cluster).
        let mut events = self.bus.consume_events("authz", true).await?;
        let core = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(delivery) = events.recv().await {
                let span = delivery.process_span();
                core.absorb(delivery).instrument(span).await;
            }
        });
        let keys = self.keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_REFRESH_TICK);
            loop {
                tick.tick().await;
                keys.refresh_if_stale().await;
            }
        });
        Ok(())
    }

    /// Audit a `member_excluded` event once per event id (others are acknowledged and
    /// ignored); requeue it if the store fails, so that it is redelivered.
    async fn absorb(&self, delivery: Delivery) {
        if let Some(EventEnvelope { event_id, event: ChangeEvent::MemberExcluded { tenant, user, room_id, reason } }) =
            parse_event(&delivery.payload)
        {
            if let Err(err) = self.record_exclusion(&event_id, &tenant, &user, &room_id, reason).await {
                warn!(error = %err, "exclusion not audited; will be redelivered");
                if let Err(requeue_err) = delivery.requeue().await {
                    warn!(error = %requeue_err, "exclusion event not requeued");
                }
                return;
            }
        }
        if let Err(err) = delivery.ack().await {
            warn!(error = %err, "event not acknowledged");
        }
    }

    /// The public keys, for a verifier in the same process (the standalone binary).
    pub fn key_provider(&self) -> Arc<dyn KeyProvider> {
        Arc::new(self.keys.clone())
    }

    /// Create a tenant and its first admin (the `bootstrap` command). Idempotent for the
    /// tenant; the admin must not exist yet.
    pub async fn bootstrap(&self, tenant: &str, name: &str, admin: &str, password: &str) -> Result<(), AuthzError> {
        let tenant_id = TenantId::from(tenant);
        let now = chat_protocol::now_ms();
        ensure_tenant(&self.store, &tenant_id, name, now).await?;
        let password_hash = hash_password(SecretString::from(password)).await?;
        let user = User::new_member(&tenant_id, admin, admin, password_hash, true);
        let mut tx = self.store.begin().await?;
        match tx.create_user(&user, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthzError::UserExists(user.id)),
            Err(err) => return Err(err.into()),
        }
        tx.audit(&tenant_id, "bootstrap", AuditAction::TenantCreated, admin, name, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The demo tenants and members (standalone, `make up`); existing ones are left alone.
    pub async fn seed_demo(&self) -> Result<(), AuthzError> {
        let now = chat_protocol::now_ms();
        for (tenant, name, username, display_name, admin) in DEMO_USERS {
            let tenant_id = TenantId::from(*tenant);
            ensure_tenant(&self.store, &tenant_id, name, now).await?;
            if self.store.user_by_name(&tenant_id, username).await?.is_some() {
                continue;
            }
            let password_hash = hash_password(SecretString::from(demo_password(username))).await?;
            let user = User::new_member(&tenant_id, username, display_name, password_hash, *admin);
            let mut tx = self.store.begin().await?;
            tx.create_user(&user, now).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chat_protocol::room::ExclusionReason;

    use super::*;

    #[test]
    fn change_events_are_read_with_their_id_or_one_derived_from_their_bytes() {
        let event = ChangeEvent::MemberExcluded {
            tenant: "globex".into(),
            user: "carol@globex".into(),
            room_id: "room-1".into(),
            reason: ExclusionReason::TrustRevoked,
        };
        let envelope = EventEnvelope::new(event.clone());
        assert_eq!(parse_event(&serde_json::to_vec(&envelope).unwrap()), Some(envelope));
        let bare = serde_json::to_vec(&event).unwrap();
        let first = parse_event(&bare).unwrap();
        assert_eq!(first.event, event);
        assert_eq!(parse_event(&bare).unwrap().event_id, first.event_id, "a redelivery has the same id");
        assert_eq!(parse_event(b"{\"type\":\"member_excluded\"}"), None, "fields missing");
        let newer = parse_event(b"{\"event_id\":\"e\",\"type\":\"calls.started\"}").unwrap();
        assert_eq!(newer.event, ChangeEvent::Unknown, "a kind of a newer publisher is read, and ignored");
    }
}
