//! What every rule works on (`ContactsCore`), and the steps several rules share: the caller's
//! contact by id, the caller's LINE permission, publishing a change event.

use std::sync::Arc;

use chat_auth::{Principal, Verifier};
use chat_bus::SharedBus;
use chat_protocol::events::EventEnvelope;

use super::error::ContactsError;
use crate::authz::{AuthzClient, Caller};
use crate::invite::Fonts;
use crate::rooms::RoomsClient;
use crate::settings::Settings;
use crate::store::{Contact, ContactKind, Store};

/// The contacts service: its store, the bus, its clients of authz and rooms, and the rules
/// over them (the methods in `service/*.rs`). Shared by every HTTP worker and the consumers.
pub struct ContactsCore {
    pub store: Store,
    pub bus: SharedBus,
    pub settings: Settings,
    /// Verifies the bearer tokens of API callers.
    pub verifier: Verifier,
    pub authz: AuthzClient,
    pub rooms: Arc<RoomsClient>,
    /// The fonts of the profile card (shipped, then the configured fallbacks).
    pub fonts: Arc<Fonts>,
}

/// A contact id is a UUID: anything else names no contact (and is not looked up).
pub(super) fn is_contact_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

impl ContactsCore {
    /// The caller's contact `id` as they may see it: saved, or a LINE friend entry.
    pub(super) async fn visible_contact(&self, principal: &Principal, id: &str) -> Result<Contact, ContactsError> {
        if !is_contact_id(id) {
            return Err(ContactsError::ContactNotFound);
        }
        self.store
            .contact(&principal.user_id, &principal.tenant, id)
            .await?
            .filter(|contact| contact.saved || contact.kind == ContactKind::Line)
            .ok_or(ContactsError::ContactNotFound)
    }

    /// The caller as authz knows them now, who must be allowed to use LINE.
    pub(super) async fn line_caller(&self, principal: &Principal) -> Result<Caller, ContactsError> {
        let caller = self
            .authz
            .caller(&principal.tenant, &principal.user_id)
            .await
            .map_err(|err| ContactsError::AuthzUnavailable(err.0))?;
        if !caller.line {
            return Err(ContactsError::LineNotAuthorized);
        }
        Ok(caller)
    }

    /// Publish a change event (after its change is stored); a failure is `BusUnavailable`.
    pub(super) async fn publish(&self, envelope: &EventEnvelope) -> Result<(), ContactsError> {
        let payload = serde_json::to_vec(envelope)?;
        self.bus.publish_event(payload).await.map_err(|err| ContactsError::BusUnavailable(err.to_string()))
    }
}
