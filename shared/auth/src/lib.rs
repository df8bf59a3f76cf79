//! Bearer-token verification shared by every service, and token minting for development.
//!
//! Tokens are EdDSA, verified with the authz service's JWKS (or, in the standalone binary, its
//! in-process key set). Without either, a configured HS256 secret is used (development and
//! tests). The verifier pins the algorithm, issuer and audience and requires `exp`; `nbf` is
//! honoured.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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

struct Inner {
    source: Source,
    issuer: String,
    audience: String,
    leeway: u64,
    /// user id -> time (Unix seconds) before which their tokens are refused.
    revoked: RwLock<HashMap<String, u64>>,
}

#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

fn keys_from_jwks(doc: &serde_json::Value) -> HashMap<String, DecodingKey> {
    let Ok(set) = serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(doc.clone()) else {
        return HashMap::new();
    };
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
        })
        .collect()
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

    /// Refuse tokens of `user` issued before `at_secs` (a disabled user).
    pub fn revoke(&self, user: &UserId, at_secs: u64) {
        if let Ok(mut revoked) = self.inner.revoked.write() {
            revoked.insert(user.as_str().to_owned(), at_secs);
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
            Fetch::Local(provider) => Some(keys_from_jwks(&provider.jwks())),
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
        let revoked_at = self.inner.revoked.read().ok().and_then(|r| r.get(&claims.sub).copied());
        if revoked_at.is_some_and(|at| claims.iat <= at) {
            return Err(AuthError::Invalid);
        }
        Ok(Principal { user_id: claims.sub.into(), tenant: claims.tid.into(), roles: claims.roles })
    }

    /// Authenticate a request: `Authorization: Bearer <token>`, or for WebSocket handshakes
    /// from browsers (which cannot set headers) the `access_token` query parameter.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let token = bearer(req).or_else(|| query_token(req)).ok_or(AuthError::Missing)?;
        self.verify(&token).await
    }
}

async fn fetch_jwks(url: &str) -> Option<HashMap<String, DecodingKey>> {
    let client = awc::Client::builder().timeout(Duration::from_secs(3)).finish();
    let mut res = match client.get(url).send().await {
        Ok(res) => res,
        Err(err) => {
            tracing::warn!(error = %err, "jwks fetch failed");
            return None;
        }
    };
    let doc: serde_json::Value = res.json().limit(256 * 1024).await.ok()?;
    Some(keys_from_jwks(&doc))
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
            verifier.authenticate(&req).await.map_err(ApiError::from)
        })
    }
}

/// Routes of a service that is not built yet: every path under `prefixes` authenticates the
/// caller like any route (401 without a valid token) and answers `501 not_implemented`. The
/// deployments and the standalone mount the service's real configuration surface already.
pub fn unbuilt_routes(
    service: &'static str,
    prefixes: &'static [&'static str],
    verifier: Verifier,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let verifier = web::Data::new(verifier);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(verifier.clone());
        for prefix in prefixes {
            let answer = move |_caller: Principal| async move {
                Err::<actix_web::HttpResponse, _>(ApiError::new(
                    Refusal::NotImplemented,
                    format!("this part of the {service} service is not built yet"),
                ))
            };
            cfg.route(prefix, web::route().to(answer)).route(&format!("{prefix}/{{tail:.*}}"), web::route().to(answer));
        }
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
        assert_eq!(p, Principal { user_id: "u1".into(), tenant: "acme".into(), roles: vec!["admin".into()] });
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
}
