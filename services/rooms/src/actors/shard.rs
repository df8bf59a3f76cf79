//! `ShardActor`: while this node owns the shard, consumes its command queue and routes each
//! command to its room's actor, starting it on demand.
//!
//! Ownership comes from outside (the cluster's leases, or the standalone owning everything):
//! `Own { epoch }` records the epoch in the store (writes of older epochs are refused from then
//! on), then subscribes; room actors write with that epoch. `Release` hands the shard over
//! gracefully: cancel the consumer, let each room actor finish the command in hand within a
//! bound, give every held command back to the queue, report. `Fence` (the lease may have
//! expired) does the same without waiting. A room actor whose write was fenced out makes the
//! shard give itself up at once and say so (`GaveUp`), so its lease is released.
//!
//! It grants stops Akka-style. A room actor that is idle, or cannot go on (its store failed, a
//! newer owner fenced it out), asks to stop; from then on the shard holds that room's commands,
//! and the actor gives back, in order, every command still in its mailbox. Once the old actor
//! has stopped, a fresh one gets the given-back commands first, then the held ones: a room never
//! has two live actors on this node, and no command is dropped or reordered. After a failure the
//! fresh actor starts only after a backoff (100 ms, doubling, at most 5 s), so an outage of the
//! store costs no broker redeliveries (which count toward the dead-letter limit) and no busy loop.
//! A room whose stored state is unreadable (poisoned) is not retried here: its commands go back
//! to the queue, and past the delivery limit to the dead-letter queue.
//!
//! A room holds at most 32 commands that way; while it stays broken, more go back to the queue.
//!
//! A consumer that cannot subscribe, or whose stream ends, subscribes again with a backoff; the
//! shard is reported not consuming meanwhile (readiness).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chat_bus::Delivery;
use chat_protocol::bus::CommandEnvelope;
use chat_protocol::{shard_of, RoomId};
use futures_util::stream;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::context::{GaveUp, SharedRoomContext};
use super::room::{Apply, GiveBack, Parent, Passivate, RoomActor, RoomStopped, StopRoom};
use crate::metrics::metrics;
use crate::store::Fence;

/// Own the shard with `epoch` (a lease was acquired): record the epoch, then consume.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Own {
    pub epoch: i64,
}

/// Hand the shard over: stop consuming, let the room actors finish what they hold for at most
/// `drain`, give everything else back to the queue. Answers once done (the lease may go then).
#[derive(Message)]
#[rtype(result = "Released")]
pub struct Release {
    pub drain: Duration,
}

/// What a release did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Released {
    /// Room actors still stopping when the drain bound passed.
    pub still_stopping: usize,
}

/// Stop at once, without waiting for anything (the lease may have expired, or was lost).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fenced;

/// Start a fresh actor for a room whose backoff is over.
#[derive(Message)]
#[rtype(result = "()")]
struct Restart(RoomId);

/// Subscribe to the shard's queue (again).
#[derive(Message)]
#[rtype(result = "()")]
struct Subscribe;

/// Commands a stopping or failed room holds at most; more go back to the queue.
const HELD_PER_ROOM: usize = 32;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(MAX_BACKOFF)
}

fn requeue(delivery: Delivery) {
    actix::spawn(async move {
        if let Err(err) = delivery.requeue().await {
            warn!(error = %err, "requeueing a command failed; the broker redelivers it");
        }
    });
}

/// One room of this shard that has, or is about to have, an actor on this node.
#[derive(Default)]
struct Room {
    /// The live actor; `None` while it stops or the room backs off.
    actor: Option<Addr<RoomActor>>,
    /// The actor was asked to stop (`StopRoom` sent) and has not stopped yet.
    stopping: bool,
    /// Its last actor stopped because it failed; set until a fresh actor is started.
    failed: bool,
    /// Commands the stopping actor gave back, oldest first: they came before `held`.
    given_back: Vec<Apply>,
    /// Commands that arrived while there was no actor to take them, oldest first.
    held: Vec<Apply>,
    /// Failed stops in a row (the backoff grows with it); reset by a stop that was no failure.
    failures: u32,
    /// When a command was last routed to it (the sweep stops rooms idle past
    /// `passivate_after`).
    last_routed: Option<Instant>,
}

impl Room {
    /// Give every command this room holds back to the queue, in order.
    fn requeue_all(&mut self) {
        // Taken, not drained: an idle room keeps no buffer behind.
        for apply in std::mem::take(&mut self.given_back).into_iter().chain(std::mem::take(&mut self.held)) {
            requeue(apply.delivery);
        }
    }
}

pub struct ShardActor {
    shard: u16,
    /// Unsettled deliveries the broker hands this shard at most.
    prefetch: u16,
    rc: SharedRoomContext,
    rooms: HashMap<RoomId, Room>,
    /// The epoch this node owns the shard with; `None` while it does not (then nothing is
    /// consumed or held, and room actors still stopping only finish).
    epoch: Option<i64>,
    /// The queue consumer while owned.
    consumer: Option<SpawnHandle>,
    /// Failed subscriptions in a row.
    subscribe_failures: u32,
    /// Told once the last room actor of a release has stopped.
    released: Option<oneshot::Sender<()>>,
}

impl ShardActor {
    pub fn new(shard: u16, prefetch: u16, rc: SharedRoomContext) -> Self {
        Self {
            shard,
            prefetch,
            rc,
            rooms: HashMap::new(),
            epoch: None,
            consumer: None,
            subscribe_failures: 0,
            released: None,
        }
    }

    fn route(&mut self, apply: Apply, ctx: &mut Context<Self>) {
        let Some(epoch) = self.epoch else {
            requeue(apply.delivery); // sent on before the cancel: the next owner takes it
            return;
        };
        let room_id = apply.envelope.room_id.clone();
        let room = self.rooms.entry(room_id.clone()).or_default();
        room.last_routed = Some(Instant::now());
        if let (Some(actor), false) = (&room.actor, room.stopping) {
            actor.do_send(apply);
            return;
        }
        let waiting = room.stopping || room.failed;
        if waiting && room.held.len() >= HELD_PER_ROOM {
            // A room that stays broken holds no more: the broker keeps the rest (and dead-letters
            // what keeps coming back past its delivery limit).
            warn!(room_id = %room_id, "room holds too many commands, one goes back to the queue");
            requeue(apply.delivery);
            return;
        }
        room.held.push(apply);
        if !waiting {
            self.start_actor(room_id, epoch, ctx);
        }
    }

    /// A fresh actor for the room, fed what was given back, then what was held.
    fn start_actor(&mut self, room_id: RoomId, epoch: i64, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let parent =
            Parent { passivate: me.clone().recipient(), give_back: me.clone().recipient(), stopped: me.recipient() };
        let fence = Fence { shard: self.shard, epoch };
        let room = self.rooms.entry(room_id.clone()).or_default();
        let actor = RoomActor::new(room_id, self.rc.clone(), parent, fence).start();
        // Taken, not drained: an idle room keeps no buffer behind.
        for apply in std::mem::take(&mut room.given_back).into_iter().chain(std::mem::take(&mut room.held)) {
            actor.do_send(apply);
        }
        room.actor = Some(actor);
        room.stopping = false;
        room.failed = false;
        self.rc.shards.set_rooms(self.shard, self.rooms.len());
    }

    fn set_consuming(&self, consuming: bool) {
        self.rc.shards.set_consuming(self.shard, consuming);
    }

    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let Some(epoch) = self.epoch else { return };
        let bus = self.rc.bus.clone();
        let (shard, prefetch) = (self.shard, self.prefetch);
        let subscribe = async move { bus.consume_shard(shard, prefetch).await };
        ctx.wait(subscribe.into_actor(self).map(move |sub, act, ctx| match sub {
            // Released or fenced meanwhile: dropping the stream cancels the consumer.
            Ok(_) if act.epoch != Some(epoch) => {}
            Ok(rx) => {
                let deliveries = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|d| (d, rx)) });
                act.consumer = Some(ctx.add_stream(deliveries));
                act.subscribe_failures = 0;
                act.set_consuming(true);
                info!(shard, epoch, "consuming shard");
            }
            Err(err) => {
                error!(shard, error = %err, "cannot consume shard, trying again");
                act.resubscribe_later(ctx);
            }
        }));
    }

    fn resubscribe_later(&mut self, ctx: &mut Context<Self>) {
        self.set_consuming(false);
        if self.epoch.is_none() {
            return;
        }
        let delay = backoff(self.subscribe_failures);
        self.subscribe_failures = self.subscribe_failures.saturating_add(1);
        ctx.notify_later(Subscribe, delay);
    }

    /// Stop owning: cancel the consumer (dropping the stream cancels it at the broker), ask
    /// every room actor to stop, give back what waiting rooms hold. The returned receiver is
    /// told once the last room actor has stopped (at once if there is none).
    fn stop_owning(&mut self, ctx: &mut Context<Self>) -> oneshot::Receiver<()> {
        if let Some(epoch) = self.epoch.take() {
            info!(shard = self.shard, epoch, rooms = self.rooms.len(), "shard given up");
        }
        if let Some(handle) = self.consumer.take() {
            ctx.cancel_future(handle);
        }
        self.set_consuming(false);
        let mut gone = Vec::new();
        for (room_id, room) in &mut self.rooms {
            room.requeue_all();
            if let Some(actor) = room.actor.take() {
                actor.do_send(StopRoom);
                room.stopping = true;
            }
            if !room.stopping {
                gone.push(room_id.clone());
            }
        }
        for room_id in gone {
            self.rooms.remove(&room_id);
        }
        self.rc.shards.set_rooms(self.shard, self.rooms.len());
        let (tx, rx) = oneshot::channel();
        if self.rooms.is_empty() {
            let _ = tx.send(());
        } else {
            self.released = Some(tx);
        }
        rx
    }

    /// A write was fenced out, or the epoch could not be recorded: stop now and say so.
    fn give_up(&mut self, ctx: &mut Context<Self>) {
        let Some(epoch) = self.epoch else { return };
        warn!(shard = self.shard, epoch, "giving the shard up");
        drop(self.stop_owning(ctx));
        if self.rc.gave_up.try_send(GaveUp { shard: self.shard, epoch }).is_err() {
            warn!(shard = self.shard, "the shard's owner was not told it gave up; its lease expires instead");
        }
    }
}

impl Actor for ShardActor {
    type Context = Context<Self>;

    /// Idle rooms are stopped by one sweep per shard, not a timer per room actor.
    fn started(&mut self, ctx: &mut Self::Context) {
        let every = (self.rc.passivate_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        ctx.run_interval(every, |act, _ctx| act.sweep());
    }
}

impl ShardActor {
    /// Stop the room actors no command was routed to for `passivate_after` (passivation: the
    /// shard holds their commands from now on, as when a room asks to stop).
    fn sweep(&mut self) {
        let idle_after = self.rc.passivate_after;
        for room in self.rooms.values_mut() {
            if room.stopping || room.last_routed.is_some_and(|at| at.elapsed() < idle_after) {
                continue;
            }
            if let Some(actor) = room.actor.take() {
                actor.do_send(StopRoom);
                room.stopping = true;
            }
        }
    }
}

impl Handler<Own> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Own, ctx: &mut Self::Context) {
        if self.epoch == Some(msg.epoch) {
            return;
        }
        if self.epoch.is_some() {
            drop(self.stop_owning(ctx));
        }
        let epoch = msg.epoch;
        self.epoch = Some(epoch);
        let store = self.rc.store.clone();
        let fence = Fence { shard: self.shard, epoch };
        // Record the epoch before consuming: older owners' writes are refused from then on.
        ctx.wait(async move { store.raise_shard_fence(fence).await }.into_actor(self).map(move |raised, act, ctx| {
            if act.epoch != Some(epoch) {
                return;
            }
            match raised {
                Ok(true) => act.subscribe(ctx),
                Ok(false) => {
                    metrics().stale_epoch_rejections.inc();
                    warn!(shard = act.shard, epoch, "the store holds a newer epoch for this shard");
                    act.give_up(ctx);
                }
                Err(err) => {
                    error!(shard = act.shard, epoch, error = %err, "the shard's epoch was not recorded");
                    act.give_up(ctx);
                }
            }
        }));
    }
}

impl Handler<Release> for ShardActor {
    type Result = ResponseActFuture<Self, Released>;

    fn handle(&mut self, msg: Release, ctx: &mut Self::Context) -> Self::Result {
        let stopped = self.stop_owning(ctx);
        let started = Instant::now();
        Box::pin(async move { tokio::time::timeout(msg.drain, stopped).await.is_ok() }.into_actor(self).map(
            move |done, act, _ctx| {
                let still_stopping = if done { 0 } else { act.rooms.len() };
                if !done {
                    // Actors that did not finish in time: what they hold returns to the queue when
                    // they drop it; their late writes are fenced out by the next owner's epoch.
                    warn!(
                        shard = act.shard,
                        rooms = still_stopping,
                        "drain bound passed with room actors still stopping"
                    );
                    act.released = None;
                }
                metrics().handoff_seconds.observe(started.elapsed().as_secs_f64());
                Released { still_stopping }
            },
        ))
    }
}

impl Handler<Fenced> for ShardActor {
    type Result = ();

    fn handle(&mut self, _msg: Fenced, ctx: &mut Self::Context) {
        drop(self.stop_owning(ctx));
    }
}

impl Handler<Subscribe> for ShardActor {
    type Result = ();

    fn handle(&mut self, _msg: Subscribe, ctx: &mut Self::Context) {
        if self.epoch.is_some() && self.consumer.is_none() {
            self.subscribe(ctx);
        }
    }
}

impl StreamHandler<Delivery> for ShardActor {
    fn handle(&mut self, delivery: Delivery, ctx: &mut Self::Context) {
        let envelope = match serde_json::from_slice::<CommandEnvelope>(&delivery.payload) {
            Ok(envelope) if shard_of(&envelope.room_id, self.rc.bus.shards()) == self.shard => envelope,
            Ok(envelope) => {
                warn!(shard = self.shard, room_id = %envelope.room_id, "command on the wrong shard, dead-lettered");
                dead_letter(delivery);
                return;
            }
            Err(err) => {
                warn!(shard = self.shard, error = %err, "undecodable command, dead-lettered");
                dead_letter(delivery);
                return;
            }
        };
        self.route(Apply::new(envelope, delivery), ctx);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.consumer = None;
        if self.epoch.is_none() {
            info!(shard = self.shard, "shard consumer stopped");
            return;
        }
        warn!(shard = self.shard, "shard consumer ended, subscribing again");
        self.resubscribe_later(ctx);
    }
}

fn dead_letter(delivery: Delivery) {
    metrics().dead_lettered.inc();
    actix::spawn(async move {
        let _ = delivery.reject().await;
    });
}

impl Handler<Passivate> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Passivate, ctx: &mut Self::Context) {
        if msg.fenced {
            self.give_up(ctx);
            return;
        }
        let Some(room) = self.rooms.get_mut(&msg.room_id) else { return };
        if room.stopping {
            room.failed |= msg.failed;
            return;
        }
        if let Some(actor) = room.actor.take() {
            actor.do_send(StopRoom);
            room.stopping = true;
            room.failed = msg.failed;
        }
    }
}

impl Handler<GiveBack> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: GiveBack, _ctx: &mut Self::Context) {
        if self.epoch.is_none() {
            requeue(msg.0.delivery);
            return;
        }
        let room = self.rooms.entry(msg.0.envelope.room_id.clone()).or_default();
        room.given_back.push(msg.0);
    }
}

impl Handler<RoomStopped> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: RoomStopped, ctx: &mut Self::Context) {
        let Some(room) = self.rooms.get_mut(&msg.room_id) else { return };
        room.actor = None;
        room.stopping = false;
        let failed = room.failed || msg.failed;
        let Some(epoch) = self.epoch else {
            // Not owned any more: what was held goes back to the queue for the next owner.
            room.requeue_all();
            self.rooms.remove(&msg.room_id);
            self.rc.shards.set_rooms(self.shard, self.rooms.len());
            if self.rooms.is_empty() {
                if let Some(tx) = self.released.take() {
                    let _ = tx.send(());
                }
            }
            return;
        };
        if msg.poisoned {
            // Waiting cannot help: back to the queue, toward the delivery limit.
            room.requeue_all();
            self.rooms.remove(&msg.room_id);
            self.rc.shards.set_rooms(self.shard, self.rooms.len());
            return;
        }
        if failed {
            room.failed = true;
            let delay = backoff(room.failures);
            room.failures = room.failures.saturating_add(1);
            warn!(room_id = %msg.room_id, delay_ms = delay.as_millis() as u64, "room failed, restarting after a backoff");
            ctx.notify_later(Restart(msg.room_id), delay);
            return;
        }
        room.failures = 0;
        if room.given_back.is_empty() && room.held.is_empty() {
            self.rooms.remove(&msg.room_id);
            self.rc.shards.set_rooms(self.shard, self.rooms.len());
        } else {
            self.start_actor(msg.room_id, epoch, ctx);
        }
    }
}

impl Handler<Restart> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        let Some(epoch) = self.epoch else { return };
        let Some(room) = self.rooms.get_mut(&msg.0) else { return };
        if room.actor.is_some() || room.stopping {
            return;
        }
        if room.given_back.is_empty() && room.held.is_empty() {
            self.rooms.remove(&msg.0); // the next command starts an actor
            self.rc.shards.set_rooms(self.shard, self.rooms.len());
            return;
        }
        self.start_actor(msg.0, epoch, ctx);
    }
}
