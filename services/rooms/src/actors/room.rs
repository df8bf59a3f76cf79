//! `RoomActor`: the single writer of one room. Commands arrive in queue order and wait in the
//! actor's own queue (`pending`); one unit of work is in hand at a time, top to bottom:
//!
//! 1. **look up** what the decision needs from the store (the message a recall names);
//! 2. **decide** (`domain`, pure): a refusal or answer that writes nothing, or a plan;
//! 3. **commit** the plan with this process's fencing epoch, then **absorb** it into the state;
//! 4. **settle** (`delivery`): answer, fan out, ack (or requeue).
//!
//! **Group commit.** Posts that wait together (up to [`MAX_BATCH`]) are one unit: decided in
//! order, each against the state the earlier ones leave, and committed in one transaction
//! (`Store::commit_posts`). A command id the store has recorded before is taken out (answered
//! from its record) and the rest committed again; a fenced or failed write refuses the whole
//! batch, and every command of it goes back, none acked. Each command is acked by itself once
//! its batch is committed and its answers and deliveries are on their way. Other commands (and
//! posts after a batch failed for good, one at a time) go alone. The next unit starts once the
//! previous one is settled, so a room's deliveries leave in seq order.
//!
//! Each step's result is an [`Outcome`]. Idle rooms are stopped by their shard's sweep; a room
//! that cannot go on (its store failed, a newer owner fenced it out, it does not exist) asks its
//! shard to stop it, so no queued command is dropped. State is reloaded on the next command.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Instant;

use actix::prelude::*;
use chat_bus::Delivery;
use chat_protocol::bus::{CommandEnvelope, CommandError, CommandResult, RawFrame, RoomCommand};
use chat_protocol::call::CallEndReason;
use chat_protocol::events::ChangeEvent;
use chat_protocol::frames::ServerFrame;
use chat_protocol::{now_ms, RoomEvent, RoomId};
use tracing::{debug, error, warn, Instrument, Span};

use super::context::{RoomContext, SharedRoomContext};
use super::delivery::{self, Frame, Outcome};
use crate::calls::{self, CallChange};
use crate::domain::{self, line_recipients_of, Blocks, MessageRef, Plan, PlannedEvent, RoomState};
use crate::metrics::metrics;
use crate::store::{Commit, Fence, PostCommit, StoreError};
use crate::views;

/// A command for this room, with the queue delivery to settle once it is done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Apply {
    pub envelope: CommandEnvelope,
    pub delivery: Delivery,
    /// The command's span (`room <command>`, under the delivery's `process` span); a disabled
    /// span while tracing is off. Its work runs inside it, wherever the command goes.
    pub span: tracing::Span,
}

impl Apply {
    pub fn new(envelope: CommandEnvelope, delivery: Delivery) -> Self {
        let span = match chat_telemetry::tracing_on() {
            false => tracing::Span::none(),
            true => {
                let process = delivery.process_span();
                tracing::info_span!(
                    parent: &process,
                    "room command",
                    otel.name = format!("room {}", envelope.command.name()),
                    room.id = %envelope.room_id,
                    room.command.id = %envelope.command_id,
                    room.command.kind = envelope.command.name(),
                )
            }
        };
        Self { envelope, delivery, span }
    }
}

/// The span of a commit (one command's, or a batch's under its first post, linked to the
/// others).
fn commit_span(parent: &tracing::Span, room_id: &RoomId, commands: usize) -> tracing::Span {
    if !chat_telemetry::tracing_on() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        parent: parent,
        "room commit",
        otel.name = "room commit",
        room.id = %room_id,
        room.commit.commands = commands,
        db.system.name = "postgresql",
    )
}

/// Stop now (passivation granted by the shard).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRoom;

/// The room asks its shard to stop it: idle, or unable to go on (`failed`). The shard holds
/// the room's commands from then on and answers with `StopRoom`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate {
    pub room_id: RoomId,
    pub failed: bool,
    /// A write was refused because a newer owner holds the room or its shard: the whole shard
    /// must be given up.
    pub fenced: bool,
}

/// A command this actor will not handle (it failed and is stopping), given back to the shard
/// for the next actor, in the order the actor received them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GiveBack(pub Apply);

/// The room's actor has stopped; held commands may go to a fresh one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomStopped {
    pub room_id: RoomId,
    /// It stopped because it failed: the next actor starts after a backoff.
    pub failed: bool,
    /// Its failure cannot pass by waiting (the stored room is unreadable): its commands went
    /// back to the queue, where each return counts toward the delivery limit, past which the
    /// broker dead-letters them.
    pub poisoned: bool,
}

/// How a room reaches the shard that started it.
#[derive(Clone)]
pub struct Parent {
    pub passivate: Recipient<Passivate>,
    pub give_back: Recipient<GiveBack>,
    pub stopped: Recipient<RoomStopped>,
}

pub struct RoomActor {
    room_id: RoomId,
    rc: SharedRoomContext,
    /// The shard's epoch this actor writes with.
    fence: Fence,
    parent: Parent,
    /// The room as committed; `None` until created (or when the room does not exist).
    state: Option<RoomState>,
    /// Who among the members blocks whom (loaded at activation, when members join and on
    /// `BlocksChanged`).
    blocks: Blocks,
    /// The room cannot go on in this actor (activation or a commit failed, or it was fenced
    /// out): every command is given back to the shard until it stops this actor; a fresh
    /// actor reloads, after a backoff.
    broken: bool,
    /// A write was fenced out (see `Passivate::fenced`).
    fenced: bool,
    /// Activation failed for good (see `RoomStopped::poisoned`).
    poisoned: bool,
    /// Passivation was asked for and not yet granted.
    passivating: bool,
    /// Commands received and not yet in hand, oldest first.
    pending: VecDeque<Apply>,
    /// A unit of work (one command or a batch of posts) is in hand.
    busy: bool,
    /// The shard asked this actor to stop: it does once nothing is pending or in hand.
    stop_asked: bool,
    /// A batch failed for good: this many commands go one at a time, to single out the one
    /// the store refuses.
    singles: usize,
}

/// Posts one batch takes at most.
pub const MAX_BATCH: usize = 64;

/// A unit of work in hand.
type Work = Pin<Box<dyn ActorFuture<RoomActor, Output = ()>>>;

/// A batch's commands with their outcomes, in the order they came.
type Settled = Vec<(usize, Apply, Outcome)>;

/// A plan ready to commit, with what the commit needs.
struct Write {
    plan: Plan,
    meta: domain::RoomMeta,
    last_seq: i64,
    now_ms: i64,
}

impl RoomActor {
    pub fn new(room_id: RoomId, rc: SharedRoomContext, parent: Parent, fence: Fence) -> Self {
        Self {
            room_id,
            rc,
            fence,
            fenced: false,
            poisoned: false,
            parent,
            state: None,
            blocks: Blocks::default(),
            broken: false,
            passivating: false,
            pending: VecDeque::new(),
            busy: false,
            stop_asked: false,
            singles: 0,
        }
    }

    /// Put the next unit of work in hand, if none is and something waits.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        if self.poisoned && !self.pending.is_empty() {
            // Back to the queue: each return counts toward the delivery limit.
            for apply in self.pending.drain(..) {
                actix::spawn(async move {
                    let _ = apply.delivery.requeue().await;
                });
            }
            self.ask_to_stop();
        }
        if self.broken {
            // Back to the shard, in order; a fresh actor reloads the room after a backoff.
            while let Some(apply) = self.pending.pop_front() {
                self.give_back(apply);
            }
        }
        let is_post = |a: &Apply| matches!(a.envelope.command, RoomCommand::Post { .. });
        let batch = match self.pending.front() {
            Some(first) if self.singles == 0 && self.state.is_some() && is_post(first) => {
                self.pending.iter().take(MAX_BATCH).take_while(|a| is_post(a)).count()
            }
            _ => 1,
        };
        let work = if batch == 1 {
            let Some(apply) = self.pending.pop_front() else {
                // Idle: keep no buffer behind (a command is a few hundred bytes).
                self.pending = VecDeque::new();
                if self.stop_asked {
                    ctx.stop();
                }
                return;
            };
            self.singles = self.singles.saturating_sub(1);
            self.handle_one(apply)
        } else {
            metrics().commit_batch_size.observe(batch as f64);
            let applies: Vec<(usize, Apply)> = self.pending.drain(..batch).enumerate().collect();
            self.commit_batch(applies, Vec::new())
        };
        self.busy = true;
        ctx.spawn(work.map(|(), act, ctx| {
            act.busy = false;
            act.pump(ctx);
        }));
    }

    /// Ask the shard to stop this actor; it keeps handling (or, broken, giving back) what is
    /// already in its mailbox until the shard answers.
    fn ask_to_stop(&mut self) {
        if !self.passivating {
            self.passivating = true;
            let (room_id, failed, fenced) = (self.room_id.clone(), self.broken, self.fenced);
            self.parent.passivate.do_send(Passivate { room_id, failed, fenced });
        }
    }

    /// Hand a command back to the shard for the next actor (this one failed).
    fn give_back(&mut self, apply: Apply) {
        self.parent.give_back.do_send(GiveBack(apply));
        self.ask_to_stop();
    }

    /// Step 2: decide. `Err` is an outcome that writes nothing (a refusal, a no-op, or a
    /// result from the dedup window).
    fn decide(&self, env: &CommandEnvelope, target: Option<MessageRef>) -> Result<Write, Outcome> {
        let refused = |e: CommandError| Outcome::Answered(Err(e));
        let plan = match &self.state {
            None if matches!(env.command, RoomCommand::Create { .. }) => {
                domain::decide_create(env, &self.rc.limits).map_err(refused)?
            }
            None => return Err(refused(CommandError::room_not_found())),
            Some(state) if env.command.is_call() => {
                let ring_ms = i64::try_from(self.rc.ring_timeout.as_millis()).unwrap_or(i64::MAX);
                domain::decide_call(state, env, ring_ms, now_ms()).map_err(refused)?
            }
            Some(state) => domain::decide(state, env, &self.rc.limits, target.as_ref()).map_err(refused)?,
        };
        if plan.is_noop() {
            return Err(Outcome::Answered(Ok(plan.result)));
        }
        let meta = plan.meta_after(self.state.as_ref()).ok_or_else(|| refused(CommandError::room_not_found()))?;
        let last_seq = self.state.as_ref().map_or(0, |s| s.last_seq);
        Ok(Write { plan, meta, last_seq, now_ms: now_ms() })
    }

    /// Step 3b: take a committed plan into the state; what goes out: the events to the members
    /// (and to the removed, who see their own removal), notifications to their users.
    fn absorb(&mut self, write: Write, command_id: &str) -> Outcome {
        let Write { plan, last_seq, now_ms, .. } = write;
        let new_last = last_seq + plan.events.len() as i64;
        self.state = RoomState::after(self.state.take(), &plan, new_last, self.rc.dedup_window);
        let Some(state) = &mut self.state else {
            return Outcome::Answered(Ok(plan.result));
        };
        state.recent.insert(command_id);
        let mut recipients = state.session_recipients();
        recipients.extend(plan.removed.iter().cloned());
        let blocks = &self.blocks;
        let mut frames: Vec<Frame> = plan
            .sequenced(last_seq)
            .filter_map(|(seq, event)| {
                let frame = views::planned_frame(&self.room_id, seq, event, now_ms);
                let recipients = match event {
                    PlannedEvent::Message { sender, .. } => blocks.recipients_of(sender, &recipients),
                    PlannedEvent::System(_) => recipients.clone(),
                };
                RawFrame::encode(&frame).ok().map(|text| Frame { recipients, text, seq: Some(seq), device: None })
            })
            .collect();
        if let Some(change) = &plan.call {
            count_call(change, &plan);
            let frame = ServerFrame::Call { room_id: self.room_id.clone(), call: change.view.clone() };
            if let Ok(text) = RawFrame::encode(&frame) {
                frames.push(Frame { recipients: recipients.clone(), text, seq: None, device: None });
            }
        }
        frames.extend(plan.notifications.iter().filter_map(|n| {
            let row = crate::store::NotificationRow::planned(n, self.room_id.as_str(), now_ms);
            let text = RawFrame::encode(&views::notification_frame(&row)).ok()?;
            Some(Frame { recipients: vec![n.user.clone()], text, seq: None, device: None })
        }));
        let changes = line_messages(state, &plan, last_seq, now_ms);
        Outcome::Committed { result: plan.result, frames, changes, committed_at_ms: now_ms }
    }

    /// Step 3c: what a commit's failure means for the command and for this actor.
    fn failed(&mut self, err: StoreError) -> Outcome {
        match err {
            // Trying again cannot help (the data was refused): answer now, keep the room.
            err @ (StoreError::Corrupt(_) | StoreError::Db(_)) if err.is_permanent() => {
                error!(room_id = %self.room_id, error = %err, "commit refused for good, command answered");
                Outcome::Answered(Err(CommandError::internal()))
            }
            StoreError::Stale { .. } => {
                metrics().stale_epoch_rejections.inc();
                warn!(room_id = %self.room_id, error = %err, "fenced out, giving the shard up");
                self.broken = true;
                self.fenced = true;
                Outcome::Retry
            }
            err => {
                error!(room_id = %self.room_id, error = %err, "commit failed, command requeued");
                self.broken = true;
                Outcome::Retry
            }
        }
    }

    /// Whether this actor should go after the command: a room that does not exist (or whose
    /// create met an existing 1:1 room) keeps no actor, a broken one reloads in a fresh actor.
    fn done_after(&self) -> bool {
        self.broken || self.state.is_none()
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics().rooms_active.inc();
        let rc = self.rc.clone();
        let room_id = self.room_id.clone();
        let started = Instant::now();
        let fence = self.fence;
        // Activation: raise the fence and load. Commands wait in the mailbox meanwhile.
        let load = async move {
            match rc.store.activate(&room_id, fence, rc.dedup_window).await? {
                Some((state, blocks)) => Ok((Some(state), Blocks::new(blocks))),
                None => Ok((None, Blocks::default())),
            }
        };
        ctx.wait(load.into_actor(self).map(move |loaded, act, ctx| {
            metrics().activation_seconds.observe(started.elapsed().as_secs_f64());
            match loaded {
                Ok((state, blocks)) => {
                    act.state = state;
                    act.blocks = blocks;
                    // A call taken over from the room's last actor rings until its deadline.
                    act.arm_ring_timer(ctx);
                }
                Err(err) => {
                    if matches!(err, StoreError::Stale { .. }) {
                        metrics().stale_epoch_rejections.inc();
                        act.fenced = true;
                    }
                    act.poisoned = err.is_permanent();
                    error!(room_id = %act.room_id, error = %err, poisoned = act.poisoned, "room activation failed");
                    act.broken = true;
                }
            }
        }));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics().rooms_active.dec();
        debug!(room_id = %self.room_id, "room actor stopped");
        let (room_id, failed, poisoned) = (self.room_id.clone(), self.broken, self.poisoned);
        self.parent.stopped.do_send(RoomStopped { room_id, failed, poisoned });
    }
}

impl Handler<StopRoom> for RoomActor {
    type Result = ();

    /// Stop once what came before this message is done (the shard holds what comes after).
    fn handle(&mut self, _msg: StopRoom, ctx: &mut Self::Context) {
        self.stop_asked = true;
        if !self.busy && self.pending.is_empty() {
            ctx.stop();
        }
    }
}

impl Handler<Apply> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Apply, ctx: &mut Self::Context) {
        self.pending.push_back(msg);
        self.pump(ctx);
    }
}

impl RoomActor {
    /// One command alone: look up, decide, commit, absorb, settle.
    fn handle_one(&mut self, apply: Apply) -> Work {
        let Apply { envelope, delivery, span } = apply;
        if matches!(envelope.command, RoomCommand::BlocksChanged) {
            return self.refresh_blocks(envelope, delivery, span);
        }
        if let RoomCommand::CallSignal { .. } = &envelope.command {
            let outcome = span.in_scope(|| self.relay(&envelope));
            return self.settle_one(envelope, outcome, delivery, span);
        }
        // Step 1: what the decision needs from the store: a command of the dedup window's is
        // answered from its record; a recall needs its message.
        let lookup = {
            let rc = self.rc.clone();
            let room_id = self.room_id.clone();
            let seen = self.state.as_ref().is_some_and(|s| s.recent.contains(&envelope.command_id));
            let command_id = envelope.command_id.clone();
            let recall = match (&envelope.command, &self.state) {
                (RoomCommand::Recall { message_id }, Some(_)) => Some(message_id.clone()),
                _ => None,
            };
            async move {
                if seen {
                    if let Some(result) = rc.store.command_result(&room_id, &command_id).await? {
                        return Ok(Err(result));
                    }
                }
                match recall {
                    Some(id) => rc.store.message_ref(&room_id, &id).await.map(Ok),
                    None => Ok(Ok(None)),
                }
            }
            .instrument(span.clone())
        };
        let settle_span = span.clone();
        let pipeline = lookup
            .into_actor(self)
            .then(move |target, act, _ctx| {
                let decided = span.in_scope(|| match target {
                    Ok(Ok(target)) => act.decide(&envelope, target),
                    Ok(Err(recorded)) => {
                        metrics().dedup_hits.inc();
                        Err(Outcome::Answered(Ok(recorded)))
                    }
                    Err(err) => Err(act.failed(err)),
                });
                let (rc, fence) = (act.rc.clone(), act.fence);
                let commit_span = commit_span(&span, &act.room_id, 1);
                // Step 3: commit what was decided.
                async move {
                    let committed = match decided {
                        Err(outcome) => Err(outcome),
                        Ok(write) => {
                            let commit = Commit {
                                meta: &write.meta,
                                last_seq: write.last_seq,
                                plan: &write.plan,
                                command_id: &envelope.command_id,
                                now_ms: write.now_ms,
                            };
                            let result = rc.store.commit(fence, &commit).instrument(commit_span).await;
                            // A conflict is answered from what the store already holds.
                            let looked_up = match &result {
                                Err(StoreError::Duplicate) => Some(recorded(&rc, &envelope).await),
                                Err(StoreError::DirectExists) => Some(existing_direct(&rc, &envelope).await),
                                _ => None,
                            };
                            // Members who joined bring their blocks.
                            let blocks = match &result {
                                Ok(()) if !write.plan.added.is_empty() => reload_blocks(&rc, &envelope.room_id).await,
                                _ => None,
                            };
                            Ok((write, result, looked_up, blocks))
                        }
                    };
                    (envelope, committed)
                }
                .instrument(span)
                .into_actor(act)
                .map(|(envelope, committed), act, ctx| {
                    let outcome = match committed {
                        Err(outcome) => outcome,
                        Ok((write, Ok(()), _, blocks)) => {
                            metrics().commands_accepted.with_label_values(&[envelope.command.name()]).inc();
                            if let Some(blocks) = blocks {
                                act.blocks = blocks;
                            }
                            let call_changed = write.plan.call.is_some();
                            let outcome = act.absorb(write, &envelope.command_id);
                            if call_changed {
                                act.arm_ring_timer(ctx);
                            }
                            outcome
                        }
                        // Applied before this actor's window (nothing is applied twice), or the
                        // 1:1 room of the pair exists under another id: answered from the store.
                        Ok((_, Err(_), Some(Ok(result)), _)) => {
                            metrics().dedup_hits.inc();
                            Outcome::Answered(Ok(result))
                        }
                        Ok((_, Err(_), Some(Err(err)), _)) | Ok((_, Err(err), None, _)) => act.failed(err),
                    };
                    (envelope, outcome)
                })
            })
            .then(move |(envelope, outcome), act, _ctx| act.settle_one(envelope, outcome, delivery, settle_span));
        Box::pin(pipeline)
    }

    /// Posts together: decide each in order against the state the earlier ones leave, commit
    /// them in one transaction, absorb them, settle each. `settled` holds the outcomes already
    /// known (refusals, repeats, commands recorded before); `applies` are the rest, with their
    /// place in the batch.
    fn commit_batch(&mut self, applies: Vec<(usize, Apply)>, mut settled: Settled) -> Work {
        let base = self.state.as_ref().map_or(0, |s| s.last_seq);
        let mut writes: Vec<(usize, Apply, Write)> = Vec::new();
        let mut repeats: Vec<(usize, Apply)> = Vec::new();
        for (i, apply) in applies {
            if writes.iter().any(|(_, a, _)| a.envelope.command_id == apply.envelope.command_id) {
                // The same command twice in one batch (a redelivery): applied once, both answered.
                repeats.push((i, apply));
                continue;
            }
            match self.decide(&apply.envelope, None) {
                Ok(write) => {
                    if let Some(state) = &mut self.state {
                        state.last_seq += write.plan.events.len() as i64;
                    }
                    writes.push((i, apply, write));
                }
                Err(outcome) => settled.push((i, apply, outcome)),
            }
        }
        if let Some(state) = &mut self.state {
            state.last_seq = base;
        }
        // One commit, one time: the events' stored time and their frames' agree.
        let now = writes.first().map_or(0, |(_, _, w)| w.now_ms);
        for (_, _, write) in &mut writes {
            write.now_ms = now;
        }
        if writes.is_empty() {
            settled.extend(repeats.into_iter().map(|(i, apply)| (i, apply, Outcome::Retry)));
            return self.settle_batch(settled);
        }
        let (rc, fence, room_id) = (self.rc.clone(), self.fence, self.room_id.clone());
        let span = commit_span(&writes[0].1.span, &room_id, writes.len());
        if chat_telemetry::tracing_on() {
            for (_, apply, _) in &writes[1..] {
                chat_telemetry::TraceParent::of(&apply.span).link(&span);
            }
        }
        let commit = async move {
            let posts: Vec<PostCommit<'_>> = writes
                .iter()
                .map(|(_, apply, write)| PostCommit {
                    command_id: &apply.envelope.command_id,
                    plan: &write.plan,
                    seq: write.last_seq + 1,
                })
                .collect();
            let result = rc.store.commit_posts(fence, &room_id, &posts, now).await;
            drop(posts);
            // Commands recorded before are answered from their record.
            let mut records = Vec::new();
            if let Err(StoreError::Duplicates(ids)) = &result {
                for (i, apply, _) in writes.iter().filter(|(_, a, _)| ids.contains(&a.envelope.command_id)) {
                    records.push((*i, recorded(&rc, &apply.envelope).await));
                }
            }
            (writes, result, records)
        }
        .instrument(span);
        let work = commit.into_actor(self).then(move |(writes, result, mut records), act, _ctx| -> Work {
            match result {
                Ok(()) => {
                    let mut results = Vec::with_capacity(writes.len());
                    for (i, apply, write) in writes {
                        metrics().commands_accepted.with_label_values(&["post"]).inc();
                        let outcome = act.absorb(write, &apply.envelope.command_id);
                        if let Outcome::Committed { result, .. } = &outcome {
                            results.push((apply.envelope.command_id.clone(), result.clone()));
                        }
                        settled.push((i, apply, outcome));
                    }
                    for (i, apply) in repeats {
                        let first = results.iter().find(|(id, _)| *id == apply.envelope.command_id);
                        let outcome = match first {
                            Some((_, result)) => Outcome::Repeated(result.clone()),
                            None => Outcome::Retry,
                        };
                        settled.push((i, apply, outcome));
                    }
                    act.settle_batch(settled)
                }
                Err(StoreError::Duplicates(_)) => {
                    let mut rest = Vec::new();
                    for (i, apply, _) in writes {
                        match records.iter().position(|(j, _)| *j == i) {
                            Some(at) => {
                                let outcome = match records.swap_remove(at).1 {
                                    Ok(result) => {
                                        metrics().dedup_hits.inc();
                                        Outcome::Answered(Ok(result))
                                    }
                                    Err(err) => act.failed(err),
                                };
                                settled.push((i, apply, outcome));
                            }
                            None => rest.push((i, apply)),
                        }
                    }
                    rest.extend(repeats);
                    rest.sort_by_key(|(i, _)| *i);
                    if act.broken {
                        settled.extend(rest.into_iter().map(|(i, apply)| (i, apply, Outcome::Retry)));
                        return act.settle_batch(settled);
                    }
                    act.commit_batch(rest, settled)
                }
                Err(err) if err.is_permanent() => {
                    // One of them is refused for good: they go again one at a time, first.
                    error!(room_id = %act.room_id, error = %err, "a batch was refused, its posts go one at a time");
                    let mut again: Vec<(usize, Apply)> = writes.into_iter().map(|(i, a, _)| (i, a)).collect();
                    again.extend(repeats);
                    again.sort_by_key(|(i, _)| *i);
                    act.singles = again.len();
                    for (_, apply) in again.into_iter().rev() {
                        act.pending.push_front(apply);
                    }
                    act.settle_batch(settled)
                }
                Err(err) => {
                    // Fenced out, or the store failed: nothing of the batch was written, all of
                    // it goes back (none acked).
                    let retry = act.failed(err);
                    debug_assert!(matches!(retry, Outcome::Retry));
                    settled.extend(writes.into_iter().map(|(i, apply, _)| (i, apply, Outcome::Retry)));
                    settled.extend(repeats.into_iter().map(|(i, apply)| (i, apply, Outcome::Retry)));
                    act.settle_batch(settled)
                }
            }
        });
        Box::pin(work)
    }

    /// Step 4 for one command: see `settle_batch`.
    fn settle_one(&mut self, envelope: CommandEnvelope, outcome: Outcome, delivery: Delivery, span: Span) -> Work {
        self.settle_batch(vec![(0, Apply { envelope, delivery, span }, outcome)])
    }

    /// Step 4: settle a unit's commands in the order they came: what must be tried again goes
    /// back to the shard, the rest is answered, fanned out and acked. Then ask to stop if this
    /// actor should not go on.
    fn settle_batch(&mut self, mut settled: Settled) -> Work {
        settled.sort_by_key(|(i, _, _)| *i);
        let mut done = Vec::with_capacity(settled.len());
        for (_, Apply { envelope, delivery, span }, outcome) in settled {
            if let Outcome::Answered(Err(refusal)) = &outcome {
                metrics().commands_rejected.with_label_values(&[refusal.code.as_str()]).inc();
            }
            match outcome {
                Outcome::Retry => self.give_back(Apply { envelope, delivery, span }),
                outcome => done.push(delivery::Done { envelope, outcome, delivery, span }),
            }
        }
        let stop = self.done_after();
        let rc = self.rc.clone();
        let work = async move { delivery::settle_all(&rc, done).await }.into_actor(self).map(move |(), act, _ctx| {
            if stop {
                act.ask_to_stop();
            }
        });
        Box::pin(work)
    }
}

/// The messages of a committed plan that LINE users of the room must get, as events for the
/// LINE gateway: members' messages, and in a room with several LINE users their messages to
/// the others (the gateway leaves out rooms connected to a LINE group, where LINE users read
/// each other on LINE).
fn line_messages(state: &RoomState, plan: &Plan, last_seq: i64, now_ms: i64) -> Vec<ChangeEvent> {
    let line_members = state.line_recipients();
    if line_members.is_empty() {
        return Vec::new();
    }
    plan.sequenced(last_seq)
        .filter_map(|(seq, event)| match event {
            PlannedEvent::Message { message_id, sender, body } => {
                let line_recipients = line_recipients_of(sender, &line_members);
                if line_recipients.is_empty() {
                    return None;
                }
                let tenant = match state.members.get(sender) {
                    Some(member) if !sender.is_line_user() => member.tenant.clone(),
                    _ => state.meta.tenant.clone(),
                };
                Some(ChangeEvent::RoomLineMessage {
                    room_id: state.meta.id.clone(),
                    kind: state.meta.kind,
                    tenant,
                    message_id: message_id.clone(),
                    seq,
                    sender: sender.clone(),
                    body: body.clone(),
                    line_recipients,
                    sent_at_ms: now_ms,
                })
            }
            _ => None,
        })
        .collect()
}

impl RoomActor {
    /// A call's signaling: from a participant's device in the call to another participant's
    /// device, and to nobody else; nothing is written.
    fn relay(&self, env: &CommandEnvelope) -> Outcome {
        let RoomCommand::CallSignal { call_id, device, to, signal } = &env.command else {
            return Outcome::Answered(Err(CommandError::internal()));
        };
        let Some(state) =
            self.state.as_ref().filter(|s| s.members.get(&env.actor).is_some_and(|m| m.tenant == env.tenant))
        else {
            return Outcome::Answered(Err(CommandError::room_not_found()));
        };
        let target = match calls::relay_target(state.call.as_ref(), call_id, &env.actor, device, to) {
            Ok(target) => target,
            Err(refusal) => return Outcome::Answered(Err(refusal)),
        };
        let frame = ServerFrame::CallSignal {
            room_id: self.room_id.clone(),
            call_id: call_id.clone(),
            from: env.actor.clone(),
            signal: signal.clone(),
        };
        let Ok(text) = RawFrame::encode(&frame) else { return Outcome::Answered(Err(CommandError::internal())) };
        metrics().call_signals.inc();
        let frames = vec![Frame { recipients: vec![to.clone()], text, seq: None, device: Some(target) }];
        Outcome::Relayed { result: CommandResult::Done { seq: state.last_seq }, frames }
    }

    /// If the room's call is ringing, time it out at its deadline: the room sends itself a
    /// `CallRingTimeout` (through its own queue of commands, so it is decided and committed like
    /// any command; a timeout that finds the call answered or gone changes nothing).
    fn arm_ring_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(state) = &self.state else { return };
        let Some(call) = state.call.as_ref().filter(|c| !c.ringing.is_empty()) else { return };
        let wait = u64::try_from(call.ring_deadline_ms.saturating_sub(now_ms())).unwrap_or(0);
        let call_id = call.id.clone();
        let tenant = state.meta.tenant.clone();
        ctx.run_later(std::time::Duration::from_millis(wait), move |act, ctx| {
            let ringing = act
                .state
                .as_ref()
                .and_then(|s| s.call.as_ref())
                .is_some_and(|c| c.id == call_id && !c.ringing.is_empty());
            if !ringing || act.broken {
                return;
            }
            let envelope = CommandEnvelope {
                command_id: calls::ring_timeout_command_id(&call_id),
                room_id: act.room_id.clone(),
                actor: chat_protocol::UserId::system(),
                tenant,
                reply_to: None,
                issued_at_ms: now_ms(),
                command: RoomCommand::CallRingTimeout { call_id },
            };
            // Nothing to settle: the room made it itself.
            let apply = Apply::new(envelope, Delivery::unacked(Vec::new()));
            act.pending.push_back(apply);
            act.pump(ctx);
        });
    }

    /// `BlocksChanged`: read the members' blocks again; nothing is written, the answer is the
    /// room's last seq. A store failure gives the command back like any failed command.
    fn refresh_blocks(&mut self, envelope: CommandEnvelope, delivery: Delivery, span: Span) -> Work {
        let rc = self.rc.clone();
        let room_id = self.room_id.clone();
        let exists = self.state.is_some();
        let pipeline = async move {
            match exists {
                true => rc.store.room_blocks(&room_id).await.map(Some),
                false => Ok(None),
            }
        }
        .into_actor(self)
        .then(move |loaded, act, _ctx| {
            let outcome = match (loaded, &act.state) {
                (Ok(Some(blocks)), Some(state)) => {
                    act.blocks = Blocks::new(blocks);
                    Outcome::Answered(Ok(CommandResult::Done { seq: state.last_seq }))
                }
                (Ok(_), _) => Outcome::Answered(Err(CommandError::room_not_found())),
                (Err(err), _) => act.failed(err),
            };
            act.settle_one(envelope, outcome, delivery, span)
        });
        Box::pin(pipeline)
    }
}

/// The call metrics of a committed call change.
fn count_call(change: &CallChange, plan: &domain::Plan) {
    let m = metrics();
    if change.answered {
        m.calls_answered.inc();
    }
    for event in &plan.events {
        match event {
            PlannedEvent::System(RoomEvent::CallStarted { media, .. }) => {
                m.calls_started.with_label_values(&[media.as_str()]).inc()
            }
            PlannedEvent::System(RoomEvent::CallEnded { reason, duration_ms, .. }) => {
                m.calls_ended.with_label_values(&[reason.as_str()]).inc();
                if *reason == CallEndReason::Missed {
                    m.calls_missed.inc();
                }
                if let Some(ms) = duration_ms {
                    m.call_duration.observe(*ms as f64 / 1000.0);
                }
            }
            _ => {}
        }
    }
}

/// The members' blocks after members joined; `None` (the old ones kept) if the store fails.
async fn reload_blocks(rc: &RoomContext, room_id: &RoomId) -> Option<Blocks> {
    match rc.store.room_blocks(room_id).await {
        Ok(blocks) => Some(Blocks::new(blocks)),
        Err(err) => {
            warn!(room_id = %room_id, error = %err, "blocks not reloaded after members joined");
            None
        }
    }
}

/// The recorded result of a command applied before (beyond the in-memory window).
async fn recorded(rc: &RoomContext, envelope: &CommandEnvelope) -> Result<CommandResult, StoreError> {
    rc.store
        .command_result(&envelope.room_id, &envelope.command_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("no recorded result for command {}", envelope.command_id)))
}

/// The existing 1:1 room of the pair a `Create` names.
async fn existing_direct(rc: &RoomContext, envelope: &CommandEnvelope) -> Result<CommandResult, StoreError> {
    let RoomCommand::Create { kind, members, .. } = &envelope.command else {
        return Err(StoreError::Corrupt("a 1:1 conflict on a command that creates nothing".into()));
    };
    let [a, b] = members.as_slice() else {
        return Err(StoreError::Corrupt("a 1:1 conflict without a pair".into()));
    };
    let room_id = rc
        .store
        .find_direct(&domain::direct_key(*kind, &a.user, &b.user))
        .await?
        .ok_or_else(|| StoreError::Corrupt("the existing 1:1 room is gone".into()))?;
    Ok(CommandResult::Created { room_id, existed: true })
}
