//! Members' channel bindings, managed by the admins of the member's tenant: bind (the member
//! must exist and be allowed LINE), list, unbind. Each change publishes `line.channel_bound` or
//! `line.channel_unbound` (contacts gives the member their LINE invite from them).

use chat_auth::Principal;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::now_ms;
use secrecy::SecretString;

use super::error::LineError;
use super::state::LineCore;
use super::validation;
use crate::store::{Bound, Channel, NewBinding};

/// What an admin binds a member to. The credentials are never printed.
#[derive(Debug)]
pub struct NewChannel {
    pub channel_id: String,
    pub channel_secret: SecretString,
    pub access_token: SecretString,
    pub basic_id: String,
}

impl LineCore {
    /// Bind the member to the channel (replacing the member's binding).
    pub async fn bind_channel(
        &self,
        principal: &Principal,
        user_id: &str,
        new: NewChannel,
    ) -> Result<Channel, LineError> {
        let member = self.admins_member(principal, user_id).await?;
        let NewChannel { channel_id, channel_secret, access_token, basic_id } = new;
        validation::check_binding(&channel_id, &channel_secret, &access_token, &basic_id)?;
        let tenant = &principal.tenant;
        let decision = self.authz.member(tenant, &member).await.map_err(|err| LineError::AuthzUnavailable(err.0))?;
        if !decision.exists {
            return Err(LineError::UserNotFound(member));
        }
        if !decision.line {
            return Err(LineError::LineNotAuthorized);
        }
        let secret_enc = self.secrets.encrypt(&channel_secret);
        let token_enc = self.secrets.encrypt(&access_token);
        let binding = NewBinding {
            channel_id: &channel_id,
            user_id: &member,
            tenant,
            basic_id: &basic_id,
            secret_enc: &secret_enc,
            token_enc: &token_enc,
        };
        let channel = match self.store.bind(&binding, now_ms()).await? {
            Bound::Stored(channel) => channel,
            Bound::TakenByAnother => return Err(LineError::ChannelExists),
        };
        tracing::info!(user = %member, channel_id = %channel.channel_id, "line channel bound");
        let event = ChangeEvent::LineChannelBound { tenant: tenant.clone(), user: member, basic_id };
        self.publish(&EventEnvelope::new(event)).await?;
        Ok(channel)
    }

    /// The channels of the admin's tenant.
    pub async fn channels(&self, principal: &Principal) -> Result<Vec<Channel>, LineError> {
        self.require_admin(principal).await?;
        Ok(self.store.channels_of_tenant(&principal.tenant).await?)
    }

    /// Remove the member's binding. Done again (or without a binding) it publishes the
    /// unbinding again: a retry after a lost publish repairs it.
    pub async fn unbind_channel(&self, principal: &Principal, user_id: &str) -> Result<(), LineError> {
        let member = self.admins_member(principal, user_id).await?;
        if self.store.unbind(&member, &principal.tenant).await? {
            tracing::info!(user = %member, "line channel unbound");
        }
        let event = ChangeEvent::LineChannelUnbound { tenant: principal.tenant.clone(), user: member };
        self.publish(&EventEnvelope::new(event)).await
    }
}
