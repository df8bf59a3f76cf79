//! The member's control loop, on a thread of its own (a stalled actor arbiter must not stall
//! lease renewal): heartbeat, renew, self-fence, reconcile, and act on the plan by telling the
//! shard actors to own, release or stop.
//!
//! Safety does not rest on this loop being on time: a replica fences itself before its lease
//! could have expired (`deadline = sent + ttl - margin`, on its own monotonic clock, measured
//! from before the request left), and the store refuses writes older than a shard's newest
//! epoch. After Redis lost its data (the boot token vanished or changed) every shard is dropped
//! and nothing is acquired for one TTL plus a margin, so leases that existed before are expired
//! whatever their holders believe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::leases::{Holder, Leases};
use super::plan::{self, Inputs, Local, Member, Rules};
use super::ClusterSettings;
use crate::actors::shard::{Fenced, Own, Release, ShardActor};
use crate::actors::{GaveUp, ShardTable};
use crate::metrics::metrics;
use crate::store::Store;

/// Asks from the rest of the process.
pub enum Control {
    /// Hand every shard over and leave; answered when done.
    Shutdown(oneshot::Sender<()>),
}

/// Per shard: what this member does with it.
#[derive(Clone, Copy)]
enum State {
    Free,
    Owned { epoch: i64, deadline: Instant },
    Releasing { epoch: i64, deadline: Instant },
}

impl State {
    fn local(self) -> Local {
        match self {
            State::Free => Local::Free,
            State::Owned { .. } => Local::Owned,
            State::Releasing { .. } => Local::Releasing,
        }
    }

    fn held(self) -> Option<(i64, Instant)> {
        match self {
            State::Free => None,
            State::Owned { epoch, deadline } | State::Releasing { epoch, deadline } => Some((epoch, deadline)),
        }
    }
}

pub struct Coordinator {
    pub settings: ClusterSettings,
    pub member: String,
    pub leases: Leases,
    pub store: Store,
    pub shard_actors: Vec<Addr<ShardActor>>,
    pub table: ShardTable,
    pub gave_up: mpsc::Receiver<GaveUp>,
    pub control: mpsc::Receiver<Control>,
    /// Set after the first reconcile (readiness).
    pub reconciled: Arc<AtomicBool>,
}

struct Run {
    c: Coordinator,
    states: Vec<State>,
    /// The highest epoch seen per shard, and the store's highest fence: floors for new epochs.
    seen: Vec<i64>,
    floor: i64,
    free_since: Vec<Option<Instant>>,
    first_seen: HashMap<String, Instant>,
    members: Vec<Member>,
    boot: Option<String>,
    hold_back_until: Option<Instant>,
    shutdown: Option<oneshot::Sender<()>>,
    shutting_since: Option<Instant>,
    released_tx: mpsc::Sender<(u16, i64)>,
    released_rx: mpsc::Receiver<(u16, i64)>,
}

const TICK: Duration = Duration::from_millis(50);
const FIRST_RECONCILE: Duration = Duration::from_millis(300);

impl Coordinator {
    /// Run the loop on a new thread until a shutdown completes.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("rooms-cluster".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    tracing::error!(error = %err, "the cluster loop cannot start");
                    return;
                }
            };
            runtime.block_on(self.run());
        })
    }

    async fn run(self) {
        let shards = usize::from(self.leases.shards());
        let (released_tx, released_rx) = mpsc::channel(shards.max(1) * 2);
        let mut run = Run {
            c: self,
            states: vec![State::Free; shards],
            seen: vec![0; shards],
            floor: 0,
            free_since: vec![None; shards],
            first_seen: HashMap::new(),
            members: Vec::new(),
            boot: None,
            hold_back_until: None,
            shutdown: None,
            shutting_since: None,
            released_tx,
            released_rx,
        };
        run.start().await;
        run.lap().await;
    }
}

fn jitter(every: Duration) -> Duration {
    // ±20 %, from the clock's low bits (no need for a random generator here).
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let factor = 0.8 + f64::from(nanos % 400) / 1000.0;
    every.mul_f64(factor)
}

impl Run {
    fn s(&self) -> &ClusterSettings {
        &self.c.settings
    }

    async fn start(&mut self) {
        match self.c.store.max_fence().await {
            Ok(fence) => self.floor = fence,
            Err(err) => warn!(error = %err, "the store's highest fence is unknown; epochs start from Redis' counters"),
        }
        match self.c.leases.free_previous(&self.c.member).await {
            Ok(0) => {}
            Ok(freed) => info!(freed, "freed the leases of this pod's previous incarnation"),
            Err(err) => warn!(error = %err, "the previous incarnation's leases were not freed; they expire"),
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        match self.c.leases.boot_token(&token).await {
            Ok(boot) => self.boot = Some(boot),
            Err(err) => warn!(error = %err, "Redis not reachable at start; trying again"),
        }
    }

    async fn lap(&mut self) {
        let s = self.s().clone();
        let mut next_heartbeat = Instant::now();
        let mut next_renew = Instant::now() + s.renew_every();
        // The first reconcile waits a moment, so members starting together mostly see each
        // other (bounded loads and stabilization sort out the rest); not a whole heartbeat,
        // which would add to the failover of a restarted pod.
        let mut next_reconcile = Instant::now() + s.heartbeat_every().min(FIRST_RECONCILE);
        loop {
            let now = Instant::now();
            self.fence_overdue(now);
            while let Ok(gave_up) = self.c.gave_up.try_recv() {
                self.gave_up(gave_up).await;
            }
            while let Ok((shard, epoch)) = self.released_rx.try_recv() {
                self.finish_release(shard, epoch).await;
            }
            while let Ok(control) = self.c.control.try_recv() {
                match control {
                    Control::Shutdown(done) => {
                        info!(shards = self.owned_count(), "leaving, handing every shard over");
                        // Leave first: the others stop counting on this member at their next
                        // reconcile and take each shard as soon as it is released.
                        if let Err(err) = self.c.leases.leave(&self.c.member).await {
                            warn!(error = %err, "leaving the membership failed; it expires");
                        }
                        self.shutdown = Some(done);
                        self.shutting_since = Some(now);
                        next_reconcile = now;
                    }
                }
            }
            if now >= next_heartbeat {
                self.heartbeat().await;
                next_heartbeat = now + s.heartbeat_every();
            }
            if now >= next_renew {
                self.renew().await;
                next_renew = now + s.renew_every();
            }
            if now >= next_reconcile {
                self.reconcile().await;
                next_reconcile = Instant::now() + jitter(s.reconcile_every());
            }
            if let Some(since) = self.shutting_since {
                let all_free = self.states.iter().all(|st| matches!(st, State::Free));
                if all_free || since.elapsed() > s.handoff_drain() + Duration::from_secs(3) {
                    if let Err(err) = self.c.leases.leave(&self.c.member).await {
                        warn!(error = %err, "leaving the membership failed; it expires");
                    }
                    if let Some(done) = self.shutdown.take() {
                        let _ = done.send(());
                    }
                    info!("left the cluster");
                    return;
                }
            }
            tokio::time::sleep(TICK).await;
        }
    }

    fn owned_count(&self) -> usize {
        self.states.iter().filter(|st| matches!(st, State::Owned { .. } | State::Releasing { .. })).count()
    }

    fn publish_owned(&self) {
        metrics().shards_owned.set(self.owned_count() as i64);
    }

    /// Stop a shard at once: its lease may be gone.
    fn lose(&mut self, shard: u16, why: &str) {
        if let Some((epoch, _)) = self.states[usize::from(shard)].held() {
            warn!(shard, epoch, why, "shard lost");
            metrics().leases_lost.inc();
            self.c.shard_actors[usize::from(shard)].do_send(Fenced);
        }
        self.states[usize::from(shard)] = State::Free;
        self.publish_owned();
    }

    fn fence_overdue(&mut self, now: Instant) {
        for shard in 0..self.states.len() as u16 {
            if let Some((_, deadline)) = self.states[usize::from(shard)].held() {
                if now >= deadline {
                    self.lose(shard, "not renewed in time (self-fenced)");
                }
            }
        }
    }

    fn stats(&self) -> String {
        let shards: HashMap<String, serde_json::Value> = self
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, st)| {
                let (epoch, _) = st.held()?;
                let rooms = self.c.table.rooms(i as u16);
                let releasing = matches!(st, State::Releasing { .. });
                Some((i.to_string(), serde_json::json!({ "epoch": epoch, "rooms": rooms, "releasing": releasing })))
            })
            .collect();
        serde_json::json!({ "shards": shards }).to_string()
    }

    async fn heartbeat(&mut self) {
        let ttl = self.s().member_ttl();
        // A member handing its shards over to leave is no longer registered (see `lap`).
        let me = if self.shutdown.is_some() { "" } else { self.c.member.as_str() };
        let beat = match self.c.leases.heartbeat(me, ttl, &self.stats()).await {
            Ok(beat) => beat,
            Err(err) => {
                warn!(error = %err, "heartbeat failed");
                return;
            }
        };
        // Redis lost its data (restart without persistence, failover to an empty replica).
        let lost_data = match &self.boot {
            Some(boot) => beat.boot != *boot,
            None => false,
        };
        if lost_data || self.boot.is_none() {
            if lost_data {
                self.quarantine().await;
            }
            let token = uuid::Uuid::new_v4().simple().to_string();
            if let Ok(boot) = self.c.leases.boot_token(&token).await {
                self.boot = Some(boot);
            }
        }
        self.take_members(&beat);
    }

    /// Read the membership only (every reconcile: a member that left or was told to drain is
    /// seen within one round, not one heartbeat).
    async fn refresh_members(&mut self) {
        match self.c.leases.heartbeat("", Duration::ZERO, "").await {
            Ok(beat) => self.take_members(&beat),
            Err(err) => debug!(error = %err, "reading the membership failed"),
        }
    }

    fn take_members(&mut self, beat: &super::leases::Heartbeat) {
        let now = Instant::now();
        let draining: std::collections::HashSet<&String> = beat.draining.iter().collect();
        self.members = beat
            .members
            .iter()
            .map(|(id, _expiry)| Member {
                id: id.clone(),
                draining: draining.contains(id),
                first_seen: *self.first_seen.entry(id.clone()).or_insert(now),
            })
            .collect();
        let live: std::collections::HashSet<&str> = beat.members.iter().map(|(id, _)| id.as_str()).collect();
        self.first_seen.retain(|id, _| live.contains(id.as_str()));
        metrics().cluster_members.set(self.members.len() as i64);
    }

    /// Redis lost the leases: stop every shard now, acquire nothing for a TTL and a margin,
    /// and take the floor for new epochs from the store again.
    async fn quarantine(&mut self) {
        warn!("Redis lost its data: dropping every shard for one lease TTL");
        for shard in 0..self.states.len() as u16 {
            self.lose(shard, "Redis lost its data");
        }
        self.hold_back_until = Some(Instant::now() + self.s().lease_ttl() + Duration::from_secs(2));
        if let Ok(fence) = self.c.store.max_fence().await {
            self.floor = self.floor.max(fence);
        }
    }

    async fn renew(&mut self) {
        let held: Vec<(u16, Holder)> = (0..self.states.len() as u16)
            .filter_map(|s| {
                let (epoch, _) = self.states[usize::from(s)].held()?;
                Some((s, Holder { member: self.c.member.clone(), epoch }))
            })
            .collect();
        if held.is_empty() {
            return;
        }
        let sent = Instant::now();
        let ttl = self.s().lease_ttl();
        match self.c.leases.renew(&held, ttl).await {
            Ok(renewed) => {
                metrics().lease_renew_seconds.observe(sent.elapsed().as_secs_f64());
                let deadline = sent + ttl.saturating_sub(self.s().fence_margin());
                for ((shard, holder), ok) in held.into_iter().zip(renewed) {
                    let state = &mut self.states[usize::from(shard)];
                    match state {
                        State::Owned { epoch, deadline: d } | State::Releasing { epoch, deadline: d }
                            if *epoch == holder.epoch && ok =>
                        {
                            *d = deadline;
                        }
                        _ if !ok => self.lose(shard, "the lease is no longer this member's"),
                        _ => {}
                    }
                }
            }
            Err(err) => warn!(error = %err, shards = held.len(), "lease renewal failed"),
        }
    }

    async fn reconcile(&mut self) {
        if self.boot.is_some() {
            self.refresh_members().await;
        }
        let holders = match self.c.leases.holders().await {
            Ok(holders) => holders,
            Err(err) => {
                warn!(error = %err, "reading the leases failed");
                return;
            }
        };
        let now = Instant::now();
        for (i, holder) in holders.iter().enumerate() {
            match holder {
                Some(h) => {
                    self.seen[i] = self.seen[i].max(h.epoch);
                    self.free_since[i] = None;
                }
                None => {
                    self.free_since[i].get_or_insert(now);
                }
            }
        }
        if self.hold_back_until.is_some_and(|t| now >= t) {
            self.hold_back_until = None;
        }
        let leases: Vec<Option<String>> = holders.iter().map(|h| h.as_ref().map(|h| h.member.clone())).collect();
        let local: Vec<Local> = self.states.iter().map(|st| st.local()).collect();
        let rules = Rules {
            takeover_after: self.s().takeover_after(),
            stabilize: self.s().stabilize(),
            max_moves: self.s().max_moves,
        };
        let planned = plan::reconcile(
            &Inputs {
                me: &self.c.member,
                now,
                members: &self.members,
                leases: &leases,
                local: &local,
                free_since: &self.free_since,
                hold_back: self.hold_back_until.is_some() || self.boot.is_none() || self.members.is_empty(),
                shutting_down: self.shutdown.is_some(),
            },
            &rules,
        );
        metrics().shards_unowned.set(planned.unowned as i64);
        for shard in planned.lost {
            self.lose(shard, "the lease names another member, or none");
        }
        for shard in planned.release {
            self.start_release(shard);
        }
        for shard in planned.acquire {
            self.acquire(shard).await;
        }
        if self.boot.is_some() && !self.members.is_empty() {
            self.c.reconciled.store(true, Ordering::Relaxed);
        }
        self.publish_owned();
    }

    async fn acquire(&mut self, shard: u16) {
        let i = usize::from(shard);
        let floor = self.floor.max(self.seen[i]);
        let sent = Instant::now();
        let ttl = self.s().lease_ttl();
        match self.c.leases.acquire(shard, &self.c.member, ttl, floor).await {
            Ok(Some(epoch)) => {
                self.seen[i] = epoch;
                self.states[i] = State::Owned { epoch, deadline: sent + ttl.saturating_sub(self.s().fence_margin()) };
                self.free_since[i] = None;
                metrics().shard_acquisitions.inc();
                debug!(shard, epoch, "lease acquired");
                self.c.shard_actors[i].do_send(Own { epoch });
            }
            Ok(None) => {}
            Err(err) => warn!(shard, error = %err, "acquiring a lease failed"),
        }
    }

    fn start_release(&mut self, shard: u16) {
        let i = usize::from(shard);
        let State::Owned { epoch, deadline } = self.states[i] else { return };
        self.states[i] = State::Releasing { epoch, deadline };
        let actor = self.c.shard_actors[i].clone();
        let drain = self.s().handoff_drain();
        let done = self.released_tx.clone();
        tokio::spawn(async move {
            if let Err(err) = tokio::time::timeout(drain + Duration::from_secs(1), actor.send(Release { drain })).await
            {
                warn!(shard, error = %err, "the shard did not answer its release in time");
            }
            let _ = done.send((shard, epoch)).await;
        });
    }

    async fn finish_release(&mut self, shard: u16, epoch: i64) {
        let i = usize::from(shard);
        let State::Releasing { epoch: current, .. } = self.states[i] else { return };
        if current != epoch {
            return;
        }
        let holder = Holder { member: self.c.member.clone(), epoch };
        match self.c.leases.release(shard, &holder).await {
            Ok(true) => debug!(shard, epoch, "lease released"),
            Ok(false) => debug!(shard, epoch, "the lease had gone already"),
            Err(err) => warn!(shard, error = %err, "releasing a lease failed; it expires"),
        }
        self.states[i] = State::Free;
        self.publish_owned();
    }

    /// A shard stopped on its own (fenced out): release its lease, raise the floor.
    async fn gave_up(&mut self, gave_up: GaveUp) {
        let i = usize::from(gave_up.shard);
        let Some((epoch, _)) = self.states[i].held() else { return };
        if epoch != gave_up.epoch {
            return;
        }
        metrics().leases_lost.inc();
        let holder = Holder { member: self.c.member.clone(), epoch };
        if let Err(err) = self.c.leases.release(gave_up.shard, &holder).await {
            warn!(shard = gave_up.shard, error = %err, "releasing a fenced-out shard failed; it expires");
        }
        self.states[i] = State::Free;
        if let Ok(fence) = self.c.store.shard_fence(gave_up.shard).await {
            self.seen[i] = self.seen[i].max(fence);
        }
        self.publish_owned();
    }
}
