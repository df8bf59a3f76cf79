//! The harness of the scaling scenarios: several `rooms` replicas of one cluster
//! ([`ReplicaSet`]), a Redis and a RabbitMQ of the test's own that it can stop and start again
//! ([`PrivateRedis`], [`PrivateRabbit`]), and a [`Verifier`] that drives steady traffic through
//! whichever replicas are alive and tells, once stopped, what was lost, applied twice or
//! delivered out of order, and how long rooms went without an acknowledgement after a fault.
//!
//! Replicas share the test's `name` (AMQP prefix and vhost, Redis prefix, database schema) and
//! differ by node id (`<name>-r<i>`). Every wait here has a deadline and none blocks the test's
//! runtime for long: traffic goes on while replicas and backends are stopped and started.
//! Children (replicas, servers) are killed when dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::{token, unique, Got, Rooms, RoomsOptions, Vhost, Ws};

/// The tenant of every user of the verifier's traffic.
pub const TENANT: &str = "acme";

/// The bearer token of the replicas' ops endpoint (`CHAT__CLUSTER__ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "e2e-cluster-admin-token-0123456789abcdef";

/// The scaling scenarios each start several processes on a small machine: they run one at a
/// time (tests of one binary run on threads of their own, each with its runtime). Hold the
/// guard for the whole test; a test that fails releases it as it unwinds.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// `SCALING_FULL=1`: production timings, 256 shards, longer traffic.
pub fn full() -> bool {
    std::env::var("SCALING_FULL").is_ok_and(|v| v == "1")
}

/// A free TCP port on 127.0.0.1 (bound and released: a small race, acceptable for tests).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().expect("local addr").port()
}

/// A new empty directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Wait (without blocking the runtime) for `child` to exit, `limit` at most.
async fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `kill -<sig> <target>` (a pid, or `-<pgid>` for a process group).
fn send_signal(sig: &str, target: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The cluster settings of the replicas (`CHAT__CLUSTER__*`).
#[derive(Clone, Debug)]
pub struct Timings {
    pub lease_ttl_ms: u64,
    pub renew_every_ms: u64,
    pub fence_margin_ms: u64,
    pub heartbeat_every_ms: u64,
    pub member_ttl_ms: u64,
    pub reconcile_every_ms: u64,
    pub takeover_after_ms: u64,
    pub stabilize_ms: u64,
    pub max_moves: u64,
    pub handoff_drain_ms: u64,
}

impl Timings {
    /// The engine's defaults (what production runs with).
    pub fn production() -> Self {
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
        }
    }

    /// Shorter timings that keep each scenario well under a minute.
    pub fn short() -> Self {
        Self {
            lease_ttl_ms: 4_000,
            renew_every_ms: 800,
            fence_margin_ms: 600,
            heartbeat_every_ms: 500,
            member_ttl_ms: 2_000,
            reconcile_every_ms: 250,
            takeover_after_ms: 1_000,
            stabilize_ms: 1_000,
            max_moves: 32,
            handoff_drain_ms: 2_000,
        }
    }

    /// `production()` under `SCALING_FULL=1`, else `short()`.
    pub fn for_run() -> Self {
        if full() {
            Self::production()
        } else {
            Self::short()
        }
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// The environment of a replica with these timings and the ops endpoint on ([`ADMIN_TOKEN`]).
    pub fn env(&self) -> Vec<(String, String)> {
        let v = |k: &str, n: u64| (format!("CHAT__CLUSTER__{k}"), n.to_string());
        vec![
            v("LEASE_TTL_MS", self.lease_ttl_ms),
            v("RENEW_EVERY_MS", self.renew_every_ms),
            v("FENCE_MARGIN_MS", self.fence_margin_ms),
            v("HEARTBEAT_EVERY_MS", self.heartbeat_every_ms),
            v("MEMBER_TTL_MS", self.member_ttl_ms),
            v("RECONCILE_EVERY_MS", self.reconcile_every_ms),
            v("TAKEOVER_AFTER_MS", self.takeover_after_ms),
            v("STABILIZE_MS", self.stabilize_ms),
            v("MAX_MOVES", self.max_moves),
            v("HANDOFF_DRAIN_MS", self.handoff_drain_ms),
            ("CHAT__CLUSTER__ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
        ]
    }
}

/// The ports of the replicas that take traffic now (`None`: killed, terminated or stopped).
/// Shared by a [`ReplicaSet`] (which updates it) and the [`Verifier`] (which follows it), as a
/// load balancer's endpoint list.
#[derive(Clone, Default)]
pub struct Endpoints(Arc<RwLock<Vec<Option<u16>>>>);

impl Endpoints {
    fn set(&self, i: usize, port: Option<u16>) {
        let mut ports = self.0.write().unwrap_or_else(|p| p.into_inner());
        if ports.len() <= i {
            ports.resize(i + 1, None);
        }
        ports[i] = port;
    }

    /// The live ports, in replica order.
    pub fn live(&self) -> Vec<u16> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).iter().flatten().copied().collect()
    }

    /// The `k`-th live port (round robin), if any replica is live.
    pub fn pick(&self, k: usize) -> Option<u16> {
        let live = self.live();
        (!live.is_empty()).then(|| live[k % live.len()])
    }
}

/// One replica's lifecycle as the set sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Running,
    Stopped,
    Gone,
}

/// N `rooms` processes of one cluster: the same `name` (prefix, schema, vhost), node ids
/// `<name>-r<i>`. Replica indices are stable: a terminated or killed replica keeps its index
/// (and node id) and `restart(i)` brings it back.
pub struct ReplicaSet {
    pub name: String,
    pub shards: u16,
    template: RoomsOptions,
    replicas: Vec<Rooms>,
    life: Vec<Life>,
    endpoints: Endpoints,
}

/// Options of the replicas of a set: HS256 tokens ([`crate::SECRET`]), no per-user quotas (the
/// verifier's senders post faster than a user may), `shards` shards. Add the cluster timings
/// and backend overrides with `.env(..)`.
pub fn replica_options(tag: &str, shards: u16) -> RoomsOptions {
    let mut opts =
        RoomsOptions::new(tag).env("CHAT__QUOTA__POSTS_PER_MINUTE", "0").env("CHAT__QUOTA__ROOMS_PER_MINUTE", "0");
    opts.shards = shards;
    opts
}

impl ReplicaSet {
    /// Start `n` replicas one after the other (each ready before the next starts).
    pub async fn start(template: RoomsOptions, n: usize) -> ReplicaSet {
        let mut template = template;
        if template.vhost.is_none() {
            template.vhost = Some(Vhost::create(&template.name));
        }
        let mut set = ReplicaSet {
            name: template.name.clone(),
            shards: template.shards,
            template,
            replicas: Vec::new(),
            life: Vec::new(),
            endpoints: Endpoints::default(),
        };
        for _ in 0..n {
            set.add().await;
        }
        set
    }

    /// The node id of replica `i`.
    pub fn node(&self, i: usize) -> String {
        format!("{}-r{i}", self.name)
    }

    /// Scale out: one more replica; its index.
    pub async fn add(&mut self) -> usize {
        let i = self.replicas.len();
        let mut opts = self.template.clone();
        opts.node = Some(self.node(i));
        let rooms = Rooms::start(opts).await;
        self.endpoints.set(i, Some(rooms.port));
        self.replicas.push(rooms);
        self.life.push(Life::Running);
        i
    }

    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Replicas that run and are not stopped.
    pub fn live(&self) -> Vec<usize> {
        (0..self.replicas.len()).filter(|i| self.life[*i] == Life::Running).collect()
    }

    pub fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    pub fn replica(&self, i: usize) -> &Rooms {
        &self.replicas[i]
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.replicas[i].pid()
    }

    pub fn base(&self, i: usize) -> String {
        self.replicas[i].base()
    }

    pub fn ws_url(&self, i: usize) -> String {
        self.replicas[i].ws_url()
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.replicas[i].log_path()
    }

    /// The base URL of some live replica.
    pub fn any_live_base(&self) -> Option<String> {
        self.live().first().map(|i| self.base(*i))
    }

    /// SIGTERM replica `i` and wait for its exit (`secs` at most; `None`: it did not exit, it
    /// was killed then). It leaves the endpoints first, as a pod that starts terminating.
    pub async fn terminate(&mut self, i: usize, secs: u64) -> Option<std::process::ExitStatus> {
        self.endpoints.set(i, None);
        if self.life[i] == Life::Stopped {
            self.replicas[i].signal("CONT");
        }
        let status = self.replicas[i].terminate_async(secs).await;
        if status.is_none() {
            self.replicas[i].kill();
        }
        self.life[i] = Life::Gone;
        status
    }

    /// SIGKILL replica `i`.
    pub fn kill(&mut self, i: usize) {
        self.endpoints.set(i, None);
        self.replicas[i].kill();
        self.life[i] = Life::Gone;
    }

    /// SIGSTOP replica `i` (it keeps its sockets and leases, answers nothing).
    pub fn stop(&mut self, i: usize) {
        self.endpoints.set(i, None);
        assert!(self.replicas[i].signal("STOP"), "SIGSTOP to replica {i}");
        self.life[i] = Life::Stopped;
    }

    /// SIGCONT replica `i`.
    pub fn cont(&mut self, i: usize) {
        assert!(self.replicas[i].signal("CONT"), "SIGCONT to replica {i}");
        self.life[i] = Life::Running;
        self.endpoints.set(i, Some(self.replicas[i].port));
    }

    /// A new process for replica `i` with the same node id (a running one is killed first).
    pub async fn restart(&mut self, i: usize) {
        self.endpoints.set(i, None);
        if self.life[i] == Life::Stopped {
            self.replicas[i].signal("CONT");
        }
        self.replicas[i].restart().await;
        self.life[i] = Life::Running;
        self.endpoints.set(i, Some(self.replicas[i].port));
    }

    /// The text of replica `i`'s `/metrics` (`None` when it does not answer within 3 s).
    pub async fn metrics_text(&self, i: usize) -> Option<String> {
        if self.life[i] != Life::Running {
            return None;
        }
        let client = awc::Client::builder().timeout(Duration::from_secs(3)).finish();
        let mut res = client.get(format!("{}/metrics", self.base(i))).send().await.ok()?;
        let body = res.body().limit(16 * 1024 * 1024).await.ok()?;
        Some(String::from_utf8_lossy(&body).into_owned())
    }

    /// A metric of replica `i`: the sum of its samples (every label set) named exactly `name`
    /// (`rooms_handoff_seconds_sum` for a histogram's sum). `None` when the replica does not
    /// answer or has no such metric.
    pub async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        metric_sum(&self.metrics_text(i).await?, name)
    }

    /// `rooms_shards_owned` of every live replica (index, value; `None`: no answer).
    pub async fn shards_owned(&self) -> Vec<(usize, Option<f64>)> {
        let mut owned = Vec::new();
        for i in self.live() {
            owned.push((i, self.metric(i, "rooms_shards_owned").await));
        }
        owned
    }

    /// `GET /internal/v1/cluster` of replica `i` with [`ADMIN_TOKEN`].
    pub async fn cluster_view(&self, i: usize) -> Option<Value> {
        if self.life[i] != Life::Running {
            return None;
        }
        let client = awc::Client::builder().timeout(Duration::from_secs(3)).finish();
        let mut res = client
            .get(format!("{}/internal/v1/cluster", self.base(i)))
            .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        serde_json::from_slice(&res.body().limit(16 * 1024 * 1024).await.ok()?).ok()
    }

    /// The owner (node id, without the boot id) of each shard, as some live replica's ops
    /// endpoint tells it.
    pub async fn shard_owners(&self) -> Option<BTreeMap<u16, Option<String>>> {
        for i in self.live() {
            let Some(view) = self.cluster_view(i).await else { continue };
            let shards = view["shards"].as_array()?;
            return Some(
                shards
                    .iter()
                    .filter_map(|s| {
                        let shard = u16::try_from(s["shard"].as_u64()?).ok()?;
                        let owner = s["owner"].as_str().map(|m| m.split('/').next().unwrap_or(m).to_owned());
                        Some((shard, owner))
                    })
                    .collect(),
            );
        }
        None
    }

    /// The shards replica `i` owns according to the ops endpoint.
    pub async fn owned_by(&self, i: usize) -> Option<BTreeSet<u16>> {
        let node = self.node(i);
        let owners = self.shard_owners().await?;
        Some(owners.into_iter().filter(|(_, o)| o.as_deref() == Some(node.as_str())).map(|(s, _)| s).collect())
    }

    /// Drain replica `i` through the ops endpoint of replica `via`
    /// (`POST /internal/v1/cluster/members/{pod}/drain`); the HTTP status (0: no answer).
    pub async fn drain(&self, via: usize, i: usize) -> u16 {
        let client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
        let url = format!("{}/internal/v1/cluster/members/{}/drain", self.base(via), self.node(i));
        match client.post(url).insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}"))).send().await {
            Ok(res) => res.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Wait until the live replicas share the shards evenly: every shard owned once (the
    /// owned counts add up to the shard count) and each replica within `shards / live ± slack`,
    /// for a whole second. The seconds from `since` (e.g. the fault) until that second began,
    /// or why not within `limit` of `since` (with the last counts seen).
    pub async fn wait_converged(&self, slack: f64, since: Instant, limit: Duration) -> Result<f64, String> {
        let started = since;
        let mut balanced_since: Option<Instant> = None;
        loop {
            let owned = self.shards_owned().await;
            let live = owned.len();
            let ok = live > 0 && {
                let each = f64::from(self.shards) / live as f64;
                let values: Vec<f64> = owned.iter().filter_map(|(_, v)| *v).collect();
                values.len() == live
                    && (values.iter().sum::<f64>() - f64::from(self.shards)).abs() < 0.5
                    && values.iter().all(|v| (v - each).abs() <= slack)
            };
            match (ok, balanced_since) {
                (true, None) => balanced_since = Some(Instant::now()),
                (true, Some(since)) if since.elapsed() >= Duration::from_secs(1) => {
                    return Ok(since.duration_since(started).as_secs_f64());
                }
                (false, _) => balanced_since = None,
                _ => {}
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "the {} shards were not shared evenly (± {slack}) by the live replicas within {:?}; \
                     rooms_shards_owned (replica, value): {owned:?}",
                    self.shards, limit
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Wait until replica `i` owns at least one shard (`limit` at most); the seconds it took.
    pub async fn wait_owns_shards(&self, i: usize, limit: Duration) -> Result<f64, String> {
        let started = Instant::now();
        loop {
            if self.metric(i, "rooms_shards_owned").await.is_some_and(|v| v >= 1.0) {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > limit {
                return Err(format!("replica {i} owns no shard {limit:?} after it started"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The AMQP URL the replicas use (a `CHAT__AMQP__URL` override, else their vhost's).
    pub fn amqp_url(&self) -> String {
        let over = self.template.extra_env.iter().rev().find(|(k, _)| k == "CHAT__AMQP__URL");
        match (over, &self.template.vhost) {
            (Some((_, url)), _) => url.clone(),
            (None, Some(vhost)) => vhost.url(),
            (None, None) => Vhost::external().url(),
        }
    }

    /// The sum and count of `rooms_handoff_seconds` over the live replicas.
    pub async fn handoffs(&self) -> (f64, f64) {
        let (mut sum, mut count) = (0.0, 0.0);
        for i in self.live() {
            let Some(text) = self.metrics_text(i).await else { continue };
            sum += metric_sum(&text, "rooms_handoff_seconds_sum").unwrap_or(0.0);
            count += metric_sum(&text, "rooms_handoff_seconds_count").unwrap_or(0.0);
        }
        (sum, count)
    }

    /// A metric summed over the live replicas.
    pub async fn metric_total(&self, name: &str) -> f64 {
        let mut total = 0.0;
        for i in self.live() {
            total += self.metric(i, name).await.unwrap_or(0.0);
        }
        total
    }
}

/// The sum of the samples of metric `name` (exactly that name, any labels) in a Prometheus
/// text exposition; `None` when there is none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// A redis-server of the test's own on a free port, without persistence: a restart loses the
/// data, as a production Redis without persistence does. Killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl PrivateRedis {
    /// Start it (ready: it answers PING).
    pub async fn new() -> PrivateRedis {
        let mut redis = PrivateRedis { port: free_port(), dir: temp_dir("redis"), child: None, starts: 0 };
        redis.start().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start it (again) on the same port; it is empty.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the private Redis runs already");
        let log = self.dir.join(format!("redis-{}.log", self.starts));
        self.starts += 1;
        let file = std::fs::File::create(&log).expect("redis log");
        let port = self.port.to_string();
        let child = Command::new(std::env::var("E2E_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()))
            .args(["--port", &port, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::from(file.try_clone().expect("redis log")))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server (is it installed?): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if redis_pong(self.port).await {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!("redis-server exited ({status}); log {}:\n{}", log.display(), read_lossy(&log));
            }
            assert!(Instant::now() < deadline, "redis-server not answering within 20 s: {}", read_lossy(&log));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop it (SIGTERM, then SIGKILL after 5 s); the data is gone.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        send_signal("TERM", &child.id().to_string());
        if wait_exit(&mut child, Duration::from_secs(5)).await.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a Redis on `port` answers PING within a second.
async fn redis_pong(port: u16) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.ok()?;
        (&buf == b"+PONG\r\n").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(1), probe).await.ok().flatten().is_some()
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// A second RabbitMQ node of the test's own (`e2e_rabbit_<pid>_<n>@localhost`) on free ports,
/// beside the machine's broker: its own data (`RABBITMQ_MNESIA_BASE`), logs, config
/// (`listeners.tcp.default`, no plugins), environment file and Erlang cookie (`HOME` is its
/// temp dir, so the cookie is made there), registered with the machine's epmd (one is started
/// if none runs; it outlives the test, as epmd does). It runs under the `rabbitmq-server` script
/// (which turns SIGTERM into an orderly stop) in a process group of its own; Drop kills the
/// group. `restart()` is a full stop of the node and a start on the same data directory and
/// ports: durable (quorum) queues and their messages survive it.
///
/// The scripts come from `/usr/lib/rabbitmq/bin` (Debian's layout; `E2E_RABBITMQ_BIN` names
/// another directory), not the `/usr/sbin` wrappers, which switch to the `rabbitmq` user.
pub struct PrivateRabbit {
    pub node: String,
    pub port: u16,
    pub dist_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
    /// How long the last start took until the broker spoke AMQP.
    pub last_startup: Duration,
}

fn rabbit_bin(script: &str) -> PathBuf {
    let dir = std::env::var("E2E_RABBITMQ_BIN").unwrap_or_else(|_| "/usr/lib/rabbitmq/bin".into());
    let path = Path::new(&dir).join(script);
    assert!(path.exists(), "{} is missing (set E2E_RABBITMQ_BIN to RabbitMQ's scripts directory)", path.display());
    path
}

impl PrivateRabbit {
    /// Start a fresh node (ready: it speaks AMQP on its port). Takes some seconds.
    pub async fn new() -> PrivateRabbit {
        let name = unique("rabbit");
        let dir = temp_dir("rabbit");
        let (port, mut dist_port) = (free_port(), free_port());
        while dist_port == port {
            dist_port = free_port();
        }
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("rabbit dirs");
        }
        std::fs::write(dir.join("env.conf"), "").expect("env file");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(dir.join("rabbitmq.conf"), format!("listeners.tcp.default = 127.0.0.1:{port}\n"))
            .expect("config file");
        let mut rabbit = PrivateRabbit {
            node: format!("{name}@localhost"),
            port,
            dist_port,
            dir,
            child: None,
            starts: 0,
            last_startup: Duration::ZERO,
        };
        rabbit.start().await;
        rabbit
    }

    /// The AMQP URL of its default vhost, as guest (allowed from the loopback interface).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Its own environment (the machine's files and variables left out).
    fn env(&self, cmd: &mut Command) {
        let d = &self.dir;
        cmd.env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d.join("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", d.join("env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env_remove("RABBITMQ_ALLOW_INPUT")
            .current_dir(d);
    }

    /// Start the node (again, on the same data and ports) and wait until it speaks AMQP
    /// (90 s at most).
    pub async fn start(&mut self) {
        use std::os::unix::process::CommandExt;
        assert!(self.child.is_none(), "the private RabbitMQ runs already");
        let log = self.dir.join(format!("server-{}.log", self.starts));
        self.starts += 1;
        let file = std::fs::File::create(&log).expect("rabbit log");
        let mut cmd = Command::new(rabbit_bin("rabbitmq-server"));
        self.env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("rabbit log")))
            .stderr(Stdio::from(file))
            .process_group(0);
        let started = Instant::now();
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("starting rabbitmq-server: {e}")));
        let deadline = started + Duration::from_secs(90);
        loop {
            if amqp_speaks(self.port).await {
                self.last_startup = started.elapsed();
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!("rabbitmq-server exited ({status}); log {}:\n{}", log.display(), read_lossy(&log));
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("the private RabbitMQ did not speak AMQP within 90 s; log:\n{}", read_lossy(&log));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An orderly stop (SIGTERM to the script, which stops the node), 60 s at most, then
    /// SIGKILL of the whole group.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id().to_string();
        send_signal("TERM", &pid);
        let exited = wait_exit(&mut child, Duration::from_secs(60)).await.is_some();
        // The node's helpers (erl_child_setup, inet_gethost) go with it; make sure.
        send_signal("KILL", &format!("-{pid}"));
        if !exited {
            let _ = child.wait();
        }
    }

    /// Stop it and start it again: the same node, data and ports.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// SIGKILL the node's whole process group (no orderly stop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal("KILL", &format!("-{}", child.id()));
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `rabbitmqctl -n <node> args..` against this node (blocking; a few seconds).
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(rabbit_bin("rabbitmqctl"));
        self.env(&mut cmd);
        cmd.arg("-n").arg(&self.node).args(args).stdin(Stdio::null());
        cmd.output().expect("running rabbitmqctl")
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether an AMQP 0-9-1 broker answers the protocol header on `port` with a method frame
/// (`connection.start`) within 2 s.
async fn amqp_speaks(port: u16) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"AMQP\x00\x00\x09\x01").await.ok()?;
        let mut frame_type = [0u8; 1];
        s.read_exact(&mut frame_type).await.ok()?;
        (frame_type[0] == 1).then_some(())
    };
    tokio::time::timeout(Duration::from_secs(2), probe).await.ok().flatten().is_some()
}

/// The shape of the verifier's traffic.
#[derive(Clone, Debug)]
pub struct TrafficOptions {
    pub rooms: usize,
    /// Members of each room (each a user of its own); the first creates it.
    pub members: usize,
    /// Senders per room, each posting as one of its members, one post at a time.
    pub senders_per_room: usize,
    /// The pause between a sender's posts.
    pub pace: Duration,
    /// One WebSocket client per member.
    pub websockets: bool,
    /// How long a sender waits for one answer.
    pub request_timeout: Duration,
    /// How long `stop()` keeps retrying the sends still unacknowledged.
    pub settle: Duration,
    /// How long `stop()` waits for the clients to have seen every event of their room.
    pub catch_up: Duration,
}

impl Default for TrafficOptions {
    fn default() -> Self {
        Self {
            rooms: 6,
            members: 3,
            senders_per_room: 2,
            pace: Duration::from_millis(100),
            websockets: true,
            request_timeout: Duration::from_secs(6),
            settle: Duration::from_secs(60),
            catch_up: Duration::from_secs(20),
        }
    }
}

/// A room of the verifier.
#[derive(Clone, Debug)]
pub struct TrafficRoom {
    pub id: String,
    /// Usernames (tenant [`TENANT`]); the first created the room.
    pub members: Vec<String>,
}

#[derive(Clone, Debug)]
struct AckRecord {
    room: usize,
    seq: i64,
}

/// What one WebSocket client saw of its room.
#[derive(Clone, Debug, Default)]
struct ClientLog {
    room: usize,
    user: String,
    seen: BTreeSet<i64>,
    max_seq: i64,
    order_violations: u64,
    duplicates: u64,
    connects: u64,
    examples: Vec<String>,
}

impl ClientLog {
    fn observe(&mut self, seq: i64) {
        if self.seen.contains(&seq) {
            self.duplicates += 1;
            return;
        }
        if seq < self.max_seq {
            self.order_violations += 1;
            if self.examples.len() < 5 {
                self.examples.push(format!("{} got seq {seq} after {}", self.user, self.max_seq));
            }
        }
        self.seen.insert(seq);
        self.max_seq = self.max_seq.max(seq);
    }
}

#[derive(Default)]
struct State {
    acked: HashMap<String, AckRecord>,
    room_acks: Vec<Vec<Instant>>,
    sender_acks: Vec<Vec<Instant>>,
    attempts: u64,
    failures: BTreeMap<String, u64>,
    /// (room, client_msg_id) sent and never acknowledged, after settling.
    unsettled: Vec<(usize, String)>,
    faults: Vec<(String, Instant)>,
    clients: Vec<ClientLog>,
    notes: Vec<(String, String)>,
}

type Shared = Arc<Mutex<State>>;

/// A room's events: (seq, the text of a message, which is its client_msg_id).
type History = Vec<(i64, Option<String>)>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Steady traffic through whichever replicas are live, and what became of it.
///
/// Senders post (HTTP `POST /v1/rooms/{id}/messages`, the text is the client_msg_id) one at a
/// time, each to the next live replica; an unacknowledged post is repeated with the same
/// client_msg_id until it is. WebSocket clients (one per member) connect to various replicas,
/// ask `sync` for what they missed on every (re)connect, ping every second and move to another
/// live replica when their socket drops or stays silent for 4 s; they record every seq pushed.
/// Frames that arrive between a (re)connect and the `synced` answer are taken in seq order
/// (the session is live before its sync is read, so a push may precede the sync's pages).
pub struct Verifier {
    opts: TrafficOptions,
    endpoints: Endpoints,
    rooms: Vec<TrafficRoom>,
    state: Shared,
    stop_senders: Arc<AtomicBool>,
    stop_clients: Arc<AtomicBool>,
    senders: Vec<actix_rt::task::JoinHandle<()>>,
    clients: Vec<actix_rt::task::JoinHandle<()>>,
    started: Instant,
    stopped: Option<Instant>,
    report: Option<Report>,
}

/// An HTTP answer of the verifier's own client: status (0: no answer) and JSON body.
async fn request(
    client: &awc::Client,
    method: &str,
    url: &str,
    bearer: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    req = req.insert_header(("Authorization", format!("Bearer {bearer}")));
    for h in headers {
        req = req.insert_header(*h);
    }
    let sent = match body {
        Some(b) => req.insert_header(("Content-Type", "application/json")).send_body(b.to_string()).await,
        None => req.send().await,
    };
    let Ok(mut res) = sent else { return (0, Value::Null) };
    let status = res.status().as_u16();
    match res.body().limit(16 * 1024 * 1024).await {
        Ok(bytes) => (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

impl Verifier {
    /// Create the rooms (through live replicas, retried with an idempotency key), connect the
    /// clients and start the senders; returns once every room had an acknowledged post.
    pub async fn start(endpoints: Endpoints, opts: TrafficOptions) -> Verifier {
        let tag = unique("v").replace('_', "");
        let client = awc::Client::builder().timeout(opts.request_timeout).finish();
        let mut rooms = Vec::new();
        for r in 0..opts.rooms {
            let members: Vec<String> = (0..opts.members.max(1)).map(|m| format!("{tag}r{r}m{m}")).collect();
            let body = json!({"members": members[1..], "name": format!("traffic {r}")});
            let key = format!("{tag}-room-{r}");
            let deadline = Instant::now() + Duration::from_secs(60);
            let id = loop {
                let answer = match endpoints.pick(r) {
                    Some(port) => {
                        request(
                            &client,
                            "POST",
                            &format!("http://127.0.0.1:{port}/v1/rooms"),
                            &token(&members[0], TENANT),
                            Some(&body),
                            &[("Idempotency-Key", &key)],
                        )
                        .await
                    }
                    None => (0, Value::Null),
                };
                if let (200 | 201, Some(id)) = (answer.0, answer.1["id"].as_str()) {
                    break id.to_owned();
                }
                assert!(Instant::now() < deadline, "creating traffic room {r}: {} {}", answer.0, answer.1);
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            rooms.push(TrafficRoom { id, members });
        }
        let senders_total = opts.rooms * opts.senders_per_room;
        let state: Shared = Arc::new(Mutex::new(State {
            room_acks: vec![Vec::new(); opts.rooms],
            sender_acks: vec![Vec::new(); senders_total],
            ..State::default()
        }));
        let mut v = Verifier {
            opts,
            endpoints,
            rooms,
            state,
            stop_senders: Arc::new(AtomicBool::new(false)),
            stop_clients: Arc::new(AtomicBool::new(false)),
            senders: Vec::new(),
            clients: Vec::new(),
            started: Instant::now(),
            stopped: None,
            report: None,
        };
        if v.opts.websockets {
            for (r, room) in v.rooms.iter().enumerate() {
                for user in &room.members {
                    let c = {
                        let mut s = lock(&v.state);
                        s.clients.push(ClientLog { room: r, user: user.clone(), ..ClientLog::default() });
                        s.clients.len() - 1
                    };
                    v.clients.push(actix_rt::spawn(client_loop(
                        c,
                        room.id.clone(),
                        user.clone(),
                        v.endpoints.clone(),
                        v.state.clone(),
                        v.stop_clients.clone(),
                    )));
                }
            }
        }
        v.started = Instant::now();
        for r in 0..v.opts.rooms {
            for k in 0..v.opts.senders_per_room {
                let sender = r * v.opts.senders_per_room + k;
                let room = &v.rooms[r];
                let user = room.members[k % room.members.len()].clone();
                v.senders.push(actix_rt::spawn(sender_loop(SenderSpec {
                    sender,
                    room: r,
                    room_id: room.id.clone(),
                    user,
                    key_prefix: format!("{tag}r{r}s{k}n"),
                    endpoints: v.endpoints.clone(),
                    state: v.state.clone(),
                    stop: v.stop_senders.clone(),
                    request_timeout: v.opts.request_timeout,
                    pace: v.opts.pace,
                    settle: v.opts.settle,
                })));
            }
        }
        let all_rooms: Vec<usize> = (0..v.rooms.len()).collect();
        if let Err(why) = v.wait_rooms_acked_after(v.started, &all_rooms, Duration::from_secs(60)).await {
            panic!("traffic did not start: {why}");
        }
        v
    }

    pub fn rooms(&self) -> &[TrafficRoom] {
        &self.rooms
    }

    /// The indices of the rooms whose shard (of `shards`) is in `shards_set`.
    pub fn rooms_on_shards(&self, shards: u16, shards_set: &BTreeSet<u16>) -> Vec<usize> {
        (0..self.rooms.len()).filter(|r| shards_set.contains(&self.shard_of(*r, shards))).collect()
    }

    /// The shard (of `shards`) of room `r`.
    pub fn shard_of(&self, r: usize, shards: u16) -> u16 {
        chat_protocol::shard_of(&chat_protocol::RoomId::new(self.rooms[r].id.clone()), shards)
    }

    /// The worst gap of `rooms` after the fault `fault` (every fault when `None`); `stop()` first.
    pub fn gap_of(&self, rooms: &[usize], fault: Option<&str>) -> Option<f64> {
        self.report.as_ref()?.gap_of(rooms, fault)
    }

    /// The worst outage of `rooms` after the fault `fault` (every fault when `None`); `stop()`
    /// first.
    pub fn outage_of(&self, rooms: &[usize], fault: Option<&str>) -> Option<f64> {
        self.report.as_ref()?.outage_of(rooms, fault)
    }

    /// The longest stretch without any acknowledgement at all after the fault `fault` (until
    /// the next fault or the stop); `stop()` first.
    pub fn global_outage(&self, fault: &str) -> Option<f64> {
        self.report.as_ref()?.global_outages.iter().find(|(what, _)| what == fault).map(|(_, o)| *o)
    }

    /// Acknowledged posts so far.
    pub fn acked(&self) -> usize {
        lock(&self.state).acked.len()
    }

    /// Mark a fault at this instant (its gaps are measured from here); returns the instant.
    pub fn fault(&self, what: &str) -> Instant {
        let now = Instant::now();
        lock(&self.state).faults.push((what.to_owned(), now));
        now
    }

    /// A figure of the scenario for the report line.
    pub fn note(&self, key: &str, value: impl std::fmt::Display) {
        lock(&self.state).notes.push((key.to_owned(), value.to_string()));
    }

    /// Wait until each of `rooms` had an acknowledgement after `since` (`limit` at most).
    pub async fn wait_rooms_acked_after(&self, since: Instant, rooms: &[usize], limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let waiting: Vec<usize> = {
                let s = lock(&self.state);
                rooms.iter().copied().filter(|r| !s.room_acks[*r].iter().any(|t| *t >= since)).collect()
            };
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let failures = lock(&self.state).failures.clone();
                return Err(format!(
                    "rooms {waiting:?} had no acknowledgement within {limit:?} (failed attempts by status: {failures:?})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until every room had an acknowledgement after `since`; panics after `limit`.
    pub async fn wait_all_recovered(&self, since: Instant, limit: Duration) {
        let all: Vec<usize> = (0..self.rooms.len()).collect();
        if let Err(why) = self.wait_rooms_acked_after(since, &all, limit).await {
            panic!("traffic did not recover: {why}");
        }
    }

    /// Let traffic flow for `d`.
    pub async fn run_for(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Stop the senders (their unacknowledged posts are retried until acknowledged, `settle` at
    /// most), let the clients catch up, read every room's history and compute the report.
    pub async fn stop(&mut self) {
        if self.report.is_some() {
            return;
        }
        let stop_at = Instant::now();
        self.stopped = Some(stop_at);
        self.stop_senders.store(true, Ordering::Relaxed);
        for s in self.senders.drain(..) {
            let _ = s.await;
        }
        let histories = self.histories().await;
        // The clients get the time to see everything that is stored.
        if self.opts.websockets {
            let deadline = Instant::now() + self.opts.catch_up;
            loop {
                let behind = {
                    let s = lock(&self.state);
                    s.clients
                        .iter()
                        .filter(|c| {
                            let last = histories[c.room].as_ref().and_then(|h| h.last()).map_or(0, |e| e.0);
                            c.max_seq < last
                        })
                        .count()
                };
                if behind == 0 || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.stop_clients.store(true, Ordering::Relaxed);
        for c in self.clients.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
        }
        self.report = Some(self.compute(stop_at, &histories));
    }

    /// (seq, client_msg_id of a message) of every event of every room, through live replicas;
    /// `None` for a room whose history could not be read within 60 s.
    async fn histories(&self) -> Vec<Option<History>> {
        let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
        let mut all = Vec::new();
        for (r, room) in self.rooms.iter().enumerate() {
            let bearer = token(&room.members[0], TENANT);
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut events: History = Vec::new();
            let mut after = 0;
            let mut attempt = r;
            let complete = loop {
                let Some(port) = self.endpoints.pick(attempt) else {
                    if Instant::now() > deadline {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let url = format!("http://127.0.0.1:{port}/v1/rooms/{}/messages?after={after}&limit=500", room.id);
                let (status, body) = request(&client, "GET", &url, &bearer, None, &[]).await;
                if status != 200 {
                    attempt += 1;
                    if Instant::now() > deadline {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                let page = body["events"].as_array().cloned().unwrap_or_default();
                let Some(last) = page.last().and_then(|e| e["seq"].as_i64()) else { break true };
                for e in &page {
                    let seq = e["seq"].as_i64().unwrap_or(-1);
                    let text = (e["type"] == "message").then(|| e["body"]["text"].as_str().map(str::to_owned));
                    events.push((seq, text.flatten()));
                }
                after = last;
            };
            all.push(complete.then_some(events));
        }
        all
    }

    fn compute(&self, stop_at: Instant, histories: &[Option<History>]) -> Report {
        let s = lock(&self.state);
        let mut report = Report { acked: s.acked.len(), attempts: s.attempts, ..Report::default() };
        report.failures = s.failures.clone();
        report.unsettled = s.unsettled.len();
        report.unreadable_rooms = histories.iter().filter(|h| h.is_none()).count();
        report.notes = s.notes.clone();
        report.run_secs = stop_at.duration_since(self.started).as_secs_f64();

        // What the store holds: client_msg_id -> the seqs it is stored at, per room.
        let mut stored: HashMap<&str, Vec<(usize, i64)>> = HashMap::new();
        for (r, history) in histories.iter().enumerate() {
            let Some(history) = history else { continue };
            let mut expected = 1;
            for (seq, text) in history {
                if *seq != expected {
                    report.history_seq_gaps += 1;
                }
                expected = seq + 1;
                if let Some(text) = text {
                    stored.entry(text.as_str()).or_default().push((r, *seq));
                }
            }
        }
        for (key, ack) in &s.acked {
            if histories[ack.room].is_none() {
                continue; // unreadable: counted apart
            }
            match stored.get(key.as_str()) {
                None => {
                    report.lost += 1;
                    if report.examples.len() < 5 {
                        report.examples.push(format!("lost {key} (room {}, acked seq {})", ack.room, ack.seq));
                    }
                }
                Some(at) if !at.contains(&(ack.room, ack.seq)) => report.seq_mismatches += 1,
                Some(_) => {}
            }
        }
        for (key, at) in &stored {
            if at.len() > 1 {
                report.applied_twice += 1;
                if report.examples.len() < 10 {
                    report.examples.push(format!("{key} stored {} times: {at:?}", at.len()));
                }
            }
        }

        // What the clients saw.
        for c in &s.clients {
            report.order_violations += c.order_violations;
            report.duplicate_deliveries += c.duplicates;
            report.reconnects += c.connects.saturating_sub(1);
            for e in &c.examples {
                if report.examples.len() < 15 {
                    report.examples.push(e.clone());
                }
            }
            if let Some(history) = &histories[c.room] {
                let missed: Vec<i64> =
                    history.iter().map(|(seq, _)| *seq).filter(|seq| !c.seen.contains(seq)).collect();
                report.undelivered += missed.len() as u64;
                if !missed.is_empty() && report.examples.len() < 15 {
                    report.examples.push(format!("{} (room {}) never got seqs {missed:?}", c.user, c.room));
                }
            }
        }
        report.clients = s.clients.len();

        // The gaps after each fault: from the fault to each room's first acknowledgement after it.
        for (what, at) in &s.faults {
            let gaps: Vec<f64> = s
                .room_acks
                .iter()
                .map(|acks| {
                    let first = acks.iter().find(|t| **t >= *at).copied().unwrap_or(stop_at);
                    first.saturating_duration_since(*at).as_secs_f64()
                })
                .collect();
            report.fault_gaps.push((what.clone(), gaps));
        }
        let all_gaps: Vec<f64> = report.fault_gaps.iter().flat_map(|(_, g)| g.iter().copied()).collect();
        report.gap_p50 = percentile(&all_gaps, 0.50);
        report.gap_p99 = percentile(&all_gaps, 0.99);
        report.gap_max = max_of(all_gaps.iter().copied());

        // The outages of each fault: the longest stretch without an acknowledgement that ends
        // between the fault and the next one (or the stop), per room and for all rooms at once.
        let mut everyone: Vec<Instant> = s.sender_acks.iter().flatten().copied().collect();
        everyone.sort();
        let outage = |acks: &[Instant], from: Instant, to: Instant| -> f64 {
            let mut prev = acks.iter().rev().find(|t| **t < from).copied().unwrap_or(self.started);
            let mut longest = Duration::ZERO;
            for t in acks.iter().filter(|t| **t >= from && **t <= to).chain(std::iter::once(&to)) {
                longest = longest.max(t.saturating_duration_since(prev));
                prev = *t;
            }
            longest.as_secs_f64()
        };
        for (k, (what, at)) in s.faults.iter().enumerate() {
            let until = s.faults.get(k + 1).map_or(stop_at, |(_, next)| *next).max(*at);
            let per_room: Vec<f64> = s.room_acks.iter().map(|acks| outage(acks, *at, until)).collect();
            report.fault_outages.push((what.clone(), per_room));
            report.global_outages.push((what.clone(), outage(&everyone, *at, until)));
        }
        let all_outages: Vec<f64> = report.fault_outages.iter().flat_map(|(_, o)| o.iter().copied()).collect();
        report.outage_p50 = percentile(&all_outages, 0.50);
        report.outage_p99 = percentile(&all_outages, 0.99);
        report.outage_max = max_of(all_outages.iter().copied());

        // The longest stretch without an acknowledgement, per sender and for everyone.
        let silence = |acks: &[Instant]| -> f64 {
            let mut last = self.started;
            let mut longest = Duration::ZERO;
            for t in acks.iter().chain(std::iter::once(&stop_at)) {
                longest = longest.max(t.saturating_duration_since(last));
                last = (*t).max(last);
            }
            longest.as_secs_f64()
        };
        let per_sender: Vec<f64> = s.sender_acks.iter().map(|a| silence(a)).collect();
        report.sender_silence_p50 = percentile(&per_sender, 0.50).unwrap_or(0.0);
        report.sender_silence_max = per_sender.iter().copied().fold(0.0, f64::max);
        report.global_silence_max = silence(&everyone);
        report
    }

    /// Print the report line of `scenario` (stderr) and return the report; `stop()` first.
    pub fn report(&self, scenario: &str) -> Report {
        let mut report = self.report.clone().expect("Verifier::stop before report");
        report.scenario = scenario.to_owned();
        report.notes = lock(&self.state).notes.clone();
        eprintln!("{}", report.line());
        report
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.stop_senders.store(true, Ordering::Relaxed);
        self.stop_clients.store(true, Ordering::Relaxed);
        for h in self.senders.drain(..).chain(self.clients.drain(..)) {
            h.abort();
        }
    }
}

fn max_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    values.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
}

fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

struct SenderSpec {
    sender: usize,
    room: usize,
    room_id: String,
    user: String,
    key_prefix: String,
    endpoints: Endpoints,
    state: Shared,
    stop: Arc<AtomicBool>,
    request_timeout: Duration,
    pace: Duration,
    settle: Duration,
}

/// One sender: posts one at a time to the next live replica; an unacknowledged post is
/// repeated with the same client_msg_id (after stop, until acknowledged or `settle` is over).
async fn sender_loop(sp: SenderSpec) {
    let client = awc::Client::builder().timeout(sp.request_timeout).finish();
    let bearer = token(&sp.user, TENANT);
    let mut n = 0u64;
    let mut pending: Option<String> = None;
    let mut turn = sp.sender;
    let mut settle_deadline: Option<Instant> = None;
    loop {
        let stopping = sp.stop.load(Ordering::Relaxed);
        if stopping {
            if pending.is_none() {
                return;
            }
            let deadline = *settle_deadline.get_or_insert_with(|| Instant::now() + sp.settle);
            if Instant::now() > deadline {
                let key = pending.take().unwrap_or_default();
                lock(&sp.state).unsettled.push((sp.room, key));
                return;
            }
        }
        let key = pending.take().unwrap_or_else(|| {
            n += 1;
            format!("{}{n}", sp.key_prefix)
        });
        turn += 1;
        let Some(port) = sp.endpoints.pick(turn) else {
            pending = Some(key);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let url = format!("http://127.0.0.1:{port}/v1/rooms/{}/messages", sp.room_id);
        let body = json!({"client_msg_id": key, "body": {"type": "text", "text": key}});
        let (status, answer) = request(&client, "POST", &url, &bearer, Some(&body), &[]).await;
        let now = Instant::now();
        let acked = {
            let mut s = lock(&sp.state);
            s.attempts += 1;
            match (status, answer["seq"].as_i64()) {
                (200 | 201, Some(seq)) => {
                    s.acked.insert(key, AckRecord { room: sp.room, seq });
                    s.room_acks[sp.room].push(now);
                    s.sender_acks[sp.sender].push(now);
                    true
                }
                _ => {
                    let why = match answer["error"]["code"].as_str() {
                        Some(code) => format!("{status} {code}"),
                        None => status.to_string(),
                    };
                    *s.failures.entry(why).or_default() += 1;
                    pending = Some(key);
                    false
                }
            }
        };
        let pause = if acked { sp.pace } else { Duration::from_millis(50) };
        tokio::time::sleep(pause).await;
    }
}

/// One WebSocket client of `user` (a member of `room_id` only).
async fn client_loop(
    c: usize,
    room_id: String,
    user: String,
    endpoints: Endpoints,
    state: Shared,
    stop: Arc<AtomicBool>,
) {
    let bearer = token(&user, TENANT);
    let mut ws: Option<Ws> = None;
    let mut turn = c;
    // While a (re)connect's sync is answered: the seqs received, taken in order at `synced`.
    let mut window: Option<Vec<i64>> = None;
    let mut last_heard = Instant::now();
    let mut last_ping = Instant::now();
    let flush = |window: &mut Option<Vec<i64>>| {
        if let Some(mut seqs) = window.take() {
            seqs.sort_unstable();
            let mut s = lock(&state);
            for seq in seqs {
                s.clients[c].observe(seq);
            }
        }
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            flush(&mut window);
            return;
        }
        let Some(socket) = ws.as_mut() else {
            let Some(port) = endpoints.pick(turn) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            turn += 1;
            let url = format!("ws://127.0.0.1:{port}/v1/ws");
            match tokio::time::timeout(Duration::from_secs(5), Ws::try_connect(&url, Some(&bearer))).await {
                Ok(Ok(mut socket)) => {
                    let from = {
                        let mut s = lock(&state);
                        s.clients[c].connects += 1;
                        s.clients[c].max_seq
                    };
                    let sync = json!({"type": "sync", "rooms": {room_id.as_str(): from}});
                    socket.send_raw(Message::text(sync.to_string())).await;
                    window = Some(Vec::new());
                    last_heard = Instant::now();
                    last_ping = Instant::now();
                    ws = Some(socket);
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            continue;
        };
        match socket.next(1).await {
            Got::Frame(f) => {
                last_heard = Instant::now();
                match f["type"].as_str() {
                    Some("synced") => flush(&mut window),
                    Some("message" | "room_event") if f["room_id"] == room_id.as_str() => {
                        if let Some(seq) = f["seq"].as_i64() {
                            match window.as_mut() {
                                Some(w) => w.push(seq),
                                None => lock(&state).clients[c].observe(seq),
                            }
                        }
                    }
                    _ => {}
                }
            }
            Got::Closed(_) => {
                flush(&mut window);
                ws = None;
                continue;
            }
            Got::Timeout => {}
        }
        if last_ping.elapsed() >= Duration::from_secs(1) {
            socket.send_raw(Message::text(json!({"type": "ping"}).to_string())).await;
            last_ping = Instant::now();
        }
        if last_heard.elapsed() >= Duration::from_secs(4) {
            // Silent (a stopped replica): move to another one.
            flush(&mut window);
            ws = None;
        }
    }
}

/// What a [`Verifier`] found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub run_secs: f64,
    /// Posts acknowledged (201), attempts made, failed attempts by status (and error code).
    pub acked: usize,
    pub attempts: u64,
    pub failures: BTreeMap<String, u64>,
    /// Posts still unacknowledged when settling gave up (not counted as lost).
    pub unsettled: usize,
    /// Acknowledged client_msg_ids missing from their room's history.
    pub lost: u64,
    /// client_msg_ids stored more than once.
    pub applied_twice: u64,
    /// Acknowledged posts stored at another seq than acknowledged.
    pub seq_mismatches: u64,
    /// Breaks in a room's seqs (1, 2, 3, ...).
    pub history_seq_gaps: u64,
    /// Rooms whose history could not be read (their posts are not judged).
    pub unreadable_rooms: usize,
    pub clients: usize,
    /// Times a client saw a seq lower than one it saw before (not counting repeats).
    pub order_violations: u64,
    /// Seqs a client got more than once.
    pub duplicate_deliveries: u64,
    /// Stored events of its room a client never got (after catching up).
    pub undelivered: u64,
    pub reconnects: u64,
    /// Per fault: the seconds from it to each room's first acknowledgement after it (room order).
    pub fault_gaps: Vec<(String, Vec<f64>)>,
    pub gap_p50: Option<f64>,
    pub gap_p99: Option<f64>,
    pub gap_max: Option<f64>,
    /// Per fault: each room's longest stretch without an acknowledgement that ends between the
    /// fault and the next one (or the stop); it starts at the room's last acknowledgement
    /// before the fault, so in-flight posts answered just after the fault do not hide it.
    pub fault_outages: Vec<(String, Vec<f64>)>,
    /// Per fault: the same for all rooms together (the cluster's unavailability).
    pub global_outages: Vec<(String, f64)>,
    pub outage_p50: Option<f64>,
    pub outage_p99: Option<f64>,
    pub outage_max: Option<f64>,
    /// The longest stretch without an acknowledgement: the median and worst sender, and all
    /// senders together.
    pub sender_silence_p50: f64,
    pub sender_silence_max: f64,
    pub global_silence_max: f64,
    pub notes: Vec<(String, String)>,
    pub examples: Vec<String>,
}

impl Report {
    /// The worst gap of `rooms` over every fault (or the fault named `fault` only).
    pub fn gap_of(&self, rooms: &[usize], fault: Option<&str>) -> Option<f64> {
        self.fault_gaps
            .iter()
            .filter(|(what, _)| fault.is_none_or(|f| f == what))
            .flat_map(|(_, gaps)| rooms.iter().filter_map(|r| gaps.get(*r).copied()))
            .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))))
    }

    /// The worst outage of `rooms` over every fault (or the fault named `fault` only).
    pub fn outage_of(&self, rooms: &[usize], fault: Option<&str>) -> Option<f64> {
        max_of(
            self.fault_outages
                .iter()
                .filter(|(what, _)| fault.is_none_or(|f| f == what))
                .flat_map(|(_, outages)| rooms.iter().filter_map(|r| outages.get(*r).copied())),
        )
    }

    /// One line with every figure.
    pub fn line(&self) -> String {
        let secs = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}s"));
        let mut line = format!(
            "SCALING {}: run={:.1}s acked={} attempts={} unsettled={} lost={} applied_twice={} order_violations={} \
             dup_deliveries={} undelivered={} seq_mismatches={} history_gaps={} unreadable_rooms={} clients={} \
             reconnects={} gap_p50={} gap_p99={} gap_max={} outage_p50={} outage_p99={} outage_max={} \
             global_outages={} sender_silence_p50={:.2}s sender_silence_max={:.2}s global_silence_max={:.2}s \
             failures={:?}",
            self.scenario,
            self.run_secs,
            self.acked,
            self.attempts,
            self.unsettled,
            self.lost,
            self.applied_twice,
            self.order_violations,
            self.duplicate_deliveries,
            self.undelivered,
            self.seq_mismatches,
            self.history_seq_gaps,
            self.unreadable_rooms,
            self.clients,
            self.reconnects,
            secs(self.gap_p50),
            secs(self.gap_p99),
            secs(self.gap_max),
            secs(self.outage_p50),
            secs(self.outage_p99),
            secs(self.outage_max),
            self.global_outages.iter().map(|(w, o)| format!("{w}:{o:.2}s")).collect::<Vec<_>>().join(","),
            self.sender_silence_p50,
            self.sender_silence_max,
            self.global_silence_max,
            self.failures,
        );
        for (k, v) in &self.notes {
            line.push_str(&format!(" {k}={v}"));
        }
        if !self.examples.is_empty() {
            line.push_str(&format!(" examples={:?}", self.examples));
        }
        line
    }

    /// The verdict every scenario asserts: nothing acknowledged lost, nothing applied twice,
    /// no client saw a room go backwards, every history readable.
    pub fn assert_clean(&self) {
        assert_eq!(self.unreadable_rooms, 0, "rooms whose history could not be read: {}", self.line());
        assert_eq!(self.lost, 0, "acknowledged posts lost: {}", self.line());
        assert_eq!(self.applied_twice, 0, "posts applied twice: {}", self.line());
        assert_eq!(self.order_violations, 0, "deliveries out of order: {}", self.line());
        assert!(self.acked > 0, "no traffic: {}", self.line());
    }
}

#[cfg(test)]
mod tests {
    use super::{metric_sum, percentile, ClientLog};

    #[test]
    fn metrics_are_summed_over_their_labels_and_matched_by_whole_name() {
        let text = "# HELP rooms_shards_owned x\n# TYPE rooms_shards_owned gauge\nrooms_shards_owned 11\n\
                    rooms_shards_owned_total 5\nrooms_shard_queue_depth{shard=\"000\"} 2\n\
                    rooms_shard_queue_depth{shard=\"001\"} 3\n";
        assert_eq!(metric_sum(text, "rooms_shards_owned"), Some(11.0));
        assert_eq!(metric_sum(text, "rooms_shard_queue_depth"), Some(5.0));
        assert_eq!(metric_sum(text, "rooms_leases_lost_total"), None);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.99), Some(3.0));
        assert_eq!(percentile(&[4.0], 0.01), Some(4.0));
    }

    #[test]
    fn a_client_counts_backward_seqs_and_repeats_apart() {
        let mut c = ClientLog::default();
        for seq in [1, 2, 4, 3, 4, 5] {
            c.observe(seq);
        }
        assert_eq!((c.order_violations, c.duplicates, c.max_seq), (1, 1, 5));
    }
}
