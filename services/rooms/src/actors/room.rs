//! `RoomActor`: the single writer of one room. Commands arrive in queue order and are handled
//! one at a time (`AtomicResponse`): decide, commit with the fence, then answer and fan out
//! once per node, then settle the queue delivery. Idle rooms passivate; state is reloaded
//! from the store on the next command.

use std::collections::HashMap;
use std::time::Instant;

use actix::prelude::*;
use chat_bus::{BusError, Delivery};
use chat_protocol::bus::{CommandEnvelope, CommandError, CommandOutcome, CommandResult, NodeMessage, RoomCommand};
use chat_protocol::frames::ServerFrame;
use chat_protocol::{new_id, now_ms};
use tracing::{debug, error, warn};

use super::shard::{Passivate, RoomStopped, ShardActor};
use super::SharedRoomContext;
use crate::domain::{self, MessageRef, Plan, RoomState};
use crate::metrics::metrics;
use crate::store::{Commit, NotificationRow, RoomMeta, StoreError};
use crate::views;

/// A command for this room, with the queue delivery to settle once it is done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Apply {
    pub envelope: CommandEnvelope,
    pub delivery: Delivery,
}

/// Stop now (passivation granted by the shard).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRoom;

pub struct RoomActor {
    room_id: String,
    rc: SharedRoomContext,
    shard: Addr<ShardActor>,
    /// `None` until created (or when the room does not exist).
    state: Option<RoomState>,
    /// Activation failed (store unreachable, or fenced by a newer owner): requeue and stop.
    broken: bool,
    last_active: Instant,
    passivating: bool,
}

/// What the decide step hands to the commit step.
enum Step {
    Answer(CommandOutcome),
    /// A lookup failed: requeue the command.
    Fail,
    Commit(Box<(Commit, Plan)>),
}

/// An answer that still needs the store to be known.
enum Lookup {
    /// The command was applied before: answer its recorded result.
    Recorded,
    /// The 1:1 room of this pair exists under another id: answer that id.
    ExistingDirect,
}

/// Serialized frames with their recipients, and notifications with their user.
type Outgoing = (Vec<(Vec<String>, String)>, Vec<(String, String)>);

/// What happened, for the settle step.
struct Done {
    outcome: CommandOutcome,
    lookup: Option<Lookup>,
    envelope: CommandEnvelope,
    frames: Vec<(Vec<String>, String)>,
    notifications: Vec<(String, String)>,
    committed_at_ms: i64,
    /// Settle by requeueing instead of acking (the command must be seen again).
    requeue: bool,
    stop: bool,
}

impl RoomActor {
    pub fn new(room_id: String, rc: SharedRoomContext, shard: Addr<ShardActor>) -> Self {
        Self { room_id, rc, shard, state: None, broken: false, last_active: Instant::now(), passivating: false }
    }

    fn decide(&self, env: &CommandEnvelope, target: Option<MessageRef>) -> Step {
        let rc = &self.rc;
        if let Some(result) = self.state.as_ref().and_then(|s| s.recent.get(&env.command_id)) {
            metrics().dedup_hits.inc();
            return Step::Answer(Ok(result.clone()));
        }
        let plan = match &self.state {
            None if matches!(env.command, RoomCommand::Create { .. }) => domain::decide_create(env, &rc.limits),
            None => Err(domain::room_not_found()),
            Some(state) => domain::decide(state, env, &rc.limits, target.as_ref()),
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(refusal) => return Step::Answer(Err(refusal)),
        };
        if plan.events.is_empty() && plan.create.is_none() {
            return Step::Answer(Ok(plan.result));
        }
        let now = now_ms();
        let last_seq = self.state.as_ref().map_or(0, |s| s.last_seq);
        let events: Vec<(i64, domain::PlannedEvent)> =
            plan.events.iter().enumerate().map(|(i, e)| (last_seq + 1 + i as i64, e.clone())).collect();
        let new_last = last_seq + plan.events.len() as i64;
        let meta = match &self.state {
            Some(s) => {
                let info = plan.info.clone();
                RoomMeta {
                    id: s.id.clone(),
                    tenant: s.tenant.clone(),
                    kind: s.kind,
                    name: info.as_ref().map_or_else(|| s.name.clone(), |i| i.name.clone()),
                    description: info.as_ref().map_or_else(|| s.description.clone(), |i| i.description.clone()),
                    photo_url: info.as_ref().map_or_else(|| s.photo_url.clone(), |i| i.photo_url.clone()),
                    direct_key: s.direct_key.clone(),
                    last_seq: new_last,
                }
            }
            None => {
                let Some(create) = plan.create.as_ref() else {
                    return Step::Answer(Err(domain::room_not_found()));
                };
                let info = plan.info.clone().unwrap_or_default();
                RoomMeta {
                    id: self.room_id.clone(),
                    tenant: create.tenant.clone(),
                    kind: create.kind,
                    name: info.name,
                    description: info.description,
                    photo_url: info.photo_url,
                    direct_key: create.direct_key.clone(),
                    last_seq: new_last,
                }
            }
        };
        let notifications = plan
            .notifications
            .iter()
            .map(|n| NotificationRow {
                id: new_id(),
                user_id: n.user.clone(),
                tenant: n.tenant.clone(),
                kind: n.kind.to_owned(),
                room_id: Some(self.room_id.clone()),
                text: n.text.clone(),
                created_at_ms: now,
            })
            .collect();
        let commit = Commit {
            meta,
            create: plan.create.is_some(),
            events,
            added: plan.added.clone(),
            removed: plan.removed.clone(),
            roles: plan.new_master.iter().map(|m| (m.clone(), domain::Role::Master)).collect(),
            recall_seq: plan.recall_seq,
            command: Some((env.command_id.clone(), plan.result.clone())),
            notifications,
            now_ms: now,
        };
        Step::Commit(Box::new((commit, plan)))
    }

    /// Take in a committed plan and prepare what goes out: frames to the members (and to the
    /// removed, who see their own removal), notifications to their users.
    fn absorb(&mut self, commit: &Commit, plan: &Plan, command_id: &str) -> Outgoing {
        match &mut self.state {
            Some(state) => state.absorb(plan, commit.meta.last_seq),
            None => {
                self.state = RoomState::from_create(
                    &self.room_id,
                    plan,
                    commit.meta.last_seq,
                    commit.now_ms,
                    self.rc.dedup_window,
                );
            }
        }
        let Some(state) = &mut self.state else {
            return (Vec::new(), Vec::new());
        };
        state.recent.insert(command_id.to_owned(), plan.result.clone());
        let mut recipients = state.session_recipients();
        recipients.extend(plan.removed.iter().cloned());
        let frames = commit
            .events
            .iter()
            .filter_map(|(seq, event)| {
                let frame = views::planned_frame(&self.room_id, *seq, event, commit.now_ms);
                serde_json::to_string(&frame).ok().map(|f| (recipients.clone(), f))
            })
            .collect();
        let notifications = commit
            .notifications
            .iter()
            .filter_map(|n| serde_json::to_string(&views::notification_frame(n)).ok().map(|f| (n.user_id.clone(), f)))
            .collect();
        (frames, notifications)
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics().rooms_active.inc();
        let rc = self.rc.clone();
        let room_id = self.room_id.clone();
        let started = Instant::now();
        // Activation: raise the fence, then load. Commands wait in the mailbox meanwhile.
        let load = async move {
            if !rc.store.claim(&room_id, rc.epoch).await? {
                return Err(StoreError::Stale { room_id, epoch: rc.epoch });
            }
            rc.store.load_room(&room_id, rc.dedup_window).await
        };
        ctx.wait(load.into_actor(self).map(move |loaded, act, _ctx| {
            metrics().activation_seconds.observe(started.elapsed().as_secs_f64());
            match loaded {
                Ok(state) => act.state = state,
                Err(err) => {
                    if matches!(err, StoreError::Stale { .. }) {
                        metrics().stale_epoch_rejections.inc();
                    }
                    error!(room_id = %act.room_id, error = %err, "room activation failed");
                    act.broken = true;
                }
            }
        }));
        let every = (self.rc.passivate_after / 4)
            .clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(30));
        ctx.run_interval(every, |act, _ctx| {
            if !act.passivating && act.last_active.elapsed() >= act.rc.passivate_after {
                act.passivating = true;
                act.shard.do_send(Passivate { room_id: act.room_id.clone() });
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics().rooms_active.dec();
        debug!(room_id = %self.room_id, "room actor stopped");
        self.shard.do_send(RoomStopped { room_id: self.room_id.clone() });
    }
}

impl Handler<StopRoom> for RoomActor {
    type Result = ();

    fn handle(&mut self, _msg: StopRoom, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Apply> for RoomActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        self.passivating = false;
        let Apply { envelope, delivery } = msg;
        if self.broken {
            return AtomicResponse::new(Box::pin(
                async move {
                    let _ = delivery.requeue().await;
                }
                .into_actor(self)
                .map(|_, _act, ctx| ctx.stop()),
            ));
        }
        let rc = self.rc.clone();
        let room_id = self.room_id.clone();
        let recall_id = match (&envelope.command, &self.state) {
            (RoomCommand::Recall { message_id }, Some(_)) => Some(message_id.clone()),
            _ => None,
        };
        let lookup = {
            let rc = rc.clone();
            let room_id = room_id.clone();
            async move {
                match recall_id {
                    Some(id) => rc.store.message_ref(&room_id, &id).await,
                    None => Ok(None),
                }
            }
        };
        let chain = lookup
            .into_actor(self)
            .then(move |target, act, _ctx| {
                let step = match target {
                    Ok(target) => act.decide(&envelope, target),
                    Err(err) => {
                        error!(room_id = %act.room_id, error = %err, "message lookup failed");
                        Step::Fail
                    }
                };
                let rc = act.rc.clone();
                async move {
                    match step {
                        Step::Answer(outcome) => (Some(outcome), None),
                        Step::Fail => (None, None),
                        Step::Commit(boxed) => {
                            let (commit, plan) = *boxed;
                            let result = rc.store.commit(rc.epoch, &commit).await;
                            (Some(Ok(plan.result.clone())), Some((result, Box::new(commit), plan)))
                        }
                    }
                }
                .into_actor(act)
                .map(move |(outcome, committed), act, _ctx| match outcome {
                    Some(outcome) => act.after_commit(outcome, committed, envelope),
                    // The store is the problem, not the command: requeue and reload.
                    None => Done {
                        outcome: Err(internal()),
                        lookup: None,
                        envelope,
                        frames: Vec::new(),
                        notifications: Vec::new(),
                        committed_at_ms: 0,
                        requeue: true,
                        stop: true,
                    },
                })
            })
            .then(move |done, act, _ctx| {
                let rc = act.rc.clone();
                async move { settle(rc, done, delivery).await }.into_actor(act)
            })
            .map(|stop, _act, ctx| {
                if stop {
                    ctx.stop();
                }
            });
        AtomicResponse::new(Box::pin(chain))
    }
}

fn internal() -> CommandError {
    CommandError { code: "internal".into(), message: "internal error".into() }
}

type Committed = Option<(Result<(), StoreError>, Box<Commit>, Plan)>;

impl RoomActor {
    fn after_commit(&mut self, outcome: CommandOutcome, committed: Committed, envelope: CommandEnvelope) -> Done {
        let command = envelope.command.name();
        let mut done = Done {
            outcome,
            lookup: None,
            envelope,
            frames: Vec::new(),
            notifications: Vec::new(),
            committed_at_ms: now_ms(),
            requeue: false,
            stop: false,
        };
        match committed {
            None => {
                match &done.outcome {
                    Ok(_) => {}
                    Err(refusal) => {
                        metrics().commands_rejected.with_label_values(&[refusal.code.as_str()]).inc();
                    }
                }
                // A room that does not exist keeps no actor around.
                done.stop = self.state.is_none();
            }
            Some((Ok(()), commit, plan)) => {
                metrics().commands_accepted.with_label_values(&[command]).inc();
                let (frames, notifications) = self.absorb(&commit, &plan, &done.envelope.command_id);
                done.frames = frames;
                done.notifications = notifications;
                done.committed_at_ms = commit.now_ms;
            }
            Some((Err(StoreError::Duplicate), _, _)) => {
                // Applied before this actor's window: answer the recorded result (looked up in
                // `settle`), nothing is applied twice.
                metrics().dedup_hits.inc();
                done.lookup = Some(Lookup::Recorded);
            }
            Some((Err(StoreError::DirectExists), _, _)) => {
                done.lookup = Some(Lookup::ExistingDirect);
                done.stop = true;
            }
            Some((Err(err @ StoreError::Stale { .. }), _, _)) => {
                metrics().stale_epoch_rejections.inc();
                warn!(room_id = %self.room_id, error = %err, "fenced out, giving the room up");
                done.requeue = true;
                done.stop = true;
                self.broken = true;
            }
            Some((Err(err), _, _)) => {
                error!(room_id = %self.room_id, error = %err, "commit failed, command requeued");
                done.requeue = true;
                done.stop = true; // reload from the store on the next command
                self.broken = true;
            }
        }
        done
    }
}

/// Answer, fan out, settle. Returns whether the actor should stop.
async fn settle(rc: SharedRoomContext, mut done: Done, delivery: Delivery) -> bool {
    match done.lookup.take() {
        Some(Lookup::Recorded) => {
            done.outcome = match rc.store.command_result(&done.envelope.room_id, &done.envelope.command_id).await {
                Ok(Some(result)) => Ok(result),
                _ => Err(internal()),
            };
        }
        Some(Lookup::ExistingDirect) => {
            done.outcome = match direct_room(&rc, &done.envelope).await {
                Some(room_id) => Ok(CommandResult::Created { room_id, existed: true }),
                None => Err(internal()),
            };
        }
        None => {}
    }
    if done.requeue {
        let _ = delivery.requeue().await;
        return true;
    }
    // A post answered from its record (a redelivery, or the client sending again): its first
    // delivery may have been lost, so deliver it again; clients drop duplicates by seq.
    if done.frames.is_empty() {
        if let Ok(CommandResult::Posted { seq, .. }) = &done.outcome {
            redeliver(&rc, &done, *seq).await;
        }
    }
    let mut publish_failed = false;
    for (recipients, frame) in &done.frames {
        publish_failed |= fan_out(&rc, &done.envelope.room_id, recipients, frame, done.committed_at_ms).await;
    }
    for (user, frame) in &done.notifications {
        publish_failed |=
            fan_out(&rc, &done.envelope.room_id, std::slice::from_ref(user), frame, done.committed_at_ms).await;
    }
    if let Some(reply_to) = &done.envelope.reply_to {
        let message =
            NodeMessage::Reply { correlation_id: reply_to.correlation_id.clone(), outcome: done.outcome.clone() };
        if let Ok(payload) = serde_json::to_vec(&message) {
            match rc.bus.publish_to_node(&reply_to.node, payload).await {
                Ok(()) | Err(BusError::Unroutable { .. }) => {}
                Err(err) => {
                    warn!(error = %err, "reply not published");
                    publish_failed = true;
                }
            }
        }
    }
    // At least once: if anything did not go out, the command comes back and is replayed from
    // its record (answered and re-delivered, never re-applied).
    let settled = if publish_failed { delivery.requeue().await } else { delivery.ack().await };
    if let Err(err) = settled {
        warn!(error = %err, "settling a command failed; it will be redelivered");
    }
    done.stop
}

async fn direct_room(rc: &SharedRoomContext, env: &CommandEnvelope) -> Option<String> {
    let RoomCommand::Create { kind, members, .. } = &env.command else {
        return None;
    };
    let [a, b] = members.as_slice() else {
        return None;
    };
    rc.store.find_direct(&domain::direct_key(*kind, &a.user, &b.user)).await.ok().flatten()
}

/// Deliver again the message of a replayed post (its first delivery may have been lost).
async fn redeliver(rc: &SharedRoomContext, done: &Done, seq: i64) {
    let room_id = &done.envelope.room_id;
    let Ok(rows) = rc.store.history(room_id, Some(seq - 1), Some(seq + 1), 1).await else {
        return;
    };
    let Ok(members) = rc.store.members(room_id).await else {
        return;
    };
    let recipients: Vec<String> = members.into_iter().filter(|m| m.kind == "member").map(|m| m.user_id).collect();
    for row in rows {
        let frame: ServerFrame = views::event_frame(room_id, &row);
        if let Ok(text) = serde_json::to_string(&frame) {
            fan_out(rc, room_id, &recipients, &text, row.sent_at_ms).await;
        }
    }
}

/// One publish per node hosting sessions of these recipients. Returns true on a broker
/// failure (a node that is gone is not a failure: its users will sync).
async fn fan_out(
    rc: &SharedRoomContext,
    room_id: &str,
    recipients: &[String],
    frame: &str,
    committed_at_ms: i64,
) -> bool {
    let nodes = match rc.presence.locate(recipients).await {
        Ok(nodes) => nodes,
        Err(err) => {
            // Presence is soft state: without it nobody gets a live push, everyone syncs.
            warn!(error = %err, "presence lookup failed, live delivery skipped");
            HashMap::new()
        }
    };
    let mut failed = false;
    for (node, users) in nodes {
        let message = NodeMessage::Deliver {
            room_id: room_id.to_owned(),
            recipients: users,
            frame: frame.to_owned(),
            committed_at_ms,
        };
        let Ok(payload) = serde_json::to_vec(&message) else {
            continue;
        };
        metrics().fanout_publishes.inc();
        match rc.bus.publish_to_node(&node, payload).await {
            Ok(()) | Err(BusError::Unroutable { .. }) => {}
            Err(err) => {
                warn!(node = %node, error = %err, "delivery not published");
                failed = true;
            }
        }
    }
    failed
}
