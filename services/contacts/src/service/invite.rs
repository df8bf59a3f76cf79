//! A member's LINE invite: My ID (the workspace user id), the add-friend URL of their LINE
//! Official Account once one is bound, and its QR code and profile card as PNG (rendered on a
//! blocking thread).

use chat_auth::Principal;
use chat_protocol::UserId;

use super::error::ContactsError;
use super::state::ContactsCore;
use super::validation;
use crate::authz::Caller;
use crate::invite::{self, Card};
use crate::metrics::metrics;

/// What the invite page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The caller's user id (the same as their workspace id).
    pub my_id: UserId,
    /// `None` while no LINE Official Account is bound.
    pub add_friend_url: Option<String>,
}

impl ContactsCore {
    /// The caller's invite (the caller must be allowed to use LINE).
    pub async fn line_invite(&self, principal: &Principal) -> Result<Invite, ContactsError> {
        self.line_caller(principal).await?;
        let add_friend_url = self.add_friend_url(principal).await?;
        metrics().invites_served.with_label_values(&["json"]).inc();
        Ok(Invite { my_id: principal.user_id.clone(), add_friend_url })
    }

    /// The QR code of the caller's add-friend URL, as PNG.
    pub async fn invite_qr_png(&self, principal: &Principal) -> Result<Vec<u8>, ContactsError> {
        self.line_caller(principal).await?;
        let url = self.add_friend_url(principal).await?.ok_or(ContactsError::LineAccountNotSetUp)?;
        let png = tokio::task::spawn_blocking(move || invite::qr_png(&url)).await??;
        metrics().invites_served.with_label_values(&["qr"]).inc();
        Ok(png)
    }

    /// The caller's profile card (name, company, My ID, the QR code), as PNG.
    pub async fn invite_card_png(&self, principal: &Principal) -> Result<Vec<u8>, ContactsError> {
        let Caller { display_name, company, .. } = self.line_caller(principal).await?;
        let url = self.add_friend_url(principal).await?.ok_or(ContactsError::LineAccountNotSetUp)?;
        let name = display_name.unwrap_or_else(|| principal.user_id.to_string());
        let company = company.unwrap_or_else(|| principal.tenant.to_string());
        let my_id = principal.user_id.to_string();
        let fonts = self.fonts.clone();
        let png = tokio::task::spawn_blocking(move || {
            invite::card_png(&fonts, &Card { name: &name, company: &company, my_id: &my_id, add_friend_url: &url })
        })
        .await??;
        metrics().invites_served.with_label_values(&["card"]).inc();
        Ok(png)
    }

    async fn add_friend_url(&self, principal: &Principal) -> Result<Option<String>, ContactsError> {
        let basic_id = self.store.line_binding(&principal.user_id, &principal.tenant).await?;
        Ok(basic_id.map(|id| validation::add_friend_url(&self.settings.contacts.add_friend_base, &id)))
    }
}
