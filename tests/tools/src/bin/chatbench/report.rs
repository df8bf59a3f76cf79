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
        None => v.to_string(),
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

pub fn markdown(r: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run: {} ({}), machine: {}\n",
        r["date"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or(""),
        r["machine"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "| figure | measured | target | |\n|---|---|---|---|");
    let s = &r["scenarios"];
    for lat in s["latency"].as_array().into_iter().flatten() {
        let rate = f(&lat["rate"]);
        let p50 = &lat["latency"]["p50_ms"];
        let p99 = &lat["latency"]["p99_ms"];
        let at200 = lat["rate"].as_f64() == Some(200.0);
        row(
            &mut out,
            &format!("latency p50 at {rate} msg/s (ms)"),
            p50,
            if at200 { "<= 1" } else { "" },
            at200.then(|| p50.as_f64().unwrap_or(f64::MAX) <= 1.0),
        );
        row(
            &mut out,
            &format!("latency p99 at {rate} msg/s (ms)"),
            p99,
            if at200 { "<= 5" } else { "" },
            at200.then(|| p99.as_f64().unwrap_or(f64::MAX) <= 5.0),
        );
        row(&mut out, &format!("latency p99.9 at {rate} msg/s (ms)"), &lat["latency"]["p999_ms"], "", None);
        row(
            &mut out,
            &format!("CPU per message at {rate} msg/s, all processes (us)"),
            &lat["per_message"]["cpu_us"],
            "<= 100",
            Some(lat["per_message"]["cpu_us"].as_f64().unwrap_or(f64::MAX) <= 100.0),
        );
    }
    if let (Some(engine), Some(floor)) =
        (s["latency"].as_array().and_then(|a| a.last()), s["floor_latency"].as_object())
    {
        let e = engine["latency"]["p50_ms"].as_f64().unwrap_or(0.0);
        let fl = floor["latency"]["p50_ms"].as_f64().unwrap_or(0.0).max(0.001);
        row(
            &mut out,
            "latency p50 vs the floor (x)",
            &Value::from((e / fl * 10.0).round() / 10.0),
            "<= 3",
            Some(e / fl <= 3.0),
        );
        row(
            &mut out,
            "floor latency p50 / p99 at the same rate (ms)",
            &Value::from(format!("{} / {}", f(&floor["latency"]["p50_ms"]), f(&floor["latency"]["p99_ms"]))),
            "",
            None,
        );
    }
    for tp in s["throughput"].as_array().into_iter().flatten() {
        let m = f(&tp["members"]);
        let best = &tp["max_accepted_per_s_at_p99_50ms"];
        let ten = tp["members"].as_u64() == Some(10);
        row(
            &mut out,
            &format!("accepted msg/s, {m} members, p99 <= 50 ms"),
            best,
            if ten { ">= 10000" } else { "" },
            ten.then(|| best.as_f64().unwrap_or(0.0) >= 10_000.0),
        );
    }
    for bc in s["broadcast"].as_array().into_iter().flatten() {
        let m = f(&bc["members"]);
        let big = bc["members"].as_u64() == Some(10_000);
        row(
            &mut out,
            &format!("broadcast to {m} members, p95 completion (ms)"),
            &bc["completion_p95_ms"],
            if big { "<= 100" } else { "" },
            big.then(|| bc["completion_p95_ms"].as_f64().unwrap_or(f64::MAX) <= 100.0),
        );
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
        let sess = &fp["bytes_per_idle_session"];
        row(
            &mut out,
            "bytes per idle WebSocket session",
            sess,
            "<= 8192",
            Some(sess.as_f64().unwrap_or(f64::MAX) <= 8192.0),
        );
        let room = &fp["bytes_per_idle_room_actor"];
        row(&mut out, "bytes per idle room actor", room, "<= 1536", Some(room.as_f64().unwrap_or(f64::MAX) <= 1536.0));
        row(&mut out, "Redis bytes per online user", &fp["redis_bytes_per_online_user"], "", None);
    }
    if let Some(a) = s["activation"].as_object() {
        let cold = &a["cold_p99_ms"];
        row(
            &mut out,
            "cold activation, first delivery p99 (ms)",
            cold,
            "<= 5",
            Some(cold.as_f64().unwrap_or(f64::MAX) <= 5.0),
        );
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
        row(
            &mut out,
            &format!("LINE webhook answered p99 at {rate} msg/s (ms)"),
            answered,
            "<= 2000",
            Some(answered.as_f64().unwrap_or(f64::MAX) <= 2000.0),
        );
        row(
            &mut out,
            &format!("CPU per LINE message at {rate} msg/s, all processes (us)"),
            &lw["per_message"]["cpu_us"],
            "",
            None,
        );
    }
    let lost: u64 = collect(s, "lost");
    let dup: u64 = collect(s, "duplicated");
    let _ = writeln!(out, "\nVerification: {lost} lost, {dup} duplicated across all scenarios.");
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

fn collect(v: &Value, key: &str) -> u64 {
    match v {
        Value::Object(m) => {
            m.iter().map(|(k, x)| if k == key { x.as_u64().unwrap_or(0) } else { collect(x, key) }).sum()
        }
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
