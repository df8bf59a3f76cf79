//! Building the authz service: store, keys, rate limiters, routes, event consumer, seeds.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::web;
use chat_auth::{AuthSettings, KeyProvider, Verifier};
use chat_bus::SharedBus;
use chat_protocol::authz::AuthzEvent;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use tracing::warn;

use crate::keys::KeyRing;
use crate::store::{Store, StoreError, User};
use crate::{password, Settings};

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

pub struct Limiters {
    pub per_account: DefaultKeyedRateLimiter<String>,
    pub per_address: DefaultKeyedRateLimiter<IpAddr>,
}

/// Everything the handlers share.
pub struct AuthzCore {
    pub store: Store,
    pub keys: KeyRing,
    pub bus: SharedBus,
    pub settings: Settings,
    pub limiters: Limiters,
    pub verifier: Verifier,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl AuthzCore {
    pub async fn start(settings: Settings, store: Store, bus: SharedBus) -> anyhow::Result<Arc<Self>> {
        if settings.internal.token.expose_secret().len() < 32 {
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
        let limiters = Limiters {
            per_account: RateLimiter::keyed(per_minute(settings.login.per_account_per_minute)),
            per_address: RateLimiter::keyed(per_minute(settings.login.per_address_per_minute)),
        };
        let core = Arc::new(Self { store, keys, bus, settings, limiters, verifier });
        core.clone().spawn_background().await?;
        Ok(core)
    }

    async fn spawn_background(self: Arc<Self>) -> anyhow::Result<()> {
        // Exclusions done by rooms land in the tenant's audit trail (once per cluster).
        let mut events = self.bus.consume_events("authz", true).await?;
        let core = self.clone();
        actix_web::rt::spawn(async move {
            while let Some(delivery) = events.recv().await {
                if let Ok(AuthzEvent::MemberExcluded { tenant, user, room_id, reason }) =
                    serde_json::from_slice::<AuthzEvent>(&delivery.payload)
                {
                    let detail = format!("room {room_id}: {reason}");
                    if let Err(err) = core
                        .store
                        .audit(&tenant, "system", "member_excluded", &user, &detail, chat_protocol::now_ms())
                        .await
                    {
                        warn!(error = %err, "exclusion not audited; will be redelivered");
                        let _ = delivery.requeue().await;
                        continue;
                    }
                }
                let _ = delivery.ack().await;
            }
        });
        let keys = self.keys.clone();
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                keys.refresh_if_stale().await;
            }
        });
        Ok(())
    }

    pub fn key_provider(&self) -> Arc<dyn KeyProvider> {
        Arc::new(self.keys.clone())
    }

    /// Publish a change event; a failure is logged (the state is already committed).
    pub async fn emit(&self, event: AuthzEvent) {
        let Ok(payload) = serde_json::to_vec(&event) else { return };
        if let Err(err) = self.bus.publish_event(payload).await {
            warn!(error = %err, "change event not published");
        }
    }

    /// Routes and app data.
    pub fn configure(self: &Arc<Self>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let core = web::Data::from(self.clone());
        let verifier = web::Data::new(self.verifier.clone());
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(core.clone()).app_data(verifier.clone()).configure(crate::api::routes);
        }
    }

    /// Create a tenant and its first admin (the `bootstrap` command). Idempotent for the
    /// tenant; the admin must not exist yet.
    pub async fn bootstrap(&self, tenant: &str, name: &str, admin: &str, pass: &str) -> anyhow::Result<()> {
        let now = chat_protocol::now_ms();
        match self.store.create_tenant(tenant, name, now).await {
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        let user = User {
            id: format!("{admin}@{tenant}"),
            tenant: tenant.to_owned(),
            username: admin.to_owned(),
            display_name: admin.to_owned(),
            password_hash: password::hash(pass).ok_or_else(|| anyhow::anyhow!("hashing failed"))?,
            admin: true,
            disabled: false,
            line_allowed: false,
        };
        self.store.create_user(&user, now).await?;
        self.store.audit(tenant, "bootstrap", "tenant_created", admin, name, now).await?;
        Ok(())
    }

    /// The demo tenants and members (standalone, `make up`); existing ones are left alone.
    pub async fn seed_demo(&self) -> anyhow::Result<()> {
        let now = chat_protocol::now_ms();
        for (tenant, name, username, display, admin) in DEMO_USERS {
            match self.store.create_tenant(tenant, name, now).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            if self.store.user_by_name(tenant, username).await?.is_some() {
                continue;
            }
            let user = User {
                id: format!("{username}@{tenant}"),
                tenant: (*tenant).to_owned(),
                username: (*username).to_owned(),
                display_name: (*display).to_owned(),
                password_hash: password::hash(&demo_password(username))
                    .ok_or_else(|| anyhow::anyhow!("hashing failed"))?,
                admin: *admin,
                disabled: false,
                line_allowed: false,
            };
            self.store.create_user(&user, now).await?;
        }
        Ok(())
    }
}
