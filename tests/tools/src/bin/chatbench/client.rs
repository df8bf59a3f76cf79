//! Simulated users: WebSocket connections whose receipts are recorded against the intended
//! send time of each message (open loop: no coordinated omission), and counted per receiver so
//! that losses and duplicates show.

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
    /// (receiver, key) -> times received
    pub received: HashMap<(usize, String), u32>,
    /// key -> last receipt time (broadcast completion)
    pub last_receipt: HashMap<String, Instant>,
    pub latency_us: Histogram<u64>,
    pub acks: usize,
    pub errors: usize,
    pub synced: usize,
}

impl Recorder {
    pub fn new() -> Rc<RefCell<Recorder>> {
        Rc::new(RefCell::new(Recorder {
            intended: HashMap::new(),
            received: HashMap::new(),
            last_receipt: HashMap::new(),
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            acks: 0,
            errors: 0,
            synced: 0,
        }))
    }

    /// Lost: expected (receiver, key) pairs never received; duplicated: received more than once.
    pub fn verify(&self, receivers: &[usize], keys: &[String]) -> (usize, usize) {
        let mut lost = 0;
        let mut dup = 0;
        for r in receivers {
            for k in keys {
                match self.received.get(&(*r, k.clone())) {
                    None => lost += 1,
                    Some(n) if *n > 1 => dup += (*n - 1) as usize,
                    Some(_) => {}
                }
            }
        }
        (lost, dup)
    }

    pub fn percentiles(&self) -> serde_json::Value {
        let h = &self.latency_us;
        let ms = |q: f64| (h.value_at_quantile(q) as f64 / 1000.0 * 1000.0).round() / 1000.0;
        serde_json::json!({
            "samples": h.len(), "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
            "max_ms": (h.max() as f64 / 1000.0 * 1000.0).round() / 1000.0,
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
        match frame["type"].as_str() {
            Some("message") => {
                let Some(key) = frame["body"]["text"].as_str() else { continue };
                let key = key.to_owned();
                if let Some(t0) = r.intended.get(&key).copied() {
                    let us = now.saturating_duration_since(t0).as_micros() as u64;
                    let _ = r.latency_us.record(us.max(1));
                    r.last_receipt.insert(key.clone(), now);
                }
                *r.received.entry((id, key)).or_default() += 1;
            }
            Some("ack") => r.acks += 1,
            Some("error") => r.errors += 1,
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
        tokio::time::sleep_until(due.into()).await;
        let key = format!("{prefix}-{i}");
        rec.borrow_mut().intended.insert(key.clone(), due);
        if send_text(sink, room, &key).await.is_err() {
            rec.borrow_mut().errors += 1;
        }
        keys.push(key);
    }
    keys
}

/// Wait until every receiver has every key, or `max` passes.
pub async fn drain(rec: &Rc<RefCell<Recorder>>, receivers: &[usize], keys: &[String], max: Duration) {
    let deadline = Instant::now() + max;
    loop {
        if rec.borrow().verify(receivers, keys).0 == 0 || Instant::now() > deadline {
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
