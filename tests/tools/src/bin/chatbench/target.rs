//! The systems under test: the rooms service against the real RabbitMQ, Redis and PostgreSQL
//! (its own vhost, schema and key prefix, removed afterwards), and the floor server.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "chatbench-secret-chatbench-secret-0123456789";

pub struct Target {
    pub name: String,
    pub base: String,
    pub ws: String,
    pub pid: u32,
    child: Child,
    vhost: Option<String>,
    schema: Option<String>,
    prefix: String,
}

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

/// Kill `child` when `result` is an error (a child that never became usable is not left behind).
fn or_kill<T>(child: &mut Child, result: anyhow::Result<T>) -> anyhow::Result<T> {
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

impl Target {
    /// The rooms service (release build next to this binary), `passivate_after_secs` as given.
    pub async fn rooms(tag: &str, passivate_after_secs: u64) -> anyhow::Result<Target> {
        let name = format!("bench_{tag}_{}", std::process::id());
        let vhost = quiet(Command::new("rabbitmqctl").args(["-q", "add_vhost", &name]))
            && quiet(Command::new("rabbitmqctl").args([
                "-q",
                "set_permissions",
                "-p",
                &name,
                "guest",
                ".*",
                ".*",
                ".*",
            ]));
        let amqp = if vhost {
            format!("amqp://guest:guest@127.0.0.1:5672/{name}")
        } else {
            "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()
        };
        let bin = std::env::current_exe()?.with_file_name("rooms");
        let log_path = std::env::temp_dir().join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(&bin)
            .env("CHAT__HTTP__PORT", "0")
            .env("CHAT__NODE__ID", &name)
            .env("CHAT__DATABASE__SCHEMA", &name)
            .env("CHAT__AMQP__URL", amqp)
            .env("CHAT__AMQP__PREFIX", format!("{name}."))
            .env("CHAT__AMQP__SHARDS", "16")
            .env("CHAT__REDIS__PREFIX", format!("{name}:"))
            .env("CHAT__AUTH__JWT_SECRET", SECRET)
            .env("CHAT__ROOMS__PASSIVATE_AFTER_SECS", passivate_after_secs.to_string())
            .env("CHAT__LIMITS__MAX_MEMBERS", "20000")
            // The benchmark's senders post far beyond a person's budget on purpose.
            .env("CHAT__QUOTA__POSTS_PER_MINUTE", "0")
            .env("CHAT__QUOTA__ROOMS_PER_MINUTE", "0")
            // Warnings, and the `listening` line with the port (chat_kit's, or rooms' own).
            .env("CHAT__TELEMETRY__LOG_LEVEL", "warn,chat_kit::service=info,rooms::app=info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: {e} (build it: cargo build --release -p rooms)", bin.display()))?;
        let pid = child.id();
        let started = async {
            let port = wait_port(&mut child, &log_path, 60).await?;
            wait_ready(port).await?;
            anyhow::Ok(port)
        }
        .await;
        let port = or_kill(&mut child, started)?;
        Ok(Target {
            name: name.clone(),
            base: format!("http://127.0.0.1:{port}"),
            ws: format!("ws://127.0.0.1:{port}/v1/ws"),
            pid,
            child,
            vhost: vhost.then(|| name.clone()),
            schema: Some(name.clone()),
            prefix: format!("{name}:"),
        })
    }

    /// The floor server, as a child process of this binary.
    pub async fn floor() -> anyhow::Result<Target> {
        let log_path = std::env::temp_dir().join(format!("bench_floor_{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["floor", "0"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        let pid = child.id();
        let started = async {
            let port = wait_port(&mut child, &log_path, 10).await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                anyhow::ensure!(Instant::now() < deadline, "floor server did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(port)
        }
        .await;
        let port = or_kill(&mut child, started).map_err(|e| anyhow::anyhow!("floor server: {e}"))?;
        Ok(Target {
            name: "floor".into(),
            base: format!("http://127.0.0.1:{port}"),
            ws: format!("ws://127.0.0.1:{port}/"),
            pid,
            child,
            vhost: None,
            schema: None,
            prefix: String::new(),
        })
    }

    pub fn is_floor(&self) -> bool {
        self.name == "floor"
    }

    pub fn token(&self, user: &str) -> String {
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
            .map_err(|e| anyhow::anyhow!("create room: {e}"))?;
        let body: serde_json::Value = res.json().limit(1 << 24).await?;
        let id = body["id"].as_str().ok_or_else(|| anyhow::anyhow!("create room: {body}"))?.to_owned();
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
        let client = awc::Client::default();
        let Ok(mut res) = client.get(format!("{}/metrics", self.base)).send().await else { return 0.0 };
        let text = res.body().limit(1 << 24).await.map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(v) = &self.vhost {
            quiet(Command::new("rabbitmqctl").args(["-q", "delete_vhost", v]));
        }
        if let Some(s) = &self.schema {
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
        if !self.prefix.is_empty() {
            let keys = Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "--scan", "--pattern", &format!("{}*", self.prefix)])
                .output();
            if let Ok(out) = keys {
                for key in String::from_utf8_lossy(&out.stdout).lines() {
                    quiet(Command::new("redis-cli").args(["-h", "127.0.0.1", "del", key]));
                }
            }
        }
    }
}
