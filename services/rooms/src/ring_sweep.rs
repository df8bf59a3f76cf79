//! Rings that outlived their room's actor. A room's actor times its ringing call out itself;
//! when that actor is gone before the deadline (its node crashed, its shard moved, it was
//! passivated) and no command wakes the room, the call would ring on in the store. Every node
//! sweeps the stored calls now and then and sends each one past its deadline the room's own
//! timeout command, with the same command id as the actor's timer, so however many nodes send
//! it, it is applied once.

use std::time::Duration;

use chat_protocol::bus::RoomCommand;
use chat_protocol::{now_ms, UserId};
use tracing::{debug, warn};

use crate::calls::ring_timeout_command_id;
use crate::dispatch::Dispatcher;
use crate::store::Store;

/// A ring past its deadline by this much is the sweep's (before that, its actor's timer's).
const GRACE_MS: i64 = 1_000;

/// Sweep every `every`, until the process ends.
pub async fn run(store: Store, dispatcher: Dispatcher, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let calls = match store.calls().await {
            Ok(calls) => calls,
            Err(err) => {
                warn!(error = %err, "ring sweep: the calls are not readable");
                continue;
            }
        };
        let now = now_ms();
        let due = calls
            .into_iter()
            .filter(|(_, _, call)| !call.ringing.is_empty() && call.ring_deadline_ms + GRACE_MS <= now);
        for (room_id, tenant, call) in due {
            let id = ring_timeout_command_id(&call.id);
            let command = RoomCommand::CallRingTimeout { call_id: call.id };
            match dispatcher.execute(&room_id, &UserId::system(), &tenant, Some(id), command).await {
                Ok(_) => debug!(room_id = %room_id, "ring sweep: a call's ringing timed out"),
                Err(err) => warn!(room_id = %room_id, error = %err, "ring sweep: the timeout was not applied"),
            }
        }
    }
}

/// How often to sweep for a ring timeout of `ring_timeout`: half of it, between 1 and 10 s.
pub fn interval(ring_timeout: Duration) -> Duration {
    (ring_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(10))
}
