//! Who a member may know by name: the members of their own company, and the members of the
//! companies theirs trusts both ways now. Members list and name people with it (room
//! participants, the people to start a room with); nothing else about them is shown.

use std::collections::HashMap;

use chat_auth::Principal;
use chat_protocol::{TenantId, UserId};

use super::{AuthzCore, AuthzError};
use crate::store::User;

/// The most ids one lookup names.
pub const MAX_LOOKUP: usize = 100;

/// A person as another member sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: UserId,
    pub display_name: String,
    pub tenant: TenantId,
    /// Their company's name.
    pub tenant_name: String,
}

impl AuthzCore {
    /// The caller's colleagues (the enabled members of their company), by username.
    pub async fn colleagues(&self, principal: &Principal) -> Result<Vec<Person>, AuthzError> {
        let (me, _) = self.caller(principal).await?;
        let company = self.store.tenant(&me.tenant).await?.map(|t| t.name).unwrap_or_default();
        let mut people: Vec<Person> = self
            .store
            .users(&me.tenant)
            .await?
            .into_iter()
            .filter(|user| !user.disabled)
            .map(|user| person(user, &company))
            .collect();
        people.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(people)
    }

    /// The people among `ids` the caller may know: members of the caller's company or of a
    /// company trusted both ways now. Others (unknown, disabled, untrusted, LINE users) are
    /// left out, never told apart. At most `MAX_LOOKUP` ids.
    pub async fn people(&self, principal: &Principal, ids: &[UserId]) -> Result<Vec<Person>, AuthzError> {
        if ids.len() > MAX_LOOKUP {
            return Err(AuthzError::TooManyIds(MAX_LOOKUP));
        }
        let (me, _) = self.caller(principal).await?;
        let trusted = self.trusted_tenants(&me.tenant).await?;
        let mut people = Vec::new();
        // Each company's name read once, however many of its members are asked for.
        let mut companies: HashMap<TenantId, String> = HashMap::new();
        for id in ids {
            if id.is_line_user() || people.iter().any(|p: &Person| &p.id == id) {
                continue;
            }
            let Some(user) = self.store.user(id).await?.filter(|user| !user.disabled) else { continue };
            if user.tenant != me.tenant && !trusted.contains(&user.tenant) {
                continue;
            }
            if !companies.contains_key(&user.tenant) {
                let name = self.store.tenant(&user.tenant).await?.map(|t| t.name).unwrap_or_default();
                companies.insert(user.tenant.clone(), name);
            }
            let company = companies.get(&user.tenant).map(String::as_str).unwrap_or_default();
            people.push(person(user, company));
        }
        Ok(people)
    }
}

fn person(user: User, company: &str) -> Person {
    Person { id: user.id, display_name: user.display_name, tenant: user.tenant, tenant_name: company.to_owned() }
}
