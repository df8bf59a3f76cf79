//! The scenarios. Each returns a JSON object of its figures; every one that sends messages
//! also reports `lost` (accepted, never received) and `duplicated` from the per-receiver
//! verification, and the open-loop ones `refused` (answered with an error frame).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{self, Recorder};
use crate::sys::{Counters, Processes};
use crate::target::{LineTarget, Target};

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Sessions for these users (receiver ids are their indexes).
async fn sessions(
    t: &Target,
    room: &str,
    members: &[String],
    rec: &std::rc::Rc<std::cell::RefCell<Recorder>>,
) -> anyhow::Result<Vec<client::Sink>> {
    let mut sinks = Vec::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        let token = t.token(m);
        sinks.push(
            client::connect(&t.session_url(room), (!t.is_floor()).then_some(token.as_str()), i, rec.clone()).await?,
        );
    }
    // Presence is written asynchronously by each session: give it a moment to settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(sinks)
}

/// 1: WebSocket-to-WebSocket latency in a 3-member room at a fixed rate.
pub async fn latency(t: &Target, procs: &Processes, rate: f64, secs: f64) -> anyhow::Result<Value> {
    let members = t.users(&format!("lat{}x", rate as u64), 3).await?;
    let room = t.room(&members, "latency").await?;
    let rec = Recorder::new();
    let mut sinks = sessions(t, &room, &members, &rec).await?;
    // Warm the room (activation) before measuring.
    client::send_text(&mut sinks[0], &room, "warmup").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rec.borrow_mut().reset_latency();
    let before = Counters::take(procs);
    let count = (rate * secs) as usize;
    let keys = client::open_loop(&mut sinks[0], &room, &format!("l{}", rate as u64), rate, count, &rec).await;
    client::drain(&rec, &[1, 2], &keys, Duration::from_secs(15)).await;
    let after = Counters::take(procs);
    client::close_all(&mut sinks).await;
    let r = rec.borrow();
    let (lost, dup) = r.verify(&[1, 2], &keys);
    let (refused, refused_by_code) = r.refusals(&keys);
    Ok(json!({"rate": rate, "messages": count, "latency": r.percentiles(), "lost": lost, "duplicated": dup,
              "refused": refused, "refused_by_code": refused_by_code,
              "per_message": before.per(&after, count as f64)}))
}

/// 2: one room of `members`, a ladder of rates; the highest rate whose p99 stays within 50 ms.
/// Each step counts what the server refused (error frames, e.g. `too_many_in_flight`) apart
/// from what it accepted and never delivered (`lost`); the ladder stops past saturation.
pub async fn throughput(
    t: &Target,
    procs: &Processes,
    members_n: usize,
    rates: &[f64],
    secs: f64,
) -> anyhow::Result<Value> {
    let members = t.users(&format!("tp{members_n}x"), members_n).await?;
    let room = t.room(&members, "throughput").await?;
    let rec = Recorder::new();
    let mut sinks = sessions(t, &room, &members, &rec).await?;
    client::send_text(&mut sinks[0], &room, "warmup").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let receivers: Vec<usize> = (1..members_n).collect();
    let mut steps = Vec::new();
    let (mut lost_all, mut dup_all, mut refused_all) = (0, 0, 0);
    for &rate in rates {
        rec.borrow_mut().reset_latency();
        let before = Counters::take(procs);
        let slow_before = t.metric(SLOW_CLOSES).await;
        let count = (rate * secs) as usize;
        let started = Instant::now();
        let keys =
            client::open_loop(&mut sinks[0], &room, &format!("t{members_n}r{}", rate as u64), rate, count, &rec).await;
        let sending = started.elapsed().as_secs_f64();
        client::drain(&rec, &receivers, &keys, Duration::from_secs(20)).await;
        let after = Counters::take(procs);
        // Sessions the server closed because this client did not read fast enough (their
        // outbound queue was full): what such a session misses counts as lost here.
        let slow_closes = t.metric(SLOW_CLOSES).await - slow_before;
        let r = rec.borrow();
        let (lost, dup) = r.verify(&receivers, &keys);
        let (refused, refused_by_code) = r.refusals(&keys);
        let (acked, last_ack) = r.acked_of(&keys);
        lost_all += lost;
        dup_all += dup;
        refused_all += refused;
        let p99 = r.latency_us.value_at_quantile(0.99) as f64 / 1000.0;
        // Accepted (acked) per second, from the first intended send to the last ack (at least
        // the sending time).
        let span = last_ack.map_or(sending, |l| l.saturating_duration_since(started).as_secs_f64().max(sending));
        let accepted = acked as f64 / span.max(1e-3);
        steps.push(json!({"rate": rate, "messages": count, "accepted": acked, "accepted_per_s": accepted.round(),
                          "deliveries_per_s": (accepted * receivers.len() as f64).round(),
                          "latency": r.percentiles(), "p99_ok": p99 <= 50.0 && lost == 0,
                          "refused": refused, "refused_by_code": refused_by_code, "slow_consumer_closes": slow_closes,
                          "unanswered": count.saturating_sub(acked + refused), "lost": lost, "duplicated": dup,
                          "per_message": before.per(&after, acked.max(1) as f64)}));
        if p99 > 200.0 || refused * 20 > count {
            break; // far past saturation: higher rates only queue up or are refused
        }
    }
    let best =
        steps.iter().filter(|s| s["p99_ok"] == true).filter_map(|s| s["accepted_per_s"].as_f64()).fold(0.0, f64::max);
    Ok(json!({"members": members_n, "max_accepted_per_s_at_p99_50ms": best, "steps": steps,
              "lost": lost_all, "duplicated": dup_all, "refused": refused_all}))
}

/// The rooms metric counting sessions closed as slow consumers.
const SLOW_CLOSES: &str = "rooms_ws_slow_consumer_closes_total";

/// 3: time until the last member of a big room has a message.
pub async fn broadcast(t: &Target, procs: &Processes, members_n: usize, messages: usize) -> anyhow::Result<Value> {
    let members = users(&format!("bc{members_n}x"), members_n);
    let room = t.room(&members, "broadcast").await?;
    let rec = Recorder::new();
    let mut sinks = sessions(t, &room, &members, &rec).await?;
    client::send_text(&mut sinks[0], &room, "warmup").await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let receivers: Vec<usize> = (1..members_n).collect();
    let mut completion = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut keys = Vec::new();
    let before = Counters::take(procs);
    for i in 0..messages {
        let key = format!("b{members_n}-{i}");
        let t0 = Instant::now();
        rec.borrow_mut().intended.insert(key.clone(), t0);
        client::send_text(&mut sinks[0], &room, &key).await?;
        client::drain(&rec, &receivers, std::slice::from_ref(&key), Duration::from_secs(30)).await;
        if let Some(last) = rec.borrow().last_receipt.get(&key) {
            completion.record(last.saturating_duration_since(t0).as_micros() as u64)?;
        }
        keys.push(key);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = Counters::take(procs);
    client::close_all(&mut sinks).await;
    let (lost, dup) = rec.borrow().verify(&receivers, &keys);
    let ms = |q: f64| completion.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({"members": members_n, "messages": messages, "completion_p50_ms": ms(0.5), "completion_p95_ms": ms(0.95),
              "completion_max_ms": completion.max() as f64 / 1000.0, "lost": lost, "duplicated": dup,
              "per_delivery": before.per(&after, (messages * receivers.len()) as f64)}))
}

/// 4: many 2-member rooms at a fixed total rate: cost per delivery as rooms grow.
pub async fn many_rooms(
    t: &Target,
    procs: &Processes,
    rooms_n: usize,
    total_rate: f64,
    secs: f64,
) -> anyhow::Result<Value> {
    let rec = Recorder::new();
    let mut rooms = Vec::new();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..rooms_n {
        let members = vec![format!("mr{rooms_n}x{i}a"), format!("mr{rooms_n}x{i}b")];
        let room = t.room(&members, "many").await?;
        let token_a = t.token(&members[0]);
        let token_b = t.token(&members[1]);
        senders.push(
            client::connect(&t.session_url(&room), (!t.is_floor()).then_some(token_a.as_str()), 2 * i, rec.clone())
                .await?,
        );
        receivers.push(
            client::connect(&t.session_url(&room), (!t.is_floor()).then_some(token_b.as_str()), 2 * i + 1, rec.clone())
                .await?,
        );
        rooms.push(room);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = (total_rate * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / total_rate);
    let before = Counters::take(procs);
    let start = Instant::now() + Duration::from_millis(20);
    let mut keys_by_room: Vec<Vec<String>> = vec![Vec::new(); rooms_n];
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        let r = i % rooms_n;
        let key = format!("m{rooms_n}-{i}");
        client::send_at(&mut senders[r], &rooms[r], &key, due, client::precise(interval), &rec).await;
        keys_by_room[r].push(key);
    }
    let all: Vec<String> = keys_by_room.iter().flatten().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut lost, mut dup) = (0, 0);
    while Instant::now() < deadline {
        (lost, dup) = (0, 0);
        for (r, keys) in keys_by_room.iter().enumerate() {
            let (l, d) = rec.borrow().verify(&[2 * r + 1], keys);
            lost += l;
            dup += d;
        }
        if lost == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = Counters::take(procs);
    client::close_all(&mut receivers).await;
    client::close_all(&mut senders).await;
    let (refused, refused_by_code) = rec.borrow().refusals(&all);
    Ok(json!({"rooms": rooms_n, "rate": total_rate, "messages": all.len(), "latency": rec.borrow().percentiles(),
              "lost": lost, "duplicated": dup, "refused": refused, "refused_by_code": refused_by_code,
              "per_delivery": before.per(&after, all.len() as f64),
              "rooms_active": t.metric("rooms_active").await}))
}

/// 5: memory of idle sessions and idle room actors (RSS of the rooms process), and Redis
/// memory per online user.
pub async fn footprint(t: &Target, sessions_n: usize, rooms_n: usize) -> anyhow::Result<Value> {
    let rss0 = crate::sys::rss_bytes(t.pid);
    let redis0 = crate::sys::redis_used_memory().unwrap_or(0);
    let rec = Recorder::new();
    let mut sinks = Vec::new();
    for i in 0..sessions_n {
        let tok = t.token(&format!("idle{i}"));
        sinks.push(client::connect(&t.ws, Some(&tok), i, rec.clone()).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = crate::sys::rss_bytes(t.pid);
    let redis1 = crate::sys::redis_used_memory().unwrap_or(0);
    // Idle room actors: create rooms and post once into each (activates the actor). A first
    // wave (a quarter as many, not counted) warms what every room shares (database connections
    // and their statement caches, allocator arenas of the room threads); the second is measured.
    let mut sender = client::connect(&t.ws, Some(&t.token("roomowner")), 1_000_000, rec.clone()).await?;
    let warm_up = (rooms_n / 4).max(1);
    let mut rss_warm = rss1;
    let mut active_warm = 0.0;
    for i in 0..warm_up + rooms_n {
        if i == warm_up {
            let deadline = Instant::now() + Duration::from_secs(60);
            while rec.borrow().acks < warm_up && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss_warm = crate::sys::rss_bytes(t.pid);
            active_warm = t.metric("rooms_active").await;
        }
        let room = t.room(&["roomowner".to_owned(), format!("peer{i}")], "idle").await?;
        client::send_text(&mut sender, &room, &format!("f{i}")).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rec.borrow().acks < warm_up + rooms_n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss2 = crate::sys::rss_bytes(t.pid);
    let active = t.metric("rooms_active").await - active_warm;
    client::close_all(&mut sinks).await;
    let _ = futures_util::SinkExt::close(&mut sender).await;
    Ok(json!({
        "sessions": sessions_n, "bytes_per_idle_session": (rss1.saturating_sub(rss0)) / sessions_n.max(1) as u64,
        "redis_bytes_per_online_user": (redis1.saturating_sub(redis0)) / sessions_n.max(1) as u64,
        "rooms": rooms_n, "rooms_active": active,
        "bytes_per_idle_room_actor": (rss2.saturating_sub(rss_warm)) / (active.max(1.0) as u64),
        "bytes_per_idle_room_actor_with_warm_up": (rss2.saturating_sub(rss1)) / ((active + active_warm).max(1.0) as u64),
        "note": "RSS deltas of the rooms process; a room's delta includes its members in the presence and kind caches and allocator slack; measured over the second wave of rooms",
    }))
}

/// 6: first delivery into a passivated (cold) room vs an active (warm) one, and activations per
/// second. Needs a target with a short passivation time.
pub async fn activation(t: &Target, rooms_n: usize) -> anyhow::Result<Value> {
    let rec = Recorder::new();
    let mut rooms = Vec::new();
    let mut owner = client::connect(&t.ws, Some(&t.token("owner")), 0, rec.clone()).await?;
    for i in 0..rooms_n {
        let members = vec!["owner".to_owned(), format!("act{i}")];
        rooms.push(t.room(&members, "act").await?);
    }
    // Let every room passivate.
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.metric("rooms_active").await > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut cold = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut warm = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut keys = Vec::new();
    // The owner receives its own messages (one session, receiver 0): the time to that delivery.
    for (i, room) in rooms.iter().enumerate() {
        for (label, hist) in [("c", &mut cold), ("w", &mut warm)] {
            let key = format!("a{label}{i}");
            let t0 = Instant::now();
            rec.borrow_mut().intended.insert(key.clone(), t0);
            client::send_text(&mut owner, room, &key).await?;
            client::drain(&rec, &[0], std::slice::from_ref(&key), Duration::from_secs(10)).await;
            if let Some(last) = rec.borrow().last_receipt.get(&key) {
                hist.record(last.saturating_duration_since(t0).as_micros() as u64)?;
            }
            keys.push(key);
        }
    }
    // Activations per second: passivate all again, then one message to each, all at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.metric("rooms_active").await > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let acks0 = rec.borrow().acks;
    let started = Instant::now();
    for (i, room) in rooms.iter().enumerate() {
        client::send_text(&mut owner, room, &format!("burst{i}")).await?;
    }
    while rec.borrow().acks < acks0 + rooms_n && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = rooms_n as f64 / started.elapsed().as_secs_f64();
    let _ = futures_util::SinkExt::close(&mut owner).await;
    let (lost, dup) = rec.borrow().verify(&[0], &keys);
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({"rooms": rooms_n, "cold_p50_ms": ms(&cold, 0.5), "cold_p99_ms": ms(&cold, 0.99),
              "warm_p50_ms": ms(&warm, 0.5), "warm_p99_ms": ms(&warm, 0.99), "activations_per_s": rate.round(),
              "server_activation_p99_ms": crate::report::histogram_quantile(t, "rooms_activation_seconds", 0.99).await,
              "lost": lost, "duplicated": dup}))
}

/// 7: connect + authenticate + join (sync answered) per second, and a reconnect storm.
pub async fn connect_storm(t: &Target, n: usize) -> anyhow::Result<Value> {
    let members = users("storm", 2);
    let room = t.room(&members, "storm").await?;
    let join_frame = json!({"type": "sync", "rooms": {room.clone(): 0}}).to_string();
    let mut results = serde_json::Map::new();
    let mut sinks = Vec::new();
    for phase in ["connect", "reconnect"] {
        let rec = Recorder::new();
        client::close_all(&mut sinks).await;
        let started = Instant::now();
        for i in 0..n {
            let tok = t.token(&members[i % 2]);
            let mut sink = client::connect(&t.ws, Some(&tok), i, rec.clone()).await?;
            futures_util::SinkExt::send(&mut sink, tokio_tungstenite::tungstenite::Message::text(join_frame.clone()))
                .await?;
            sinks.push(sink);
        }
        while rec.borrow().synced < n && started.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let synced = rec.borrow().synced;
        results.insert(
            phase.into(),
            json!({"sessions": n, "synced": synced, "seconds": (secs * 1000.0).round() / 1000.0,
                                            "per_s": (synced as f64 / secs).round()}),
        );
    }
    client::close_all(&mut sinks).await;
    Ok(Value::Object(results))
}

/// A JSON call: status and body (Null when not JSON).
async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let mut req = match method {
        "PUT" => client.put(url),
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let sent = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    };
    let mut res = sent.map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))?;
    let bytes = res.body().limit(1 << 24).await?;
    Ok((res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A demo member's access token from authz (`<username>-demo-pass`).
async fn login(t: &LineTarget, tenant: &str, username: &str) -> anyhow::Result<String> {
    let body = json!({"tenant": tenant, "username": username, "password": format!("{username}-demo-pass")});
    let (status, answer) = call("POST", &format!("{}/v1/auth/login", t.authz), None, Some(body)).await?;
    anyhow::ensure!(status == 200, "login {username}@{tenant}: {status} {answer}");
    answer["access_token"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("login: {answer}"))
}

/// Poll `f` every 100 ms until it returns `Some`, `secs` at most.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The LINE user of scenario 8 and the channel of the member they talk to.
const LINE_CHANNEL: &str = "1650000008";
const LINE_USER: &str = "U0123456789abcdef0123456789abcdef";
/// The gateway's histogram of the time from a webhook's arrival to rooms' answer to its post.
const ROOM_ANSWER: &str = "line_webhook_to_room_seconds";

/// 8: a LINE user's text messages to a member, from the LINE platform simulator's signed
/// webhook to the member's socket, at fixed rates (open loop). acme's admin binds alice to a
/// channel, the LINE user follows (the gateway opens alice's LINE 1:1 room), alice connects;
/// then every message is one webhook of one text event, sent at its intended time (each POST
/// on its own task, so a slow answer does not delay the next) and measured from that time to
/// the frame on alice's socket (matched by its text, which carries the sequence number). Also
/// when the gateway's answer to each webhook was back (from the same intended time; LINE gives
/// up after 2 s), the shares of the gateway's own `line_webhook_to_room_seconds` (arrival to
/// rooms' answer) per bucket, and how many requests the gateway sent LINE outside its spec.
pub async fn line_webhook(t: &LineTarget, procs: &Processes, rates: &[f64], secs: f64) -> anyhow::Result<Vec<Value>> {
    let (admin, alice) = (login(t, "acme", "admin").await?, login(t, "acme", "alice").await?);
    let (status, answer) =
        call("PUT", &format!("{}/v1/admin/line-access", t.authz), Some(&admin), Some(json!({"mode": "all"}))).await?;
    anyhow::ensure!(status == 200, "LINE for all of acme: {status} {answer}");
    let sim = t.sim.client();
    let channel = line_sim::Channel::random(LINE_CHANNEL);
    sim.register_channel(&channel).await?;
    sim.add_profile(&line_sim::Profile {
        channel_id: LINE_CHANNEL.into(),
        user_id: LINE_USER.into(),
        display_name: "Bench User".into(),
        picture_url: None,
        status_message: None,
        language: None,
    })
    .await?;
    let binding = json!({"channel_id": channel.channel_id, "channel_secret": channel.channel_secret,
                         "access_token": channel.access_token, "basic_id": channel.basic_id});
    let bind_url = format!("{}/v1/admin/line/channels/alice@acme", t.gateway);
    let (status, answer) = call("PUT", &bind_url, Some(&admin), Some(binding)).await?;
    anyhow::ensure!(status == 200, "binding alice's channel: {status} {answer}");

    let target_url = format!("{}/line/webhook/{LINE_CHANNEL}", t.gateway);
    let source = line_sim::events::Source::user(LINE_USER);
    let webhook = |events: Vec<Value>| line_sim::WebhookRequest::new(LINE_CHANNEL, &target_url, events);
    let followed = sim.send_webhook(&webhook(vec![line_sim::events::follow(&source, false)])).await?;
    anyhow::ensure!(followed.status == 200, "follow webhook: {} {}", followed.status, followed.body);
    let rooms_url = format!("{}/v1/rooms", t.engine.base);
    eventually(30, "alice's LINE 1:1 room", || async {
        let (_, answer) = call("GET", &rooms_url, Some(&alice), None).await?;
        Ok(answer["rooms"].as_array().and_then(|rooms| {
            rooms.iter().find(|r| r["kind"] == "line_direct").and_then(|r| r["id"].as_str().map(str::to_owned))
        }))
    })
    .await?;

    let rec = Recorder::new();
    let mut sinks = vec![client::connect(&t.engine.ws, Some(&alice), 0, rec.clone()).await?];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut message_ids = 100_000_000_000_000_u64..;
    let mut text = |key: &str| {
        let id = message_ids.next().expect("an endless range").to_string();
        line_sim::events::text(&source, &id, key)
    };
    // Warm the path (the room actor, the connections) before measuring.
    let warm = "lwarmup".to_owned();
    rec.borrow_mut().intended.insert(warm.clone(), Instant::now());
    sim.send_webhook(&webhook(vec![text(&warm)])).await?;
    client::drain(&rec, &[0], std::slice::from_ref(&warm), Duration::from_secs(15)).await;
    anyhow::ensure!(rec.borrow().verify(&[0], std::slice::from_ref(&warm)).0 == 0, "the warm-up message never came");

    let mut steps = Vec::new();
    for &rate in rates {
        rec.borrow_mut().reset_latency();
        let answered = std::rc::Rc::new(std::cell::RefCell::new(hdrhistogram::Histogram::<u64>::new(3)?));
        let refused = std::rc::Rc::new(std::cell::Cell::new(0_usize));
        let count = (rate * secs) as usize;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let before = Counters::take(procs);
        let room_answers = crate::report::histogram_buckets(&t.gateway, ROOM_ANSWER).await;
        let start = Instant::now() + Duration::from_millis(20);
        let mut keys = Vec::with_capacity(count);
        let mut posts = Vec::with_capacity(count);
        for i in 0..count {
            let due = start + interval.mul_f64(i as f64);
            let key = format!("lw{}-{i}", rate as u64);
            let request = webhook(vec![text(&key)]);
            rec.borrow_mut().intended.insert(key.clone(), due);
            let now = client::wait_until(due, client::precise(interval)).await;
            {
                let mut r = rec.borrow_mut();
                r.sent.insert(key.clone(), now);
                let _ = r.send_lag_us.record((now.saturating_duration_since(due).as_micros() as u64).max(1));
            }
            let (sim, answered, refused, rec) = (sim.clone(), answered.clone(), refused.clone(), rec.clone());
            let posted = key.clone();
            keys.push(key);
            posts.push(actix_rt::spawn(async move {
                match sim.send_webhook(&request).await {
                    Ok(r) if r.status == 200 => {
                        let _ = answered.borrow_mut().record((due.elapsed().as_micros() as u64).max(1));
                        // Accepted: the gateway stored the event (its loss counts as lost).
                        rec.borrow_mut().acked.insert(posted, Instant::now());
                    }
                    // Not accepted: counted as refused, not lost.
                    Ok(r) => {
                        refused.set(refused.get() + 1);
                        rec.borrow_mut().refused.insert(posted, format!("webhook_{}", r.status));
                    }
                    Err(_) => {
                        refused.set(refused.get() + 1);
                        rec.borrow_mut().refused.insert(posted, "webhook_failed".into());
                    }
                }
            }));
        }
        for post in posts {
            let _ = post.await;
        }
        client::drain(&rec, &[0], &keys, Duration::from_secs(20)).await;
        let after = Counters::take(procs);
        let room_answers = crate::report::bucket_shares(
            &room_answers,
            &crate::report::histogram_buckets(&t.gateway, ROOM_ANSWER).await,
        );
        let r = rec.borrow();
        let (lost, dup) = r.verify(&[0], &keys);
        // Received per second, from the first intended send to the last receipt.
        let last = keys.iter().filter_map(|k| r.last_receipt.get(k)).max().copied().unwrap_or(start);
        let delivered_per_s = r.latency_us.len() as f64 / last.saturating_duration_since(start).as_secs_f64().max(1e-3);
        let a = answered.borrow();
        let ms = |q: f64| a.value_at_quantile(q) as f64 / 1000.0;
        steps.push(json!({"rate": rate, "messages": count, "latency": r.percentiles(),
                          "delivered_per_s": (delivered_per_s * 10.0).round() / 10.0,
                          "lost": lost, "duplicated": dup,
                          "webhook_answered": {"p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": a.max() as f64 / 1000.0,
                                               "refused": refused.get()},
                          "gateway_webhook_to_room_answer": room_answers,
                          "per_message": before.per(&after, count as f64)}));
    }
    client::close_all(&mut sinks).await;
    // The gateway's requests to LINE that broke LINE's spec (a bug, not a figure): counted, so
    // that the run's other results are still written.
    let invalid = sim.invalid().await?.len();
    for step in &mut steps {
        step["line_api_invalid_requests"] = json!(invalid);
    }
    Ok(steps)
}
