//! Repairs of issue 8 on the rooms side: a store outage stalls no shard and loses nothing, a
//! shard whose queue vanished subscribes again, text the store cannot keep is refused at once.
//! Each test works in its own schema and vhost only.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::*;
use serde_json::json;

/// `messages_unacknowledged` of every queue of the vhost whose name starts with `prefix`.
fn unacked(vhost: &str, prefix: &str) -> Vec<(String, u64)> {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "-p", vhost, "name", "messages_unacknowledged"])
        .stderr(Stdio::null())
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (name, n) = (parts.next()?, parts.next()?.parse().ok()?);
            name.starts_with(prefix).then(|| (name.to_owned(), n))
        })
        .collect()
}

/// (room, message_id, seq) of every acknowledged post, by client_msg_id.
type Acked = Arc<Mutex<HashMap<String, (String, String, i64)>>>;

#[actix_rt::test]
async fn a_store_outage_during_traffic_stalls_no_shard_and_loses_no_acknowledged_message() {
    // A small prefetch: a handful of deliveries dropped unsettled would stall a shard for good.
    let opts =
        RoomsOptions::new("outage").env("CHAT__AMQP__PREFETCH", "4").env("CHAT__ROOMS__COMMAND_TIMEOUT_MS", "1500");
    let name = opts.name.clone();
    let rooms = Rooms::start(opts).await;
    let base = rooms.base();
    let mut room_ids = Vec::new();
    for i in 0..8 {
        room_ids.push(create_room(&base, "alice", "acme", &["bob"], Some(&format!("r{i}"))).await);
    }

    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (i, room) in room_ids.iter().enumerate() {
        let (room, base, acked, stop) = (room.clone(), base.clone(), acked.clone(), stop.clone());
        senders.push(actix_rt::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("s{i}-{n}");
                let answer = post_text(&base, &room, "alice", "acme", &key, &key).await;
                if answer.status == 201 {
                    let message_id = answer.body["message_id"].as_str().unwrap_or_default().to_owned();
                    let seq = answer.body["seq"].as_i64().unwrap_or_default();
                    acked.lock().unwrap().insert(key, (room.clone(), message_id, seq));
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    let before_outage = acked.lock().unwrap().len();
    // The store loses its events table for two seconds: every commit fails meanwhile.
    sql(&format!("ALTER TABLE \"{name}\".events RENAME TO events_away"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    sql(&format!("ALTER TABLE \"{name}\".events_away RENAME TO events"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    assert!(before_outage > 0, "traffic flowed before the outage");

    // Every room of every shard answers again.
    for (i, room) in room_ids.iter().enumerate() {
        let key = format!("after-{i}");
        let answer = eventually(20, "the room answers after the outage", || {
            let (base, room, key) = (base.clone(), room.clone(), key.clone());
            async move {
                let a = post_text(&base, &room, "alice", "acme", &key, "after").await;
                (a.status == 201).then_some(a)
            }
        })
        .await;
        assert_eq!(answer.status, 201);
    }

    // Nothing is left unsettled on any shard queue.
    let queues = eventually(20, "no delivery left unacknowledged", || {
        let name = name.clone();
        async move {
            let queues = unacked(&name, &format!("{name}.rooms.cmd.s"));
            (!queues.is_empty() && queues.iter().all(|(_, n)| *n == 0)).then_some(queues)
        }
    })
    .await;
    assert!(!queues.is_empty());

    // Every acknowledged message is stored once, with the id and seq it was acknowledged with.
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > before_outage, "traffic went on after the outage");
    let mut stored: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for room in &room_ids {
        let events = history_all(&base, room).await;
        let mut last = 0;
        for e in &events {
            let seq = e["seq"].as_i64().expect("seq");
            assert_eq!(seq, last + 1, "seqs of {room} are contiguous");
            last = seq;
        }
        for m in messages(&events) {
            let text = m["body"]["text"].as_str().unwrap_or_default().to_owned();
            stored
                .entry(text)
                .or_default()
                .push((m["message_id"].as_str().unwrap_or_default().to_owned(), m["seq"].as_i64().unwrap_or_default()));
        }
    }
    for (key, (_, message_id, seq)) in &acked {
        assert_eq!(stored.get(key), Some(&vec![(message_id.clone(), *seq)]), "{key} stored once as acknowledged");
    }
}

/// Every event of a room, oldest first, page by page.
async fn history_all(base: &str, room: &str) -> Vec<serde_json::Value> {
    let t = token("alice", "acme");
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page =
            call("GET", &format!("{base}/v1/rooms/{room}/messages?after={after}&limit=500"), Some(&t), None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let events = page.body["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = events.last().and_then(|e| e["seq"].as_i64()) else { break };
        after = last;
        all.extend(events);
    }
    all
}

#[actix_rt::test]
async fn a_shard_whose_queue_vanishes_subscribes_again_and_its_rooms_answer() {
    let opts = RoomsOptions::new("resub");
    let name = opts.name.clone();
    let shards = opts.shards;
    let rooms = Rooms::start(opts).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("r")).await;
    assert_eq!(post_text(&base, &room, "alice", "acme", "before", "before").await.status, 201);

    // Someone deletes every shard queue (an operator, a broker policy): the consumers end.
    for shard in 0..shards {
        let queue = format!("{name}.rooms.cmd.s{shard:03}");
        let deleted = Command::new("rabbitmqctl")
            .args(["-q", "delete_queue", "-p", &name, &queue])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmqctl runs");
        assert!(deleted.success(), "deleting {queue}");
    }
    // The consumers are set up again (declaring their queues), and the room answers.
    let answer = eventually(20, "the room answers after its queue came back", || {
        let (base, room) = (base.clone(), room.clone());
        async move {
            let a = post_text(&base, &room, "alice", "acme", "after", "after").await;
            (a.status == 201).then_some(a)
        }
    })
    .await;
    assert_eq!(answer.status, 201);
    // Readiness says which shards do not consume, until every one does again.
    eventually(20, "ready again once every shard consumes", || {
        let base = base.clone();
        async move { (call("GET", &format!("{base}/health/ready"), None, None).await.status == 200).then_some(()) }
    })
    .await;
    let log = std::fs::read_to_string(bin_dir().join("e2e-logs").join(format!("{name}-0.log"))).unwrap_or_default();
    // The bus notices the consumer's end and sets it up again, declaring the queue anew.
    assert!(log.contains("consumer ended by the broker"), "the consumer's end was noticed");
    assert!(log.contains("consumer set up again"), "and the consumer set up again");
}

#[actix_rt::test]
async fn text_the_store_cannot_keep_is_refused_at_once_and_changes_nothing() {
    let rooms = Rooms::start(RoomsOptions::new("nul")).await;
    let base = rooms.base();
    let t = token("alice", "acme");
    let room = create_room(&base, "alice", "acme", &["bob"], Some("r")).await;
    let list_before = call("GET", &format!("{base}/v1/rooms"), Some(&t), None).await.body;
    let events_before = history(&base, &room, "alice", "acme").await;

    let create = json!({"members": ["bob"], "name": "bad\u{0}name"}).to_string();
    let created = call("POST", &format!("{base}/v1/rooms"), Some(&t), Some(&create)).await;
    assert_eq!(
        (created.status, created.body["error"]["code"].clone()),
        (400, json!("invalid_field")),
        "{}",
        created.body
    );
    let rename = json!({"description": "a\u{0}b"}).to_string();
    let renamed = call("PATCH", &format!("{base}/v1/rooms/{room}"), Some(&t), Some(&rename)).await;
    assert_eq!(
        (renamed.status, renamed.body["error"]["code"].clone()),
        (400, json!("invalid_field")),
        "{}",
        renamed.body
    );
    let post = json!({"client_msg_id": "nul-1", "body": {"type": "text", "text": "a\u{0}b"}}).to_string();
    let posted = call("POST", &format!("{base}/v1/rooms/{room}/messages"), Some(&t), Some(&post)).await;
    assert_eq!((posted.status, posted.body["error"]["code"].clone()), (400, json!("invalid_field")), "{}", posted.body);

    let mut ws = Ws::connect(&rooms.ws_url(), &t).await;
    ws.send(
        json!({"type": "send", "room_id": room, "client_msg_id": "nul-2", "body": {"type": "text", "text": "x\u{0}"}}),
    )
    .await;
    let error = ws.expect(5, "an error frame", |f| f["type"] == "error").await;
    assert_eq!(error["code"], "invalid_field", "{error}");

    assert_eq!(call("GET", &format!("{base}/v1/rooms"), Some(&t), None).await.body, list_before, "no room changed");
    assert_eq!(history(&base, &room, "alice", "acme").await, events_before, "no event was added");
}

#[actix_rt::test]
async fn a_request_retried_with_the_same_idempotency_key_is_applied_once() {
    let rooms = Rooms::start(RoomsOptions::new("idem")).await;
    let base = rooms.base();
    let t = token("alice", "acme");
    let room = create_room(&base, "alice", "acme", &["bob", "carl"], Some("r")).await;
    let key = [("Idempotency-Key", "rename-1")];
    let rename = json!({"name": "renamed"}).to_string();
    for _ in 0..2 {
        let a = call_with("PATCH", &format!("{base}/v1/rooms/{room}"), Some(&t), Some(&rename), &key).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let events = history(&base, &room, "alice", "acme").await;
    let renames = events.iter().filter(|e| e["event"]["type"] == "info_updated").count();
    assert_eq!(renames, 1, "one rename for one key: {events:?}");

    // A retried leave is answered as the first one was, instead of room_not_found.
    let bob = token("bob", "acme");
    let leave = [("Idempotency-Key", "leave-1")];
    let first = call_with("POST", &format!("{base}/v1/rooms/{room}/leave"), Some(&bob), None, &leave).await;
    let again = call_with("POST", &format!("{base}/v1/rooms/{room}/leave"), Some(&bob), None, &leave).await;
    assert_eq!((first.status, again.status), (200, 200), "{} / {}", first.body, again.body);
    assert_eq!(first.body, again.body);

    // A retried create makes one room.
    let create = json!({"members": ["bob"], "name": "once"}).to_string();
    let make = [("Idempotency-Key", "create-1")];
    let one = call_with("POST", &format!("{base}/v1/rooms"), Some(&t), Some(&create), &make).await;
    let two = call_with("POST", &format!("{base}/v1/rooms"), Some(&t), Some(&create), &make).await;
    assert_eq!(one.status, 201, "{}", one.body);
    assert!(two.status == 200 || two.status == 201, "{}", two.body);
    assert_eq!(one.body["id"], two.body["id"]);
    let list = call("GET", &format!("{base}/v1/rooms"), Some(&t), None).await.body;
    let named_once = list["rooms"].as_array().expect("rooms").iter().filter(|r| r["name"] == "once").count();
    assert_eq!(named_once, 1, "{list}");

    let bad = call_with(
        "POST",
        &format!("{base}/v1/rooms/{room}/leave"),
        Some(&t),
        None,
        &[("Idempotency-Key", "no spaces")],
    )
    .await;
    assert_eq!((bad.status, bad.body["error"]["code"].clone()), (400, json!("invalid_field")), "{}", bad.body);
}
