//! Reacting to change events (the `events` exchange): authorization changes and blocks.
//!
//! Once per cluster (shared queue `rooms`): a withdrawn LINE permission or trust excludes the
//! affected members from the affected rooms (an `Exclude` command per member and room, with a
//! system event and a notification), notifications from authz are stored and pushed, and a
//! block or unblock (from contacts) is stored and the rooms the two users share re-read their
//! blocks (`BlocksChanged`).
//! On every node (its own queue): cached decisions are dropped when permissions change, and a
//! disabled user's tokens are refused and their sessions closed.

use std::sync::Arc;

use chat_auth::Verifier;
use chat_bus::Subscription;
use chat_protocol::bus::{CommandError, RoomCommand};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::frames::NotificationKind;
use chat_protocol::room::ExclusionReason;
use chat_protocol::{Refusal, RoomId, TenantId, UserId};
use futures_util::{stream, StreamExt};
use tracing::{info, warn, Instrument};

use crate::actors::delivery::{self, Frame};
use crate::actors::RoomContext;
use crate::authz::AuthzClient;
use crate::dispatch::{DispatchError, Dispatcher};
use crate::hub::Hub;
use crate::metrics::metrics;
use crate::store::NotificationRow;
use crate::views;

pub struct EventContext {
    /// The store, bus and presence, as room actors use them (for notifications' fan-out).
    pub rooms: Arc<RoomContext>,
    pub dispatcher: Dispatcher,
}

/// Exclusions of one event in flight at once (each waits for its room at most the command
/// timeout).
const EXCLUSIONS_IN_FLIGHT: usize = 16;

/// What became of a change event.
enum Handled {
    Done,
    /// Some work failed (a room did not answer, the store failed): try the event again; the
    /// work already done is not repeated (command ids derive from the event id).
    Retry,
    /// It can never be handled (undecodable): dead-letter it.
    Poison,
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
    /// The command id of this exclusion for one event: a redelivered event excludes nobody
    /// twice, and another event (a second revocation of the same permission) is a new command.
    fn command_id(&self, event_id: &str) -> String {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x0b8e_52a1_3c9d_4f70_a1e2_6d4c_9f13_77ab);
        let (room, user) = (self.room.as_str(), self.user.as_str());
        let name = format!("{}:{event_id}:{}:{room}:{user}", event_id.len(), room.len());
        uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
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
    async fn exclude(&self, x: Exclusion<'_>, event_id: &str) -> bool {
        let command = RoomCommand::Exclude { user: x.user.clone(), reason: x.reason };
        let id = x.command_id(event_id);
        match self.dispatcher.execute(x.room, &UserId::system(), x.room_tenant, Some(id.clone()), command).await {
            Ok(_) | Err(DispatchError::Refused(_)) => {
                info!(room_id = %x.room, user = %x.user, reason = %x.reason, "member excluded by rule");
                let audit = ChangeEvent::MemberExcluded {
                    tenant: x.member_tenant.clone(),
                    user: x.user.clone(),
                    room_id: x.room.clone(),
                    reason: x.reason,
                };
                // The exclusion's own id: a redelivered event audits nothing twice.
                let envelope = EventEnvelope { event_id: id.clone(), event: audit };
                if let Ok(payload) = serde_json::to_vec(&envelope) {
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

    async fn notify(
        &self,
        tenant: &TenantId,
        user: &UserId,
        kind: NotificationKind,
        text: &str,
        event_id: &str,
    ) -> bool {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7c3f_1e22_90ab_4d1e_8f00_b1c2_d3e4_f506);
        let row = NotificationRow {
            // One notification per event (a redelivery stores nothing twice).
            id: uuid::Uuid::new_v5(&NAMESPACE, event_id.as_bytes()).to_string(),
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
        let Ok(text) = chat_protocol::bus::RawFrame::encode(&views::notification_frame(&row)) else { return true };
        let frame = Frame { recipients: vec![user.clone()], text, seq: None, device: None };
        // Stored: a failed push is made up for by the user's next notification list or sync.
        delivery::fan_out(&self.rooms, None, &frame, row.created_at_ms).await;
        true
    }

    /// Exclude every member a withdrawal concerns, the rooms independently of each other (a
    /// room that cannot answer delays no other room); true when all were done.
    async fn exclude_all(&self, exclusions: Vec<Exclusion<'_>>, event_id: &str) -> bool {
        stream::iter(exclusions)
            .map(|x| self.exclude(x, event_id))
            .buffer_unordered(EXCLUSIONS_IN_FLIGHT)
            .fold(true, |all, done| async move { all && done })
            .await
    }

    /// A block period of `blocker` on `blocked` began or ended: store it (history and sync read
    /// it), then have every room the two share read its blocks again (live delivery). The
    /// commands' ids derive from the event id, so a redelivered event repeats nothing.
    async fn blocks_changed(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        since_ms: i64,
        until_ms: Option<i64>,
        event_id: &str,
    ) -> bool {
        if let Err(err) = self.rooms.store.record_block(blocker, blocked, since_ms, until_ms).await {
            warn!(error = %err, "block not stored; the event will be redelivered");
            return false;
        }
        let Ok(rooms) = self.rooms.store.rooms_of_pair(blocker, blocked).await else { return false };
        let applied = stream::iter(rooms)
            .map(|room| async move {
                const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x2e4b_91c0_5f3a_4d6e_8b17_c9a0_d2e3_f415);
                let name = format!("{}:{event_id}:{}", event_id.len(), room.room_id);
                let id = uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string();
                let command = RoomCommand::BlocksChanged;
                let sent = self.dispatcher.execute(&room.room_id, &UserId::system(), &room.tenant, Some(id), command).await;
                match sent {
                    Ok(_) | Err(DispatchError::Refused(CommandError { code: Refusal::RoomNotFound, .. })) => true,
                    Err(err) => {
                        warn!(room_id = %room.room_id, error = %err, "blocks not refreshed; the event will be redelivered");
                        false
                    }
                }
            })
            .buffer_unordered(EXCLUSIONS_IN_FLIGHT)
            .fold(true, |all, done| async move { all && done })
            .await;
        if applied {
            let change = if until_ms.is_some() { "unblock" } else { "block" };
            metrics().block_changes.with_label_values(&[change]).inc();
        }
        applied
    }

    async fn handle(&self, raw: &[u8]) -> Handled {
        let Ok(EventEnvelope { event_id, event }) = serde_json::from_slice::<EventEnvelope>(raw) else {
            warn!(bytes = raw.len(), "undecodable change event, dead-lettered");
            return Handled::Poison;
        };
        let event_id = event_id.as_str();
        let done = match event {
            ChangeEvent::LineAccess { tenant, user, allowed: false } => {
                let Ok(rooms) = self.rooms.store.line_rooms_of(&user).await else { return Handled::Retry };
                let exclusions = rooms
                    .iter()
                    .map(|room| Exclusion {
                        room: &room.room_id,
                        room_tenant: &room.tenant,
                        user: &user,
                        member_tenant: &tenant,
                        reason: ExclusionReason::LineAccessRevoked,
                    })
                    .collect();
                self.exclude_all(exclusions, event_id).await
            }
            ChangeEvent::Trust { tenant_a, tenant_b, active: false } => {
                let Ok(rows) = self.rooms.store.rooms_shared_by(&tenant_a, &tenant_b).await else {
                    return Handled::Retry;
                };
                let exclusions = rows
                    .iter()
                    .filter(|row| row.member_tenant == *leaving_side(&row.room_tenant, &tenant_a, &tenant_b))
                    .map(|row| Exclusion {
                        room: &row.room_id,
                        room_tenant: &row.room_tenant,
                        user: &row.user_id,
                        member_tenant: &row.member_tenant,
                        reason: ExclusionReason::TrustRevoked,
                    })
                    .collect();
                self.exclude_all(exclusions, event_id).await
            }
            ChangeEvent::Notify { tenant, user, kind, text } => {
                self.notify(&tenant, &user, kind, &text, event_id).await
            }
            ChangeEvent::ContactBlocked { user, peer, since_ms, .. } => {
                self.blocks_changed(&user, &peer, since_ms, None, event_id).await
            }
            ChangeEvent::ContactUnblocked { user, peer, since_ms, until_ms, .. } => {
                self.blocks_changed(&user, &peer, since_ms, Some(until_ms), event_id).await
            }
            // Other services' kinds, and kinds newer than this build: nothing to do here.
            _ => true,
        };
        if done {
            Handled::Done
        } else {
            Handled::Retry
        }
    }
}

/// The shared worker: applies each change once per cluster.
pub async fn run_shared(ctx: Arc<EventContext>, mut events: Subscription) {
    while let Some(delivery) = events.recv().await {
        let span = delivery.process_span();
        let settled = match ctx.handle(&delivery.payload).instrument(span).await {
            Handled::Done => delivery.ack().await,
            // Tried again later; after the delivery limit it is dead-lettered.
            Handled::Retry => delivery.requeue().await,
            Handled::Poison => {
                metrics().events_rejected.inc();
                delivery.reject().await
            }
        };
        if let Err(err) = settled {
            warn!(error = %err, "settling a change event failed; it will be redelivered");
        }
    }
}

/// The node worker: local effects of every change.
pub async fn run_node(authz: Arc<AuthzClient>, verifier: Verifier, hub: Arc<Hub>, mut events: Subscription) {
    while let Some(delivery) = events.recv().await {
        match serde_json::from_slice::<EventEnvelope>(&delivery.payload) {
            Ok(EventEnvelope { event: ChangeEvent::UserDisabled { user, at_secs, .. }, .. }) => {
                authz.invalidate();
                verifier.revoke(&user, at_secs);
                hub.close_user(&user);
            }
            Ok(EventEnvelope { event, .. }) if !event.changes_permissions() => {}
            // A change of permissions, or an event this build cannot read: ask authz again.
            _ => authz.invalidate(),
        }
        let _ = delivery.ack().await;
    }
}
