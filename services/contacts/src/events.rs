//! The consumer of change events (the shared durable queue `events.contacts`, once per
//! cluster): LINE follows and unfollows make and update members' LINE friend rows (in the order
//! of their `at_ms`, whatever order they arrive in), LINE channel bindings give members their
//! add-friend URL, and 1:1 rooms opened with someone outside the company save the peer as the
//! opener's contact. Other kinds are acknowledged and ignored.
//!
//! An undecodable event is rejected (dead-lettered); a store failure or an authz outage
//! requeues it (after a pause), so that it is applied once the cause is gone.

use std::sync::Arc;
use std::time::Duration;

use chat_bus::{Delivery, Subscription};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::room::RoomKind;
use chat_protocol::{now_ms, RoomId, TenantId, UserId};
use tracing::{debug, warn, Instrument};

use crate::metrics::metrics;
use crate::service::validation;
use crate::service::ContactsCore;
use crate::store::{ExternalPeer, StoreError};

/// The pause before an event that could not be applied goes back to its queue.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Ignored,
    /// Not applied now (store or authz down): redelivered later.
    Retry,
}

impl From<StoreError> for Outcome {
    fn from(err: StoreError) -> Self {
        warn!(error = %err, "event not applied; it will be redelivered");
        Outcome::Retry
    }
}

/// The kind of an event, as the metrics name it.
fn kind_label(event: &ChangeEvent) -> &'static str {
    match event {
        ChangeEvent::LineFollow { .. } => "line.follow",
        ChangeEvent::LineUnfollow { .. } => "line.unfollow",
        ChangeEvent::LineChannelBound { .. } => "line.channel_bound",
        ChangeEvent::LineChannelUnbound { .. } => "line.channel_unbound",
        ChangeEvent::DirectRoomOpened { .. } => "room.direct_opened",
        _ => "other",
    }
}

/// Consume events until the subscription ends.
pub async fn run(core: Arc<ContactsCore>, mut events: Subscription) {
    while let Some(delivery) = events.recv().await {
        let span = delivery.process_span();
        handle(&core, delivery).instrument(span).await;
    }
    warn!("the event subscription ended");
}

pub(crate) async fn handle(core: &ContactsCore, delivery: Delivery) {
    let envelope = match serde_json::from_slice::<EventEnvelope>(&delivery.payload) {
        Ok(envelope) => envelope,
        Err(err) => {
            warn!(error = %err, "undecodable change event rejected");
            metrics().events.with_label_values(&["undecodable", "rejected"]).inc();
            if let Err(err) = delivery.reject().await {
                warn!(error = %err, "event not rejected");
            }
            return;
        }
    };
    let kind = kind_label(&envelope.event);
    let outcome = apply(core, envelope.event).await;
    let settled = match outcome {
        Outcome::Applied | Outcome::Ignored => delivery.ack().await,
        Outcome::Retry => {
            tokio::time::sleep(REQUEUE_PAUSE).await;
            delivery.requeue().await
        }
    };
    let label = match outcome {
        Outcome::Applied => "applied",
        Outcome::Ignored => "ignored",
        Outcome::Retry => "requeued",
    };
    metrics().events.with_label_values(&[kind, label]).inc();
    if let Err(err) = settled {
        warn!(event_id = %envelope.event_id, error = %err, "event not settled");
    }
}

async fn apply(core: &ContactsCore, event: ChangeEvent) -> Outcome {
    let now = now_ms();
    match event {
        ChangeEvent::LineFollow { tenant, user, line_user, display_name, picture_url, at_ms } => {
            if !line_user.is_line_user() || user.is_line_user() {
                warn!(user = %user, line_user = %line_user, "line follow between unexpected ids ignored");
                return Outcome::Ignored;
            }
            let store = &core.store;
            match store.line_follow(&user, &tenant, &line_user, &display_name, picture_url.as_deref(), at_ms, now).await
            {
                Ok(true) => Outcome::Applied,
                Ok(false) => {
                    debug!(user = %user, line_user = %line_user, at_ms, "older follow ignored");
                    Outcome::Ignored
                }
                Err(err) => err.into(),
            }
        }
        ChangeEvent::LineUnfollow { tenant, user, line_user, at_ms } => {
            if !line_user.is_line_user() || user.is_line_user() {
                warn!(user = %user, line_user = %line_user, "line unfollow between unexpected ids ignored");
                return Outcome::Ignored;
            }
            match core.store.line_unfollow(&user, &tenant, &line_user, at_ms, now).await {
                Ok(true) => Outcome::Applied,
                Ok(false) => Outcome::Ignored,
                Err(err) => err.into(),
            }
        }
        ChangeEvent::LineChannelBound { tenant, user, basic_id } => {
            if !validation::is_basic_id(&basic_id) {
                warn!(user = %user, basic_id, "line channel binding with an invalid basic id ignored");
                return Outcome::Ignored;
            }
            match core.store.bind_line(&user, &tenant, &basic_id, now).await {
                Ok(()) => Outcome::Applied,
                Err(err) => err.into(),
            }
        }
        ChangeEvent::LineChannelUnbound { tenant, user } => match core.store.unbind_line(&user, &tenant).await {
            Ok(()) => Outcome::Applied,
            Err(err) => err.into(),
        },
        ChangeEvent::DirectRoomOpened { room_id, kind, actor, actor_tenant, peer, peer_tenant } => {
            let opened = Opened { room_id, actor, actor_tenant, peer, peer_tenant };
            match kind {
                RoomKind::ExternalDirect => external_room_opened(core, opened, now).await,
                RoomKind::LineDirect => line_room_opened(core, opened, now).await,
                _ => Outcome::Ignored,
            }
        }
        _ => Outcome::Ignored,
    }
}

/// A 1:1 room that was opened, and by whom.
struct Opened {
    room_id: RoomId,
    actor: UserId,
    actor_tenant: TenantId,
    peer: UserId,
    peer_tenant: TenantId,
}

/// Save the peer as the opener's external contact, with the names authz gives now.
async fn external_room_opened(core: &ContactsCore, opened: Opened, now: i64) -> Outcome {
    let Opened { room_id, actor, actor_tenant, peer, peer_tenant } = opened;
    if actor.is_line_user() || peer.is_line_user() || actor_tenant == peer_tenant {
        warn!(room_id = %room_id, actor = %actor, peer = %peer, "external room between unexpected users ignored");
        return Outcome::Ignored;
    }
    let verdict = match core.authz.verdict(&actor_tenant, &actor, &peer).await {
        Ok(verdict) => verdict,
        Err(err) => {
            warn!(error = %err, room_id = %room_id, "contact of an opened room not saved; it will be redelivered");
            return Outcome::Retry;
        }
    };
    let display_name = verdict.display_name.unwrap_or_else(|| peer.to_string());
    let shown = ExternalPeer {
        peer: &peer,
        peer_tenant: &peer_tenant,
        display_name: &display_name,
        company: verdict.tenant_name.as_deref(),
        room_id: &room_id,
    };
    match core.store.save_external(&actor, &actor_tenant, &shown, now).await {
        Ok((_, was_saved)) => {
            if !was_saved {
                metrics().saved.with_label_values(&["external"]).inc();
            }
            Outcome::Applied
        }
        Err(err) => err.into(),
    }
}

/// Set the room on the member's LINE friend row (whichever side opened it).
async fn line_room_opened(core: &ContactsCore, opened: Opened, now: i64) -> Outcome {
    let Opened { room_id, actor, actor_tenant, peer, peer_tenant } = opened;
    let (member, tenant, line_user) = match (actor.is_line_user(), peer.is_line_user()) {
        (false, true) => (actor, actor_tenant, peer),
        (true, false) => (peer, peer_tenant, actor),
        _ => {
            warn!(room_id = %room_id, "LINE room without one member and one LINE user ignored");
            return Outcome::Ignored;
        }
    };
    match core.store.set_line_room(&member, &tenant, &line_user, &room_id, now).await {
        Ok(()) => Outcome::Applied,
        Err(err) => err.into(),
    }
}
