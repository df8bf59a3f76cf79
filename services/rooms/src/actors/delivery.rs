//! After a room actor has handled a command: answer the caller, fan the committed events out
//! to the nodes hosting the recipients' sessions, then settle the queue delivery.
//!
//! At least once: if a publish fails, the command is requeued instead of acked; it comes back,
//! is answered from its record and its message delivered again, never applied again. Clients
//! drop duplicates by seq.

use chat_bus::Delivery;
use chat_presence::NodeMap;
use chat_protocol::bus::{
    CommandEnvelope, CommandOutcome, CommandResult, MemberKind, NodeMessage, RawFrame, RoomCommand, RoomKind,
};
use chat_protocol::call::DeviceId;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::{RoomId, UserId};
use tracing::{warn, Instrument, Span};

use super::context::RoomContext;
use crate::domain::{line_recipients_of, Blocks};
use crate::metrics::metrics;
use crate::store::EventKind;
use crate::views;

/// A serialised server frame and the users it goes to.
#[derive(Debug, Clone)]
pub struct Frame {
    pub recipients: Vec<UserId>,
    /// Encoded once, embedded as is in every node's delivery.
    pub text: RawFrame,
    /// The event's seq in its room; `None` for a frame that has none (a notification).
    pub seq: Option<i64>,
    /// Only this device of the (one) recipient: a call's signaling.
    pub device: Option<DeviceId>,
}

/// What became of one command: the room actor's pipeline ends in one of these.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing written: a refusal, a no-op, or an answer from the dedup window.
    Answered(CommandOutcome),
    /// Written now: answer `result`, deliver `frames` and publish `changes` (for other
    /// services: the LINE gateway's messages).
    Committed { result: CommandResult, frames: Vec<Frame>, changes: Vec<ChangeEvent>, committed_at_ms: i64 },
    /// The same command twice in one batch: answered with what its first copy did, which
    /// delivers the events (nothing to deliver again).
    Repeated(CommandResult),
    /// Nothing written: a call's signaling, relayed to one device, and the command answered.
    Relayed { result: CommandResult, frames: Vec<Frame> },
    /// Not done (the store failed, or a newer owner holds the room): the command is tried
    /// again by a fresh actor. The room actor gives it back to its shard; settled here only as
    /// a fallback, by requeueing.
    Retry,
}

/// A command whose work is over, to settle (a `Retry` here is requeued, as a fallback).
pub struct Done {
    pub envelope: CommandEnvelope,
    pub outcome: Outcome,
    pub delivery: Delivery,
    /// The command's span: what is published for it is published inside it.
    pub span: Span,
}

/// Settle a unit of work's commands (one, or a batch of posts) in order, with one publish per
/// node: every delivery and reply for a node goes in one `NodeMessage::Batch`, in the order of
/// the commands (each command's deliveries, then its reply). Each command is then acked, or,
/// if anything failed to go out, requeued (it comes back, is answered from its record and its
/// message delivered again, never applied again).
pub async fn settle_all(rc: &RoomContext, done: Vec<Done>) {
    let mut out = NodeMessages::default();
    let mut failed = false;
    let mut deliveries = Vec::with_capacity(done.len());
    // The node publishes go out under the first command's span (one publish, many commands).
    let unit_span = done.first().map_or_else(Span::none, |d| d.span.clone());
    for Done { envelope, outcome, delivery, span } in done {
        let room_id = &envelope.room_id;
        let (answer, frames, changes, committed_at_ms) = match outcome {
            Outcome::Retry => {
                if let Err(err) = delivery.requeue().await {
                    warn!(error = %err, "requeueing a command failed; it will be redelivered");
                }
                continue;
            }
            Outcome::Answered(answer) => {
                // A post answered from its record (a redelivery, or the client sending again):
                // its first delivery may have been lost, so deliver it again.
                if let Ok(CommandResult::Posted { seq, .. }) = &answer {
                    failed |= redeliver(rc, &envelope.command_id, room_id, *seq).await;
                }
                (answer, Vec::new(), Vec::new(), 0)
            }
            Outcome::Repeated(result) => (Ok(result), Vec::new(), Vec::new(), 0),
            Outcome::Relayed { result, frames } => (Ok(result), frames, Vec::new(), chat_protocol::now_ms()),
            Outcome::Committed { result, frames, changes, committed_at_ms } => {
                (Ok(result), frames, changes, committed_at_ms)
            }
        };
        for (i, change) in changes.into_iter().enumerate() {
            failed |= publish_event(rc, &format!("{}:{i}", envelope.command_id), change).instrument(span.clone()).await;
        }
        for frame in &frames {
            out.deliver(rc, Some(room_id), frame, committed_at_ms).await;
        }
        if let Some(event) = answer.as_ref().ok().and_then(|result| direct_opened(&envelope, result)) {
            failed |= publish_event(rc, &envelope.command_id, event).instrument(span.clone()).await;
        }
        if let Some(reply_to) = &envelope.reply_to {
            out.push(
                &reply_to.node,
                NodeMessage::Reply { correlation_id: reply_to.correlation_id.clone(), outcome: answer },
            );
        }
        deliveries.push(delivery);
    }
    failed |= out.publish(rc).instrument(unit_span).await;
    for delivery in deliveries {
        let settled = if failed { delivery.requeue().await } else { delivery.ack().await };
        if let Err(err) = settled {
            warn!(error = %err, "settling a command failed; it will be redelivered");
        }
    }
}

/// What a unit of work sends each node, in order, and where the recipients of the last frame
/// were found (the frames of a batch usually go to the same members: located once).
#[derive(Default)]
struct NodeMessages {
    per_node: Vec<(String, Vec<NodeMessage>)>,
    located: Option<(Vec<UserId>, NodeMap)>,
}

impl NodeMessages {
    fn push(&mut self, node: &str, message: NodeMessage) {
        match self.per_node.iter_mut().find(|(n, _)| n == node) {
            Some((_, items)) => items.push(message),
            None => self.per_node.push((node.to_owned(), vec![message])),
        }
    }

    /// Queue `frame` for the nodes hosting sessions of its recipients.
    async fn deliver(&mut self, rc: &RoomContext, room_id: Option<&RoomId>, frame: &Frame, committed_at_ms: i64) {
        // To one device: its node is in its id, no lookup.
        if let Some((node, session)) = frame.device.as_ref().and_then(DeviceId::parts) {
            let message = NodeMessage::Deliver {
                room_id: room_id.cloned(),
                recipients: frame.recipients.clone(),
                seq: frame.seq,
                frame: frame.text.clone(),
                committed_at_ms,
                session: Some(session),
            };
            return self.push(node, message);
        }
        let nodes = match &self.located {
            Some((recipients, nodes)) if *recipients == frame.recipients => nodes.clone(),
            _ => {
                let nodes = locate(rc, &frame.recipients).await;
                self.located = Some((frame.recipients.clone(), nodes.clone()));
                nodes
            }
        };
        for (node, users) in nodes {
            let message = NodeMessage::Deliver {
                room_id: room_id.cloned(),
                recipients: users,
                seq: frame.seq,
                frame: frame.text.clone(),
                committed_at_ms,
                session: None,
            };
            self.push(&node, message);
        }
    }

    /// One publish per node. Returns true on a broker failure.
    async fn publish(self, rc: &RoomContext) -> bool {
        let mut failed = false;
        for (node, mut items) in self.per_node {
            let message = match items.len() {
                1 => items.remove(0),
                _ => NodeMessage::Batch { items },
            };
            metrics().fanout_publishes.inc();
            failed |= publish(rc, &node, &message).await;
        }
        failed
    }
}

/// The nodes hosting sessions of `users`. Presence is soft state: without it nobody gets a
/// live push, everyone syncs.
async fn locate(rc: &RoomContext, users: &[UserId]) -> NodeMap {
    match rc.presence.locate(users).await {
        Ok(nodes) => nodes,
        Err(err) => {
            warn!(error = %err, "presence lookup failed, live delivery skipped");
            NodeMap::new()
        }
    }
}

/// The event telling that `envelope` created or reopened a 1:1 room with someone outside the
/// actor's company (contacts saves that person as the actor's contact: the same rule whichever
/// way the member starts). Published with every answer of such a `Create`, replays included,
/// so a publish lost before the command was settled is made up for when it comes back.
fn direct_opened(envelope: &CommandEnvelope, result: &CommandResult) -> Option<ChangeEvent> {
    let (RoomCommand::Create { kind, members, .. }, CommandResult::Created { room_id, .. }) =
        (&envelope.command, result)
    else {
        return None;
    };
    if !matches!(kind, RoomKind::ExternalDirect | RoomKind::LineDirect) || envelope.actor.is_system() {
        return None;
    }
    let peer = members.iter().find(|m| m.user != envelope.actor)?;
    Some(ChangeEvent::DirectRoomOpened {
        room_id: room_id.clone(),
        kind: *kind,
        actor: envelope.actor.clone(),
        actor_tenant: envelope.tenant.clone(),
        peer: peer.user.clone(),
        peer_tenant: peer.tenant.clone(),
    })
}

/// Publish a change event whose id derives from the command (a replay publishes the same
/// event). Returns true on a broker failure.
async fn publish_event(rc: &RoomContext, command_id: &str, event: ChangeEvent) -> bool {
    let envelope = EventEnvelope::keyed(command_id, event);
    let Ok(payload) = serde_json::to_vec(&envelope) else { return false };
    match rc.bus.publish_event(payload).await {
        Ok(()) => false,
        Err(err) => {
            warn!(error = %err, "change event not published");
            true
        }
    }
}

/// Deliver again the message of a replayed post, to the members' sessions and, in a room with
/// LINE users, to the LINE gateway (its event again: the gateway keys its pushes by message id).
/// Returns true on a broker failure.
async fn redeliver(rc: &RoomContext, command_id: &str, room_id: &RoomId, seq: i64) -> bool {
    let Ok(rows) = rc.store.history(room_id, None, Some(seq - 1), Some(seq + 1), 1).await else {
        return false;
    };
    let Ok(members) = rc.store.members(room_id).await else {
        return false;
    };
    let Ok(blocks) = rc.store.room_blocks(room_id).await.map(Blocks::new) else {
        return false;
    };
    let of_kind = |kind: MemberKind| members.iter().filter(move |m| m.kind == kind).map(|m| m.user_id.clone());
    let recipients: Vec<UserId> = of_kind(MemberKind::Member).collect();
    let line_recipients: Vec<UserId> = of_kind(MemberKind::LineUser).collect();
    let mut failed = false;
    for row in rows.iter().filter(|r| r.kind == EventKind::Message) {
        let Ok(text) = RawFrame::encode(&views::event_frame(room_id, row)) else { continue };
        let frame = Frame {
            recipients: blocks.recipients_of(&row.sender(), &recipients),
            text,
            seq: Some(row.seq),
            device: None,
        };
        failed |= fan_out(rc, Some(room_id), &frame, row.sent_at_ms).await;
        let sender = row.sender();
        let line_recipients = line_recipients_of(&sender, &line_recipients);
        if line_recipients.is_empty() {
            continue;
        }
        let (Ok(Some(kind)), Some(body)) =
            (rc.store.room_kind(room_id).await, row.body.as_deref().and_then(|b| serde_json::from_str(b).ok()))
        else {
            continue;
        };
        let tenant = match members.iter().find(|m| m.user_id == sender) {
            Some(member) if !sender.is_line_user() => member.tenant.clone(),
            // A LINE user's message to the room's other LINE users: the room's tenant.
            _ => match rc.store.room_tenant(room_id).await {
                Ok(Some(tenant)) => tenant,
                _ => continue,
            },
        };
        let change = ChangeEvent::RoomLineMessage {
            room_id: room_id.clone(),
            kind,
            tenant,
            message_id: row.message_id(),
            seq: row.seq,
            sender,
            body,
            line_recipients,
            sent_at_ms: row.sent_at_ms,
        };
        failed |= publish_event(rc, &format!("{command_id}:0"), change).await;
    }
    failed
}

/// One publish per node hosting sessions of the frame's recipients. Returns true on a broker
/// failure (a node that is gone is not a failure: its users will sync).
pub async fn fan_out(rc: &RoomContext, room_id: Option<&RoomId>, frame: &Frame, committed_at_ms: i64) -> bool {
    let mut out = NodeMessages::default();
    out.deliver(rc, room_id, frame, committed_at_ms).await;
    out.publish(rc).await
}

/// Publish to one node's queue (a node that is gone drops it: no error). True on a broker
/// failure.
async fn publish(rc: &RoomContext, node: &str, message: &NodeMessage) -> bool {
    let payload = match serde_json::to_vec(message) {
        Ok(payload) => payload,
        Err(err) => {
            warn!(error = %err, "node message not encodable");
            return false;
        }
    };
    match rc.bus.publish_to_node(node, payload).await {
        Ok(()) => false,
        Err(err) => {
            warn!(node, error = %err, "node message not published");
            true
        }
    }
}
