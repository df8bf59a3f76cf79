//! What a call's room cannot see for itself: a ring that outlived the room's actor, and a
//! participant's device that went away without hanging up.
//!
//! A room's actor times its ringing call out itself, and a session that closes hangs up for its
//! device. When the actor is gone before the deadline (its node crashed, its shard moved, it was
//! passivated) and no command wakes the room, the call would ring on in the store; when a node
//! dies, its sessions cannot hang up, and the call would keep their devices. Every node sweeps
//! the stored calls now and then:
//!
//! - a ring past its deadline gets the room's own timeout command, with the actor timer's
//!   command id;
//! - a participant's device that is gone gets `CallDeviceGone`: a device of this node whose
//!   session is not open here, or of another node that is not a live cluster member (node ids
//!   carry a boot id, so a restarted node is another node; the standalone is the only node). A
//!   device must be seen gone by two sweeps in a row, so a node that just started (not yet in
//!   the membership) or a Redis hiccup ends nobody's call.
//!
//! Both commands have ids derived from the call (and the device), so however many nodes send
//! them they are applied once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chat_protocol::bus::RoomCommand;
use chat_protocol::call::{CallId, DeviceId};
use chat_protocol::{now_ms, UserId};
use tracing::{debug, warn};

use crate::calls::{device_gone_command_id, ring_timeout_command_id};
use crate::cluster::{member_id, Leases};
use crate::dispatch::Dispatcher;
use crate::hub::Hub;
use crate::store::Store;

/// A ring past its deadline by this much is the sweep's (before that, its actor's timer's).
const GRACE_MS: i64 = 1_000;
/// Devices suspected gone the sweep remembers at most (the next sweep confirms or clears them).
const MAX_SUSPECTS: usize = 10_000;

/// Which devices are alive: this node's open sessions, and the live members of the cluster.
pub struct Liveness {
    pub hub: Arc<Hub>,
    /// The cluster's membership, read each sweep; `None` in the standalone (the only node).
    pub leases: Option<Leases>,
}

/// What one sweep knows of the other nodes.
enum Members {
    /// The standalone: no other node is alive.
    Alone,
    Live(HashSet<String>),
    /// The membership could not be read: judge no other node's device.
    Unknown,
}

impl Liveness {
    async fn members(&self) -> Members {
        let Some(leases) = &self.leases else { return Members::Alone };
        match leases.heartbeat("", Duration::ZERO, "").await {
            Ok(beat) => Members::Live(beat.members.into_iter().map(|(id, _)| id).collect()),
            Err(err) => {
                warn!(error = %err, "call sweep: the cluster's members are not readable");
                Members::Unknown
            }
        }
    }

    fn gone(&self, user: &UserId, device: &DeviceId, members: &Members) -> bool {
        let Some((node, session)) = device.parts() else { return false };
        if node == self.hub.node_id() {
            return !self.hub.has_session(user, session);
        }
        match members {
            Members::Alone => true,
            Members::Live(live) => !live.contains(&member_id(node)),
            Members::Unknown => false,
        }
    }
}

/// Sweep every `every`, until the process ends.
pub async fn run(store: Store, dispatcher: Dispatcher, liveness: Liveness, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut suspects: HashSet<(CallId, DeviceId)> = HashSet::new();
    loop {
        tick.tick().await;
        let calls = match store.calls().await {
            Ok(calls) => calls,
            Err(err) => {
                warn!(error = %err, "call sweep: the calls are not readable");
                continue;
            }
        };
        let members = liveness.members().await;
        let now = now_ms();
        let mut seen_gone = HashSet::new();
        for (room_id, tenant, call) in calls {
            let mut commands = Vec::new();
            if !call.ringing.is_empty() && call.ring_deadline_ms + GRACE_MS <= now {
                let command = RoomCommand::CallRingTimeout { call_id: call.id.clone() };
                commands.push((ring_timeout_command_id(&call.id), command));
            }
            for p in call.participants.iter().filter(|p| liveness.gone(&p.user, &p.device, &members)) {
                let key = (call.id.clone(), p.device.clone());
                if suspects.contains(&key) {
                    let command = RoomCommand::CallDeviceGone { call_id: call.id.clone(), device: p.device.clone() };
                    commands.push((device_gone_command_id(&call.id, &p.device), command));
                } else if seen_gone.len() < MAX_SUSPECTS {
                    seen_gone.insert(key);
                }
            }
            for (id, command) in commands {
                let kind = command.name();
                match dispatcher.execute(&room_id, &UserId::system(), &tenant, Some(id), command).await {
                    Ok(_) => debug!(room_id = %room_id, kind, "call sweep: applied"),
                    Err(err) => warn!(room_id = %room_id, kind, error = %err, "call sweep: not applied"),
                }
            }
        }
        suspects = seen_gone;
    }
}

/// How often to sweep for a ring timeout of `ring_timeout`: half of it, between 1 and 10 s.
pub fn interval(ring_timeout: Duration) -> Duration {
    (ring_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(10))
}
