//! The end-to-end harness: starts the real binaries (built by `cargo build --bins` first)
//! against the real Redis, RabbitMQ and PostgreSQL, each test isolated by its own prefix (AMQP
//! names, Redis keys) and PostgreSQL schema. Each binary binds HTTP port 0 and the harness reads
//! the port it got from its log (the `listening` line), so no port is chosen here and raced for;
//! a restarted process has a new port. Every wait has a deadline; children are killed when
//! dropped.
//!
//! Backends come from `E2E_AMQP_URL`, `E2E_REDIS_URL` and `E2E_DATABASE_URL`, defaulting to
//! the local services that `make test` ensures.

pub mod cluster;
pub mod line;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

pub const SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0123456789";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// A RabbitMQ vhost of one test: its queues (quorum queues are Raft groups) go with it when
/// the last process using it is gone. Without `rabbitmqctl` (a remote broker), the test runs
/// in the vhost of `E2E_AMQP_URL` and its queues stay.
pub struct Vhost {
    name: Option<String>,
}

impl Vhost {
    pub fn create(name: &str) -> std::sync::Arc<Vhost> {
        let ok = |args: &[&str]| {
            Command::new("rabbitmqctl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let made =
            ok(&["-q", "add_vhost", name]) && ok(&["-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
        std::sync::Arc::new(Vhost { name: made.then(|| name.to_owned()) })
    }

    /// A vhost this harness does not manage (nothing made, nothing deleted): `url()` is
    /// `E2E_AMQP_URL`'s. For processes pointed at another broker through their environment
    /// (`CHAT__AMQP__URL`), e.g. a [`cluster::PrivateRabbit`].
    pub fn external() -> std::sync::Arc<Vhost> {
        std::sync::Arc::new(Vhost { name: None })
    }

    pub fn url(&self) -> String {
        match &self.name {
            Some(v) => format!("amqp://guest:guest@127.0.0.1:5672/{v}"),
            None => env_or("E2E_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        }
    }

    /// The broker's address in `url()` (its `host:port`, resolved), e.g. the upstream of a
    /// [`proxy::Proxy`] that one process reaches the broker through.
    pub fn broker(&self) -> std::net::SocketAddr {
        let url = self.url();
        let host_port = &url[broker_span(&url)];
        std::net::ToSocketAddrs::to_socket_addrs(host_port)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("the broker address {host_port:?} of {url}"))
    }

    /// `url()` with the broker's `host:port` replaced by `addr`: the same vhost and credentials,
    /// reached through a proxy listening on `addr`.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let mut url = self.url();
        url.replace_range(broker_span(&url), &addr.to_string());
        url
    }
}

/// Where the `host:port` of an AMQP URL (`amqp://user:pass@host:port/vhost`) is.
fn broker_span(url: &str) -> std::ops::Range<usize> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let host = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    host..end
}

impl Drop for Vhost {
    fn drop(&mut self) {
        if let Some(v) = &self.name {
            let _ = Command::new("rabbitmqctl")
                .args(["-q", "delete_vhost", v])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The PostgreSQL the tests use (`E2E_DATABASE_URL`).
pub fn database_url() -> String {
    env_or("E2E_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chat")
}

/// Run one statement on the test PostgreSQL with `psql` (a test touches its own schema only).
pub fn sql(statement: &str) {
    let out = Command::new("psql")
        .args([database_url().as_str(), "-v", "ON_ERROR_STOP=1", "-qAtc", statement])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "{statement}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `target/debug` (or wherever this test binary was built).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let deps = exe.parent().expect("test binaries live in target/<profile>/deps");
    deps.parent().expect("target/<profile>").to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// A unique name for this test's resources.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("e2e_{}_{}_{}", tag, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// How long a started binary gets to log the port it bound.
const PORT_WAIT_SECS: u64 = 30;

/// Spawn `cmd` with HTTP port 0 (the OS picks a free one; the binary logs which), its stdout and
/// stderr to a new file at `log`. Then [`wait_port`] for the port.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
    cmd.env("CHAT__HTTP__PORT", "0")
        .stdout(Stdio::from(file.try_clone().expect("log file")))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", cmd.get_program().to_string_lossy()))
}

/// The port of a `listening` line of a service's JSON log (tracing-subscriber's `json` format,
/// the event's fields flattened or under `fields`): `{"message":"listening","port":41234,..}`,
/// as `chat_kit::HttpService` logs it for every service once bound.
pub fn listening_port(line: &str) -> Option<u16> {
    let event: Value = serde_json::from_str(line.trim()).ok()?;
    let fields = event.get("fields").filter(|f| f.is_object()).unwrap_or(&event);
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    let port = fields.get("port")?;
    let port = port.as_u64().or_else(|| port.as_str()?.parse().ok())?;
    u16::try_from(port).ok().filter(|p| *p != 0)
}

/// Poll the log of `child` until it has a `listening` line with the port, `secs` at most. The
/// error says why not (the process exited first, or no such line in time) with the log.
pub async fn try_wait_port(child: &mut Child, log: &Path, secs: u64) -> Result<u16, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read(log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        // Whole lines only: the last one may still be being written.
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        if let Some(port) = whole.lines().find_map(listening_port) {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the process exited ({status}) before logging the port it listens on; log {}:\n{text}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no `listening` line with a port in {} within {secs} s (JSON logs at level info are needed); \
                 log:\n{text}",
                log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`try_wait_port`] for tests: panics with the reason.
pub async fn wait_port(child: &mut Child, log: &Path) -> u16 {
    try_wait_port(child, log, PORT_WAIT_SECS).await.unwrap_or_else(|why| panic!("{why}"))
}

/// Start `cmd` on port 0 into `slot` (stored before the waits: a panic in them drops the
/// owner, which kills the child), then wait for its port and its readiness.
async fn launch(cmd: &mut Command, log: &Path, slot: &mut Option<Child>) -> u16 {
    let child = slot.insert(spawn_logged(cmd, log));
    let port = wait_port(child, log).await;
    wait_ready(port, log).await;
    port
}

/// The base URL of a service on this machine.
fn local_base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Options of a rooms process.
#[derive(Clone)]
pub struct RoomsOptions {
    pub name: String,
    /// Shared with the other processes of the test; created on start when absent.
    pub vhost: Option<std::sync::Arc<Vhost>>,
    pub shards: u16,
    pub passivate_after_secs: u64,
    pub extra_env: Vec<(String, String)>,
    /// `CHAT__NODE__ID` when set (else `name`): processes sharing `name` (prefix, schema, vhost)
    /// with distinct node ids are replicas of one cluster. It also names the log files.
    pub node: Option<String>,
}

impl RoomsOptions {
    pub fn new(tag: &str) -> Self {
        Self { name: unique(tag), vhost: None, shards: 4, passivate_after_secs: 300, extra_env: Vec::new(), node: None }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A running `rooms` process.
pub struct Rooms {
    pub opts: RoomsOptions,
    /// The port it listens on; a restart changes it.
    pub port: u16,
    child: Option<Child>,
    restarts: u32,
}

impl Rooms {
    pub async fn start(mut opts: RoomsOptions) -> Rooms {
        if opts.vhost.is_none() {
            opts.vhost = Some(Vhost::create(&opts.name));
        }
        let mut rooms = Rooms { opts, port: 0, child: None, restarts: 0 };
        rooms.spawn().await;
        rooms
    }

    async fn spawn(&mut self) {
        let logs = bin_dir().join("e2e-logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        let o = &self.opts;
        let node = o.node.as_deref().unwrap_or(&o.name);
        let log_path = logs.join(format!("{node}-{}.log", self.restarts));
        let mut cmd = Command::new(bin("rooms"));
        cmd.env("CHAT__HTTP__WORKERS", "2")
            .env("CHAT__NODE__ID", node)
            .env("CHAT__DATABASE__URL", env_or("E2E_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chat"))
            .env("CHAT__DATABASE__SCHEMA", &o.name)
            .env("CHAT__DATABASE__MAX_CONNECTIONS", "8")
            .env("CHAT__AMQP__URL", o.vhost.as_ref().map(|v| v.url()).unwrap_or_default())
            .env("CHAT__AMQP__PREFIX", format!("{}.", o.name))
            .env("CHAT__AMQP__SHARDS", o.shards.to_string())
            .env("CHAT__REDIS__URL", env_or("E2E_REDIS_URL", "redis://127.0.0.1:6379"))
            .env("CHAT__REDIS__PREFIX", format!("{}:", o.name))
            .env("CHAT__AUTH__JWT_SECRET", SECRET)
            .env("CHAT__ROOMS__PASSIVATE_AFTER_SECS", o.passivate_after_secs.to_string())
            .env("CHAT__ROOMS__ARBITERS", "2")
            .env("RUST_LOG", "info");
        for (k, v) in &o.extra_env {
            cmd.env(k, v);
        }
        self.port = launch(&mut cmd, &log_path, &mut self.child).await;
    }

    pub fn base(&self) -> String {
        local_base(self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v1/ws", self.port)
    }

    /// SIGKILL: no shutdown, no drain, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit (at most `secs`); `None` if it did not exit in time.
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The process id while it runs (`None` once killed or exited after `terminate`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file of the current process (restarts write a new one).
    pub fn log_path(&self) -> PathBuf {
        let node = self.opts.node.as_deref().unwrap_or(&self.opts.name);
        bin_dir().join("e2e-logs").join(format!("{node}-{}.log", self.restarts))
    }

    /// Send `sig` (a name `kill` knows: TERM, KILL, STOP, CONT, ...) to the process; false if
    /// it is not running or `kill` failed. Waits for nothing.
    pub fn signal(&self, sig: &str) -> bool {
        let Some(pid) = self.pid() else { return false };
        Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGTERM, then wait for the exit without blocking the test's runtime (other tasks, e.g.
    /// traffic, go on meanwhile), `secs` at most; `None` if it did not exit in time (it still
    /// runs; `kill` ends it).
    pub async fn terminate_async(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Start again with the same store, queues and keys (a new node id suffix and epoch) on a
    /// new port: `port`, `base()` and `ws_url()` read after this are the new process's.
    pub async fn restart(&mut self) {
        self.kill();
        self.restarts += 1;
        self.spawn().await;
    }

    /// A metric's value (first sample whose line starts with `name`).
    pub async fn metric(&self, name: &str) -> f64 {
        let text =
            http().get(format!("{}/metrics", self.base())).send().await.expect("metrics").body().await.expect("body");
        let text = String::from_utf8_lossy(&text).to_string();
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Rooms {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Any service binary with the common backend settings of a test (`name` is the shared prefix:
/// processes started with the same name share queues, keys and, per service, a schema).
pub struct Service {
    pub name: String,
    pub vhost: std::sync::Arc<Vhost>,
    pub bin: &'static str,
    /// The port it listens on (read from its log).
    pub port: u16,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    restarts: u32,
}

/// The key the LINE gateway encrypts channel secrets with in tests (base64 of 32 bytes).
pub const LINE_SECRETS_KEY: &str = "ZTJlLWxpbmUtc2VjcmV0cy1rZXktMDEyMzQ1Njc4OTA=";

/// The token services present to authz's internal endpoints in tests.
pub const INTERNAL_TOKEN: &str = "e2e-internal-token-e2e-internal-token-0123";

impl Service {
    /// The environment every service of test `name` gets for `schema`.
    pub fn base_env(name: &str, schema: &str, vhost: &Vhost) -> Vec<(String, String)> {
        vec![
            ("CHAT__DATABASE__URL".into(), env_or("E2E_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chat")),
            ("CHAT__DATABASE__SCHEMA".into(), schema.into()),
            ("CHAT__AMQP__URL".into(), vhost.url()),
            ("CHAT__AMQP__PREFIX".into(), format!("{name}.")),
            ("CHAT__AMQP__SHARDS".into(), "4".into()),
        ]
    }

    /// Run `bin args...` to completion with this environment (administrative commands).
    pub fn run_command(bin_name: &str, env: &[(String, String)], args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(bin(bin_name));
        cmd.args(args).env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("running a command")
    }

    pub async fn start(
        bin_name: &'static str,
        name: &str,
        vhost: std::sync::Arc<Vhost>,
        env: Vec<(String, String)>,
    ) -> Service {
        let mut s = Service { name: name.to_owned(), vhost, bin: bin_name, port: 0, env, child: None, restarts: 0 };
        s.spawn().await;
        s
    }

    /// The log of its current run.
    pub fn log_path(&self) -> PathBuf {
        bin_dir().join("e2e-logs").join(format!("{}-{}-{}.log", self.name, self.bin, self.restarts))
    }

    async fn spawn(&mut self) {
        std::fs::create_dir_all(bin_dir().join("e2e-logs")).expect("log dir");
        let log_path = self.log_path();
        let mut cmd = Command::new(bin(self.bin));
        cmd.env("CHAT__HTTP__WORKERS", "2").env("RUST_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.port = launch(&mut cmd, &log_path, &mut self.child).await;
    }

    pub fn base(&self) -> String {
        local_base(self.port)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// authz (seeded with the demo tenants) and rooms wired to it, sharing the test's prefix; the
/// contacts service too once `start_contacts` was called.
pub struct Cluster {
    pub authz: Service,
    pub rooms: Rooms,
    pub contacts: Option<Service>,
    pub line_gateway: Option<Service>,
}

impl Cluster {
    pub async fn start(tag: &str, authz_env: &[(&str, &str)]) -> Cluster {
        Self::start_with(tag, authz_env, &[]).await
    }

    /// As `start`, with extra environment for rooms too.
    pub async fn start_with(tag: &str, authz_env: &[(&str, &str)], rooms_env: &[(&str, &str)]) -> Cluster {
        let shape = |_: &Vhost, env: &mut Vec<(String, String)>| {
            env.extend(authz_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        };
        Self::start_shaped(tag, shape, rooms_env).await
    }

    /// As `start`, with authz's environment shaped by the test (later entries win), e.g. its
    /// broker URL pointed through a proxy the test controls.
    pub async fn start_shaped(
        tag: &str,
        shape_authz: impl FnOnce(&Vhost, &mut Vec<(String, String)>),
        rooms_env: &[(&str, &str)],
    ) -> Cluster {
        let name = unique(tag);
        let vhost = Vhost::create(&name);
        let mut env = Service::base_env(&name, &format!("{name}_authz"), &vhost);
        env.push(("CHAT__INTERNAL__TOKEN".into(), INTERNAL_TOKEN.into()));
        shape_authz(&vhost, &mut env);
        let seeded = Service::run_command("authz", &env, &["seed-demo"]);
        assert!(seeded.status.success(), "seed-demo: {}", String::from_utf8_lossy(&seeded.stderr));
        let authz = Service::start("authz", &name, vhost.clone(), env).await;
        let mut opts = RoomsOptions::new(tag);
        opts.name = name;
        opts.vhost = Some(vhost);
        let mut opts = opts
            .env("CHAT__AUTH__JWKS_URL", &format!("{}/v1/auth/jwks", authz.base()))
            .env("CHAT__AUTHZ__URL", &authz.base())
            .env("CHAT__AUTHZ__INTERNAL_TOKEN", INTERNAL_TOKEN);
        for (k, v) in rooms_env {
            opts = opts.env(k, v);
        }
        let rooms = Rooms::start(opts).await;
        Cluster { authz, rooms, contacts: None, line_gateway: None }
    }

    /// Start the contacts service, wired to this cluster's authz and bus.
    pub async fn start_contacts(&mut self) {
        let name = self.authz.name.clone();
        let node = [("CHAT__CONTACTS__NODE_ID".to_owned(), format!("{name}-contacts"))];
        self.contacts = Some(self.start_service("contacts", "contacts", &node).await);
    }

    /// Start the LINE gateway, wired to this cluster's authz and bus, with `LINE_SECRETS_KEY`
    /// and `extra` environment (later entries win).
    pub async fn start_line_gateway(&mut self, extra: &[(&str, &str)]) {
        let name = self.authz.name.clone();
        let mut env = vec![
            ("CHAT__LINE__NODE_ID".to_owned(), format!("{name}-line")),
            ("CHAT__LINE__SECRETS_KEY".to_owned(), LINE_SECRETS_KEY.to_owned()),
            // Who may read a LINE medium besides the channel's member: asked of rooms.
            ("CHAT__ROOMS__URL".to_owned(), self.rooms.base()),
            ("CHAT__REDIS__URL".to_owned(), env_or("E2E_REDIS_URL", "redis://127.0.0.1:6379")),
            ("CHAT__REDIS__PREFIX".to_owned(), format!("{name}:")),
            ("CHAT__MEDIA__PATH".to_owned(), std::env::temp_dir().join(format!("{name}-media")).display().to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.line_gateway = Some(self.start_service("line-gateway", "line", &env).await);
    }

    /// A service binary with this cluster's backends, authz's JWKS and decisions, and `extra`.
    async fn start_service(&self, bin: &'static str, schema: &str, extra: &[(String, String)]) -> Service {
        let name = self.authz.name.clone();
        let mut env = Service::base_env(&name, &format!("{name}_{schema}"), &self.authz.vhost);
        env.extend([
            ("CHAT__AUTH__JWKS_URL".to_owned(), format!("{}/v1/auth/jwks", self.authz.base())),
            ("CHAT__AUTHZ__URL".to_owned(), self.authz.base()),
            ("CHAT__AUTHZ__INTERNAL_TOKEN".to_owned(), INTERNAL_TOKEN.to_owned()),
        ]);
        env.extend(extra.iter().cloned());
        Service::start(bin, &name, self.authz.vhost.clone(), env).await
    }

    /// The LINE gateway's base URL (`start_line_gateway` first).
    pub fn line_gateway(&self) -> String {
        self.line_gateway.as_ref().expect("start_line_gateway first").base()
    }

    /// The contacts service's base URL (`start_contacts` first).
    pub fn contacts(&self) -> String {
        self.contacts.as_ref().expect("start_contacts first").base()
    }

    /// A connection to this cluster's bus, to publish the events of a service the test stands in
    /// for (the LINE gateway).
    pub async fn bus(&self) -> chat_bus::SharedBus {
        let settings = chat_bus::BrokerSettings {
            url: self.authz.vhost.url(),
            prefix: format!("{}.", self.authz.name),
            shards: 4,
            prefetch: 16,
            heartbeat_secs: 10,
            delivery_limit: 50,
        };
        chat_bus::connect(&settings).await.expect("connecting to the broker")
    }

    /// Publish a change event on this cluster's bus, as its owning service would.
    pub async fn publish(&self, bus: &chat_bus::SharedBus, event: chat_protocol::events::ChangeEvent) {
        let envelope = chat_protocol::events::EventEnvelope::new(event);
        bus.publish_event(serde_json::to_vec(&envelope).expect("an event encodes")).await.expect("event published");
    }

    /// Log in a demo user (`<username>-demo-pass`).
    pub async fn login(&self, tenant: &str, username: &str) -> String {
        let body =
            serde_json::json!({"tenant": tenant, "username": username, "password": format!("{username}-demo-pass")});
        let a = call("POST", &format!("{}/v1/auth/login", self.authz.base()), None, Some(&body.to_string())).await;
        assert_eq!(a.status, 200, "login {username}@{tenant}: {}", a.body);
        a.body["access_token"].as_str().expect("token").to_owned()
    }
}

/// Poll `f` every 100 ms until it returns `Some` (at most `secs`).
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll `/health/ready` until it answers 200 (30 s at most).
pub async fn wait_ready(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = http();
    loop {
        if let Ok(res) = client.get(format!("http://127.0.0.1:{port}/health/ready")).send().await {
            if res.status().is_success() {
                return;
            }
        }
        if Instant::now() > deadline {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            panic!("service on port {port} not ready within 30 s; log {}:\n{tail}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn http() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(15)).finish()
}

pub fn token(user: &str, tenant: &str) -> String {
    chat_auth::mint(&auth_settings(SECRET), user, tenant, &[], 600)
}

pub fn auth_settings(secret: &str) -> chat_auth::AuthSettings {
    chat_auth::AuthSettings {
        jwt_secret: secrecy::SecretString::from(secret.to_owned()),
        jwks_url: String::new(),
        issuer: "chat".into(),
        audience: "chat-api".into(),
        leeway_secs: 0,
    }
}

/// An HTTP answer: status and JSON body (Null when not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

pub async fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    call_with(method, url, token, body, &[]).await
}

/// `call` with extra request headers.
pub async fn call_with(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let client = http();
    let mut req = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        "PATCH" => client.patch(url),
        "PUT" => client.put(url),
        "DELETE" => client.delete(url),
        other => panic!("method {other}"),
    };
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let sent = match body {
        Some(b) => req.insert_header(("Content-Type", "application/json")).send_body(b.to_owned()).await,
        None => req.send().await,
    };
    // A connection failure (the service is down) is status 0, for tests that expect outages.
    let mut res = match sent {
        Ok(res) => res,
        Err(e) => return Answer { status: 0, body: Value::String(e.to_string()), retry_after: None },
    };
    let bytes = res.body().limit(16 * 1024 * 1024).await.expect("body");
    let retry_after = res.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Answer { status: res.status().as_u16(), body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), retry_after }
}

/// Create a room as `creator` (tenant `tenant`) with these other members; returns its id.
pub async fn create_room(base: &str, creator: &str, tenant: &str, members: &[&str], name: Option<&str>) -> String {
    let body = serde_json::json!({"members": members, "name": name});
    let a = call("POST", &format!("{base}/v1/rooms"), Some(&token(creator, tenant)), Some(&body.to_string())).await;
    assert!(a.status == 201 || a.status == 200, "create room: {} {}", a.status, a.body);
    a.body["id"].as_str().expect("room id").to_owned()
}

pub async fn post_text(base: &str, room: &str, user: &str, tenant: &str, client_msg_id: &str, text: &str) -> Answer {
    let body = serde_json::json!({"client_msg_id": client_msg_id, "body": {"type": "text", "text": text}});
    call("POST", &format!("{base}/v1/rooms/{room}/messages"), Some(&token(user, tenant)), Some(&body.to_string())).await
}

/// All events of a room, oldest first, as `user` sees them.
pub async fn history(base: &str, room: &str, user: &str, tenant: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let a = call(
            "GET",
            &format!("{base}/v1/rooms/{room}/messages?after={after}&limit=500"),
            Some(&token(user, tenant)),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "history: {}", a.body);
        let page = a.body["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else { break };
        after = last["seq"].as_i64().expect("seq");
        all.extend(page);
    }
    all
}

pub fn messages(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "message").collect()
}

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of the engine's protocol.
pub struct Ws {
    stream: Stream,
}

/// What the server did when asked to read a frame.
#[derive(Debug)]
pub enum Got {
    Frame(Value),
    Closed(Option<u16>),
    Timeout,
}

impl Ws {
    pub async fn connect(url: &str, token: &str) -> Ws {
        Self::try_connect(url, Some(token)).await.unwrap_or_else(|e| panic!("ws connect: {e}"))
    }

    pub async fn try_connect(url: &str, token: Option<&str>) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(t) = token {
            request.headers_mut().insert("Authorization", format!("Bearer {t}").parse().expect("header"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws { stream })
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.expect("ws send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        let _ = self.stream.send(message).await;
    }

    /// The next JSON frame, a close, or nothing within `secs`.
    pub async fn next(&mut self, secs: u64) -> Got {
        let deadline = tokio::time::sleep(Duration::from_secs(secs));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return Got::Timeout,
                msg = self.stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => return Got::Frame(serde_json::from_str(&t).expect("json frame")),
                    Some(Ok(Message::Close(frame))) => return Got::Closed(frame.map(|f: CloseFrame| u16::from(f.code))),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Got::Closed(None),
                }
            }
        }
    }

    /// The next frame matching `pred`, skipping others; panics after `secs`.
    pub async fn expect(&mut self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs().max(1);
            match self.next(left).await {
                Got::Frame(f) if pred(&f) => return f,
                Got::Frame(_) => {}
                other => panic!("waiting for {what}: {other:?}"),
            }
            if Instant::now() > deadline {
                panic!("waiting for {what}: timeout");
            }
        }
    }

    /// Frames until nothing arrives for `quiet_secs`.
    pub async fn drain(&mut self, quiet_secs: u64) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Got::Frame(f) = self.next(quiet_secs).await {
            frames.push(f);
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::{broker_span, listening_port};

    #[test]
    fn the_broker_of_an_amqp_url_is_its_host_and_port() {
        for (url, broker) in [
            ("amqp://guest:guest@127.0.0.1:5672/e2e_x_1_0", "127.0.0.1:5672"),
            ("amqp://guest:guest@127.0.0.1:5672/%2f", "127.0.0.1:5672"),
            ("amqp://localhost:5672", "localhost:5672"),
            ("amqp://u:p@h:1?heartbeat=5", "h:1"),
        ] {
            assert_eq!(&url[broker_span(url)], broker, "{url}");
        }
    }

    #[test]
    fn the_port_is_read_from_a_listening_line_flattened_or_not() {
        let flat = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"INFO","message":"listening","service":"authz","port":41234,"target":"chat_kit::service"}"#;
        assert_eq!(listening_port(flat), Some(41234));
        let nested = r#"{"timestamp":"t","level":"INFO","fields":{"message":"listening","port":5001},"target":"x"}"#;
        assert_eq!(listening_port(nested), Some(5001));
        assert_eq!(listening_port(r#"{"message":"listening","port":"7003"}"#), Some(7003));
    }

    #[test]
    fn other_lines_have_no_port() {
        for line in [
            r#"{"level":"INFO","message":"telemetry started","service":"rooms"}"#,
            r#"{"level":"INFO","message":"listening"}"#,
            r#"{"level":"INFO","message":"listening","port":0}"#,
            r#"{"level":"INFO","message":"listening","port":70000}"#,
            r#"{"level":"INFO","message":"connected","port":5432}"#,
            r#"{"level":"INFO","message":"listen"#,
            "2025-01-01T00:00:00Z  INFO listening port=8080",
            "",
        ] {
            assert_eq!(listening_port(line), None, "{line}");
        }
    }
}
