//! Reacting to authorization changes (the `events` exchange).
//!
//! Once per cluster (shared queue `rooms`): a withdrawn LINE permission or trust excludes the
//! affected members from the affected rooms (an `Exclude` command per member and room, with a
//! system event and a notification), and notifications from authz are stored and pushed.
//! On every node (its own queue): cached decisions are dropped, and a disabled user's tokens
//! are refused and their sessions closed.

use std::sync::Arc;

use chat_auth::Verifier;
use chat_bus::{SharedBus, Subscription};
use chat_presence::SharedPresence;
use chat_protocol::authz::AuthzEvent;
use chat_protocol::bus::{NodeMessage, RoomCommand};
use tracing::{info, warn};

use crate::authz::AuthzClient;
use crate::dispatch::{DispatchError, Dispatcher};
use crate::domain::SYSTEM_ACTOR;
use crate::hub::Hub;
use crate::store::{NotificationRow, Store};
use crate::views;

pub struct EventContext {
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub bus: SharedBus,
    pub presence: SharedPresence,
}

/// A deterministic command id, so a redelivered event excludes nobody twice.
fn exclusion_id(room: &str, user: &str, reason: &str, event: &[u8]) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x0b8e_52a1_3c9d_4f70_a1e2_6d4c_9f13_77ab);
    let mut name = format!("{}:{room}:{}:{user}:{reason}:", room.len(), user.len()).into_bytes();
    name.extend_from_slice(event);
    uuid::Uuid::new_v5(&NAMESPACE, &name).to_string()
}

impl EventContext {
    async fn exclude(
        &self,
        room: &str,
        room_tenant: &str,
        user: &str,
        member_tenant: &str,
        reason: &str,
        raw: &[u8],
    ) -> bool {
        let command = RoomCommand::Exclude { user: user.to_owned(), reason: reason.to_owned() };
        let id = exclusion_id(room, user, reason, raw);
        match self.dispatcher.execute(room, SYSTEM_ACTOR, room_tenant, Some(id), command).await {
            Ok(_) | Err(DispatchError::Refused(_)) => {
                info!(room_id = room, user, reason, "member excluded by rule");
                let audit = AuthzEvent::MemberExcluded {
                    tenant: member_tenant.to_owned(),
                    user: user.to_owned(),
                    room_id: room.to_owned(),
                    reason: reason.to_owned(),
                };
                if let Ok(payload) = serde_json::to_vec(&audit) {
                    let _ = self.bus.publish_event(payload).await;
                }
                true
            }
            Err(err) => {
                warn!(room_id = room, user, error = %err, "exclusion failed; the event will be redelivered");
                false
            }
        }
    }

    async fn notify(&self, tenant: &str, user: &str, kind: &str, text: &str, raw: &[u8]) -> bool {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7c3f_1e22_90ab_4d1e_8f00_b1c2_d3e4_f506);
        let row = NotificationRow {
            id: uuid::Uuid::new_v5(&NAMESPACE, raw).to_string(),
            user_id: user.to_owned(),
            tenant: tenant.to_owned(),
            kind: kind.to_owned(),
            room_id: None,
            text: text.to_owned(),
            created_at_ms: chat_protocol::now_ms(),
        };
        if let Err(err) = self.store.insert_notification(&row).await {
            warn!(error = %err, "notification not stored; the event will be redelivered");
            return false;
        }
        let Ok(frame) = serde_json::to_string(&views::notification_frame(&row)) else { return true };
        let users = vec![user.to_owned()];
        if let Ok(nodes) = self.presence.locate(&users).await {
            for (node, recipients) in nodes {
                let message = NodeMessage::Deliver {
                    room_id: String::new(),
                    recipients,
                    frame: frame.clone(),
                    committed_at_ms: row.created_at_ms,
                };
                if let Ok(payload) = serde_json::to_vec(&message) {
                    let _ = self.bus.publish_to_node(&node, payload).await;
                }
            }
        }
        true
    }

    async fn handle(&self, raw: &[u8]) -> bool {
        let Ok(event) = serde_json::from_slice::<AuthzEvent>(raw) else {
            return true; // not ours to understand: drop
        };
        match event {
            AuthzEvent::LineAccess { tenant, user, allowed: false } => {
                let Ok(rooms) = self.store.line_rooms_of(&user).await else { return false };
                let mut ok = true;
                for (room, room_tenant) in rooms {
                    ok &= self.exclude(&room, &room_tenant, &user, &tenant, "line_access_revoked", raw).await;
                }
                ok
            }
            AuthzEvent::Trust { tenant_a, tenant_b, active: false } => {
                let Ok(rows) = self.store.rooms_shared_by(&tenant_a, &tenant_b).await else { return false };
                let mut ok = true;
                for (room, room_tenant, user, member_tenant) in rows {
                    // The room's own tenant keeps its members; the other side leaves. In a room
                    // of a third tenant the two sides can no longer meet there, and members of
                    // `tenant_b` (the side the event names second) leave.
                    let leaving = if room_tenant == tenant_a {
                        &tenant_b
                    } else if room_tenant == tenant_b {
                        &tenant_a
                    } else {
                        &tenant_b
                    };
                    if &member_tenant == leaving {
                        ok &= self.exclude(&room, &room_tenant, &user, &member_tenant, "trust_revoked", raw).await;
                    }
                }
                ok
            }
            AuthzEvent::Notify { tenant, user, kind, text } => self.notify(&tenant, &user, &kind, &text, raw).await,
            _ => true,
        }
    }
}

/// The shared worker: applies each change once per cluster.
pub async fn run_shared(ctx: Arc<EventContext>, mut events: Subscription) {
    while let Some(delivery) = events.recv().await {
        let done = ctx.handle(&delivery.payload).await;
        let _ = if done { delivery.ack().await } else { delivery.requeue().await };
    }
}

/// The node worker: local effects of every change.
pub async fn run_node(authz: Arc<AuthzClient>, verifier: Verifier, hub: Arc<Hub>, mut events: Subscription) {
    while let Some(delivery) = events.recv().await {
        authz.invalidate();
        if let Ok(AuthzEvent::UserDisabled { user, at_secs, .. }) =
            serde_json::from_slice::<AuthzEvent>(&delivery.payload)
        {
            verifier.revoke(&user, at_secs);
            hub.close_user(&user);
        }
        let _ = delivery.ack().await;
    }
}
