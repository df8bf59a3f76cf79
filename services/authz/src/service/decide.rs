//! Decisions at the point of use, for other services only (the service token): may these users
//! be in a room with this actor, now (`/internal/v1/decide`)? Whose tokens are revoked
//! (`/internal/v1/revocations`: disabled users, for verifiers that missed the event)?

use chat_auth::{Revocation, Revocations};
use chat_protocol::authz::{DecideRequest, DecideResponse, Verdict};
use chat_protocol::room::ExclusionReason;
use chat_protocol::{TenantId, UserId};
use secrecy::ExposeSecret;

use super::error::AuthzError;
use super::state::AuthzCore;
use crate::store::User;

/// The verdict on one user, `found` being their row (None when unknown) and `user_line`
/// whether that member may connect to LINE under their own tenant's mode.
///
/// LINE users need the actor's LINE permission; unknown and disabled users are refused;
/// members of the actor's tenant are allowed; members of another need an active trust.
fn verdict(
    user: UserId,
    found: Option<User>,
    user_line: bool,
    tenant: &TenantId,
    actor_line: bool,
    trusted: &[TenantId],
) -> Verdict {
    if user.is_line_user() {
        return Verdict {
            user,
            tenant: Some(TenantId::line()),
            allowed: actor_line,
            reason: (!actor_line).then_some(ExclusionReason::LineNotAuthorized),
            line: true,
            display_name: None,
            tenant_name: None,
        };
    }
    match found.filter(|found_user| !found_user.disabled) {
        None => Verdict {
            user,
            tenant: None,
            allowed: false,
            reason: Some(ExclusionReason::UnknownUser),
            line: false,
            display_name: None,
            tenant_name: None,
        },
        Some(member) => {
            let allowed = &member.tenant == tenant || trusted.contains(&member.tenant);
            Verdict {
                user,
                tenant: Some(member.tenant),
                allowed,
                reason: (!allowed).then_some(ExclusionReason::ExternalNotAuthorized),
                line: user_line,
                display_name: Some(member.display_name),
                tenant_name: None,
            }
        }
    }
}

impl AuthzCore {
    /// Whether `presented` is the service token, compared in constant time in the length of
    /// the expected token.
    fn is_service_token(&self, presented: &[u8]) -> bool {
        let expected = self.settings.internal.token.expose_secret().as_bytes();
        presented.len() == expected.len() && presented.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// May `request.actor` have these users in a room, now? Only for callers presenting the
    /// service token (`NotInternalCaller` otherwise). LINE users are `line:<id>`.
    pub async fn decide(&self, presented_token: &[u8], request: DecideRequest) -> Result<DecideResponse, AuthzError> {
        if !self.is_service_token(presented_token) {
            return Err(AuthzError::NotInternalCaller);
        }
        let DecideRequest { tenant, actor, users } = request;
        let mode = self.line_mode(&tenant).await?;
        let stored_actor = self.store.user(&actor).await?.filter(|user| user.tenant == tenant);
        let actor_line = stored_actor.as_ref().is_some_and(|user| user.may_use_line(mode));
        let actor_admin = stored_actor.as_ref().is_some_and(|user| user.admin && !user.disabled);
        let trusted = self.trusted_tenants(&tenant).await?;
        let mut verdicts = Vec::with_capacity(users.len());
        for user in users {
            let found = if user.is_line_user() { None } else { self.store.user(&user).await? };
            let user_line = match &found {
                Some(member) if member.tenant == tenant => member.may_use_line(mode),
                Some(member) => member.may_use_line(self.line_mode(&member.tenant).await?),
                None => false,
            };
            let mut answer = verdict(user, found, user_line, &tenant, actor_line, &trusted);
            if let Some(of) = &answer.tenant {
                if !answer.user.is_line_user() {
                    answer.tenant_name = self.store.tenant(of).await?.map(|t| t.name);
                }
            }
            verdicts.push(answer);
        }
        Ok(DecideResponse { actor_line, actor_admin, trusted_tenants: trusted, verdicts })
    }

    /// The users disabled since `since_secs` (Unix seconds): their tokens issued until then are
    /// refused. Only for callers presenting the service token (`NotInternalCaller` otherwise).
    pub async fn revocations(&self, presented_token: &[u8], since_secs: u64) -> Result<Revocations, AuthzError> {
        if !self.is_service_token(presented_token) {
            return Err(AuthzError::NotInternalCaller);
        }
        let since_ms = i64::try_from(since_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let disabled = self.store.disabled_since(since_ms).await?;
        let revocations = disabled
            .into_iter()
            .map(|(user, at_ms)| Revocation { user, at_secs: u64::try_from(at_ms / 1000).unwrap_or(0) })
            .collect();
        Ok(Revocations { revocations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(username: &str, tenant: &str) -> User {
        User::new_member(&TenantId::new(tenant), username, username, String::new(), false)
    }

    #[test]
    fn verdicts_follow_tenant_trust_and_line_permission() {
        let acme = TenantId::new("acme");
        let trusted = [TenantId::new("globex")];
        let same = verdict("bob@acme".into(), Some(member("bob", "acme")), false, &acme, false, &trusted);
        assert!(same.allowed && same.reason.is_none());
        assert!(!same.line, "the member's own LINE permission is passed on");
        let allowed_line = verdict("bob@acme".into(), Some(member("bob", "acme")), true, &acme, false, &trusted);
        assert!(allowed_line.allowed && allowed_line.line);
        assert_eq!(same.tenant, Some(acme.clone()));

        let partner = verdict("carol@globex".into(), Some(member("carol", "globex")), false, &acme, false, &trusted);
        assert!(partner.allowed);
        let stranger = verdict("eve@initech".into(), Some(member("eve", "initech")), false, &acme, false, &trusted);
        assert_eq!((stranger.allowed, stranger.reason), (false, Some(ExclusionReason::ExternalNotAuthorized)));

        let ghost = verdict("ghost@acme".into(), None, false, &acme, true, &trusted);
        assert_eq!((ghost.tenant, ghost.reason), (None, Some(ExclusionReason::UnknownUser)));
        let mut disabled_user = member("dan", "acme");
        disabled_user.disabled = true;
        let disabled = verdict("dan@acme".into(), Some(disabled_user), false, &acme, true, &trusted);
        assert_eq!(disabled.reason, Some(ExclusionReason::UnknownUser));

        let line_refused = verdict("line:U1".into(), None, false, &acme, false, &trusted);
        assert_eq!(line_refused.tenant, Some(TenantId::line()));
        assert_eq!((line_refused.allowed, line_refused.reason), (false, Some(ExclusionReason::LineNotAuthorized)));
        let line_allowed = verdict("line:U1".into(), None, false, &acme, true, &trusted);
        assert!(line_allowed.allowed && line_allowed.reason.is_none());
    }
}
