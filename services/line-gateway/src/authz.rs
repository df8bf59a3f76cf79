//! Authz's decisions, asked at the point of use (`POST {authz.url}/internal/v1/decide` with
//! the service token): does this member exist, may they use LINE, are they an admin. Not
//! cached: every answer is the permission as it is now.

use std::time::Duration;

use chat_protocol::authz::{DecideRequest, DecideResponse};
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

/// What authz says of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The member exists in the tenant asked about (and is not disabled).
    pub exists: bool,
    /// May use LINE now.
    pub line: bool,
}

pub struct AuthzClient {
    settings: AuthzSettings,
}

impl AuthzClient {
    pub fn new(settings: AuthzSettings) -> Self {
        Self { settings }
    }

    /// Whether `member` exists in `tenant`, and may use LINE.
    pub async fn member(&self, tenant: &TenantId, member: &UserId) -> Result<Member, AuthzUnavailable> {
        let answer = self.decide(tenant, member, vec![member.clone()]).await?;
        let exists =
            answer.verdicts.iter().any(|verdict| &verdict.user == member && verdict.tenant.as_ref() == Some(tenant));
        Ok(Member { exists, line: exists && answer.actor_line })
    }

    /// Whether `member` is an enabled admin of `tenant` now (the stored member: a token's role
    /// may be older than a demotion).
    pub async fn admin(&self, tenant: &TenantId, member: &UserId) -> Result<bool, AuthzUnavailable> {
        Ok(self.decide(tenant, member, vec![]).await?.actor_admin)
    }

    /// The member's display name, if authz has one.
    pub async fn display_name(&self, tenant: &TenantId, member: &UserId) -> Result<Option<String>, AuthzUnavailable> {
        let answer = self.decide(tenant, member, vec![member.clone()]).await?;
        Ok(answer.verdicts.into_iter().find(|verdict| &verdict.user == member).and_then(|verdict| verdict.display_name))
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
