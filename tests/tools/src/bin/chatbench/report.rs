//! The results: a JSON file, a Markdown table with the targets beside the figures, and SVG
//! plots of how costs grow.

use std::fmt::Write as _;

use serde_json::Value;

use crate::target::Target;

/// A quantile of a Prometheus histogram of the target, in milliseconds (bucket upper bound).
pub async fn histogram_quantile(t: &Target, name: &str, q: f64) -> f64 {
    let buckets = histogram_buckets(&t.base, name).await;
    let count = buckets.last().map_or(0.0, |(_, c)| *c);
    if count <= 0.0 {
        return 0.0;
    }
    buckets.iter().find(|(_, c)| *c >= q * count).map_or(f64::INFINITY, |(le, _)| *le)
}

/// The cumulative buckets of a Prometheus histogram at `base`/metrics: (upper bound in ms, count),
/// `+Inf` last.
pub async fn histogram_buckets(base: &str, name: &str) -> Vec<(f64, f64)> {
    let client = awc::Client::default();
    let Ok(mut res) = client.get(format!("{base}/metrics")).send().await else { return Vec::new() };
    let text = res.body().limit(1 << 24).await.map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default();
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let le = rest.split('"').next()?.parse::<f64>().map_or(f64::INFINITY, |s| (s * 1e6).round() / 1e3);
            Some((le, line.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// What share of the observations between two readings of [`histogram_buckets`] fell within
/// each bound: `[{"le_ms": 5, "share": 0.42}, ...]` (cumulative; the `+Inf` bucket left out).
pub fn bucket_shares(before: &[(f64, f64)], after: &[(f64, f64)]) -> Value {
    let count = |b: &[(f64, f64)], le: f64| b.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, c)| *c);
    let total = after.last().map_or(0.0, |(le, n)| n - count(before, *le));
    after
        .iter()
        .filter(|(le, _)| le.is_finite())
        .map(|(le, n)| {
            let share = if total > 0.0 { (n - count(before, *le)) / total } else { 0.0 };
            serde_json::json!({"le_ms": le, "share": (share * 1000.0).round() / 1000.0})
        })
        .collect()
}

fn f(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}").trim_end_matches('0').trim_end_matches('.').to_owned(),
        None => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
    }
}

/// One row: figure, measured, target, verdict (with the factor by which a figure misses).
fn row(out: &mut String, figure: &str, value: &Value, target: &str, meets: Option<bool>) {
    let bound: Option<f64> = target.trim_start_matches(['<', '>', '=', ' ']).parse().ok();
    let verdict = match (meets, value.as_f64(), bound) {
        (Some(true), _, _) => "meets".to_owned(),
        (Some(false), Some(v), Some(b)) if target.starts_with('<') && b > 0.0 => {
            format!("misses, {:.1}x the target", v / b)
        }
        (Some(false), Some(v), Some(b)) if v > 0.0 => format!("misses, {:.1}x below", b / v),
        (Some(false), _, _) => "misses".to_owned(),
        (None, _, _) => String::new(),
    };
    let _ = writeln!(out, "| {figure} | {} | {target} | {verdict} |", f(value));
}

/// The figures' targets (issue 13): a bound, and whether it is an upper (`<=`) or lower (`>=`)
/// one.
mod targets {
    pub const LATENCY_P50_MS: f64 = 1.5;
    pub const LATENCY_P99_MS: f64 = 4.0;
    pub const VS_FLOOR: f64 = 1.5;
    pub const THROUGHPUT_10: f64 = 5000.0;
    pub const CPU_AT_200_US: f64 = 800.0;
    pub const CPU_AT_5000_US: f64 = 150.0;
    pub const BROADCAST_10K_P95_MS: f64 = 80.0;
    pub const IDLE_SESSION_B: f64 = 8192.0;
    pub const IDLE_ROOM_B: f64 = 1536.0;
    pub const COLD_P99_MS: f64 = 4.0;
    pub const REDIS_PER_MSG_100: f64 = 2.0;
}

/// A row whose figure has an upper bound.
fn at_most(out: &mut String, figure: &str, value: &Value, bound: f64) {
    let meets = value.as_f64().map(|v| v <= bound);
    row(out, figure, value, &format!("<= {}", f(&Value::from(bound))), Some(meets.unwrap_or(false)));
}

/// A row whose figure has a lower bound.
fn at_least(out: &mut String, figure: &str, value: &Value, bound: f64) {
    let meets = value.as_f64().map(|v| v >= bound);
    row(out, figure, value, &format!(">= {}", f(&Value::from(bound))), Some(meets.unwrap_or(false)));
}

/// The latency step at `rate` of a list of latency results.
fn at_rate(latency: &Value, rate: f64) -> Option<&Value> {
    latency.as_array()?.iter().find(|l| l["rate"].as_f64() == Some(rate))
}

/// The throughput result of the room of `members`.
fn tp_of(throughput: &Value, members: u64) -> Option<&Value> {
    throughput.as_array()?.iter().find(|t| t["members"].as_u64() == Some(members))
}

/// The step of a throughput result whose CPU per message stands for `rate`: that rate's step
/// when it kept up, else the highest rate that kept up (and whether it is a stand-in).
fn cpu_step(tp: &Value, rate: f64) -> Option<(&Value, bool)> {
    let steps = tp["steps"].as_array()?;
    let kept: Vec<&Value> = steps.iter().filter(|s| kept_up(s)).collect();
    if let Some(s) = kept.iter().find(|s| s["rate"].as_f64() == Some(rate)) {
        return Some((s, false));
    }
    kept.into_iter()
        .max_by(|a, b| a["rate"].as_f64().partial_cmp(&b["rate"].as_f64()).unwrap_or(std::cmp::Ordering::Equal))
        .map(|s| (s, true))
}

/// "p50 / p99" of a latency object, from the intended time or (`from_send`) the actual send.
fn p50_p99(lat: &Value) -> Value {
    Value::from(format!("{} / {}", f(&lat["p50_ms"]), f(&lat["p99_ms"])))
}

pub fn markdown(r: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run: {} ({}), machine: {}\n",
        r["date"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or(""),
        r["machine"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "Figures of the microservice set (rooms on RabbitMQ, PostgreSQL, Redis) unless named. Latency runs \
         from each message's intended send time (open loop); \"from the actual send\" from when it went out.\n"
    );
    let _ = writeln!(out, "| figure | measured | target | |\n|---|---|---|---|");
    let s = &r["scenarios"];
    for lat in s["latency"].as_array().into_iter().flatten() {
        let rate = f(&lat["rate"]);
        let l = &lat["latency"];
        let at200 = lat["rate"].as_f64() == Some(200.0);
        if at200 {
            at_most(&mut out, &format!("latency p50 at {rate} msg/s (ms)"), &l["p50_ms"], targets::LATENCY_P50_MS);
            at_most(&mut out, &format!("latency p99 at {rate} msg/s (ms)"), &l["p99_ms"], targets::LATENCY_P99_MS);
        } else {
            row(&mut out, &format!("latency p50 at {rate} msg/s (ms)"), &l["p50_ms"], "", None);
            row(&mut out, &format!("latency p99 at {rate} msg/s (ms)"), &l["p99_ms"], "", None);
        }
        row(&mut out, &format!("latency p99.9 at {rate} msg/s (ms)"), &l["p999_ms"], "", None);
        row(
            &mut out,
            &format!("latency p50 / p99 at {rate} msg/s from the actual send (ms)"),
            &p50_p99(&l["from_send"]),
            "",
            None,
        );
        let lag = &l["send_lag"];
        row(
            &mut out,
            &format!("send lag behind the intended time at {rate} msg/s, p50 / p99 / max (us)"),
            &Value::from(format!("{} / {} / {}", f(&lag["p50_us"]), f(&lag["p99_us"]), f(&lag["max_us"]))),
            "",
            None,
        );
        let cpu = &lat["per_message"]["cpu_us"];
        if at200 {
            at_most(
                &mut out,
                &format!("CPU per message at {rate} msg/s, all processes (us)"),
                cpu,
                targets::CPU_AT_200_US,
            );
            row(
                &mut out,
                &format!("Redis commands per message, 3-member room at {rate} msg/s"),
                &lat["per_message"]["redis_commands"],
                "",
                None,
            );
        } else {
            row(&mut out, &format!("CPU per message at {rate} msg/s, all processes (us)"), cpu, "", None);
        }
    }
    if let (Some(engine), Some(floor)) = (at_rate(&s["latency"], 200.0), s["floor_latency"].as_object()) {
        let e = engine["latency"]["p50_ms"].as_f64().unwrap_or(0.0);
        let fl = floor["latency"]["p50_ms"].as_f64().unwrap_or(0.0).max(0.001);
        at_most(
            &mut out,
            "latency p50 at 200 msg/s vs the floor's (x)",
            &Value::from((e / fl * 100.0).round() / 100.0),
            targets::VS_FLOOR,
        );
        row(&mut out, "floor latency p50 / p99 at the same rate (ms)", &p50_p99(&floor["latency"]), "", None);
    }
    for tp in s["throughput"].as_array().into_iter().flatten() {
        let m = f(&tp["members"]);
        let best = &tp["max_accepted_per_s_at_p99_50ms"];
        let figure = format!("accepted msg/s, {m} members, p99 <= 50 ms");
        if tp["members"].as_u64() == Some(10) {
            at_least(&mut out, &figure, best, targets::THROUGHPUT_10);
        } else {
            row(&mut out, &figure, best, "", None);
        }
        let sent: u64 = tp["steps"].as_array().into_iter().flatten().filter_map(|s| s["messages"].as_u64()).sum();
        row(
            &mut out,
            &format!("{m} members, whole ladder: refused / lost / sent"),
            &Value::from(format!("{} / {} / {sent}", f(&tp["refused"]), f(&tp["lost"]))),
            "",
            None,
        );
    }
    if let Some(tp) = tp_of(&s["throughput"], 10) {
        cpu_at_5000(&mut out, tp, "");
    }
    if let Some(step) = tp_of(&s["throughput"], 100).and_then(|tp| tp["steps"].get(0)) {
        at_most(
            &mut out,
            &format!("Redis commands per message, 100-member room at {} msg/s", f(&step["rate"])),
            &step["per_message"]["redis_commands"],
            targets::REDIS_PER_MSG_100,
        );
    }
    for bc in s["broadcast"].as_array().into_iter().flatten() {
        let m = f(&bc["members"]);
        let figure = format!("broadcast to {m} members, p95 completion (ms)");
        if bc["members"].as_u64() == Some(10_000) {
            at_most(&mut out, &figure, &bc["completion_p95_ms"], targets::BROADCAST_10K_P95_MS);
        } else {
            row(&mut out, &figure, &bc["completion_p95_ms"], "", None);
        }
        row(&mut out, &format!("CPU per delivery, {m} members (us)"), &bc["per_delivery"]["cpu_us"], "", None);
    }
    for mr in s["many_rooms"].as_array().into_iter().flatten() {
        row(
            &mut out,
            &format!("CPU per delivery, {} rooms (us)", f(&mr["rooms"])),
            &mr["per_delivery"]["cpu_us"],
            "flat",
            None,
        );
    }
    if let Some(fp) = s["footprint"].as_object() {
        at_most(&mut out, "bytes per idle WebSocket session", &fp["bytes_per_idle_session"], targets::IDLE_SESSION_B);
        at_most(&mut out, "bytes per idle room actor", &fp["bytes_per_idle_room_actor"], targets::IDLE_ROOM_B);
        row(&mut out, "Redis bytes per online user", &fp["redis_bytes_per_online_user"], "", None);
    }
    if let Some(a) = s["activation"].as_object() {
        at_most(&mut out, "cold activation, first delivery p99 (ms)", &a["cold_p99_ms"], targets::COLD_P99_MS);
        row(&mut out, "warm, first delivery p99 (ms)", &a["warm_p99_ms"], "", None);
        row(&mut out, "activations per second", &a["activations_per_s"], "", None);
    }
    if let Some(c) = s["connect"].as_object() {
        row(&mut out, "connect + auth + join per second (one client, sequential)", &c["connect"]["per_s"], "", None);
        row(
            &mut out,
            &format!("reconnect of {} sessions (s)", f(&c["reconnect"]["sessions"])),
            &c["reconnect"]["seconds"],
            "",
            None,
        );
    }
    for lw in s["line_webhook"].as_array().into_iter().flatten() {
        let rate = f(&lw["rate"]);
        let lat = &lw["latency"];
        row(&mut out, &format!("LINE webhook to member's socket p50 at {rate} msg/s (ms)"), &lat["p50_ms"], "", None);
        row(&mut out, &format!("LINE webhook to member's socket p99 at {rate} msg/s (ms)"), &lat["p99_ms"], "", None);
        row(
            &mut out,
            &format!("LINE messages at {rate} msg/s: received / sent, lost"),
            &Value::from(format!("{} / {}, {}", f(&lat["samples"]), f(&lw["messages"]), f(&lw["lost"]))),
            "",
            None,
        );
        row(&mut out, &format!("LINE messages delivered per second at {rate} msg/s"), &lw["delivered_per_s"], "", None);
        let answered = &lw["webhook_answered"]["p99_ms"];
        at_most(&mut out, &format!("LINE webhook answered p99 at {rate} msg/s (ms)"), answered, 2000.0);
        row(
            &mut out,
            &format!("CPU per LINE message at {rate} msg/s, all processes (us)"),
            &lw["per_message"]["cpu_us"],
            "",
            None,
        );
    }
    side_by_side(&mut out, s);
    ladders(&mut out, s);
    let lost: u64 = collect(s, "lost");
    let dup: u64 = collect(s, "duplicated");
    let refused: u64 = collect(s, "refused");
    let _ = writeln!(
        out,
        "\nVerification: {lost} lost (accepted, never received), {dup} duplicated across all scenarios; \
         {refused} refused by the server (error frames, or webhooks not answered 200), counted apart."
    );
    if let Some(e) = s["standalone"]["error"].as_str() {
        let _ = writeln!(out, "\nThe standalone was not measured: {e}");
    }
    let invalid = s["line_webhook"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|lw| lw["line_api_invalid_requests"].as_u64())
        .max()
        .unwrap_or(0);
    if invalid > 0 {
        let _ = writeln!(out, "The LINE gateway sent {invalid} requests outside LINE's spec (`GET /_sim/invalid`).");
    }
    out
}

/// The CPU per message at 5,000 msg/s in the 10-member room (or at the highest rate it kept
/// up with, said so in the label), against its target.
fn cpu_at_5000(out: &mut String, tp: &Value, who: &str) {
    match cpu_step(tp, 5000.0) {
        Some((step, stand_in)) => {
            let rate = f(&step["rate"]);
            let label = if stand_in {
                format!(
                    "{who}CPU per message at {rate} msg/s, 10-member room, all processes (us) (the highest rate \
                     accepted: 5,000 msg/s was not)"
                )
            } else {
                format!("{who}CPU per message at {rate} msg/s, 10-member room, all processes (us)")
            };
            at_most(out, &label, &step["per_message"]["cpu_us"], targets::CPU_AT_5000_US);
        }
        None => row(
            out,
            &format!(
                "{who}CPU per message at 5000 msg/s, 10-member room (no rate accepted without refusals or losses)"
            ),
            &Value::from("-"),
            &format!("<= {}", targets::CPU_AT_5000_US),
            Some(false),
        ),
    }
}

/// The microservice set, the standalone and the floor in one table (the same run).
fn side_by_side(out: &mut String, s: &Value) {
    let sa = &s["standalone"];
    if sa["latency"].as_array().is_none() && sa["throughput"].as_array().is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### The microservice set, the standalone and the floor (same run)\n\n\
         The standalone: every service in one process, in-process bus and presence, SQLite; its CPU is its one \
         process's.\n\n| figure | microservice set | standalone | floor |\n|---|---|---|---|"
    );
    let cell = |v: &Value| if v.is_null() { String::new() } else { f(v) };
    let line = |out: &mut String, figure: &str, a: &Value, b: &Value, c: &Value| {
        let _ = writeln!(out, "| {figure} | {} | {} | {} |", cell(a), cell(b), cell(c));
    };
    let floor = &s["floor_latency"];
    for rate in [10.0, 200.0] {
        let (e, st) = (at_rate(&s["latency"], rate), at_rate(&sa["latency"], rate));
        if e.is_none() && st.is_none() {
            continue;
        }
        let fl = if floor["rate"].as_f64() == Some(rate) { Some(floor) } else { None };
        let get = |x: Option<&Value>, path: &[&str]| {
            let mut v = x.unwrap_or(&Value::Null);
            for k in path {
                v = &v[*k];
            }
            v.clone()
        };
        let r = f(&Value::from(rate));
        for (label, path) in [
            ("latency p50", &["latency", "p50_ms"][..]),
            ("latency p99", &["latency", "p99_ms"][..]),
            ("latency p99.9", &["latency", "p999_ms"][..]),
            ("latency p50 from the actual send", &["latency", "from_send", "p50_ms"][..]),
            ("latency p99 from the actual send", &["latency", "from_send", "p99_ms"][..]),
        ] {
            line(out, &format!("{label} at {r} msg/s (ms)"), &get(e, path), &get(st, path), &get(fl, path));
        }
        let cpu = ["per_message", "cpu_us"];
        line(
            out,
            &format!("CPU per message at {r} msg/s, all processes (us)"),
            &get(e, &cpu),
            &get(st, &cpu),
            &get(fl, &cpu),
        );
        if let Some(fl) = fl {
            let fp50 = fl["latency"]["p50_ms"].as_f64().unwrap_or(0.0).max(0.001);
            let ratio = |x: Option<&Value>| {
                x.and_then(|x| x["latency"]["p50_ms"].as_f64())
                    .map_or(Value::Null, |p| Value::from((p / fp50 * 100.0).round() / 100.0))
            };
            line(out, &format!("latency p50 at {r} msg/s vs the floor's (x)"), &ratio(e), &ratio(st), &Value::from(1));
        }
    }
    let (e, st) = (tp_of(&s["throughput"], 10), tp_of(&sa["throughput"], 10));
    if e.is_some() || st.is_some() {
        let best = |x: Option<&Value>| x.map_or(Value::Null, |t| t["max_accepted_per_s_at_p99_50ms"].clone());
        line(out, "accepted msg/s, 10 members, p99 <= 50 ms", &best(e), &best(st), &Value::Null);
        let cpu = |x: Option<&Value>| {
            x.and_then(|t| cpu_step(t, 5000.0)).map_or(Value::Null, |(s, stand_in)| {
                Value::from(format!(
                    "{} (at {} msg/s{})",
                    f(&s["per_message"]["cpu_us"]),
                    f(&s["rate"]),
                    if stand_in { ", the highest accepted" } else { "" }
                ))
            })
        };
        line(out, "CPU per message near 5,000 msg/s, 10 members (us)", &cpu(e), &cpu(st), &Value::Null);
    }
    if let Some(tp) = st {
        let _ = writeln!(out);
        let _ = writeln!(out, "Against the microservice set's targets, for comparison:\n\n| figure | measured | target | |\n|---|---|---|---|");
        if let Some(l) = at_rate(&sa["latency"], 200.0) {
            at_most(out, "standalone: latency p50 at 200 msg/s (ms)", &l["latency"]["p50_ms"], targets::LATENCY_P50_MS);
            at_most(out, "standalone: latency p99 at 200 msg/s (ms)", &l["latency"]["p99_ms"], targets::LATENCY_P99_MS);
            at_most(
                out,
                "standalone: CPU per message at 200 msg/s (us)",
                &l["per_message"]["cpu_us"],
                targets::CPU_AT_200_US,
            );
        }
        at_least(
            out,
            "standalone: accepted msg/s, 10 members, p99 <= 50 ms",
            &tp["max_accepted_per_s_at_p99_50ms"],
            targets::THROUGHPUT_10,
        );
        cpu_at_5000(out, tp, "standalone: ");
    }
}

/// Every step of every throughput ladder: offered, accepted, latency, refused, lost, CPU.
fn ladders(out: &mut String, s: &Value) {
    let mut rows = String::new();
    for (who, list) in [("microservice set", &s["throughput"]), ("standalone", &s["standalone"]["throughput"])] {
        for tp in list.as_array().into_iter().flatten() {
            for step in tp["steps"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    rows,
                    "| {who} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    f(&tp["members"]),
                    f(&step["rate"]),
                    f(&step["accepted_per_s"]),
                    f(&step["latency"]["p50_ms"]),
                    f(&step["latency"]["p99_ms"]),
                    f(&step["refused"]),
                    f(&step["lost"]),
                    f(&step["slow_consumer_closes"]),
                    f(&step["messages"]),
                    f(&step["per_message"]["cpu_us"]),
                );
            }
        }
    }
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "\n### Throughput ladders\n\nRefused: answered with an error frame (e.g. `too_many_in_flight`), or not \
             sent because the server had closed the sender's socket (`send_failed`); lost: accepted, never \
             received; slow closes: sessions the server closed because this client did not read them fast \
             enough (what they miss counts as lost). CPU per accepted message.\n\n\
             | target | members | offered msg/s | accepted msg/s | p50 (ms) | p99 (ms) | refused | lost | slow closes | sent | CPU us/msg |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n{rows}"
        );
    }
}

/// The sum of every `key` in `v`; an object that has `key` is not looked into further for it
/// (a scenario's total stands for its steps').
fn collect(v: &Value, key: &str) -> u64 {
    match v {
        Value::Object(m) => match m.get(key) {
            Some(x) => x.as_u64().unwrap_or(0),
            None => m.values().map(|x| collect(x, key)).sum(),
        },
        Value::Array(a) => a.iter().map(|x| collect(x, key)).sum(),
        _ => 0,
    }
}

/// A small line plot: points (x, y), log-scaled x.
pub fn svg_plot(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)]) -> String {
    let (w, h, pad) = (560.0, 320.0, 56.0);
    let xs: Vec<f64> = points.iter().map(|p| p.0.max(1.0).log10()).collect();
    let (x0, x1) = (xs.iter().copied().fold(f64::MAX, f64::min), xs.iter().copied().fold(f64::MIN, f64::max));
    let y1 = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let sx = |x: f64| pad + (x - x0) / (x1 - x0).max(1e-9) * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - y / y1 * (h - 2.0 * pad);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<rect width="{w}" height="{h}" fill="white"/><text x="{}" y="20" text-anchor="middle" font-size="14">{title}</text>"#,
        w / 2.0
    );
    let _ = write!(
        s,
        r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="middle">{x_label} (log scale)</text>"#, w / 2.0, h - 14.0);
    let _ = write!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{y_label}</text>"#,
        h / 2.0,
        h / 2.0
    );
    let path: Vec<String> = points.iter().zip(&xs).map(|(p, x)| format!("{:.1},{:.1}", sx(*x), sy(p.1))).collect();
    let _ = write!(s, r#"<polyline fill="none" stroke="steelblue" stroke-width="2" points="{}"/>"#, path.join(" "));
    for (p, x) in points.iter().zip(&xs) {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="steelblue"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{} : {:.1}</text>"#,
            sx(*x),
            sy(p.1),
            sx(*x),
            sy(p.1) - 8.0,
            p.0,
            p.1
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Whether a throughput step kept up with its offered rate: nothing refused or lost, and at
/// least 90 % of the offered rate accepted.
pub fn kept_up(step: &Value) -> bool {
    let rate = step["rate"].as_f64().unwrap_or(f64::MAX);
    step["refused"].as_u64() == Some(0)
        && step["lost"].as_u64() == Some(0)
        && step["accepted_per_s"].as_f64().unwrap_or(0.0) >= 0.9 * rate
}
