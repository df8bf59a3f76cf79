//! Blocking a contact: a block is a period (from `since_ms`, until `until_ms` once unblocked),
//! stored first and then published (`contact.blocked` / `contact.unblocked`), so that rooms
//! hides the blocked peer's messages from the member. A repeat publishes the current (or last)
//! period's event again: a client retrying after a lost publish repairs it, and rooms applies
//! the events idempotently and in any order.

use chat_auth::Principal;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::{now_ms, TenantId, UserId};

use super::error::ContactsError;
use super::state::ContactsCore;
use crate::metrics::metrics;
use crate::store::{BlockPeriod, Contact};

/// The event of a block period: `contact.blocked` while open, `contact.unblocked` once closed,
/// with an id derived from the period (a republished event is the same event).
pub fn block_event(tenant: &TenantId, user: &UserId, peer: &UserId, period: BlockPeriod) -> EventEnvelope {
    let (tenant, user, peer, since_ms) = (tenant.clone(), user.clone(), peer.clone(), period.since_ms);
    match period.until_ms {
        None => EventEnvelope::keyed(
            &format!("contact.blocked:{}:{user}:{peer}:{since_ms}", user.as_str().len()),
            ChangeEvent::ContactBlocked { tenant, user, peer, since_ms },
        ),
        Some(until_ms) => EventEnvelope::keyed(
            &format!("contact.unblocked:{}:{user}:{peer}:{since_ms}:{until_ms}", user.as_str().len()),
            ChangeEvent::ContactUnblocked { tenant, user, peer, since_ms, until_ms },
        ),
    }
}

impl ContactsCore {
    /// Block the contact (saved, or a LINE friend entry) unless it is blocked already.
    pub async fn block(&self, principal: &Principal, id: &str) -> Result<Contact, ContactsError> {
        let contact = self.visible_contact(principal, id).await?;
        let change = self.store.block(&principal.user_id, &contact.peer, now_ms()).await?;
        if change.changed {
            metrics().blocks.with_label_values(&["block"]).inc();
        }
        self.publish(&block_event(&principal.tenant, &principal.user_id, &contact.peer, change.period)).await?;
        Ok(Contact { blocked: true, ..contact })
    }

    /// End the contact's open block period, if any.
    pub async fn unblock(&self, principal: &Principal, id: &str) -> Result<Contact, ContactsError> {
        let contact = self.visible_contact(principal, id).await?;
        let change = self.store.unblock(&principal.user_id, &contact.peer, now_ms()).await?;
        if let Some(change) = change {
            if change.changed {
                metrics().blocks.with_label_values(&["unblock"]).inc();
            }
            self.publish(&block_event(&principal.tenant, &principal.user_id, &contact.peer, change.period)).await?;
        }
        Ok(Contact { blocked: false, ..contact })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_published_as_blocked_while_open_and_unblocked_once_closed() {
        let (tenant, user, peer) = (TenantId::new("acme"), UserId::new("alice@acme"), UserId::new("line:U1"));
        let open = block_event(&tenant, &user, &peer, BlockPeriod { since_ms: 10, until_ms: None });
        assert_eq!(
            open.event,
            ChangeEvent::ContactBlocked {
                tenant: tenant.clone(),
                user: user.clone(),
                peer: peer.clone(),
                since_ms: 10
            }
        );
        let closed = block_event(&tenant, &user, &peer, BlockPeriod { since_ms: 10, until_ms: Some(20) });
        assert_eq!(
            closed.event,
            ChangeEvent::ContactUnblocked {
                tenant: tenant.clone(),
                user: user.clone(),
                peer: peer.clone(),
                since_ms: 10,
                until_ms: 20
            }
        );
        assert_ne!(open.event_id, closed.event_id);
        let again = block_event(&tenant, &user, &peer, BlockPeriod { since_ms: 10, until_ms: None });
        assert_eq!(again.event_id, open.event_id, "a republished period is the same event");
        let next = block_event(&tenant, &user, &peer, BlockPeriod { since_ms: 30, until_ms: None });
        assert_ne!(next.event_id, open.event_id);
    }
}
