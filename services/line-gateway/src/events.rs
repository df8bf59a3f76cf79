//! The consumer of change events (the shared durable queue `events.line-gateway`, once per
//! cluster): `line_access` suspends a member's channel (its webhooks are still answered, their
//! events not applied) or resumes it; `contact.blocked` / `contact.unblocked` between a member
//! and a LINE user keep the block periods (inbound messages are filtered by rooms);
//! `room.line_message` puts a member's message to LINE users into the outbox (`outbox`), and
//! is acknowledged once it is stored there. Other kinds, `Unknown` included, are acknowledged
//! and ignored.
//!
//! An undecodable event is rejected (dead-lettered); a store failure requeues it (after a
//! pause), so that it is applied once the store is back.

use std::sync::Arc;
use std::time::Duration;

use chat_bus::{Delivery, Subscription};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::now_ms;
use tracing::{info, warn, Instrument};

use crate::metrics::metrics;
use crate::outbox::LineMessage;
use crate::service::LineCore;
use crate::store::StoreError;

/// The pause before an event that could not be applied goes back to its queue.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Ignored,
    /// Not applied now (store down): redelivered later.
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
        ChangeEvent::LineAccess { .. } => "line_access",
        ChangeEvent::ContactBlocked { .. } => "contact.blocked",
        ChangeEvent::ContactUnblocked { .. } => "contact.unblocked",
        ChangeEvent::RoomLineMessage { .. } => "room.line_message",
        _ => "other",
    }
}

/// Consume events until the subscription ends.
pub async fn run(core: Arc<LineCore>, mut events: Subscription) {
    while let Some(delivery) = events.recv().await {
        let span = delivery.process_span();
        handle(&core, delivery).instrument(span).await;
    }
    warn!("the event subscription ended");
}

pub(crate) async fn handle(core: &LineCore, delivery: Delivery) {
    let envelope = match serde_json::from_slice::<EventEnvelope>(&delivery.payload) {
        Ok(envelope) => envelope,
        Err(err) => {
            warn!(error = %err, "undecodable change event rejected");
            metrics().change_events.with_label_values(&["undecodable", "rejected"]).inc();
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
    metrics().change_events.with_label_values(&[kind, label]).inc();
    if let Err(err) = settled {
        warn!(event_id = %envelope.event_id, error = %err, "event not settled");
    }
}

async fn apply(core: &LineCore, event: ChangeEvent) -> Outcome {
    match event {
        ChangeEvent::LineAccess { tenant, user, allowed } => {
            match core.store.set_suspended(&user, &tenant, !allowed, now_ms()).await {
                Ok(true) => {
                    info!(user = %user, suspended = !allowed, "line channel access changed");
                    Outcome::Applied
                }
                Ok(false) => Outcome::Ignored,
                Err(err) => err.into(),
            }
        }
        ChangeEvent::ContactBlocked { user, peer, since_ms, .. } => {
            if !peer.is_line_user() || user.is_line_user() {
                return Outcome::Ignored;
            }
            match core.store.block(&user, &peer, since_ms).await {
                Ok(()) => Outcome::Applied,
                Err(err) => err.into(),
            }
        }
        ChangeEvent::ContactUnblocked { user, peer, since_ms, until_ms, .. } => {
            if !peer.is_line_user() || user.is_line_user() {
                return Outcome::Ignored;
            }
            match core.store.unblock(&user, &peer, since_ms, until_ms).await {
                Ok(()) => Outcome::Applied,
                Err(err) => err.into(),
            }
        }
        ChangeEvent::RoomLineMessage {
            room_id, kind, tenant, message_id, seq, sender, body, line_recipients, ..
        } => {
            let message = LineMessage { room_id, kind, tenant, message_id, seq, sender, body, line_recipients };
            match crate::outbox::enqueue(core, &message).await {
                Ok(()) => Outcome::Applied,
                Err(err) => err.into(),
            }
        }
        _ => Outcome::Ignored,
    }
}
