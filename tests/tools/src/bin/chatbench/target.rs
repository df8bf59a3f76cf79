//! The systems under test: the rooms service against the real RabbitMQ, Redis and PostgreSQL
//! (its own vhost, schema and key prefix, removed afterwards); the same with authz and the LINE
//! gateway beside it and the LINE platform simulator in LINE's place; the standalone binary
//! (every service in one process, embedded backends: in-process bus and presence, SQLite in a
//! temporary directory); and the floor server.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SECRET: &str = "chatbench-secret-chatbench-secret-0123456789";
/// The token services present to authz's `/internal/` endpoints (32 characters at least).
const INTERNAL_TOKEN: &str = "chatbench-internal-token-chatbench-0123";
/// The LINE gateway's key of channel secrets at rest (base64 of 32 bytes).
const LINE_SECRETS_KEY: &str = "Y2hhdGJlbmNoLWxpbmUtc2VjcmV0cy1rZXktMDEyMzQ=";
/// Shards of the room command queues; every service on one bus must agree.
const SHARDS: &str = "16";

pub struct Target {
    pub name: String,
    pub base: String,
    pub ws: String,
    pub pid: u32,
    /// How its users get tokens.
    auth: Auth,
    /// Kept for its `Drop`: the processes, vhost, schemas and keys of this target.
    _owned: Owned,
}

/// How a target's users authenticate.
enum Auth {
    /// HS256 tokens minted here with [`SECRET`] (the rooms service on its own).
    Minted,
    /// No tokens (the floor).
    None,
    /// The standalone's authz: users are made in tenant `acme` by its demo admin and log in;
    /// their tokens (EdDSA, 15 minutes) by user id.
    Accounts { admin_token: String, tokens: RefCell<HashMap<String, String>> },
}

/// The tenant of the standalone's benchmark users (a demo tenant; its admin makes them).
const STANDALONE_TENANT: &str = "acme";
/// The password of every benchmark user of the standalone.
const STANDALONE_PASSWORD: &str = "chatbench-user-pass";

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

async fn wait_ready(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            let client = awc::Client::default();
            if let Ok(res) = client.get(format!("http://127.0.0.1:{port}/health/ready")).send().await {
                if res.status().is_success() {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("service on {port} not ready in 60 s")
}

/// Poll `log` until `child` (started on port 0) has logged the port it bound, `secs` at most.
async fn wait_port(child: &mut Child, log: &Path, secs: u64) -> anyhow::Result<u16> {
    e2e::try_wait_port(child, log, secs).await.map_err(anyhow::Error::msg)
}

/// Where the services' binaries are (`--bin-dir`; set once, before any target starts).
static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The default of `--bin-dir`.
pub const DEFAULT_BIN_DIR: &str = "target/release";

/// Take the services' binaries from `dir` (`--bin-dir`).
pub fn set_bin_dir(dir: PathBuf) {
    let _ = BIN_DIR.set(dir);
}

/// The directory of the services' binaries (`--bin-dir`, `target/release` by default).
pub fn bin_dir() -> PathBuf {
    BIN_DIR.get().map_or_else(|| PathBuf::from(DEFAULT_BIN_DIR), Clone::clone)
}

/// A service binary of the `--bin-dir` directory.
fn service_bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// How to build a missing binary.
fn build_hint(bin: &str) -> String {
    if bin_dir().ends_with("debug") {
        format!("build it: cargo build -p {bin}")
    } else {
        format!("build it: cargo build --release -p {bin}, or point --bin-dir at its directory")
    }
}

/// The sum of the samples of metric `name` (every label set) at `base`/metrics.
pub async fn metric_at(base: &str, name: &str) -> f64 {
    let client = awc::Client::default();
    let Ok(mut res) = client.get(format!("{base}/metrics")).send().await else { return 0.0 };
    let text = res.body().limit(1 << 24).await.map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// What a target started and created: stopped and removed when dropped (the processes first,
/// newest first), also when starting it failed half-way.
#[derive(Default)]
struct Owned {
    children: Vec<Child>,
    vhost: Option<String>,
    schemas: Vec<String>,
    redis_prefix: Option<String>,
    dirs: Vec<PathBuf>,
}

impl Owned {
    /// A RabbitMQ vhost `name` of this target; its AMQP URL (the default vhost's when
    /// `rabbitmqctl` cannot make one).
    fn vhost(&mut self, name: &str) -> String {
        let made = quiet(Command::new("rabbitmqctl").args(["-q", "add_vhost", name]))
            && quiet(Command::new("rabbitmqctl").args([
                "-q",
                "set_permissions",
                "-p",
                name,
                "guest",
                ".*",
                ".*",
                ".*",
            ]));
        if made {
            self.vhost = Some(name.to_owned());
            format!("amqp://guest:guest@127.0.0.1:5672/{name}")
        } else {
            "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()
        }
    }

    /// Start service binary `bin` on port 0 with `env`, its output to `<tag>-<bin>.log` in the
    /// temp dir; wait for its port and readiness. Its pid and port.
    async fn start(&mut self, bin: &str, tag: &str, env: &[(&str, String)]) -> anyhow::Result<(u32, u16)> {
        let path = service_bin(bin);
        let log_path = std::env::temp_dir().join(format!("{tag}-{bin}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&path)
            .env("CHAT__HTTP__PORT", "0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: {e} ({})", path.display(), build_hint(bin)))?;
        let pid = child.id();
        self.children.push(child);
        let child = self.children.last_mut().expect("just pushed");
        let port = wait_port(child, &log_path, 60).await?;
        wait_ready(port).await?;
        Ok((pid, port))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(v) = &self.vhost {
            quiet(Command::new("rabbitmqctl").args(["-q", "delete_vhost", v]));
        }
        for s in &self.schemas {
            quiet(Command::new("psql").args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "chat",
                "-qc",
                &format!("drop schema if exists \"{s}\" cascade"),
            ]));
        }
        if let Some(prefix) = &self.redis_prefix {
            let keys = Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "--scan", "--pattern", &format!("{prefix}*")])
                .output();
            if let Ok(out) = keys {
                for key in String::from_utf8_lossy(&out.stdout).lines() {
                    quiet(Command::new("redis-cli").args(["-h", "127.0.0.1", "del", key]));
                }
            }
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The backends of one service of target `name`: its schema, the target's vhost, prefix and
/// shards.
fn backend_env(name: &str, schema: &str, amqp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CHAT__DATABASE__SCHEMA", schema.to_owned()),
        ("CHAT__AMQP__URL", amqp.to_owned()),
        ("CHAT__AMQP__PREFIX", format!("{name}.")),
        ("CHAT__AMQP__SHARDS", SHARDS.to_owned()),
    ]
}

/// The rooms service's environment in target `name`, `passivate_after_secs` as given.
/// Frames in flight per session the benchmark's targets allow (the default is 128).
const BENCH_MAX_IN_FLIGHT: &str = "1024";

fn rooms_env(name: &str, amqp: &str, passivate_after_secs: u64) -> Vec<(&'static str, String)> {
    let mut env = backend_env(name, name, amqp);
    env.extend([
        ("CHAT__NODE__ID", name.to_owned()),
        ("CHAT__REDIS__PREFIX", format!("{name}:")),
        ("CHAT__AUTH__JWT_SECRET", SECRET.to_owned()),
        ("CHAT__ROOMS__PASSIVATE_AFTER_SECS", passivate_after_secs.to_string()),
        ("CHAT__LIMITS__MAX_MEMBERS", "20000".to_owned()),
        // The benchmark's senders post far beyond a person's budget on purpose.
        ("CHAT__QUOTA__POSTS_PER_MINUTE", "0".to_owned()),
        ("CHAT__QUOTA__ROOMS_PER_MINUTE", "0".to_owned()),
        // One client session sends a whole room's load (up to 7,000 msg/s): past the default
        // 128 frames in flight per session it would be refused at tens of milliseconds of
        // latency. The bound is per session; real rooms get their load from many.
        ("CHAT__WS__MAX_IN_FLIGHT", BENCH_MAX_IN_FLIGHT.to_owned()),
        // Warnings, and the `listening` line with the port (chat_kit's, or rooms' own).
        ("CHAT__TELEMETRY__LOG_LEVEL", "warn,chat_kit::service=info,rooms::app=info".to_owned()),
    ]);
    env
}

impl Target {
    /// The rooms service (of `--bin-dir`), `passivate_after_secs` as given.
    pub async fn rooms(tag: &str, passivate_after_secs: u64) -> anyhow::Result<Target> {
        let name = format!("bench_{tag}_{}", std::process::id());
        let mut owned = Owned::default();
        owned.redis_prefix = Some(format!("{name}:"));
        owned.schemas.push(name.clone());
        let amqp = owned.vhost(&name);
        let (pid, port) = owned.start("rooms", &name, &rooms_env(&name, &amqp, passivate_after_secs)).await?;
        Ok(Target::engine(name, port, pid, owned))
    }

    fn engine(name: String, port: u16, pid: u32, owned: Owned) -> Target {
        Target {
            name,
            base: format!("http://127.0.0.1:{port}"),
            ws: format!("ws://127.0.0.1:{port}/v1/ws"),
            pid,
            auth: Auth::Minted,
            _owned: owned,
        }
    }

    /// The standalone binary (of `--bin-dir`): every service in one process on one port (0: a
    /// free one), the in-process bus and presence, SQLite files in a temporary directory
    /// (removed afterwards), its demo data seeded. Users are made through its authz
    /// ([`Target::users`]); the demo admin's token comes from the `demo.env` it writes.
    pub async fn standalone(tag: &str) -> anyhow::Result<Target> {
        let name = format!("bench_{tag}_{}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut owned = Owned::default();
        owned.dirs.push(dir.clone());
        let env = [
            ("CHAT_RUN_DIR", dir.display().to_string()),
            ("CHAT__DATABASE__URL", format!("sqlite://{}/rooms.sqlite?mode=rwc", dir.display())),
            ("CHAT__NODE__ID", name.clone()),
            ("CHAT__QUOTA__POSTS_PER_MINUTE", "0".to_owned()),
            ("CHAT__QUOTA__ROOMS_PER_MINUTE", "0".to_owned()),
            ("CHAT__WS__MAX_IN_FLIGHT", BENCH_MAX_IN_FLIGHT.to_owned()),
            ("CHAT__LIMITS__MAX_MEMBERS", "20000".to_owned()),
            ("CHAT__TELEMETRY__LOG_FORMAT", "json".to_owned()),
            ("CHAT__TELEMETRY__LOG_LEVEL", "warn,chat_kit::service=info".to_owned()),
        ];
        let (pid, port) = owned.start("standalone", &name, &env).await?;
        let demo = std::fs::read_to_string(dir.join("demo.env"))
            .map_err(|e| anyhow::anyhow!("the standalone's demo.env in {}: {e}", dir.display()))?;
        let admin_token = demo
            .lines()
            .find_map(|l| l.strip_prefix("ACME_ADMIN_TOKEN="))
            .ok_or_else(|| anyhow::anyhow!("no ACME_ADMIN_TOKEN in the standalone's demo.env"))?
            .to_owned();
        let mut t = Target::engine(name, port, pid, owned);
        t.auth = Auth::Accounts { admin_token, tokens: RefCell::new(HashMap::new()) };
        Ok(t)
    }

    /// `n` users of this target named `prefix0`, `prefix1`, ...: their user ids. The standalone's
    /// are made by its tenant admin and log in (their tokens kept for [`Target::token`]).
    pub async fn users(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let Auth::Accounts { admin_token, tokens } = &self.auth else { return Ok(names) };
        let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
        let mut ids = Vec::with_capacity(n);
        for username in names {
            let id = format!("{username}@{STANDALONE_TENANT}");
            if !tokens.borrow().contains_key(&id) {
                let mut res = client
                    .post(format!("{}/v1/admin/users", self.base))
                    .insert_header(("Authorization", format!("Bearer {admin_token}")))
                    .send_json(&serde_json::json!({"username": username, "password": STANDALONE_PASSWORD}))
                    .await
                    .map_err(|e| anyhow::anyhow!("create user {username}: {e}"))?;
                let body = res.body().limit(1 << 20).await?;
                // 409: made by an earlier scenario of this run.
                anyhow::ensure!(
                    res.status().is_success() || res.status().as_u16() == 409,
                    "create user {username}: {} {}",
                    res.status(),
                    String::from_utf8_lossy(&body)
                );
                let mut res = client
                    .post(format!("{}/v1/auth/login", self.base))
                    .send_json(&serde_json::json!({"tenant": STANDALONE_TENANT, "username": username,
                                                    "password": STANDALONE_PASSWORD}))
                    .await
                    .map_err(|e| anyhow::anyhow!("login {username}: {e}"))?;
                let body: serde_json::Value = res.json().limit(1 << 20).await?;
                let token = body["access_token"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("login {username}: {} {body}", res.status()))?;
                tokens.borrow_mut().insert(id.clone(), token.to_owned());
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// The floor server, as a child process of this binary.
    pub async fn floor() -> anyhow::Result<Target> {
        let log_path = std::env::temp_dir().join(format!("bench_floor_{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(std::env::current_exe()?)
            .args(["floor", "0"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        let pid = child.id();
        let mut owned = Owned::default();
        owned.children.push(child);
        let started = async {
            let port = wait_port(&mut owned.children[0], &log_path, 10).await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                anyhow::ensure!(Instant::now() < deadline, "floor server did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(port)
        }
        .await;
        let port = started.map_err(|e| anyhow::anyhow!("floor server: {e}"))?;
        Ok(Target {
            name: "floor".into(),
            base: format!("http://127.0.0.1:{port}"),
            ws: format!("ws://127.0.0.1:{port}/"),
            pid,
            auth: Auth::None,
            _owned: owned,
        })
    }

    pub fn is_floor(&self) -> bool {
        matches!(self.auth, Auth::None)
    }

    /// An access token of `user` (for the standalone: one of [`Target::users`]).
    pub fn token(&self, user: &str) -> String {
        if let Auth::Accounts { tokens, .. } = &self.auth {
            return tokens.borrow().get(user).cloned().unwrap_or_default();
        }
        let settings = chat_auth::AuthSettings {
            jwt_secret: secrecy::SecretString::from(SECRET.to_owned()),
            jwks_url: String::new(),
            issuer: "chat".into(),
            audience: "chat-api".into(),
            leeway_secs: 5,
        };
        chat_auth::mint(&settings, user, "bench", &[], 6 * 3600)
    }

    /// The URL a session of `user` in `room` connects to.
    pub fn session_url(&self, room: &str) -> String {
        if self.is_floor() {
            format!("{}?room={room}", self.ws)
        } else {
            self.ws.clone()
        }
    }

    /// Create a room of these members (the first creates it; the rest are added in batches).
    pub async fn room(&self, members: &[String], name: &str) -> anyhow::Result<String> {
        if self.is_floor() {
            return Ok(uuid::Uuid::now_v7().to_string());
        }
        let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
        let first: Vec<&String> = members.iter().skip(1).take(200).collect();
        let mut res = client
            .post(format!("{}/v1/rooms", self.base))
            .insert_header(("Authorization", format!("Bearer {}", self.token(&members[0]))))
            .send_json(&serde_json::json!({"members": first, "name": name}))
            .await
            .map_err(|e| anyhow::anyhow!("{}: create room: {e}", self.name))?;
        let body: serde_json::Value = res.json().limit(1 << 24).await?;
        let id = body["id"].as_str().ok_or_else(|| anyhow::anyhow!("{}: create room: {body}", self.name))?.to_owned();
        for chunk in members[members.len().min(201)..].chunks(500) {
            let mut res = client
                .post(format!("{}/v1/rooms/{id}/members", self.base))
                .insert_header(("Authorization", format!("Bearer {}", self.token(&members[0]))))
                .send_json(&serde_json::json!({"users": chunk}))
                .await
                .map_err(|e| anyhow::anyhow!("add members: {e}"))?;
            let _: serde_json::Value = res.json().limit(1 << 24).await?;
        }
        Ok(id)
    }

    pub async fn metric(&self, name: &str) -> f64 {
        metric_at(&self.base, name).await
    }
}

/// The rooms service with authz and the LINE gateway beside it on the same backends (one vhost,
/// a schema each), as deployed: tokens are authz's (EdDSA, its JWKS), decisions are authz's,
/// and the LINE platform simulator (`line_sim`, served by a thread of this process) plays LINE
/// for the gateway.
pub struct LineTarget {
    /// rooms (`base`, `ws`, `pid`); it also owns authz and the gateway.
    pub engine: Target,
    pub authz: String,
    pub gateway: String,
    pub authz_pid: u32,
    pub gateway_pid: u32,
    pub sim: line_sim::Running,
}

impl LineTarget {
    pub async fn start(tag: &str) -> anyhow::Result<LineTarget> {
        let name = format!("bench_{tag}_{}", std::process::id());
        let media = std::env::temp_dir().join(format!("{name}-media"));
        let mut owned = Owned::default();
        owned.redis_prefix = Some(format!("{name}:"));
        owned.dirs.push(media.clone());
        let amqp = owned.vhost(&name);
        let (authz_schema, line_schema) = (format!("{name}_authz"), format!("{name}_line"));
        owned.schemas.extend([name.clone(), authz_schema.clone(), line_schema.clone()]);

        let mut authz_env = backend_env(&name, &authz_schema, &amqp);
        authz_env.extend([
            ("CHAT__INTERNAL__TOKEN", INTERNAL_TOKEN.to_owned()),
            ("CHAT__TELEMETRY__LOG_LEVEL", "warn,chat_kit::service=info".to_owned()),
        ]);
        // The demo tenants and members (acme's admin and alice, passwords `<name>-demo-pass`).
        let seeded = Command::new(service_bin("authz"))
            .arg("seed-demo")
            .envs(authz_env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .map_err(|e| anyhow::anyhow!("authz seed-demo: {e} ({})", build_hint("authz")))?;
        anyhow::ensure!(seeded.status.success(), "authz seed-demo: {}", String::from_utf8_lossy(&seeded.stderr));
        let (authz_pid, authz_port) = owned.start("authz", &name, &authz_env).await?;
        let authz = format!("http://127.0.0.1:{authz_port}");
        let of_authz = [
            ("CHAT__AUTH__JWT_SECRET", String::new()),
            ("CHAT__AUTH__JWKS_URL", format!("{authz}/v1/auth/jwks")),
            ("CHAT__AUTHZ__URL", authz.clone()),
            ("CHAT__AUTHZ__INTERNAL_TOKEN", INTERNAL_TOKEN.to_owned()),
        ];

        let mut env = rooms_env(&name, &amqp, 300);
        env.extend(of_authz.iter().cloned());
        let (pid, port) = owned.start("rooms", &name, &env).await?;

        let sim = line_sim::start("127.0.0.1:0").map_err(|e| anyhow::anyhow!("the LINE platform simulator: {e}"))?;
        let mut env = backend_env(&name, &line_schema, &amqp);
        env.extend(of_authz.iter().cloned());
        env.extend([
            ("CHAT__LINE__NODE_ID", format!("{name}-line")),
            ("CHAT__LINE__SECRETS_KEY", LINE_SECRETS_KEY.to_owned()),
            ("CHAT__LINE__API_BASE_URL", sim.base_url.clone()),
            ("CHAT__LINE__DATA_API_BASE_URL", sim.base_url.clone()),
            ("CHAT__REDIS__PREFIX", format!("{name}:")),
            ("CHAT__MEDIA__PATH", media.display().to_string()),
            ("CHAT__TELEMETRY__LOG_LEVEL", "warn,chat_kit::service=info".to_owned()),
        ]);
        let (gateway_pid, gateway_port) = owned.start("line-gateway", &name, &env).await?;
        Ok(LineTarget {
            engine: Target::engine(name, port, pid, owned),
            authz,
            gateway: format!("http://127.0.0.1:{gateway_port}"),
            authz_pid,
            gateway_pid,
            sim,
        })
    }

    /// The processes of the engine: rooms, authz, the LINE gateway.
    pub fn pids(&self) -> [(&'static str, u32); 3] {
        [("rooms", self.engine.pid), ("authz", self.authz_pid), ("line-gateway", self.gateway_pid)]
    }
}
