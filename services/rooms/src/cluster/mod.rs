//! Scaling room actors over replicas: membership, shard leases with fencing epochs, and the
//! loop that moves shards between members (see `docs/scaling.md`).
//!
//! - `assign`: which member should own which shard (rendezvous hashing, bounded loads);
//! - `plan`: one reconcile round, decided without I/O;
//! - `leases`: the Redis side (membership, leases, the boot token), each change one script;
//! - `coordinator`: the loop on its own thread that acts on the plan through the shard actors;
//! - `view`: the ops view (who owns what) for the admin endpoint and `rooms cluster`.
//!
//! Layers point one way: `coordinator` uses `plan` (which uses `assign`) and `leases`, and
//! tells `actors::shard` what to do; nothing in `actors` knows this module.

mod assign;
mod coordinator;
mod leases;
mod plan;
pub mod view;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use coordinator::{Control, Coordinator};

use crate::actors::shard::ShardActor;
use crate::actors::{GaveUp, ShardTable};
use crate::store::Store;
pub use leases::{LeaseError, Leases};

/// `[cluster]` settings. The defaults are the production ones (`../shared/design` numbers);
/// tests shorten them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// A lease lives this long unless renewed.
    pub lease_ttl_ms: u64,
    pub renew_every_ms: u64,
    /// A member stops a shard this long before its lease could expire.
    pub fence_margin_ms: u64,
    pub heartbeat_every_ms: u64,
    /// A member that has not renewed its registration this long is gone.
    pub member_ttl_ms: u64,
    pub reconcile_every_ms: u64,
    /// A shard free this long is taken by anyone, whoever it was meant for.
    pub takeover_after_ms: u64,
    /// A new member gets shards handed over once it has been live this long.
    pub stabilize_ms: u64,
    /// Shards a member hands over per reconcile round at most.
    pub max_moves: usize,
    /// How long a handed-over shard's room actors get to finish what they hold.
    pub handoff_drain_ms: u64,
    /// Redis calls of the loop time out after this long.
    pub redis_timeout_ms: u64,
    /// Bearer token of the ops endpoint `/internal/v1/cluster`; empty turns it off.
    pub admin_token: SecretString,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            lease_ttl_ms: 10_000,
            renew_every_ms: 2_000,
            fence_margin_ms: 1_500,
            heartbeat_every_ms: 2_000,
            member_ttl_ms: 6_000,
            reconcile_every_ms: 250,
            takeover_after_ms: 3_000,
            stabilize_ms: 5_000,
            max_moves: 32,
            handoff_drain_ms: 5_000,
            redis_timeout_ms: 1_000,
            admin_token: SecretString::from(String::new()),
        }
    }
}

impl ClusterSettings {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }
    pub fn renew_every(&self) -> Duration {
        Duration::from_millis(self.renew_every_ms.max(10))
    }
    pub fn fence_margin(&self) -> Duration {
        Duration::from_millis(self.fence_margin_ms)
    }
    pub fn heartbeat_every(&self) -> Duration {
        Duration::from_millis(self.heartbeat_every_ms.max(10))
    }
    pub fn member_ttl(&self) -> Duration {
        Duration::from_millis(self.member_ttl_ms)
    }
    pub fn reconcile_every(&self) -> Duration {
        Duration::from_millis(self.reconcile_every_ms.max(10))
    }
    pub fn takeover_after(&self) -> Duration {
        Duration::from_millis(self.takeover_after_ms)
    }
    pub fn stabilize(&self) -> Duration {
        Duration::from_millis(self.stabilize_ms)
    }
    pub fn handoff_drain(&self) -> Duration {
        Duration::from_millis(self.handoff_drain_ms)
    }
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(10))
    }

    /// Settings that cannot work together are refused at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_every_ms + self.fence_margin_ms >= self.lease_ttl_ms {
            return Err("cluster.renew_every_ms + fence_margin_ms must be below lease_ttl_ms".into());
        }
        if self.heartbeat_every_ms >= self.member_ttl_ms {
            return Err("cluster.heartbeat_every_ms must be below member_ttl_ms".into());
        }
        if self.max_moves == 0 {
            return Err("cluster.max_moves must be at least 1".into());
        }
        Ok(())
    }
}

/// `<pod>/<boot id>` from a node id `<pod>-<boot id>` (see `chat_bus::node_id`).
pub fn member_id(node_id: &str) -> String {
    match node_id.rsplit_once('-') {
        Some((pod, boot)) => format!("{pod}/{boot}"),
        None => format!("{node_id}/0"),
    }
}

/// This replica's membership: the loop's thread and how to reach it.
pub struct Cluster {
    member: String,
    control: mpsc::Sender<Control>,
    reconciled: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What starting a member needs.
pub struct Start {
    pub settings: ClusterSettings,
    pub node_id: String,
    pub leases: Leases,
    pub store: Store,
    pub shard_actors: Vec<Addr<ShardActor>>,
    pub table: ShardTable,
    pub gave_up: mpsc::Receiver<GaveUp>,
}

impl Cluster {
    pub fn start(start: Start) -> std::io::Result<Self> {
        let member = member_id(&start.node_id);
        let (control_tx, control_rx) = mpsc::channel(4);
        let reconciled = Arc::new(AtomicBool::new(false));
        let coordinator = Coordinator {
            settings: start.settings,
            member: member.clone(),
            leases: start.leases,
            store: start.store,
            shard_actors: start.shard_actors,
            table: start.table,
            gave_up: start.gave_up,
            control: control_rx,
            reconciled: reconciled.clone(),
        };
        let thread = coordinator.spawn()?;
        Ok(Self { member, control: control_tx, reconciled, thread: std::sync::Mutex::new(Some(thread)) })
    }

    pub fn member(&self) -> &str {
        &self.member
    }

    /// Set once the first reconcile is done (it owns what it should, or knows it owns
    /// nothing): the readiness check reads it.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.reconciled.clone()
    }

    /// Hand every shard over gracefully and leave the membership; returns when done (bounded
    /// by the handoff drain plus a few seconds).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Shutdown(tx)).await.is_err() {
            return;
        }
        if rx.await.is_err() {
            warn!("the cluster loop ended before handing its shards over");
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = actix_web::rt::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
