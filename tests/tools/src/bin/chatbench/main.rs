//! chatbench: the engine's benchmark suite. It drives the real rooms service (release build)
//! against the real RabbitMQ, Redis and PostgreSQL, the standalone binary (every service in one
//! process, embedded backends) and a bare WebSocket broadcast server (the floor) in the same
//! run, with many simulated users over the engine's WebSocket protocol. For the LINE figure,
//! authz and the LINE gateway run beside rooms, and the LINE platform simulator (`line_sim`)
//! sends the LINE user's webhooks.
//!
//! `chatbench run [--full] [--out DIR] [--only NAME,...] [--bin-dir DIR]` writes
//! `DIR/results.json`, `DIR/results.md` and SVG plots; `--only` runs just the named scenarios
//! (see [`SCENARIOS`]; `latency` includes the floor's and the standalone's, `throughput` the
//! standalone's); `--bin-dir` is where the services' binaries are (default `target/release`;
//! `target/debug` for a smoke run). `chatbench report DIR` rewrites the table from
//! `DIR/results.json`. `chatbench floor PORT` is the floor server (started by `run` on port 0;
//! it prints the port it bound).

mod client;
mod floor;
mod report;
mod scenarios;
mod sys;
mod target;

use serde_json::{json, Value};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("floor") => floor::serve(args.get(1).and_then(|p| p.parse().ok()).unwrap_or(19000)),
        Some("run") => {
            let full = args.iter().any(|a| a == "--full");
            let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
            let out = value("--out").unwrap_or_else(|| "bench-results".into());
            let only: Option<Vec<String>> = value("--only").map(|v| v.split(',').map(str::to_owned).collect());
            if let Some(unknown) = only.iter().flatten().find(|n| !SCENARIOS.contains(&n.as_str())) {
                anyhow::bail!("--only: no scenario {unknown:?} (there are: {})", SCENARIOS.join(", "));
            }
            let want = Want(only);
            target::set_bin_dir(value("--bin-dir").unwrap_or_else(|| target::DEFAULT_BIN_DIR.into()).into());
            actix_rt::System::new().block_on(run(full, &want, std::path::PathBuf::from(out)))
        }
        Some("report") => {
            let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "bench-results".into()));
            let results: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json"))?)?;
            let md = report::markdown(&results);
            std::fs::write(dir.join("results.md"), &md)?;
            println!("{md}");
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: chatbench run [--full] [--out DIR] [--only NAME,...] [--bin-dir DIR] | chatbench report DIR | chatbench floor PORT"
        ),
    }
}

/// The scenarios `--only` can name, in the order a run takes them (`latency` includes the floor).
const SCENARIOS: [&str; 8] =
    ["latency", "throughput", "broadcast", "many_rooms", "connect", "footprint", "activation", "line_webhook"];

/// The scenarios asked for: all of them, or those of `--only`.
struct Want(Option<Vec<String>>);

impl Want {
    fn this(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|only| only.iter().any(|n| n == name))
    }

    fn any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.this(n))
    }
}

/// The offered rates of the throughput scenario (msg/s): in the full run high enough to see
/// whether one room takes 5,000 msg/s.
fn ladder(full: bool) -> Vec<f64> {
    if full {
        vec![200.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0, 7000.0]
    } else {
        vec![200.0, 500.0, 1000.0, 2000.0, 5000.0]
    }
}

/// The standalone binary as a target: the latency scenario at the same rates as the
/// microservice set, and the throughput ladder in a 10-member room. Its one process is all the
/// CPU a message costs (its backends are embedded).
async fn standalone(full: bool, want: &Want, secs: f64) -> anyhow::Result<Value> {
    let t = target::Target::standalone("standalone").await?;
    let procs = sys::Processes { groups: vec![("standalone".into(), vec![t.pid])] };
    let mut out = serde_json::Map::new();
    if want.this("latency") {
        let mut latency = Vec::new();
        for rate in [10.0, 200.0] {
            let v = scenarios::latency(&t, &procs, rate, secs).await?;
            log("standalone latency", &v);
            latency.push(v);
        }
        out.insert("latency".into(), Value::Array(latency));
    }
    if want.this("throughput") {
        let v = scenarios::throughput(&t, &procs, 10, &ladder(full), if full { 5.0 } else { 2.0 }).await?;
        log("standalone throughput", &v);
        out.insert("throughput".into(), Value::Array(vec![v]));
    }
    Ok(Value::Object(out))
}

fn log(what: &str, v: &Value) {
    eprintln!("{what}: {v}");
}

async fn run(full: bool, want: &Want, out: std::path::PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&out)?;
    let secs = if full { 20.0 } else { 5.0 };
    let mut s = serde_json::Map::new();

    if want.any(&["latency", "throughput", "broadcast", "many_rooms", "connect"]) {
        let engine = target::Target::rooms("main", 300).await?;
        let procs = sys::Processes::find(&[("rooms", engine.pid)]);
        if want.this("latency") {
            let mut latency = Vec::new();
            for rate in [10.0, 200.0] {
                let v = scenarios::latency(&engine, &procs, rate, secs).await?;
                log("latency", &v);
                latency.push(v);
            }
            s.insert("latency".into(), Value::Array(latency));
            let floor = target::Target::floor().await?;
            let floor_procs = sys::Processes { groups: vec![("floor".into(), vec![floor.pid])] };
            let v = scenarios::latency(&floor, &floor_procs, 200.0, secs).await?;
            log("floor latency", &v);
            s.insert("floor_latency".into(), v);
        }

        if want.this("throughput") {
            let members = if full { vec![2, 10, 100, 1000] } else { vec![2, 10, 100] };
            let mut tp = Vec::new();
            for m in members {
                let rates: Vec<f64> = ladder(full).into_iter().filter(|r| r * m as f64 <= 400_000.0).collect();
                let v = scenarios::throughput(&engine, &procs, m, &rates, if full { 5.0 } else { 2.0 }).await?;
                log("throughput", &v);
                tp.push(v);
            }
            s.insert("throughput".into(), Value::Array(tp));
        }

        if want.this("broadcast") {
            let mut bc = Vec::new();
            for m in if full { vec![1000, 5000, 10_000] } else { vec![1000] } {
                let v = scenarios::broadcast(&engine, &procs, m, if full { 20 } else { 5 }).await?;
                log("broadcast", &v);
                bc.push(v);
            }
            s.insert("broadcast".into(), Value::Array(bc));
        }

        if want.this("many_rooms") {
            let mut mr = Vec::new();
            for n in if full { vec![1, 10, 100, 1000, 5000] } else { vec![1, 10, 100, 500] } {
                let v = scenarios::many_rooms(&engine, &procs, n, 200.0, secs).await?;
                log("many rooms", &v);
                mr.push(v);
            }
            s.insert("many_rooms".into(), Value::Array(mr));
        }

        if want.this("connect") {
            let v = scenarios::connect_storm(&engine, if full { 5000 } else { 500 }).await?;
            log("connect", &v);
            s.insert("connect".into(), v);
        }
    }

    if want.any(&["latency", "throughput"]) {
        let v = match standalone(full, want, secs).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("standalone: not measured: {e:#}");
                json!({"error": format!("{e:#}")})
            }
        };
        s.insert("standalone".into(), v);
    }

    if want.this("footprint") {
        let fresh = target::Target::rooms("footprint", 300).await?;
        let v = scenarios::footprint(&fresh, if full { 5000 } else { 1000 }, if full { 2000 } else { 300 }).await?;
        log("footprint", &v);
        s.insert("footprint".into(), v);
    }
    if want.this("activation") {
        let short = target::Target::rooms("activation", 1).await?;
        let v = scenarios::activation(&short, if full { 200 } else { 30 }).await?;
        log("activation", &v);
        s.insert("activation".into(), v);
    }
    if want.this("line_webhook") {
        let line = target::LineTarget::start("line").await?;
        let procs = sys::Processes::find(&line.pids());
        let (rates, secs) = if full { (vec![20.0, 100.0], 30.0) } else { (vec![20.0], 10.0) };
        let steps = scenarios::line_webhook(&line, &procs, &rates, secs).await?;
        for v in &steps {
            log("LINE webhook", v);
        }
        s.insert("line_webhook".into(), Value::Array(steps));
    }

    let results = json!({
        "date": std::process::Command::new("date").arg("-u").arg("+%Y-%m-%dT%H:%M:%SZ").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
        "mode": if full { "full" } else { "short" },
        "machine": sys::machine(),
        "target": "rooms service on RabbitMQ 3.10 + PostgreSQL 15 + Redis 7, one node; standalone: every service in one process, in-process bus and presence, SQLite; floor: bare tokio WebSocket broadcast; LINE: rooms + authz + line-gateway on the same backends, the LINE platform simulator (line-sim) in LINE's place",
        "bin_dir": target::bin_dir().display().to_string(),
        "scenarios": Value::Object(s),
    });
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    let md = report::markdown(&results);
    std::fs::write(out.join("results.md"), &md)?;
    let sc = &results["scenarios"];
    let pts = |arr: &Value, x: &str, y: &[&str]| -> Vec<(f64, f64)> {
        arr.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let mut cur = v;
                for k in y {
                    cur = &cur[*k];
                }
                Some((v[x].as_f64()?, cur.as_f64()?))
            })
            .collect()
    };
    let cost_members: Vec<(f64, f64)> = sc["throughput"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["members"].as_f64()?, v["steps"].get(0)?["per_message"]["cpu_us"].as_f64()?)))
        .collect();
    let plots = [
        (
            "cost-vs-members.svg",
            "CPU per message vs room members (200 msg/s)",
            "members",
            "CPU us / message",
            cost_members,
        ),
        (
            "cost-vs-rooms.svg",
            "CPU per delivery vs rooms (200 msg/s total)",
            "rooms",
            "CPU us / delivery",
            pts(&sc["many_rooms"], "rooms", &["per_delivery", "cpu_us"]),
        ),
        (
            "broadcast-vs-members.svg",
            "Broadcast completion p95 vs members",
            "members",
            "ms",
            pts(&sc["broadcast"], "members", &["completion_p95_ms"]),
        ),
    ];
    // A plot of scenarios this run did not take (`--only`) is not written.
    for (file, title, x, y, points) in plots.iter().filter(|p| !p.4.is_empty()) {
        std::fs::write(out.join(file), report::svg_plot(title, x, y, points))?;
    }
    println!("{md}");
    Ok(())
}
