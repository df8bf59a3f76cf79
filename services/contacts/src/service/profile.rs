//! The profile a member shows LINE users: name and company come from the workspace profile
//! (the status message is the company and is not editable); about, phone and website are
//! the member's own, stored here and published (`line.profile_changed`) for the LINE gateway.

use chat_auth::Principal;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::{now_ms, UserId};

use super::error::ContactsError;
use super::state::ContactsCore;
use super::validation;
use crate::store::LineProfile;

/// A member's LINE profile as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileView {
    pub user: UserId,
    /// The display name of the workspace profile.
    pub name: String,
    /// The company (tenant) name of the workspace profile; also the status message.
    pub company: String,
    pub profile: LineProfile,
}

/// Changes to the member's own fields: `Some(None)` clears a field, `None` leaves it.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub about: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub website: Option<Option<String>>,
}

impl ProfilePatch {
    fn check(&self) -> Result<(), ContactsError> {
        if let Some(Some(about)) = &self.about {
            validation::about(about)?;
        }
        if let Some(Some(phone)) = &self.phone {
            validation::phone(phone)?;
        }
        if let Some(Some(website)) = &self.website {
            validation::website(website)?;
        }
        Ok(())
    }

    fn apply(self, profile: LineProfile) -> LineProfile {
        LineProfile {
            about: self.about.unwrap_or(profile.about),
            phone: self.phone.unwrap_or(profile.phone),
            website: self.website.unwrap_or(profile.website),
        }
    }
}

impl ContactsCore {
    /// The caller's LINE profile (the caller must be allowed to use LINE).
    pub async fn line_profile(&self, principal: &Principal) -> Result<ProfileView, ContactsError> {
        let caller = self.line_caller(principal).await?;
        let profile = self.store.line_profile(&principal.user_id, &principal.tenant).await?;
        Ok(ProfileView {
            user: principal.user_id.clone(),
            name: caller.display_name.unwrap_or_else(|| principal.user_id.to_string()),
            company: caller.company.unwrap_or_else(|| principal.tenant.to_string()),
            profile,
        })
    }

    /// Change the caller's own LINE profile fields, then publish the profile.
    pub async fn update_line_profile(
        &self,
        principal: &Principal,
        patch: ProfilePatch,
    ) -> Result<ProfileView, ContactsError> {
        let caller = self.line_caller(principal).await?;
        patch.check()?;
        let current = self.store.line_profile(&principal.user_id, &principal.tenant).await?;
        let profile = patch.apply(current);
        self.store.set_line_profile(&principal.user_id, &principal.tenant, &profile, now_ms()).await?;
        let event = ChangeEvent::LineProfileChanged {
            tenant: principal.tenant.clone(),
            user: principal.user_id.clone(),
            about: profile.about.clone(),
            phone: profile.phone.clone(),
            website: profile.website.clone(),
        };
        self.publish(&EventEnvelope::new(event)).await?;
        Ok(ProfileView {
            user: principal.user_id.clone(),
            name: caller.display_name.unwrap_or_else(|| principal.user_id.to_string()),
            company: caller.company.unwrap_or_else(|| principal.tenant.to_string()),
            profile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_patch_sets_clears_or_keeps_each_field_and_is_refused_whole() {
        let current = LineProfile { about: Some("hi".into()), phone: Some("1".into()), website: None };
        let patch = ProfilePatch { about: Some(None), phone: None, website: Some(Some("https://a.example".into())) };
        assert!(patch.check().is_ok());
        assert_eq!(
            patch.apply(current),
            LineProfile { about: None, phone: Some("1".into()), website: Some("https://a.example".into()) }
        );
        let bad = ProfilePatch { about: Some(Some("ok".into())), phone: None, website: Some(Some("ftp://x".into())) };
        assert!(matches!(bad.check(), Err(ContactsError::InvalidUrl(_))));
    }
}
