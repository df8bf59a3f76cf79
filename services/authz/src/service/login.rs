//! Login (credential check, rate limits, token signing), the caller's own view, and the
//! public keys.

use chat_auth::{Claims, KeyProvider, Principal};
use chat_protocol::TenantId;
use secrecy::{ExposeSecret, SecretString};

use super::error::AuthzError;
use super::limits::Origin;
use super::state::{verify_password, AuthzCore};
use crate::password;
use crate::store::User;

/// Longest tenant and username accepted at login (longer ones cannot exist).
const MAX_NAME_LEN: usize = 64;
/// Longest password accepted at login (as at creation).
const MAX_PASSWORD_LEN: usize = 256;

/// What a login presents.
pub struct Credentials {
    pub tenant: TenantId,
    pub username: String,
    pub password: SecretString,
}

/// A signed access token.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// The caller and what they may do now.
#[derive(Debug)]
pub struct Me {
    pub user: User,
    /// Whether they may connect to LINE.
    pub line: bool,
    /// The tenants theirs has an active trust with.
    pub external_tenants: Vec<TenantId>,
}

fn unix_now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl AuthzCore {
    /// Check the credentials and sign a token. Rate limited per client address (behind trusted
    /// proxies, the address they forwarded) and per account (even a right password waits); an
    /// unknown user costs as much as a wrong password, and a disabled one is refused alike.
    pub async fn login(&self, credentials: Credentials, origin: &Origin) -> Result<IssuedToken, AuthzError> {
        let Credentials { tenant, username, password } = credentials;
        if tenant.as_str().chars().count() > MAX_NAME_LEN
            || username.chars().count() > MAX_NAME_LEN
            || password.expose_secret().chars().count() > MAX_PASSWORD_LEN
        {
            return Err(AuthzError::LoginFieldTooLong);
        }
        self.limiters.check(self.limiters.client(origin), format!("{tenant}/{username}"))?;
        let found = self.store.user_by_name(&tenant, &username).await?;
        let phc = found.as_ref().map_or(password::decoy(), |user| user.password_hash.as_str()).to_owned();
        let matches = verify_password(password, phc).await;
        let user = match found {
            Some(user) if matches && !user.disabled => user,
            _ => return Err(AuthzError::InvalidCredentials),
        };
        let issued = unix_now_secs();
        let tokens = &self.settings.tokens;
        let claims = Claims {
            sub: user.id.to_string(),
            tid: user.tenant.to_string(),
            iss: tokens.issuer.clone(),
            aud: tokens.audience.clone(),
            exp: issued + tokens.ttl_secs,
            iat: issued,
            nbf: Some(issued),
            roles: user.roles(),
        };
        Ok(IssuedToken { access_token: self.keys.sign(&claims)?, expires_in: tokens.ttl_secs })
    }

    /// The caller as the store knows them now, with their LINE permission and trusts.
    pub async fn me(&self, principal: &Principal) -> Result<Me, AuthzError> {
        let (user, mode) = self.caller(principal).await?;
        let external_tenants = self.trusted_tenants(&user.tenant).await?;
        Ok(Me { line: user.may_use_line(mode), external_tenants, user })
    }

    /// Every unretired public key, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }
}
