//! Decisions of the authz service at the point of use: may these users be in a room with the
//! caller, may the caller post into an external or LINE room. Answers are cached until a
//! change event (any) clears the cache, so a withdrawal takes effect at once.
//!
//! Without a configured authz (`authz.url` empty), rooms stay within the caller's tenant:
//! every other user is excluded with `not_authorized`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use chat_protocol::authz::{DecideRequest, DecideResponse, Verdict};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzSettings {
    /// Base URL of the authz service (internal); empty: no external or LINE members.
    pub url: String,
    pub internal_token: SecretString,
}

/// What the caller may do: (use LINE, the tenants its tenant trusts now).
type ActorAnswer = (bool, Vec<String>);

pub struct AuthzClient {
    settings: AuthzSettings,
    /// (tenant, actor, user) -> verdict; (tenant, actor, "") -> the actor's own answer.
    cache: RwLock<HashMap<(String, String, String), Verdict>>,
    actors: RwLock<HashMap<(String, String), ActorAnswer>>,
}

#[derive(Debug, thiserror::Error)]
#[error("authz unavailable: {0}")]
pub struct AuthzUnavailable(String);

impl AuthzClient {
    pub fn new(settings: AuthzSettings) -> Self {
        Self { settings, cache: RwLock::new(HashMap::new()), actors: RwLock::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        !self.settings.url.is_empty()
    }

    /// Forget every cached answer (a change event arrived).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
        if let Ok(mut a) = self.actors.write() {
            a.clear();
        }
    }

    /// Verdicts for `users` joining a room of (`tenant`, `actor`).
    pub async fn decide(&self, tenant: &str, actor: &str, users: &[String]) -> Result<Vec<Verdict>, AuthzUnavailable> {
        if !self.enabled() {
            return Ok(users
                .iter()
                .map(|u| Verdict {
                    user: u.clone(),
                    tenant: None,
                    allowed: false,
                    reason: Some("not_authorized".into()),
                })
                .collect());
        }
        let key = |u: &str| (tenant.to_owned(), actor.to_owned(), u.to_owned());
        let missing: Vec<String> = {
            let cache = self.cache.read().map_err(|_| AuthzUnavailable("poisoned".into()))?;
            users.iter().filter(|u| !cache.contains_key(&key(u))).cloned().collect()
        };
        if !missing.is_empty() || !self.actor_known(tenant, actor) {
            let answer = self.ask(tenant, actor, missing).await?;
            if let Ok(mut cache) = self.cache.write() {
                for v in answer.verdicts {
                    cache.insert(key(&v.user), v);
                }
            }
            if let Ok(mut actors) = self.actors.write() {
                actors.insert((tenant.to_owned(), actor.to_owned()), (answer.actor_line, answer.trusted_tenants));
            }
        }
        let cache = self.cache.read().map_err(|_| AuthzUnavailable("poisoned".into()))?;
        Ok(users.iter().filter_map(|u| cache.get(&key(u)).cloned()).collect())
    }

    fn actor_known(&self, tenant: &str, actor: &str) -> bool {
        self.actors.read().is_ok_and(|a| a.contains_key(&(tenant.to_owned(), actor.to_owned())))
    }

    /// (may the actor use LINE, the tenants the actor's tenant trusts now).
    pub async fn actor(&self, tenant: &str, actor: &str) -> Result<(bool, Vec<String>), AuthzUnavailable> {
        if !self.enabled() {
            return Ok((false, Vec::new()));
        }
        if let Some(known) =
            self.actors.read().ok().and_then(|a| a.get(&(tenant.to_owned(), actor.to_owned())).cloned())
        {
            return Ok(known);
        }
        self.decide(tenant, actor, &[]).await?;
        Ok(self
            .actors
            .read()
            .ok()
            .and_then(|a| a.get(&(tenant.to_owned(), actor.to_owned())).cloned())
            .unwrap_or_default())
    }

    async fn ask(&self, tenant: &str, actor: &str, users: Vec<String>) -> Result<DecideResponse, AuthzUnavailable> {
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        let body = DecideRequest { tenant: tenant.to_owned(), actor: actor.to_owned(), users };
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
