//! Bearer-token verification shared by every service, and token minting for development.
//!
//! Until the authz service serves its JWKS, tokens are HS256 with a configured secret. The
//! verifier pins the algorithm, issuer and audience and requires `exp`; `nbf` is honoured.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use chat_kit::ApiError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 secret; never logged (`SecretString`).
    pub jwt_secret: SecretString,
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
    pub user_id: String,
    pub tenant: String,
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

#[derive(Clone)]
pub struct Verifier {
    inner: Arc<(DecodingKey, Validation)>,
}

impl Verifier {
    pub fn new(settings: &AuthSettings) -> Self {
        let key = DecodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_secs;
        Self {
            inner: Arc::new((key, validation)),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let (key, validation) = &*self.inner;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?;
        let claims = data.claims;
        if claims.sub.is_empty() || claims.tid.is_empty() {
            return Err(AuthError::Invalid);
        }
        Ok(Principal {
            user_id: claims.sub,
            tenant: claims.tid,
            roles: claims.roles,
        })
    }

    /// Authenticate a request: `Authorization: Bearer <token>`, or for WebSocket handshakes
    /// from browsers (which cannot set headers) the `access_token` query parameter.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let token = bearer(req)
            .or_else(|| query_token(req))
            .ok_or(AuthError::Missing)?;
        self.verify(&token)
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(req: &HttpRequest) -> Option<String> {
    req.query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .map(str::to_owned)
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing => ApiError::unauthorized("a bearer token is required"),
            AuthError::Expired => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "token_expired",
                "token expired",
            ),
            AuthError::Invalid => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_token",
                "invalid token",
            ),
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let Some(verifier) = req.app_data::<web::Data<Verifier>>() else {
            return ready(Err(ApiError::internal(&"verifier is not configured")));
        };
        ready(verifier.authenticate(req).map_err(ApiError::from))
    }
}

/// Mint an HS256 token (development, the standalone demo and tests; authz replaces this).
pub fn mint(
    settings: &AuthSettings,
    user_id: &str,
    tenant: &str,
    roles: &[&str],
    ttl_secs: u64,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
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
            issuer: "chat".into(),
            audience: "chat-api".into(),
            leeway_secs: 0,
        }
    }

    #[test]
    fn a_minted_token_verifies() {
        let s = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let token = mint(&s, "u1", "acme", &["admin"], 60);
        let p = Verifier::new(&s).verify(&token).unwrap();
        assert_eq!(
            p,
            Principal {
                user_id: "u1".into(),
                tenant: "acme".into(),
                roles: vec!["admin".into()]
            }
        );
    }

    #[test]
    fn forged_expired_and_alg_none_tokens_are_refused() {
        let s = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let verifier = Verifier::new(&s);
        let forged = mint(
            &settings("another-secret-another-secret-00"),
            "u1",
            "acme",
            &[],
            60,
        );
        assert_eq!(verifier.verify(&forged), Err(AuthError::Invalid));

        let mut claims_expired = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        claims_expired.leeway_secs = 0;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
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
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));

        // alg: none with the same claims and an empty signature.
        let token = mint(&s, "u1", "acme", &[], 60);
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(verifier.verify(&none), Err(AuthError::Invalid));

        let wrong_aud = AuthSettings {
            audience: "other".into(),
            ..settings("s3cret-s3cret-s3cret-s3cret-s3cret")
        };
        assert_eq!(
            verifier.verify(&mint(&wrong_aud, "u1", "acme", &[], 60)),
            Err(AuthError::Invalid)
        );
    }
}
