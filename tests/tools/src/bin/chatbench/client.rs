//! Simulated users: WebSocket connections whose receipts are recorded against the intended
//! send time of each message (open loop: no coordinated omission) and against the time it
//! actually went out, and counted per receiver so that losses and duplicates show; the
//! server's refusals (error frames) are kept per message, apart from losses.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
pub type Sink = SplitSink<Ws, Message>;

/// Everything a run observes.
pub struct Recorder {
    /// message key -> intended send time
    pub intended: HashMap<String, Instant>,
    /// message key -> when it actually went out (just before the frame was written)
    pub sent: HashMap<String, Instant>,
    /// (receiver, key) -> times received
    pub received: HashMap<(usize, String), u32>,
    /// key -> last receipt time (broadcast completion)
    pub last_receipt: HashMap<String, Instant>,
    /// key -> when its ack came
    pub acked: HashMap<String, Instant>,
    /// key -> the code of the error frame that refused it (or `send_failed`: never written)
    pub refused: HashMap<String, String>,
    /// Receipt minus intended send time (the main figure: no coordinated omission).
    pub latency_us: Histogram<u64>,
    /// Receipt minus actual send time.
    pub latency_from_send_us: Histogram<u64>,
    /// Actual minus intended send time: how late the client itself sent.
    pub send_lag_us: Histogram<u64>,
    pub acks: usize,
    pub errors: usize,
    pub synced: usize,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

impl Recorder {
    pub fn new() -> Rc<RefCell<Recorder>> {
        Rc::new(RefCell::new(Recorder {
            intended: HashMap::new(),
            sent: HashMap::new(),
            received: HashMap::new(),
            last_receipt: HashMap::new(),
            acked: HashMap::new(),
            refused: HashMap::new(),
            latency_us: histogram(),
            latency_from_send_us: histogram(),
            send_lag_us: histogram(),
            acks: 0,
            errors: 0,
            synced: 0,
        }))
    }

    /// Forget the latencies recorded so far (a new step starts).
    pub fn reset_latency(&mut self) {
        self.latency_us.reset();
        self.latency_from_send_us.reset();
        self.send_lag_us.reset();
    }

    /// Expected (receiver, key) pairs not received yet, of the keys the server did not refuse
    /// (whether it accepted them yet or not): what a drain waits for.
    pub fn missing(&self, receivers: &[usize], keys: &[String]) -> usize {
        keys.iter()
            .filter(|k| !self.refused.contains_key(*k))
            .map(|k| receivers.iter().filter(|r| !self.received.contains_key(&(**r, k.to_string()))).count())
            .sum()
    }

    /// Lost: expected (receiver, key) pairs never received, of the keys the server accepted
    /// (acked, a webhook answered 200, or received by anyone) and did not refuse; duplicated:
    /// received more than once.
    pub fn verify(&self, receivers: &[usize], keys: &[String]) -> (usize, usize) {
        let mut lost = 0;
        let mut dup = 0;
        for k in keys {
            // Accepted: the server acked it, or committed it (someone received it). A send the
            // server never took (its sender's socket was closed with it unread) is not a loss.
            let accepted =
                self.acked.contains_key(k) || receivers.iter().any(|r| self.received.contains_key(&(*r, k.clone())));
            let refused = self.refused.contains_key(k);
            for r in receivers {
                match self.received.get(&(*r, k.clone())) {
                    None if accepted && !refused => lost += 1,
                    Some(n) if *n > 1 => dup += (*n - 1) as usize,
                    _ => {}
                }
            }
        }
        (lost, dup)
    }

    /// How many of these keys the server refused (an error frame), by code, and in all.
    pub fn refusals(&self, keys: &[String]) -> (usize, serde_json::Value) {
        let mut by_code: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for code in keys.iter().filter_map(|k| self.refused.get(k)) {
            *by_code.entry(code).or_default() += 1;
        }
        (by_code.values().sum(), serde_json::json!(by_code))
    }

    /// Of these keys: acked, and the last ack's time.
    pub fn acked_of(&self, keys: &[String]) -> (usize, Option<Instant>) {
        let times = keys.iter().filter_map(|k| self.acked.get(k));
        times.fold((0, None), |(n, last), t| (n + 1, Some(last.map_or(*t, |l: Instant| l.max(*t)))))
    }

    pub fn percentiles(&self) -> serde_json::Value {
        let ms = |h: &Histogram<u64>, q: f64| (h.value_at_quantile(q) as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let h = &self.latency_us;
        let s = &self.latency_from_send_us;
        let lag = &self.send_lag_us;
        serde_json::json!({
            "samples": h.len(), "p50_ms": ms(h, 0.5), "p90_ms": ms(h, 0.9), "p99_ms": ms(h, 0.99), "p999_ms": ms(h, 0.999),
            "max_ms": (h.max() as f64 / 1000.0 * 1000.0).round() / 1000.0,
            "from_send": {"samples": s.len(), "p50_ms": ms(s, 0.5), "p99_ms": ms(s, 0.99), "p999_ms": ms(s, 0.999),
                          "max_ms": (s.max() as f64 / 1000.0 * 1000.0).round() / 1000.0},
            "send_lag": {"samples": lag.len(), "p50_us": lag.value_at_quantile(0.5), "p99_us": lag.value_at_quantile(0.99),
                         "max_us": lag.max()},
        })
    }
}

/// Open a session; its receipts go to `rec` as receiver `id`.
pub async fn connect(url: &str, token: Option<&str>, id: usize, rec: Rc<RefCell<Recorder>>) -> anyhow::Result<Sink> {
    let mut request = url.into_client_request()?;
    if let Some(t) = token {
        request.headers_mut().insert("Authorization", format!("Bearer {t}").parse()?);
    }
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let (sink, stream) = ws.split();
    actix_rt::spawn(read_loop(stream, id, rec));
    Ok(sink)
}

async fn read_loop(mut stream: SplitStream<Ws>, id: usize, rec: Rc<RefCell<Recorder>>) {
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let now = Instant::now();
        let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let mut r = rec.borrow_mut();
        let r = &mut *r;
        match frame["type"].as_str() {
            Some("message") => {
                let Some(key) = frame["body"]["text"].as_str() else { continue };
                let key = key.to_owned();
                if let Some(t0) = r.intended.get(&key).copied() {
                    let us = now.saturating_duration_since(t0).as_micros() as u64;
                    let _ = r.latency_us.record(us.max(1));
                    r.last_receipt.insert(key.clone(), now);
                }
                if let Some(sent) = r.sent.get(&key) {
                    let _ =
                        r.latency_from_send_us.record((now.saturating_duration_since(*sent).as_micros() as u64).max(1));
                }
                *r.received.entry((id, key)).or_default() += 1;
            }
            Some("ack") => {
                r.acks += 1;
                if let Some(key) = frame["client_msg_id"].as_str() {
                    r.acked.insert(key.to_owned(), now);
                }
            }
            Some("error") => {
                r.errors += 1;
                if let Some(key) = frame["client_msg_id"].as_str() {
                    let code = frame["code"].as_str().unwrap_or("error").to_owned();
                    r.refused.insert(key.to_owned(), code);
                }
            }
            Some("synced") => r.synced += 1,
            _ => {}
        }
    }
}

pub async fn send_text(sink: &mut Sink, room: &str, key: &str) -> anyhow::Result<()> {
    let frame = serde_json::json!({"type": "send", "room_id": room, "client_msg_id": key, "body": {"type": "text", "text": key}});
    sink.send(Message::text(frame.to_string())).await?;
    Ok(())
}

/// How long before an intended send time tokio's timer sleep ends; the rest is slept precisely
/// on a blocking thread. tokio's timer rounds a deadline up to its next millisecond tick and its
/// park timeout up to a whole millisecond again, so a sleep can end up to about 2 ms after the
/// time asked for: alone, that made open-loop sends late (a send lag of 0.3 ms at p50 against
/// the microservice set with a 1 ms margin).
const SPIN: Duration = Duration::from_millis(2);

/// Wait until `due` exactly: sleep on tokio's timer until [`SPIN`] before it, then sleep the
/// rest with the OS's high-resolution sleep on a blocking thread (about 0.1 ms late at worst),
/// so that this thread keeps reading and timing receipts meanwhile and no core is spent
/// spinning. The instant it returns at (`due`, or now when already late).
///
/// Only when sends are at least [`SPIN`] apart (`precise`): closer, it sleeps on tokio's timer
/// until `due` (the timer's lateness shows in the send lag; latency counts from `due` anyway).
/// A first version spun instead of the blocking sleep: at 500 msg/s (sends 2 ms apart) the
/// spins joined into one and the client took a whole core from the server beside it (p99
/// 679 ms at 500 msg/s, 8 ms at 1,000).
pub async fn wait_until(due: Instant, precise: bool) -> Instant {
    if !precise {
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        return Instant::now().max(due);
    }
    if let Some(early) = due.checked_sub(SPIN) {
        if early > Instant::now() {
            tokio::time::sleep_until(early.into()).await;
        }
    }
    let rest = due.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
    Instant::now().max(due)
}

/// Whether sends `interval` apart are timed precisely (see [`wait_until`]).
pub fn precise(interval: Duration) -> bool {
    interval >= SPIN
}

/// Send message `key` into `room` at its intended time `due` (open loop: at once when late),
/// recording both the intended and the actual send time.
pub async fn send_at(sink: &mut Sink, room: &str, key: &str, due: Instant, precise: bool, rec: &Rc<RefCell<Recorder>>) {
    rec.borrow_mut().intended.insert(key.to_owned(), due);
    let now = wait_until(due, precise).await;
    {
        let mut r = rec.borrow_mut();
        r.sent.insert(key.to_owned(), now);
        let _ = r.send_lag_us.record((now.saturating_duration_since(due).as_micros() as u64).max(1));
    }
    if send_text(sink, room, key).await.is_err() {
        let mut r = rec.borrow_mut();
        r.errors += 1;
        r.refused.insert(key.to_owned(), "send_failed".into());
    }
}

/// Send `count` messages at `rate` per second from `sink`, each at its intended time (sent late
/// when behind, but measured from the intended time). Returns the keys.
pub async fn open_loop(
    sink: &mut Sink,
    room: &str,
    prefix: &str,
    rate: f64,
    count: usize,
    rec: &Rc<RefCell<Recorder>>,
) -> Vec<String> {
    let start = Instant::now() + Duration::from_millis(20);
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut keys = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        let key = format!("{prefix}-{i}");
        send_at(sink, room, &key, due, precise(interval), rec).await;
        keys.push(key);
    }
    keys
}

/// Wait until every receiver has every key the server did not refuse, or `max` passes.
pub async fn drain(rec: &Rc<RefCell<Recorder>>, receivers: &[usize], keys: &[String], max: Duration) {
    let deadline = Instant::now() + max;
    loop {
        if rec.borrow().missing(receivers, keys) == 0 || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Close sessions (a dropped sink does not close its connection: the reader keeps it open).
pub async fn close_all(sinks: &mut Vec<Sink>) {
    for sink in sinks.iter_mut() {
        let _ = sink.close().await;
    }
    sinks.clear();
    // Let the server see the closes before the next scenario measures anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
}
