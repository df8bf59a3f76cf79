//! Authz's decisions, asked at the point of use (`POST {authz.url}/internal/v1/decide` with
//! the service token): may the caller have this user as a contact, may the caller use LINE,
//! and the names (display name, company) a contact and a profile card show. Not cached: every
//! answer is the permission as it is now.

use std::time::Duration;

use chat_protocol::authz::{DecideRequest, DecideResponse, Verdict};
use chat_protocol::{TenantId, UserId};
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::settings::AuthzSettings;

/// How long one decision may take.
const DECIDE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest answer read.
const ANSWER_LIMIT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("authz unavailable: {0}")]
pub struct AuthzUnavailable(pub String);

/// What authz says of the caller themself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// May use LINE now.
    pub line: bool,
    pub display_name: Option<String>,
    pub company: Option<String>,
}

pub struct AuthzClient {
    settings: AuthzSettings,
}

impl AuthzClient {
    pub fn new(settings: AuthzSettings) -> Self {
        Self { settings }
    }

    /// The verdict on `user` for `actor` of `tenant`.
    pub async fn verdict(&self, tenant: &TenantId, actor: &UserId, user: &UserId) -> Result<Verdict, AuthzUnavailable> {
        Ok(self.verdict_in(tenant, actor, user, tenant).await?.0)
    }

    /// The verdict on `user`, and whether the caller's tenant has an active trust with
    /// `their_tenant` (the tenant the caller named, whether or not `user` exists there).
    pub async fn verdict_in(
        &self,
        tenant: &TenantId,
        actor: &UserId,
        user: &UserId,
        their_tenant: &TenantId,
    ) -> Result<(Verdict, bool), AuthzUnavailable> {
        let answer = self.decide(tenant, actor, vec![user.clone()]).await?;
        let trusted = answer.trusted_tenants.contains(their_tenant);
        let verdict = answer
            .verdicts
            .into_iter()
            .find(|verdict| &verdict.user == user)
            .ok_or_else(|| AuthzUnavailable(format!("no verdict on {user}")))?;
        Ok((verdict, trusted))
    }

    /// The caller's LINE permission and names.
    pub async fn caller(&self, tenant: &TenantId, actor: &UserId) -> Result<Caller, AuthzUnavailable> {
        let answer = self.decide(tenant, actor, vec![actor.clone()]).await?;
        let own = answer.verdicts.into_iter().find(|verdict| &verdict.user == actor);
        let (display_name, company) = own.map(|v| (v.display_name, v.tenant_name)).unwrap_or_default();
        Ok(Caller { line: answer.actor_line, display_name, company })
    }

    async fn decide(
        &self,
        tenant: &TenantId,
        actor: &UserId,
        users: Vec<UserId>,
    ) -> Result<DecideResponse, AuthzUnavailable> {
        if self.settings.url.is_empty() {
            return Err(AuthzUnavailable("authz.url is not set".into()));
        }
        let client = awc::Client::builder().timeout(DECIDE_TIMEOUT).disable_redirects().finish();
        let body = DecideRequest { tenant: tenant.clone(), actor: actor.clone(), users };
        let request = client
            .post(format!("{}/internal/v1/decide", self.settings.url.trim_end_matches('/')))
            .insert_header(("X-Internal-Token", self.settings.internal_token.expose_secret()));
        let (request, span) = chat_kit::outbound::traced(request, "authz", "/internal/v1/decide");
        let mut res =
            request.send_json(&body).instrument(span.clone()).await.map_err(|err| AuthzUnavailable(err.to_string()))?;
        chat_kit::outbound::record_status(&span, res.status().as_u16());
        if !res.status().is_success() {
            return Err(AuthzUnavailable(format!("status {}", res.status())));
        }
        res.json::<DecideResponse>().limit(ANSWER_LIMIT).await.map_err(|err| AuthzUnavailable(err.to_string()))
    }
}
