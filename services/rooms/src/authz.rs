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
use tracing::Instrument;

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
type VerdictKey = (TenantId, UserId, UserId);

/// Entries each cache holds at most; a full cache starts over (every entry is only a saving).
const CACHE_MAX: usize = 10_000;

/// The cached answers, and the generation they belong to.
#[derive(Default)]
struct Cache {
    /// Bumped by every change event: an answer asked for under an older generation may
    /// predate the change, and is not stored.
    generation: u64,
    /// (tenant, actor, user) -> verdict, for users that exist (made-up ids are not kept).
    verdicts: HashMap<VerdictKey, Verdict>,
    /// (tenant, actor) -> the actor's own permissions.
    actors: HashMap<ActorKey, ActorPermissions>,
}

pub struct AuthzClient {
    settings: AuthzSettings,
    cache: RwLock<Cache>,
}

#[derive(Debug, thiserror::Error)]
#[error("authz unavailable: {0}")]
pub struct AuthzUnavailable(String);

impl AuthzClient {
    pub fn new(settings: AuthzSettings) -> Self {
        Self { settings, cache: RwLock::new(Cache::default()) }
    }

    pub fn enabled(&self) -> bool {
        !self.settings.url.is_empty()
    }

    /// Forget every cached answer (a change event arrived), including answers still on their
    /// way: they are dropped when they arrive.
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.generation += 1;
            cache.verdicts.clear();
            cache.actors.clear();
        }
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Cache>, AuthzUnavailable> {
        self.cache.read().map_err(|_| AuthzUnavailable("cache lock poisoned".into()))
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
                    line: false,
                    display_name: None,
                    tenant_name: None,
                })
                .collect());
        }
        let key = |u: &UserId| (tenant.clone(), actor.clone(), u.clone());
        let (generation, mut known, missing) = {
            let cache = self.read()?;
            let mut known = HashMap::new();
            let mut missing = Vec::new();
            for user in users {
                match cache.verdicts.get(&key(user)) {
                    Some(verdict) => {
                        known.insert(user.clone(), verdict.clone());
                    }
                    None => missing.push(user.clone()),
                }
            }
            let actor_known = cache.actors.contains_key(&(tenant.clone(), actor.clone()));
            (cache.generation, known, if missing.is_empty() && actor_known { None } else { Some(missing) })
        };
        if let Some(missing) = missing {
            let (_, verdicts) = self.fetch(generation, tenant, actor, missing).await?;
            known.extend(verdicts.into_iter().map(|v| (v.user.clone(), v)));
        }
        Ok(users.iter().filter_map(|u| known.get(u).cloned()).collect())
    }

    /// What the actor may do now (LINE, trusted tenants).
    pub async fn actor(&self, tenant: &TenantId, actor: &UserId) -> Result<ActorPermissions, AuthzUnavailable> {
        if !self.enabled() {
            return Ok(ActorPermissions::default());
        }
        let generation = {
            let cache = self.read()?;
            if let Some(known) = cache.actors.get(&(tenant.clone(), actor.clone())) {
                return Ok(known.clone());
            }
            cache.generation
        };
        let (permissions, _) = self.fetch(generation, tenant, actor, Vec::new()).await?;
        Ok(permissions)
    }

    /// Ask authz, and keep the answer unless a change event arrived since `generation` was read.
    async fn fetch(
        &self,
        generation: u64,
        tenant: &TenantId,
        actor: &UserId,
        users: Vec<UserId>,
    ) -> Result<(ActorPermissions, Vec<Verdict>), AuthzUnavailable> {
        let answer = self.ask(tenant, actor, users).await?;
        let permissions = ActorPermissions { line: answer.actor_line, trusted: answer.trusted_tenants };
        let mut cache = self.cache.write().map_err(|_| AuthzUnavailable("cache lock poisoned".into()))?;
        if cache.generation != generation {
            return Ok((permissions, answer.verdicts));
        }
        if cache.actors.len() >= CACHE_MAX {
            cache.actors.clear();
        }
        cache.actors.insert((tenant.clone(), actor.clone()), permissions.clone());
        for verdict in answer.verdicts.iter().filter(|v| v.reason != Some(ExclusionReason::UnknownUser)) {
            if cache.verdicts.len() >= CACHE_MAX {
                cache.verdicts.clear();
            }
            cache.verdicts.insert((tenant.clone(), actor.clone(), verdict.user.clone()), verdict.clone());
        }
        Ok((permissions, answer.verdicts))
    }

    /// Cached entries (verdicts, actors): for tests and metrics.
    pub fn cached(&self) -> (usize, usize) {
        self.read().map(|c| (c.verdicts.len(), c.actors.len())).unwrap_or_default()
    }

    async fn ask(
        &self,
        tenant: &TenantId,
        actor: &UserId,
        users: Vec<UserId>,
    ) -> Result<DecideResponse, AuthzUnavailable> {
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).disable_redirects().finish();
        let body = DecideRequest { tenant: tenant.clone(), actor: actor.clone(), users };
        let request = client
            .post(format!("{}/internal/v1/decide", self.settings.url))
            .insert_header(("X-Internal-Token", self.settings.internal_token.expose_secret()));
        let (request, span) = chat_kit::outbound::traced(request, "authz", "/internal/v1/decide");
        let mut res =
            request.send_json(&body).instrument(span.clone()).await.map_err(|e| AuthzUnavailable(e.to_string()))?;
        chat_kit::outbound::record_status(&span, res.status().as_u16());
        if !res.status().is_success() {
            return Err(AuthzUnavailable(format!("status {}", res.status())));
        }
        res.json::<DecideResponse>().limit(1024 * 1024).await.map_err(|e| AuthzUnavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use actix_web::{web, App, HttpResponse, HttpServer};
    use tokio::sync::Notify;

    use super::*;

    /// A stand-in for authz's decision endpoint, over real HTTP on a free port: users whose id
    /// starts with `ok` are allowed, others are unknown. The first answer waits for `gate`.
    struct FakeAuthz {
        url: String,
        calls: Arc<AtomicUsize>,
        gate: Arc<Notify>,
    }

    async fn fake_authz(hold_first: bool) -> FakeAuthz {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let (c, g) = (calls.clone(), gate.clone());
        let server = HttpServer::new(move || {
            let (calls, gate) = (c.clone(), g.clone());
            App::new().app_data(web::JsonConfig::default().limit(4 << 20)).route(
                "/internal/v1/decide",
                web::post().to(move |body: web::Json<DecideRequest>| {
                    let (calls, gate) = (calls.clone(), gate.clone());
                    async move {
                        if calls.fetch_add(1, Ordering::SeqCst) == 0 && hold_first {
                            gate.notified().await;
                        }
                        let verdicts = body
                            .users
                            .iter()
                            .map(|u| {
                                let ok = u.as_str().starts_with("ok");
                                Verdict {
                                    user: u.clone(),
                                    tenant: ok.then(|| body.tenant.clone()),
                                    allowed: ok,
                                    reason: (!ok).then_some(ExclusionReason::UnknownUser),
                                    line: false,
                                    display_name: None,
                                    tenant_name: None,
                                }
                            })
                            .collect();
                        HttpResponse::Ok().json(DecideResponse {
                            actor_line: true,
                            actor_admin: false,
                            trusted_tenants: vec![],
                            verdicts,
                        })
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("a port");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        FakeAuthz { url: format!("http://127.0.0.1:{port}"), calls, gate }
    }

    fn client(url: &str) -> Arc<AuthzClient> {
        Arc::new(AuthzClient::new(AuthzSettings { url: url.to_owned(), internal_token: SecretString::from("t") }))
    }

    #[actix_web::test]
    async fn an_answer_asked_for_before_a_change_is_not_kept_after_it() {
        let authz = fake_authz(true).await;
        let c = client(&authz.url);
        let (tenant, actor) = (TenantId::new("acme"), UserId::new("alice@acme"));
        let asking = {
            let (c, tenant, actor) = (c.clone(), tenant.clone(), actor.clone());
            actix_web::rt::spawn(async move { c.decide(&tenant, &actor, &[UserId::new("ok-bob")]).await })
        };
        for _ in 0..200 {
            if authz.calls.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(authz.calls.load(Ordering::SeqCst), 1, "the first question is on its way");
        // A revocation arrives while the (now stale) "allowed" is on its way.
        c.invalidate();
        authz.gate.notify_one();
        let verdicts = asking.await.expect("joined").expect("answered");
        assert!(verdicts[0].allowed, "the caller gets the answer it asked for");
        assert_eq!(c.cached(), (0, 0), "an answer from before the change is not kept");
        c.decide(&tenant, &actor, &[UserId::new("ok-bob")]).await.expect("answered");
        assert_eq!(authz.calls.load(Ordering::SeqCst), 2, "after the change authz is asked again");
        c.decide(&tenant, &actor, &[UserId::new("ok-bob")]).await.expect("answered");
        assert_eq!(authz.calls.load(Ordering::SeqCst), 2, "a current answer is kept");
    }

    #[actix_web::test]
    async fn made_up_member_ids_do_not_grow_the_cache_and_it_stays_bounded() {
        let authz = fake_authz(false).await;
        let c = client(&authz.url);
        let (tenant, actor) = (TenantId::new("acme"), UserId::new("alice@acme"));
        let made_up: Vec<UserId> = (0..5_000).map(|i| UserId::new(format!("ghost-{i}"))).collect();
        let verdicts = c.decide(&tenant, &actor, &made_up).await.expect("answered");
        assert_eq!(verdicts.len(), made_up.len());
        assert!(verdicts.iter().all(|v| !v.allowed));
        assert_eq!(c.cached().0, 0, "unknown users are not remembered");
        for round in 0..3 {
            let real: Vec<UserId> = (0..5_000).map(|i| UserId::new(format!("ok-{round}-{i}"))).collect();
            c.decide(&tenant, &actor, &real).await.expect("answered");
            assert!(c.cached().0 <= CACHE_MAX, "round {round}: {} entries", c.cached().0);
        }
    }
}
