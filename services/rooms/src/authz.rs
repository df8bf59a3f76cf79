//! Decisions of the authz service at the point of use: may these users be in a room with the
//! caller, may the caller post into an external or LINE room.
//!
//! Answers are cached on this node: per (tenant, actor, user) verdicts, and per (tenant, actor)
//! the actor's own permissions. Every change event from authz (any kind) clears both caches
//! (`invalidate`, called by the node's event consumer), so the next decision asks again.
//!
//! Without a configured authz (`authz.url` empty), rooms stay within the caller's tenant:
//! every other user is excluded with `not_authorized`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use chat_protocol::authz::{DecideRequest, DecideResponse, Verdict};
use chat_protocol::room::ExclusionReason;
use chat_protocol::{TenantId, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzSettings {
    /// Base URL of the authz service (internal); empty: no external or LINE members.
    pub url: String,
    pub internal_token: SecretString,
}

/// What the caller may do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorPermissions {
    /// May connect to LINE.
    pub line: bool,
    /// The tenants the caller's tenant has an active (bilateral) trust with.
    pub trusted: Vec<TenantId>,
}

type ActorKey = (TenantId, UserId);

pub struct AuthzClient {
    settings: AuthzSettings,
    /// (tenant, actor, user) -> verdict.
    verdicts: RwLock<HashMap<(TenantId, UserId, UserId), Verdict>>,
    /// (tenant, actor) -> the actor's own permissions.
    actors: RwLock<HashMap<ActorKey, ActorPermissions>>,
}

#[derive(Debug, thiserror::Error)]
#[error("authz unavailable: {0}")]
pub struct AuthzUnavailable(String);

impl AuthzClient {
    pub fn new(settings: AuthzSettings) -> Self {
        Self { settings, verdicts: RwLock::new(HashMap::new()), actors: RwLock::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        !self.settings.url.is_empty()
    }

    /// Forget every cached answer (a change event arrived).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.verdicts.write() {
            c.clear();
        }
        if let Ok(mut a) = self.actors.write() {
            a.clear();
        }
    }

    /// Verdicts for `users` joining a room of (`tenant`, `actor`).
    pub async fn decide(
        &self,
        tenant: &TenantId,
        actor: &UserId,
        users: &[UserId],
    ) -> Result<Vec<Verdict>, AuthzUnavailable> {
        if !self.enabled() {
            return Ok(users
                .iter()
                .map(|u| Verdict {
                    user: u.clone(),
                    tenant: None,
                    allowed: false,
                    reason: Some(ExclusionReason::NotAuthorized),
                })
                .collect());
        }
        let key = |u: &UserId| (tenant.clone(), actor.clone(), u.clone());
        let missing: Vec<UserId> = {
            let cache = self.verdicts.read().map_err(|_| AuthzUnavailable("poisoned".into()))?;
            users.iter().filter(|u| !cache.contains_key(&key(u))).cloned().collect()
        };
        if !missing.is_empty() || self.cached_actor(tenant, actor).is_none() {
            let answer = self.ask(tenant, actor, missing).await?;
            if let Ok(mut cache) = self.verdicts.write() {
                for v in answer.verdicts {
                    cache.insert(key(&v.user), v);
                }
            }
            if let Ok(mut actors) = self.actors.write() {
                let permissions = ActorPermissions { line: answer.actor_line, trusted: answer.trusted_tenants };
                actors.insert((tenant.clone(), actor.clone()), permissions);
            }
        }
        let cache = self.verdicts.read().map_err(|_| AuthzUnavailable("poisoned".into()))?;
        Ok(users.iter().filter_map(|u| cache.get(&key(u)).cloned()).collect())
    }

    fn cached_actor(&self, tenant: &TenantId, actor: &UserId) -> Option<ActorPermissions> {
        self.actors.read().ok().and_then(|a| a.get(&(tenant.clone(), actor.clone())).cloned())
    }

    /// What the actor may do now (LINE, trusted tenants).
    pub async fn actor(&self, tenant: &TenantId, actor: &UserId) -> Result<ActorPermissions, AuthzUnavailable> {
        if !self.enabled() {
            return Ok(ActorPermissions::default());
        }
        if let Some(known) = self.cached_actor(tenant, actor) {
            return Ok(known);
        }
        self.decide(tenant, actor, &[]).await?;
        Ok(self.cached_actor(tenant, actor).unwrap_or_default())
    }

    async fn ask(
        &self,
        tenant: &TenantId,
        actor: &UserId,
        users: Vec<UserId>,
    ) -> Result<DecideResponse, AuthzUnavailable> {
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        let body = DecideRequest { tenant: tenant.clone(), actor: actor.clone(), users };
        let mut res = client
            .post(format!("{}/internal/v1/decide", self.settings.url))
            .insert_header(("X-Internal-Token", self.settings.internal_token.expose_secret()))
            .send_json(&body)
            .await
            .map_err(|e| AuthzUnavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(AuthzUnavailable(format!("status {}", res.status())));
        }
        res.json::<DecideResponse>().limit(1024 * 1024).await.map_err(|e| AuthzUnavailable(e.to_string()))
    }
}
