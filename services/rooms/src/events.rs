//! Reacting to authorization changes (the `events` exchange).
//!
//! Once per cluster (shared queue `rooms`): a withdrawn LINE permission or trust excludes the
//! affected members from the affected rooms (an `Exclude` command per member and room, with a
//! system event and a notification), and notifications from authz are stored and pushed.
//! On every node (its own queue): cached decisions are dropped, and a disabled user's tokens
//! are refused and their sessions closed.

use std::sync::Arc;

use chat_auth::Verifier;
use chat_bus::Subscription;
use chat_protocol::authz::AuthzEvent;
use chat_protocol::bus::RoomCommand;
use chat_protocol::frames::NotificationKind;
use chat_protocol::room::ExclusionReason;
use chat_protocol::{RoomId, TenantId, UserId};
use tracing::{info, warn};

use crate::actors::delivery::{self, Frame};
use crate::actors::RoomContext;
use crate::authz::AuthzClient;
use crate::dispatch::{DispatchError, Dispatcher};
use crate::hub::Hub;
use crate::store::NotificationRow;
use crate::views;

pub struct EventContext {
    /// The store, bus and presence, as room actors use them (for notifications' fan-out).
    pub rooms: Arc<RoomContext>,
    pub dispatcher: Dispatcher,
}

/// One member to remove from one room by rule.
struct Exclusion<'a> {
    room: &'a RoomId,
    room_tenant: &'a TenantId,
    user: &'a UserId,
    member_tenant: &'a TenantId,
    reason: ExclusionReason,
}

impl Exclusion<'_> {
    /// A deterministic command id, so a redelivered event excludes nobody twice.
    fn command_id(&self, event: &[u8]) -> String {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x0b8e_52a1_3c9d_4f70_a1e2_6d4c_9f13_77ab);
        let (room, user, reason) = (self.room.as_str(), self.user.as_str(), self.reason.as_str());
        let mut name = format!("{}:{room}:{}:{user}:{reason}:", room.len(), user.len()).into_bytes();
        name.extend_from_slice(event);
        uuid::Uuid::new_v5(&NAMESPACE, &name).to_string()
    }
}

/// Which side leaves a room when the trust between `a` and `b` ends: the room's own tenant
/// keeps its members and the other side leaves. In a room of a third tenant the two sides can
/// no longer meet there, and members of `b` (the side the event names second) leave.
fn leaving_side<'a>(room_tenant: &TenantId, a: &'a TenantId, b: &'a TenantId) -> &'a TenantId {
    if room_tenant == b {
        a
    } else {
        b
    }
}

impl EventContext {
    async fn exclude(&self, x: Exclusion<'_>, raw: &[u8]) -> bool {
        let command = RoomCommand::Exclude { user: x.user.clone(), reason: x.reason };
        let id = x.command_id(raw);
        match self.dispatcher.execute(x.room, &UserId::system(), x.room_tenant, Some(id), command).await {
            Ok(_) | Err(DispatchError::Refused(_)) => {
                info!(room_id = %x.room, user = %x.user, reason = %x.reason, "member excluded by rule");
                let audit = AuthzEvent::MemberExcluded {
                    tenant: x.member_tenant.clone(),
                    user: x.user.clone(),
                    room_id: x.room.clone(),
                    reason: x.reason,
                };
                if let Ok(payload) = serde_json::to_vec(&audit) {
                    let _ = self.rooms.bus.publish_event(payload).await;
                }
                true
            }
            Err(err) => {
                warn!(room_id = %x.room, user = %x.user, error = %err, "exclusion failed; the event will be redelivered");
                false
            }
        }
    }

    async fn notify(&self, tenant: &TenantId, user: &UserId, kind: NotificationKind, text: &str, raw: &[u8]) -> bool {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7c3f_1e22_90ab_4d1e_8f00_b1c2_d3e4_f506);
        let row = NotificationRow {
            id: uuid::Uuid::new_v5(&NAMESPACE, raw).to_string(),
            user_id: user.clone(),
            tenant: tenant.clone(),
            kind,
            room_id: None,
            text: text.to_owned(),
            created_at_ms: chat_protocol::now_ms(),
        };
        if let Err(err) = self.rooms.store.insert_notification(&row).await {
            warn!(error = %err, "notification not stored; the event will be redelivered");
            return false;
        }
        let Ok(text) = serde_json::to_string(&views::notification_frame(&row)) else { return true };
        let frame = Frame { recipients: vec![user.clone()], text };
        // Stored: a failed push is made up for by the user's next notification list or sync.
        delivery::fan_out(&self.rooms, None, &frame, row.created_at_ms).await;
        true
    }

    async fn handle(&self, raw: &[u8]) -> bool {
        let Ok(event) = serde_json::from_slice::<AuthzEvent>(raw) else {
            return true; // not ours to understand: drop
        };
        match event {
            AuthzEvent::LineAccess { tenant, user, allowed: false } => {
                let Ok(rooms) = self.rooms.store.line_rooms_of(&user).await else { return false };
                let mut ok = true;
                for room in rooms {
                    let x = Exclusion {
                        room: &room.room_id,
                        room_tenant: &room.tenant,
                        user: &user,
                        member_tenant: &tenant,
                        reason: ExclusionReason::LineAccessRevoked,
                    };
                    ok &= self.exclude(x, raw).await;
                }
                ok
            }
            AuthzEvent::Trust { tenant_a, tenant_b, active: false } => {
                let Ok(rows) = self.rooms.store.rooms_shared_by(&tenant_a, &tenant_b).await else { return false };
                let mut ok = true;
                for row in &rows {
                    if row.member_tenant == *leaving_side(&row.room_tenant, &tenant_a, &tenant_b) {
                        let x = Exclusion {
                            room: &row.room_id,
                            room_tenant: &row.room_tenant,
                            user: &row.user_id,
                            member_tenant: &row.member_tenant,
                            reason: ExclusionReason::TrustRevoked,
                        };
                        ok &= self.exclude(x, raw).await;
                    }
                }
                ok
            }
            AuthzEvent::Notify { tenant, user, kind, text } => self.notify(&tenant, &user, kind, &text, raw).await,
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
