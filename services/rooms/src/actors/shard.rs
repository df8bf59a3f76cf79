//! `ShardActor`: consumes one shard's command queue and routes each command to its room's
//! actor, starting it on demand.
//!
//! It grants stops Akka-style. A room actor that is idle, or cannot go on (its store failed, a
//! newer owner fenced it out), asks to stop; from then on the shard holds that room's commands,
//! and the actor gives back, in order, every command still in its mailbox. Once the old actor
//! has stopped, a fresh one gets the given-back commands first, then the held ones: a room never
//! has two live actors on this node, and no command is dropped or reordered. After a failure the
//! fresh actor starts only after a backoff (100 ms, doubling, at most 5 s), so an outage of the
//! store costs no broker redeliveries (which count toward the dead-letter limit) and no busy loop.
//!
//! A room holds at most 32 commands that way; while it stays broken, more go back to the queue.
//!
//! A consumer that cannot subscribe, or whose stream ends, subscribes again with a backoff; the
//! shard is reported not consuming meanwhile (readiness).

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use chat_bus::Delivery;
use chat_protocol::bus::CommandEnvelope;
use chat_protocol::{shard_of, RoomId};
use futures_util::stream;
use tracing::{error, info, warn};

use super::context::SharedRoomContext;
use super::room::{Apply, GiveBack, Parent, Passivate, RoomActor, RoomStopped, StopRoom};

/// Stop consuming (graceful shutdown); held deliveries go back to the queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopConsuming;

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
}

impl Room {
    /// Give every command this room holds back to the queue, in order.
    fn requeue_all(&mut self) {
        let deliveries: Vec<Delivery> =
            self.given_back.drain(..).chain(self.held.drain(..)).map(|a| a.delivery).collect();
        actix::spawn(async move {
            for delivery in deliveries {
                if let Err(err) = delivery.requeue().await {
                    warn!(error = %err, "requeueing a held command failed; the broker redelivers it");
                }
            }
        });
    }
}

pub struct ShardActor {
    shard: u16,
    /// Unsettled deliveries the broker hands this shard at most.
    prefetch: u16,
    rc: SharedRoomContext,
    rooms: HashMap<RoomId, Room>,
    /// The queue consumer, cancelled on `StopConsuming`.
    consumer: Option<SpawnHandle>,
    /// Failed subscriptions in a row.
    subscribe_failures: u32,
    /// Set by `StopConsuming`: no resubscription, nothing held.
    draining: bool,
}

impl ShardActor {
    pub fn new(shard: u16, prefetch: u16, rc: SharedRoomContext) -> Self {
        Self { shard, prefetch, rc, rooms: HashMap::new(), consumer: None, subscribe_failures: 0, draining: false }
    }

    fn route(&mut self, apply: Apply, ctx: &mut Context<Self>) {
        let room_id = apply.envelope.room_id.clone();
        let room = self.rooms.entry(room_id.clone()).or_default();
        if let (Some(actor), false) = (&room.actor, room.stopping) {
            actor.do_send(apply);
            return;
        }
        let waiting = room.stopping || room.failed;
        if waiting && room.held.len() >= HELD_PER_ROOM {
            // A room that stays broken holds no more: the broker keeps the rest (and dead-letters
            // what keeps coming back past its delivery limit).
            warn!(room_id = %room_id, "room holds too many commands, one goes back to the queue");
            actix::spawn(async move {
                let _ = apply.delivery.requeue().await;
            });
            return;
        }
        room.held.push(apply);
        if !waiting {
            self.start_actor(room_id, ctx);
        }
    }

    /// A fresh actor for the room, fed what was given back, then what was held.
    fn start_actor(&mut self, room_id: RoomId, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let parent =
            Parent { passivate: me.clone().recipient(), give_back: me.clone().recipient(), stopped: me.recipient() };
        let room = self.rooms.entry(room_id.clone()).or_default();
        let actor = RoomActor::new(room_id, self.rc.clone(), parent).start();
        for apply in room.given_back.drain(..).chain(room.held.drain(..)) {
            actor.do_send(apply);
        }
        room.actor = Some(actor);
        room.stopping = false;
        room.failed = false;
    }

    fn set_consuming(&self, consuming: bool) {
        self.rc.consuming.set(self.shard, consuming);
    }

    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let bus = self.rc.bus.clone();
        let (shard, prefetch) = (self.shard, self.prefetch);
        let subscribe = async move { bus.consume_shard(shard, prefetch).await };
        ctx.wait(subscribe.into_actor(self).map(move |sub, act, ctx| match sub {
            Ok(rx) => {
                let deliveries = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|d| (d, rx)) });
                act.consumer = Some(ctx.add_stream(deliveries));
                act.subscribe_failures = 0;
                act.set_consuming(true);
                info!(shard, "consuming shard");
            }
            Err(err) => {
                error!(shard, error = %err, "cannot consume shard, trying again");
                act.resubscribe_later(ctx);
            }
        }));
    }

    fn resubscribe_later(&mut self, ctx: &mut Context<Self>) {
        self.set_consuming(false);
        if self.draining {
            return;
        }
        let delay = backoff(self.subscribe_failures);
        self.subscribe_failures = self.subscribe_failures.saturating_add(1);
        ctx.notify_later(Subscribe, delay);
    }
}

impl Actor for ShardActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.subscribe(ctx);
    }
}

impl Handler<Subscribe> for ShardActor {
    type Result = ();

    fn handle(&mut self, _msg: Subscribe, ctx: &mut Self::Context) {
        if !self.draining {
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
                actix::spawn(async move {
                    let _ = delivery.reject().await;
                });
                return;
            }
            Err(err) => {
                warn!(shard = self.shard, error = %err, "undecodable command, dead-lettered");
                actix::spawn(async move {
                    let _ = delivery.reject().await;
                });
                return;
            }
        };
        self.route(Apply { envelope, delivery }, ctx);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.consumer = None;
        if self.draining {
            info!(shard = self.shard, "shard consumer stopped");
            return;
        }
        warn!(shard = self.shard, "shard consumer ended, subscribing again");
        self.resubscribe_later(ctx);
    }
}

impl Handler<Passivate> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Passivate, _ctx: &mut Self::Context) {
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
        if self.draining {
            // Shutting down: what was held goes back to the queue for the next owner.
            room.requeue_all();
            self.rooms.remove(&msg.room_id);
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
        } else {
            self.start_actor(msg.room_id, ctx);
        }
    }
}

impl Handler<Restart> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Restart, ctx: &mut Self::Context) {
        let Some(room) = self.rooms.get_mut(&msg.0) else { return };
        if room.actor.is_some() || room.stopping {
            return;
        }
        if room.given_back.is_empty() && room.held.is_empty() {
            self.rooms.remove(&msg.0); // the next command starts an actor
            return;
        }
        self.start_actor(msg.0, ctx);
    }
}

impl Handler<StopConsuming> for ShardActor {
    type Result = ();

    fn handle(&mut self, _msg: StopConsuming, ctx: &mut Self::Context) {
        self.draining = true;
        if let Some(handle) = self.consumer.take() {
            ctx.cancel_future(handle);
        }
        // Rooms waiting out a backoff have no actor to stop: their commands go back now.
        let waiting: Vec<RoomId> =
            self.rooms.iter().filter(|(_, r)| r.actor.is_none() && !r.stopping).map(|(id, _)| id.clone()).collect();
        for room_id in waiting {
            if let Some(mut room) = self.rooms.remove(&room_id) {
                room.requeue_all();
            }
        }
    }
}
