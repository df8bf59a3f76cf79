//! `ShardActor`: consumes one shard's command queue and routes each command to its room's
//! actor, starting it on demand. It grants passivation Akka-style: while a room actor stops
//! (idle, or unable to go on), commands for it are buffered and handed to a fresh actor once
//! the old one has stopped, so a room never has two live actors on this node and no command
//! is left in a dead actor's mailbox.

use std::collections::HashMap;

use actix::prelude::*;
use chat_bus::Delivery;
use chat_protocol::bus::CommandEnvelope;
use chat_protocol::{shard_of, RoomId};
use futures_util::stream;
use tracing::{error, info, warn};

use super::context::SharedRoomContext;
use super::room::{Apply, Parent, Passivate, RoomActor, RoomStopped, StopRoom};

/// Stop consuming (graceful shutdown); unsettled deliveries go back to the queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopConsuming;

enum Entry {
    Running(Addr<RoomActor>),
    /// The actor is stopping; commands that arrive meanwhile wait here, in order.
    Stopping(Vec<Apply>),
}

pub struct ShardActor {
    shard: u16,
    /// Unsettled deliveries the broker hands this shard at most.
    prefetch: u16,
    rc: SharedRoomContext,
    /// The rooms of this shard that have an actor on this node.
    rooms: HashMap<RoomId, Entry>,
    /// The queue consumer, cancelled on `StopConsuming`.
    consumer: Option<SpawnHandle>,
}

impl ShardActor {
    pub fn new(shard: u16, prefetch: u16, rc: SharedRoomContext) -> Self {
        Self { shard, prefetch, rc, rooms: HashMap::new(), consumer: None }
    }

    fn route(&mut self, apply: Apply, ctx: &mut Context<Self>) {
        let room_id = apply.envelope.room_id.clone();
        match self.rooms.get_mut(&room_id) {
            Some(Entry::Running(addr)) => addr.do_send(apply),
            Some(Entry::Stopping(buffer)) => buffer.push(apply),
            None => {
                let me = ctx.address();
                let parent = Parent { passivate: me.clone().recipient(), stopped: me.recipient() };
                let addr = RoomActor::new(room_id.clone(), self.rc.clone(), parent).start();
                addr.do_send(apply);
                self.rooms.insert(room_id, Entry::Running(addr));
            }
        }
    }
}

impl Actor for ShardActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let bus = self.rc.bus.clone();
        let shard = self.shard;
        let prefetch = self.prefetch;
        let subscribe = async move { bus.consume_shard(shard, prefetch).await };
        ctx.wait(subscribe.into_actor(self).map(move |sub, act, ctx| match sub {
            Ok(rx) => {
                let deliveries = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|d| (d, rx)) });
                act.consumer = Some(ctx.add_stream(deliveries));
                info!(shard, "consuming shard");
            }
            Err(err) => {
                error!(shard, error = %err, "cannot consume shard");
                ctx.stop();
            }
        }));
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

    fn finished(&mut self, _ctx: &mut Self::Context) {
        info!(shard = self.shard, "shard consumer ended");
    }
}

impl Handler<Passivate> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Passivate, _ctx: &mut Self::Context) {
        if let Some(Entry::Running(addr)) = self.rooms.get(&msg.room_id) {
            addr.do_send(StopRoom);
            self.rooms.insert(msg.room_id, Entry::Stopping(Vec::new()));
        }
    }
}

impl Handler<RoomStopped> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: RoomStopped, ctx: &mut Self::Context) {
        // Whether it stopped on request or by itself, buffered commands get a fresh actor.
        let buffered = match self.rooms.remove(&msg.room_id) {
            Some(Entry::Stopping(buffer)) => buffer,
            _ => Vec::new(),
        };
        for apply in buffered {
            self.route(apply, ctx);
        }
    }
}

impl Handler<StopConsuming> for ShardActor {
    type Result = ();

    fn handle(&mut self, _msg: StopConsuming, ctx: &mut Self::Context) {
        if let Some(handle) = self.consumer.take() {
            ctx.cancel_future(handle);
        }
    }
}
