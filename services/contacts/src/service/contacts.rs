//! Clients/Partners and LINE friends: list, add (an external workspace user, with the pair's
//! 1:1 room; or a LINE friend), read, the member's notes, remove.

use chat_auth::Principal;
use chat_protocol::{now_ms, TenantId, UserId};

use super::error::ContactsError;
use super::state::ContactsCore;
use super::validation;
use crate::metrics::metrics;
use crate::rooms::RoomsError;
use crate::store::{Contact, ContactKind, ExternalPeer, ListFilter, Notes};

/// One page of a list, and the cursor of the next (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page {
    pub contacts: Vec<Contact>,
    pub next: Option<String>,
}

/// What a list asks for, as the caller gave it (checked by the rule).
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub kind: Option<String>,
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub after: Option<String>,
}

/// Whom to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewContact {
    /// A member of another tenant.
    External { tenant: String, username: String },
    /// One of the caller's LINE friends, into Clients/Partners.
    Line { line_user: String },
}

impl NewContact {
    /// Either a tenant and a username, or a LINE user: never both, never neither.
    pub fn from_fields(
        tenant: Option<String>,
        username: Option<String>,
        line_user: Option<String>,
    ) -> Result<Self, ContactsError> {
        match (tenant, username, line_user) {
            (Some(tenant), Some(username), None) => Ok(NewContact::External { tenant, username }),
            (None, None, Some(line_user)) => Ok(NewContact::Line { line_user }),
            _ => Err(ContactsError::InvalidField("give either tenant and username, or line_user".into())),
        }
    }
}

/// Changes to the member's notes: `Some(None)` clears a field, `None` leaves it.
#[derive(Debug, Clone, Default)]
pub struct NotesPatch {
    pub name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
}

impl NotesPatch {
    /// Check every given value; nothing is stored when one is refused.
    fn check(&self) -> Result<(), ContactsError> {
        if let Some(Some(name)) = &self.name {
            validation::name(name)?;
        }
        if let Some(Some(phone)) = &self.phone {
            validation::phone(phone)?;
        }
        if let Some(Some(email)) = &self.email {
            validation::email(email)?;
        }
        Ok(())
    }

    fn apply(self, notes: Notes) -> Notes {
        Notes {
            name: self.name.unwrap_or(notes.name),
            phone: self.phone.unwrap_or(notes.phone),
            email: self.email.unwrap_or(notes.email),
        }
    }
}

fn page(mut contacts: Vec<Contact>, limit: u32) -> Page {
    let more = contacts.len() > limit as usize;
    contacts.truncate(limit as usize);
    let next = if more { contacts.last().map(|contact| contact.id.clone()) } else { None };
    Page { contacts, next }
}

impl ContactsCore {
    /// The caller's saved contacts (Clients/Partners), by id.
    pub async fn list_contacts(&self, principal: &Principal, request: ListRequest) -> Result<Page, ContactsError> {
        let kind = match request.kind.as_deref() {
            None => None,
            Some(text) => Some(
                ContactKind::try_from(text.to_owned())
                    .map_err(|_| ContactsError::InvalidQuery("kind is line or external".into()))?,
            ),
        };
        let limit = validation::page_limit(request.limit, self.settings.contacts.page_max)?;
        let text = request.q.as_deref().filter(|q| !q.is_empty());
        if text.is_some_and(|q| q.chars().count() > validation::QUERY_MAX) {
            return Err(ContactsError::InvalidQuery(format!("q is at most {} characters", validation::QUERY_MAX)));
        }
        let filter = ListFilter { kind, saved_only: true, text, after: request.after.as_deref(), limit: limit + 1 };
        let contacts = self.store.contacts(&principal.user_id, &principal.tenant, &filter).await?;
        Ok(page(contacts, limit))
    }

    /// The caller's LINE friends (saved or not), by id.
    pub async fn line_friends(
        &self,
        principal: &Principal,
        limit: Option<u32>,
        after: Option<String>,
    ) -> Result<Page, ContactsError> {
        let limit = validation::page_limit(limit, self.settings.contacts.page_max)?;
        let filter = ListFilter {
            kind: Some(ContactKind::Line),
            saved_only: false,
            text: None,
            after: after.as_deref(),
            limit: limit + 1,
        };
        let contacts = self.store.contacts(&principal.user_id, &principal.tenant, &filter).await?;
        Ok(page(contacts, limit))
    }

    /// The caller's contact: saved, or a LINE friend entry.
    pub async fn contact(&self, principal: &Principal, id: &str) -> Result<Contact, ContactsError> {
        self.visible_contact(principal, id).await
    }

    /// Add a contact; the contact and whether it was newly saved (false: it was saved before).
    pub async fn add_contact(&self, principal: &Principal, new: NewContact) -> Result<(Contact, bool), ContactsError> {
        let (contact, was_saved) = match new {
            NewContact::External { tenant, username } => self.add_external(principal, &tenant, &username).await?,
            NewContact::Line { line_user } => {
                let peer = UserId::new(line_user);
                if !peer.is_line_user() {
                    return Err(ContactsError::ContactNotFound);
                }
                self.store
                    .save_line(&principal.user_id, &principal.tenant, &peer, now_ms())
                    .await?
                    .ok_or(ContactsError::ContactNotFound)?
            }
        };
        if !was_saved {
            metrics().saved.with_label_values(&[contact.kind.as_str()]).inc();
        }
        Ok((contact, !was_saved))
    }

    /// A member of another tenant, whom authz allows (active trust), with the pair's 1:1 room.
    async fn add_external(
        &self,
        principal: &Principal,
        tenant: &str,
        username: &str,
    ) -> Result<(Contact, bool), ContactsError> {
        validation::tenant(tenant)?;
        validation::username(username)?;
        let peer_tenant = TenantId::new(tenant);
        if peer_tenant == principal.tenant {
            return Err(ContactsError::OwnTenant);
        }
        let peer = UserId::new(format!("{username}@{tenant}"));
        let (verdict, trusted) = self
            .authz
            .verdict_in(&principal.tenant, &principal.user_id, &peer, &peer_tenant)
            .await
            .map_err(|err| ContactsError::AuthzUnavailable(err.0))?;
        // Without a trust, another company's members are not the caller's to know of: a user who
        // does not exist there is answered like one who does.
        if !trusted {
            return Err(ContactsError::ExternalNotAuthorized(peer));
        }
        if verdict.tenant.as_ref() != Some(&peer_tenant) {
            return Err(ContactsError::UserNotFound(peer));
        }
        if !verdict.allowed {
            return Err(ContactsError::ExternalNotAuthorized(peer));
        }
        let room_id =
            self.rooms.open_external_direct(&principal.user_id, &principal.tenant, &peer, &peer_tenant).await.map_err(
                |err| match err {
                    RoomsError::Refused(refusal) => ContactsError::RoomRefused(refusal),
                    RoomsError::Timeout => ContactsError::RoomTimeout,
                    RoomsError::Bus(bus) => ContactsError::BusUnavailable(bus.to_string()),
                    RoomsError::Encode(encode) => ContactsError::Encode(encode),
                    RoomsError::Unexpected => ContactsError::BusUnavailable("unexpected answer from rooms".into()),
                },
            )?;
        let display_name = verdict.display_name.unwrap_or_else(|| peer.to_string());
        let shown = ExternalPeer {
            peer: &peer,
            peer_tenant: &peer_tenant,
            display_name: &display_name,
            company: verdict.tenant_name.as_deref(),
            room_id: &room_id,
        };
        Ok(self.store.save_external(&principal.user_id, &principal.tenant, &shown, now_ms()).await?)
    }

    /// Change the caller's notes on a saved contact.
    pub async fn update_notes(
        &self,
        principal: &Principal,
        id: &str,
        patch: NotesPatch,
    ) -> Result<Contact, ContactsError> {
        patch.check()?;
        let contact = self.visible_contact(principal, id).await?;
        if !contact.saved {
            return Err(ContactsError::ContactNotFound);
        }
        let current = Notes { name: contact.name, phone: contact.phone, email: contact.email };
        let notes = patch.apply(current);
        self.store
            .set_notes(&principal.user_id, &principal.tenant, id, &notes, now_ms())
            .await?
            .ok_or(ContactsError::ContactNotFound)
    }

    /// Take a saved contact out of Clients/Partners (its room, history and block state stay).
    pub async fn remove_contact(&self, principal: &Principal, id: &str) -> Result<(), ContactsError> {
        if !super::state::is_contact_id(id) {
            return Err(ContactsError::ContactNotFound);
        }
        if !self.store.unsave(&principal.user_id, &principal.tenant, id, now_ms()).await? {
            return Err(ContactsError::ContactNotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_contact_is_either_an_external_user_or_a_line_friend() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            NewContact::from_fields(some("globex"), some("carol"), None).unwrap(),
            NewContact::External { tenant: "globex".into(), username: "carol".into() }
        );
        assert_eq!(
            NewContact::from_fields(None, None, some("line:U1")).unwrap(),
            NewContact::Line { line_user: "line:U1".into() }
        );
        for (tenant, username, line_user) in [
            (None, None, None),
            (some("globex"), None, None),
            (None, some("carol"), None),
            (some("globex"), some("carol"), some("line:U1")),
            (some("globex"), None, some("line:U1")),
        ] {
            assert!(matches!(
                NewContact::from_fields(tenant, username, line_user),
                Err(ContactsError::InvalidField(_))
            ));
        }
    }

    #[test]
    fn a_notes_patch_sets_clears_or_keeps_each_field() {
        let current = Notes { name: Some("Taro".into()), phone: Some("1".into()), email: Some("t@x.jp".into()) };
        let patch = NotesPatch { name: Some(Some("Jiro".into())), phone: Some(None), email: None };
        assert_eq!(
            patch.apply(current),
            Notes { name: Some("Jiro".into()), phone: None, email: Some("t@x.jp".into()) }
        );
    }

    #[test]
    fn a_notes_patch_with_one_bad_field_is_refused_whole() {
        let patch = NotesPatch { name: Some(Some("Jiro".into())), phone: Some(Some("abc".into())), email: None };
        assert!(matches!(patch.check(), Err(ContactsError::InvalidPhone)));
    }
}
