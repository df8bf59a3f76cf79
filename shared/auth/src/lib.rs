//! Bearer-token verification shared by every service, and token minting for development.
//!
//! Tokens are EdDSA, verified with the authz service's JWKS (or, in the standalone binary, its
//! in-process key set). Without either, a configured HS256 secret is used (development and
//! tests). The verifier pins the algorithm, issuer and audience and requires `exp`; `nbf` is
//! honoured; a token living longer than [`MAX_TOKEN_LIFETIME_SECS`] is refused.
//!
//! Tokens come in the `Authorization: Bearer` header. Only a WebSocket handshake may carry one
//! in the `access_token` query parameter (browsers cannot set headers there); anywhere else a
//! query token is ignored, so that tokens stay out of access logs.
//!
//! Revocations (disabled users) are told by change events and can be loaded from authz's
//! `/internal/v1/revocations`, so that a verifier that started late knows them too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use chat_kit::ApiError;
use chat_protocol::{Refusal, TenantId, UserId};
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 secret for development and tests without the authz service; never logged.
    /// Ignored (and HS256 refused) when `jwks_url` is set.
    pub jwt_secret: SecretString,
    /// The authz service's JWKS (`.../v1/auth/jwks`): tokens are EdDSA, verified with it.
    #[serde(default)]
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    5
}

/// The claims this engine issues and reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, unique across tenants.
    pub sub: String,
    /// The tenant (company) id.
    pub tid: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub tenant: TenantId,
    pub roles: Vec<String>,
    /// The token's `exp` (Unix seconds): a long-lived connection ends there.
    pub expires_at_secs: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
}

/// Where verification keys come from.
pub trait KeyProvider: Send + Sync {
    /// The current public keys as a JWKS document.
    fn jwks(&self) -> serde_json::Value;
}

enum Source {
    /// A shared HS256 secret (development, tests without authz).
    Hs256(DecodingKey),
    /// EdDSA keys by `kid`, cached, fetched again when an unknown `kid` arrives.
    Keys { fetch: Fetch, cache: RwLock<Cache> },
}

/// Where the key set comes from.
enum Fetch {
    /// The authz service's JWKS over HTTP.
    Jwks(String),
    /// The key set of an authz running in this process (the standalone binary).
    Local(Arc<dyn KeyProvider>),
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, DecodingKey>,
    refreshed: Option<Instant>,
}

/// An unknown `kid` refreshes the JWKS at most this often (random kids cannot hammer authz).
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The longest lifetime (`exp - iat`) of a token this verifier accepts: authz's tokens live 15
/// minutes, the standalone demo's 12 hours. It bounds the revocation map too: a revocation is
/// kept this long (plus the leeway), after which every token it refuses has expired anyway.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;

/// authz's endpoint of the current revocations (service token in `X-Internal-Token`).
pub const REVOCATIONS_PATH: &str = "/internal/v1/revocations";

struct Inner {
    source: Source,
    issuer: String,
    audience: String,
    leeway: u64,
    /// user id -> time (Unix seconds) until which their tokens are refused (issued then or
    /// before). Bounded: entries older than the longest token lifetime are dropped.
    revoked: RwLock<HashMap<String, u64>>,
}

/// A user whose tokens issued at or before `at_secs` (Unix seconds) are refused: a disabled
/// user, as `/internal/v1/revocations` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revocation {
    pub user: UserId,
    pub at_secs: u64,
}

/// The answer of `/internal/v1/revocations?since=<unix secs>`: the revocations made since then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revocations {
    pub revocations: Vec<Revocation>,
}

/// Where the current revocations are served: authz's base URL and the service token.
#[derive(Clone)]
pub struct RevocationSource {
    url: String,
    internal_token: SecretString,
}

impl RevocationSource {
    /// authz at `base_url` (e.g. `http://authz:8084`), called with the service token.
    pub fn new(base_url: &str, internal_token: SecretString) -> Self {
        Self { url: format!("{}{REVOCATIONS_PATH}", base_url.trim_end_matches('/')), internal_token }
    }
}

/// Why the revocations could not be loaded (the verifier keeps what it knew).
#[derive(Debug, thiserror::Error)]
pub enum RevocationsError {
    #[error("revocations request: {0}")]
    Request(String),
    #[error("revocations answered with status {0}")]
    Status(u16),
    #[error("revocations body: {0}")]
    Body(String),
}

fn unix_now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// The keys of a JWKS document by `kid`; `None` when the document is not a key set (the
/// verifier then keeps the keys it had).
fn keys_from_jwks(doc: &serde_json::Value) -> Option<HashMap<String, DecodingKey>> {
    let set = serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(doc.clone()).ok()?;
    let keys = set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
        })
        .collect();
    Some(keys)
}

impl Verifier {
    /// HS256 with the configured secret, or the JWKS at `jwks_url` when it is set.
    pub fn new(settings: &AuthSettings) -> Self {
        let source = if settings.jwks_url.is_empty() {
            Source::Hs256(DecodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes()))
        } else {
            Source::Keys { fetch: Fetch::Jwks(settings.jwks_url.clone()), cache: RwLock::new(Cache::default()) }
        };
        Self::with_source(source, settings)
    }

    /// Keys from an authz in the same process.
    pub fn local(provider: Arc<dyn KeyProvider>, settings: &AuthSettings) -> Self {
        Self::with_source(
            Source::Keys { fetch: Fetch::Local(provider), cache: RwLock::new(Cache::default()) },
            settings,
        )
    }

    fn with_source(source: Source, settings: &AuthSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                leeway: settings.leeway_secs,
                revoked: RwLock::new(HashMap::new()),
            }),
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.set_issuer(&[self.inner.issuer.as_str()]);
        v.set_audience(&[self.inner.audience.as_str()]);
        v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = self.inner.leeway;
        v
    }

    /// Refuse tokens of `user` issued at or before `at_secs` (a disabled user).
    pub fn revoke(&self, user: &UserId, at_secs: u64) {
        self.revoke_all([Revocation { user: user.clone(), at_secs }]);
    }

    /// Add these revocations (a later time wins for a user), and drop those old enough that
    /// every token they refuse has expired.
    pub fn revoke_all(&self, revocations: impl IntoIterator<Item = Revocation>) {
        let horizon = unix_now_secs().saturating_sub(MAX_TOKEN_LIFETIME_SECS + self.inner.leeway);
        let Ok(mut revoked) = self.inner.revoked.write() else { return };
        for Revocation { user, at_secs } in revocations {
            let at = revoked.entry(user.as_str().to_owned()).or_insert(at_secs);
            *at = (*at).max(at_secs);
        }
        revoked.retain(|_, at| *at >= horizon);
    }

    /// How many users' tokens are refused now (for tests and metrics).
    pub fn revoked_users(&self) -> usize {
        self.inner.revoked.read().map_or(0, |revoked| revoked.len())
    }

    /// Load the revocations of the last token lifetime from authz (a verifier that starts late
    /// never saw their events). What was known stays when authz cannot answer.
    pub async fn load_revocations(&self, source: &RevocationSource) -> Result<usize, RevocationsError> {
        let since = unix_now_secs().saturating_sub(MAX_TOKEN_LIFETIME_SECS + self.inner.leeway);
        let client = awc::Client::builder().timeout(Duration::from_secs(3)).finish();
        let mut res = client
            .get(format!("{}?since={since}", source.url))
            .insert_header(("X-Internal-Token", source.internal_token.expose_secret()))
            .send()
            .await
            .map_err(|err| RevocationsError::Request(err.to_string()))?;
        if !res.status().is_success() {
            return Err(RevocationsError::Status(res.status().as_u16()));
        }
        let body: Revocations =
            res.json().limit(16 * 1024 * 1024).await.map_err(|err| RevocationsError::Body(err.to_string()))?;
        let loaded = body.revocations.len();
        self.revoke_all(body.revocations);
        Ok(loaded)
    }

    /// Every `every`, forever, load the revocations again (run it as a background task after a
    /// first `load_revocations`): what a node missed while its broker connection was down is
    /// caught up within `every`.
    pub async fn keep_revocations_loaded(self, source: RevocationSource, every: Duration) {
        loop {
            actix_web::rt::time::sleep(every).await;
            if let Err(err) = self.load_revocations(&source).await {
                tracing::warn!(error = %err, "revocations not loaded; known ones stay");
            }
        }
    }

    async fn key_for(&self, kid: &str) -> Option<DecodingKey> {
        let Source::Keys { fetch, cache } = &self.inner.source else { return None };
        let stale = {
            let c = cache.read().ok()?;
            if let Some(key) = c.keys.get(kid) {
                return Some(key.clone());
            }
            c.refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY)
        };
        if !stale {
            return None;
        }
        if let Ok(mut c) = cache.write() {
            c.refreshed = Some(Instant::now());
        }
        let keys = match fetch {
            Fetch::Jwks(url) => fetch_jwks(url).await,
            Fetch::Local(provider) => keys_from_jwks(&provider.jwks()),
        };
        let mut c = cache.write().ok()?;
        if let Some(keys) = keys {
            c.keys = keys;
        }
        c.keys.get(kid).cloned()
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let (key, alg) = match &self.inner.source {
            Source::Hs256(key) => (key.clone(), Algorithm::HS256),
            Source::Keys { .. } => {
                if header.alg != Algorithm::EdDSA {
                    return Err(AuthError::Invalid);
                }
                let kid = header.kid.as_deref().ok_or(AuthError::Invalid)?;
                (self.key_for(kid).await.ok_or(AuthError::Invalid)?, Algorithm::EdDSA)
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(alg)).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid,
        })?;
        let claims = data.claims;
        if claims.sub.is_empty() || claims.tid.is_empty() {
            return Err(AuthError::Invalid);
        }
        // Revocations are kept only this long, so no token may outlive them.
        if claims.exp.saturating_sub(claims.iat) > MAX_TOKEN_LIFETIME_SECS {
            return Err(AuthError::Invalid);
        }
        let revoked_at = self.inner.revoked.read().ok().and_then(|r| r.get(&claims.sub).copied());
        if revoked_at.is_some_and(|at| claims.iat <= at) {
            return Err(AuthError::Invalid);
        }
        Ok(Principal {
            user_id: claims.sub.into(),
            tenant: claims.tid.into(),
            roles: claims.roles,
            expires_at_secs: claims.exp,
        })
    }

    /// Authenticate a request: `Authorization: Bearer <token>`, or for a WebSocket handshake
    /// (browsers cannot set headers there) the `access_token` query parameter. Other requests
    /// are authenticated by their header only ([`Principal`]'s extractor).
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let from_query = || is_websocket_handshake(req).then(|| query_token(req)).flatten();
        let token = bearer(req).or_else(from_query).ok_or(AuthError::Missing)?;
        self.verify(&token).await
    }

    /// Authenticate by the `Authorization: Bearer` header alone.
    pub async fn authenticate_bearer(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let token = bearer(req).ok_or(AuthError::Missing)?;
        self.verify(&token).await
    }
}

/// The current key set, or `None` (keep the old keys) when authz cannot answer, answers with an
/// error status, or with something that is not a key set.
async fn fetch_jwks(url: &str) -> Option<HashMap<String, DecodingKey>> {
    let client = awc::Client::builder().timeout(Duration::from_secs(3)).finish();
    let mut res = match client.get(url).send().await {
        Ok(res) => res,
        Err(err) => {
            tracing::warn!(error = %err, "jwks fetch failed; known keys stay");
            return None;
        }
    };
    if !res.status().is_success() {
        tracing::warn!(status = res.status().as_u16(), "jwks answered with an error; known keys stay");
        return None;
    }
    let doc: serde_json::Value = res.json().limit(256 * 1024).await.ok()?;
    let keys = keys_from_jwks(&doc);
    if keys.is_none() {
        tracing::warn!("jwks answer is not a key set; known keys stay");
    }
    keys
}

/// An HTTP/1.1 WebSocket upgrade (`Upgrade: websocket`).
fn is_websocket_handshake(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

fn query_token(req: &HttpRequest) -> Option<String> {
    req.query_string().split('&').find_map(|pair| pair.strip_prefix("access_token=")).map(str::to_owned)
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing => ApiError::unauthorized("a bearer token is required"),
            AuthError::Expired => ApiError::new(Refusal::TokenExpired, "token expired"),
            AuthError::Invalid => ApiError::new(Refusal::InvalidToken, "invalid token"),
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let Some(verifier) = verifier else {
                return Err(ApiError::internal(&"verifier is not configured"));
            };
            verifier.authenticate_bearer(&req).await.map_err(ApiError::from)
        })
    }
}

/// Mint an HS256 token (development, the standalone demo and tests; authz replaces this).
pub fn mint(settings: &AuthSettings, user_id: &str, tenant: &str, roles: &[&str], ttl_secs: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = Claims {
        sub: user_id.to_owned(),
        tid: tenant.to_owned(),
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        exp: now + ttl_secs,
        iat: now,
        nbf: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    };
    sign(settings, &claims)
}

/// Sign arbitrary claims with the configured secret (tests build odd tokens with it).
pub fn sign(settings: &AuthSettings, claims: &Claims) -> String {
    let key = EncodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: SecretString::from(secret.to_owned()),
            jwks_url: String::new(),
            issuer: "chat".into(),
            audience: "chat-api".into(),
            leeway_secs: 0,
        }
    }

    #[actix_web::test]
    async fn a_minted_token_verifies() {
        let s = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let token = mint(&s, "u1", "acme", &["admin"], 60);
        let p = Verifier::new(&s).verify(&token).await.unwrap();
        assert_eq!((p.user_id.as_str(), p.tenant.as_str(), p.roles.clone()), ("u1", "acme", vec!["admin".to_owned()]));
        assert!(p.expires_at_secs > 0, "the token's expiry is carried");
    }

    #[actix_web::test]
    async fn forged_expired_and_alg_none_tokens_are_refused() {
        let s = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let verifier = Verifier::new(&s);
        let forged = mint(&settings("another-secret-another-secret-00"), "u1", "acme", &[], 60);
        assert_eq!(verifier.verify(&forged).await, Err(AuthError::Invalid));

        let mut claims_expired = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        claims_expired.leeway_secs = 0;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let c = Claims {
            sub: "u1".into(),
            tid: "acme".into(),
            iss: "chat".into(),
            aud: "chat-api".into(),
            exp: now - 120,
            iat: now - 200,
            nbf: None,
            roles: vec![],
        };
        let key = EncodingKey::from_secret(b"s3cret-s3cret-s3cret-s3cret-s3cret");
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &key).unwrap();
        assert_eq!(verifier.verify(&expired).await, Err(AuthError::Expired));

        // alg: none with the same claims and an empty signature.
        let token = mint(&s, "u1", "acme", &[], 60);
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(verifier.verify(&none).await, Err(AuthError::Invalid));

        let wrong_aud = AuthSettings { audience: "other".into(), ..settings("s3cret-s3cret-s3cret-s3cret-s3cret") };
        assert_eq!(verifier.verify(&mint(&wrong_aud, "u1", "acme", &[], 60)).await, Err(AuthError::Invalid));
    }

    /// The RFC 8032 test key (seed 9d61...7f60) as PKCS#8 DER, and its public key (JWK `x`).
    fn ed25519_test_key() -> (EncodingKey, &'static str) {
        let hex = "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let der: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        (EncodingKey::from_ed_der(&der), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    }

    fn eddsa_token(key: &EncodingKey, kid: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = Claims {
            sub: "alice@acme".into(),
            tid: "acme".into(),
            iss: "chat".into(),
            aud: "chat-api".into(),
            exp: now + 60,
            iat: now,
            nbf: None,
            roles: vec![],
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    /// Let the next unknown `kid` fetch the key set at once (instead of after `REFRESH_EVERY`).
    fn allow_refetch(verifier: &Verifier) {
        if let Source::Keys { cache, .. } = &verifier.inner.source {
            cache.write().unwrap().refreshed = None;
        }
    }

    #[actix_web::test]
    async fn a_jwks_source_answering_an_error_keeps_the_keys_it_had() {
        use std::sync::atomic::{AtomicU8, Ordering};

        use actix_web::{App, HttpResponse, HttpServer};

        let (key, x) = ed25519_test_key();
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]});
        // 0: the key set; 1: a 500 with a JSON error body; 2: a 200 that is not a key set.
        let mode = Arc::new(AtomicU8::new(0));
        let answer_mode = Arc::clone(&mode);
        let server = HttpServer::new(move || {
            let (jwks, mode) = (jwks.clone(), Arc::clone(&answer_mode));
            App::new().route(
                "/v1/auth/jwks",
                web::get().to(move || {
                    let (jwks, mode) = (jwks.clone(), Arc::clone(&mode));
                    async move {
                        match mode.load(Ordering::SeqCst) {
                            0 => HttpResponse::Ok().json(jwks),
                            1 => HttpResponse::InternalServerError()
                                .json(serde_json::json!({"error": {"code": "internal", "message": "internal error"}})),
                            _ => HttpResponse::Ok().json(serde_json::json!({"status": "starting"})),
                        }
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let running = server.run();
        let handle = running.handle();
        actix_web::rt::spawn(running);

        let settings = AuthSettings { jwks_url: format!("http://127.0.0.1:{port}/v1/auth/jwks"), ..settings("") };
        let verifier = Verifier::new(&settings);
        let token = eddsa_token(&key, "k1");
        assert!(verifier.verify(&token).await.is_ok(), "the key set was fetched");
        for failing in [1, 2] {
            mode.store(failing, Ordering::SeqCst);
            allow_refetch(&verifier);
            // An unknown kid makes the verifier fetch the key set again: the answer is refused.
            assert_eq!(verifier.verify(&eddsa_token(&key, "k2")).await, Err(AuthError::Invalid));
            let kept = verifier.verify(&token).await;
            assert!(kept.is_ok(), "after a JWKS answer of kind {failing}, a known key was forgotten: {kept:?}");
        }
        handle.stop(false).await;
    }

    #[actix_web::test]
    async fn the_access_token_query_parameter_is_taken_by_the_websocket_handshake_only() {
        use actix_web::test::{call_service, init_service, TestRequest};
        use actix_web::{App, HttpResponse};

        let s = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let verifier = Verifier::new(&s);
        let app = init_service(
            App::new()
                .app_data(web::Data::new(verifier))
                .route(
                    "/v1/me",
                    web::get().to(|p: Principal| async move { HttpResponse::Ok().body(p.user_id.to_string()) }),
                )
                .route(
                    "/v1/ws",
                    web::get().to(|req: HttpRequest, verifier: web::Data<Verifier>| async move {
                        match verifier.authenticate(&req).await {
                            Ok(_) => HttpResponse::SwitchingProtocols().finish(),
                            Err(err) => actix_web::ResponseError::error_response(&ApiError::from(err)),
                        }
                    }),
                ),
        )
        .await;
        let token = mint(&s, "u1", "acme", &[], 60);
        let upgrade = |uri: String| {
            TestRequest::get()
                .uri(&uri)
                .insert_header(("Connection", "Upgrade"))
                .insert_header(("Upgrade", "websocket"))
        };

        let header = TestRequest::get().uri("/v1/me").insert_header(("Authorization", format!("Bearer {token}")));
        assert_eq!(call_service(&app, header.to_request()).await.status(), 200);
        for uri in [format!("/v1/me?access_token={token}"), format!("/v1/me?x=1&access_token={token}")] {
            let answer = call_service(&app, TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(answer.status(), 401, "{uri}");
            let upgraded = call_service(&app, upgrade(uri.clone()).to_request()).await;
            assert_eq!(upgraded.status(), 401, "{uri} with an upgrade");
        }
        let handshake = call_service(&app, upgrade(format!("/v1/ws?access_token={token}")).to_request()).await;
        assert_eq!(handshake.status(), 101);
        // Not a handshake: no query token on /v1/ws either.
        let plain =
            call_service(&app, TestRequest::get().uri(&format!("/v1/ws?access_token={token}")).to_request()).await;
        assert_eq!(plain.status(), 401);
    }

    #[actix_web::test]
    async fn revocations_refuse_older_tokens_and_are_dropped_once_those_have_expired() {
        let s = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let verifier = Verifier::new(&s);
        let token = mint(&s, "u1", "acme", &[], 60);
        assert!(verifier.verify(&token).await.is_ok());
        let now = unix_now_secs();
        verifier.revoke_all([
            Revocation { user: "u1".into(), at_secs: now },
            Revocation { user: "gone".into(), at_secs: now - MAX_TOKEN_LIFETIME_SECS - 10 },
        ]);
        assert_eq!(verifier.verify(&token).await, Err(AuthError::Invalid));
        assert_eq!(verifier.revoked_users(), 1, "a revocation older than any live token is dropped");
        // An older time does not shorten a revocation.
        verifier.revoke(&"u1".into(), now - 100);
        assert_eq!(verifier.verify(&token).await, Err(AuthError::Invalid));
        assert!(verifier.verify(&mint(&s, "u2", "acme", &[], 60)).await.is_ok(), "others are not affected");

        // No token may outlive the revocations.
        assert!(verifier.verify(&mint(&s, "u2", "acme", &[], MAX_TOKEN_LIFETIME_SECS)).await.is_ok());
        let too_long = mint(&s, "u2", "acme", &[], MAX_TOKEN_LIFETIME_SECS + 1);
        assert_eq!(verifier.verify(&too_long).await, Err(AuthError::Invalid));
    }
}
