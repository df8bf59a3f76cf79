//! Sessions under load and over time: quotas on posts and room creation, the in-flight bound of
//! a WebSocket session, a large `sync` while new messages arrive, the order of pipelined sends,
//! and a session outliving its token. Real binaries against the real backends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::*;
use serde_json::{json, Value};

fn send_frame(room: &str, key: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_msg_id": key, "body": {"type": "text", "text": key}})
}

/// Read frames until every key of `keys` has its answer (an ack or an error naming it).
async fn answers(ws: &mut Ws, keys: &[String], secs: u64) -> BTreeMap<String, Value> {
    let wanted: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut got = BTreeMap::new();
    while got.len() < wanted.len() {
        match ws.next(secs).await {
            Got::Frame(f) if f["type"] == "ack" || f["type"] == "error" => {
                let key = f["client_msg_id"].as_str().unwrap_or_default().to_owned();
                assert!(wanted.contains(key.as_str()), "an answer for no frame sent: {f}");
                assert!(got.insert(key, f.clone()).is_none(), "two answers for one frame: {f}");
            }
            Got::Frame(_) => {}
            other => panic!("waiting for {} answers, {} so far: {other:?}", wanted.len(), got.len()),
        }
    }
    got
}

#[actix_rt::test]
async fn a_burst_of_posts_over_the_quota_is_refused_with_429_and_stores_nothing_more() {
    let rooms = Rooms::start(RoomsOptions::new("quota")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("burst")).await;

    // 150 posts in a row: the default budget is 100 at once, then 10 a second.
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for i in 0..150 {
        let key = format!("h{i:03}");
        let a = post_text(&base, &room, "alice", "acme", &key, &key).await;
        match a.status {
            201 => accepted.push(key),
            429 => {
                refused += 1;
                assert_eq!(a.body["error"]["code"], "rate_limited", "{}", a.body);
                let wait: u64 = a.retry_after.as_deref().and_then(|s| s.parse().ok()).expect("Retry-After in seconds");
                assert!(wait >= 1, "Retry-After {wait}");
            }
            other => panic!("post {key}: {other} {}", a.body),
        }
    }
    assert!(refused > 0, "150 posts in a row, none refused ({} accepted)", accepted.len());
    assert!(accepted.len() >= 100, "the burst of 100 is allowed: only {} accepted", accepted.len());
    let stored: Vec<String> = messages(&history(&base, &room, "bob", "acme").await)
        .iter()
        .map(|m| m["body"]["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(stored, accepted, "exactly the accepted posts are stored, in order");

    // The WebSocket draws on the same budget: a pipelined burst right after is mostly refused.
    let mut alice = Ws::connect(&rooms.ws_url(), &token("alice", "acme")).await;
    let keys: Vec<String> = (0..30).map(|i| format!("w{i:02}")).collect();
    for key in &keys {
        alice.send(send_frame(&room, key)).await;
    }
    let got = answers(&mut alice, &keys, 15).await;
    let limited = got.values().filter(|f| f["type"] == "error" && f["code"] == "rate_limited").count();
    assert!(limited >= 20, "30 sends with an empty budget, {limited} refused: {got:?}");
    let acked: Vec<String> =
        got.values().filter(|f| f["type"] == "ack").map(|f| f["client_msg_id"].to_string()).collect();
    let stored = messages(&history(&base, &room, "bob", "acme").await).len();
    assert_eq!(stored, accepted.len() + acked.len(), "refused sends store nothing");

    // Creating rooms has its own budget (20 at once, then 10 a minute).
    let bob = token("bob", "acme");
    let (mut created, mut refused_rooms) = (0, 0);
    for i in 0..30 {
        let body = json!({"members": ["alice"], "name": format!("r{i}")}).to_string();
        let a = call("POST", &format!("{base}/v1/rooms"), Some(&bob), Some(&body)).await;
        match a.status {
            201 => created += 1,
            429 => {
                refused_rooms += 1;
                assert_eq!(a.body["error"]["code"], "rate_limited");
                assert!(a.retry_after.is_some(), "Retry-After");
            }
            other => panic!("create room {i}: {other} {}", a.body),
        }
    }
    assert!(refused_rooms > 0 && created >= 20, "{created} rooms created, {refused_rooms} refused");
    let listed = call("GET", &format!("{base}/v1/rooms"), Some(&bob), None).await;
    assert_eq!(listed.body["rooms"].as_array().map(Vec::len), Some(created + 1), "refused creations made nothing");
}

#[actix_rt::test]
async fn a_client_flooding_frames_gets_error_frames_while_the_server_and_other_users_carry_on() {
    let rooms = Rooms::start(RoomsOptions::new("flood")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("flood")).await;
    let other = create_room(&base, "carol", "acme", &["dave"], Some("calm")).await;
    let mut carol = Ws::connect(&rooms.ws_url(), &token("carol", "acme")).await;

    // 300 sends without waiting: each is answered, the excess with an error frame.
    let mut alice = Ws::connect(&rooms.ws_url(), &token("alice", "acme")).await;
    let keys: Vec<String> = (0..300).map(|i| format!("f{i:03}")).collect();
    for key in &keys {
        alice.send(send_frame(&room, key)).await;
    }
    // Meanwhile another user posts and is delivered to as usual.
    let calm = post_text(&base, &other, "dave", "acme", "d1", "all quiet").await;
    assert_eq!(calm.status, 201, "{}", calm.body);
    let got = carol.expect(15, "dave's message", |f| f["type"] == "message").await;
    assert_eq!(got["body"]["text"], "all quiet");

    let got = answers(&mut alice, &keys, 30).await;
    let errors: Vec<&Value> = got.values().filter(|f| f["type"] == "error").collect();
    for e in &errors {
        assert!(e["code"] == "rate_limited" || e["code"] == "too_many_in_flight", "unexpected error frame {e}");
    }
    assert!(!errors.is_empty(), "300 pipelined sends, all accepted: nothing bounds a session's work");
    let acked: BTreeSet<String> = got
        .values()
        .filter(|f| f["type"] == "ack")
        .filter_map(|f| f["client_msg_id"].as_str().map(str::to_owned))
        .collect();
    let stored: BTreeSet<String> = messages(&history(&base, &room, "bob", "acme").await)
        .iter()
        .filter_map(|m| m["body"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(stored, acked, "exactly the acknowledged sends are stored");

    // Read markers are not rate limited, but the in-flight bound holds them too.
    for _ in 0..500 {
        alice.send(json!({"type": "read", "room_id": room, "seq": 1})).await;
    }
    alice.send(json!({"type": "ping"})).await;
    let mut in_flight_errors = 0;
    loop {
        match alice.next(30).await {
            Got::Frame(f) if f["type"] == "pong" => break,
            Got::Frame(f) if f["type"] == "error" => {
                assert_eq!(f["code"], "too_many_in_flight", "{f}");
                in_flight_errors += 1;
            }
            Got::Frame(f) if f["type"] == "message" => {} // alice's own messages, pushed to her
            Got::Frame(f) => panic!("unexpected frame {f}"),
            other => panic!("waiting for the pong after 500 read markers: {other:?}"),
        }
    }
    assert!(in_flight_errors > 0, "500 read markers at once, none refused");

    // The session and the server are still fine.
    assert_eq!(call("GET", &format!("{base}/health/ready"), None, None).await.status, 200);
    alice.send(json!({"type": "ping"})).await;
    alice.expect(10, "pong", |f| f["type"] == "pong").await;
    let again = post_text(&base, &other, "dave", "acme", "d2", "still quiet").await;
    assert_eq!(again.status, 201);
    carol.expect(15, "dave's second message", |f| f["type"] == "message" && f["body"]["text"] == "still quiet").await;
}

#[actix_rt::test]
async fn a_large_sync_while_new_messages_arrive_keeps_the_session_and_delivers_everything_in_order() {
    let rooms = Rooms::start(RoomsOptions::new("bigsync")).await;
    let base = rooms.base();
    // 100 members post the backlog (50 each, within everyone's budget); 10 others keep posting.
    let bulk: Vec<String> = (0..100).map(|i| format!("b{i}")).collect();
    let live: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
    let members: Vec<&str> = bulk.iter().chain(&live).map(String::as_str).collect();
    let room = create_room(&base, "bob", "acme", &members, Some("busy")).await;

    let mut posters = Vec::new();
    for user in bulk.clone() {
        let (base, room) = (base.clone(), room.clone());
        posters.push(actix_rt::spawn(async move {
            for i in 0..50 {
                let a = post_text(&base, &room, &user, "acme", &format!("{user}-{i}"), "backlog").await;
                assert_eq!(a.status, 201, "{}", a.body);
            }
        }));
    }
    for p in posters {
        p.await.expect("bulk poster");
    }

    // New messages keep coming while bob catches up.
    let stop = Arc::new(AtomicBool::new(false));
    let last_live = Arc::new(AtomicI64::new(0));
    let poster = {
        let (base, room, stop, last_live) = (base.clone(), room.clone(), stop.clone(), last_live.clone());
        actix_rt::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let user = &live[n % live.len()];
                let a = post_text(&base, &room, user, "acme", &format!("live-{n}"), "live").await;
                if a.status == 201 {
                    last_live.fetch_max(a.body["seq"].as_i64().expect("seq"), Ordering::Relaxed);
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                n += 1;
            }
            n
        })
    };
    eventually(20, "live posts", || async { (last_live.load(Ordering::Relaxed) > 5000).then_some(()) }).await;

    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;
    bob.send(json!({"type": "sync", "rooms": {room.clone(): 0}})).await;
    // Every frame of the room, in arrival order, until `synced` and then until the last post.
    let mut seqs: Vec<i64> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut synced = None;
    let mut poster = Some(poster);
    let mut target = None;
    loop {
        if target.is_some_and(|last| seen.contains(&last)) {
            break;
        }
        match bob.next(30).await {
            Got::Frame(f) if f["type"] == "synced" => {
                synced = Some(f["rooms"][&room].as_i64().expect("synced seq"));
                // Stop posting; the last seq posted is what bob must reach.
                stop.store(true, Ordering::Relaxed);
                if let Some(p) = poster.take() {
                    p.await.expect("live poster");
                }
                target = Some(last_live.load(Ordering::Relaxed));
            }
            Got::Frame(f) if f["room_id"] == room.as_str() && f["seq"].is_i64() => {
                let seq = f["seq"].as_i64().unwrap_or_default();
                seqs.push(seq);
                seen.insert(seq);
            }
            Got::Frame(f) => panic!("unexpected frame {f}"),
            other => {
                panic!("bob's session during the sync: {other:?} after {} frames (synced: {synced:?})", seqs.len())
            }
        }
    }
    let last = target.expect("the last seq");

    // Live pushes may come before the sync's first page (the session is live before its sync
    // frame is read); from that page on, dropping seqs already seen, each seq is the next one.
    let first_page = seqs.iter().position(|s| *s == 1).expect("the sync starts at seq 1");
    assert!(
        seqs[..first_page].iter().all(|s| *s > 5000),
        "only live pushes before the sync: {:?}",
        &seqs[..first_page]
    );
    let mut max = 0;
    for (i, s) in seqs[first_page..].iter().enumerate() {
        assert!(*s <= max + 1, "frame {i} of the sync has seq {s} while seq {} has not come yet", max + 1);
        max = max.max(*s);
    }
    assert_eq!(max, last, "everything up to the last post");
}

#[actix_rt::test]
async fn syncs_sent_back_to_back_are_answered_one_after_the_other_each_complete() {
    let rooms = Rooms::start(RoomsOptions::new("syncs")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("three")).await;
    let other = create_room(&base, "carol", "acme", &["dave"], Some("not bob's")).await;
    let mut last = 0;
    for i in 1..=3 {
        let a = post_text(&base, &room, "alice", "acme", &format!("m{i}"), "hi").await;
        assert_eq!(a.status, 201, "{}", a.body);
        last = a.body["seq"].as_i64().expect("seq");
    }
    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;
    for _ in 0..3 {
        bob.send(json!({"type": "sync", "rooms": {room.clone(): 0, other.clone(): 0}})).await;
    }
    let mut answers = Vec::new();
    let mut current = Vec::new();
    while answers.len() < 3 {
        match bob.next(15).await {
            Got::Frame(f) if f["type"] == "synced" => {
                assert_eq!(f["rooms"], json!({room.clone(): last}), "only bob's room is in the answer");
                answers.push(std::mem::take(&mut current));
            }
            Got::Frame(f) if f["type"] == "error" => assert_eq!(f["code"], "room_not_found", "{f}"),
            Got::Frame(f) => current.push(f["seq"].as_i64().unwrap_or(-1)),
            other => panic!("{other:?} after {} answers", answers.len()),
        }
    }
    let whole: Vec<i64> = (1..=last).collect();
    assert_eq!(answers, vec![whole; 3], "each sync answered whole, in turn");
}

#[actix_rt::test]
async fn pipelined_sends_into_an_external_room_are_stored_in_frame_order() {
    let c = Cluster::start("order", &[]).await;
    let (acme, globex) = (c.login("acme", "admin").await, c.login("globex", "admin").await);
    let alice = c.login("acme", "alice").await;
    for (admin, other) in [(&acme, "globex"), (&globex, "acme")] {
        let body = json!({"tenant": other}).to_string();
        let a = call("POST", &format!("{}/v1/admin/trusts", c.authz.base()), Some(admin), Some(&body)).await;
        assert!(a.status == 200 || a.status == 201, "trust: {} {}", a.status, a.body);
    }
    let rooms = c.rooms.base();
    let room = eventually(10, "the external room", || async {
        let a = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["carol@globex"]}"#)).await;
        (a.status == 201).then(|| a.body["id"].as_str().expect("id").to_owned())
    })
    .await;

    let mut ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let keys: Vec<String> = (0..100).map(|i| format!("o{i:03}")).collect();
    for key in &keys {
        ws.send(send_frame(&room, key)).await;
    }
    let got = answers(&mut ws, &keys, 60).await;
    let seqs: Vec<i64> = keys
        .iter()
        .map(|k| {
            let f = &got[k];
            assert_eq!(f["type"], "ack", "{f}");
            f["seq"].as_i64().expect("seq")
        })
        .collect();
    let overtaken: Vec<(&String, i64, i64)> =
        keys.iter().zip(seqs.windows(2)).filter(|(_, w)| w[0] >= w[1]).map(|(k, w)| (k, w[0], w[1])).collect();
    assert!(overtaken.is_empty(), "a later frame got an earlier seq (key, seq, next seq): {overtaken:?}");
    let page = call("GET", &format!("{rooms}/v1/rooms/{room}/messages?limit=500"), Some(&alice), None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let texts: Vec<String> = messages(page.body["events"].as_array().expect("events"))
        .iter()
        .map(|m| m["body"]["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, keys, "the history shows the texts in frame order");
}

#[actix_rt::test]
async fn a_session_is_closed_when_its_token_expires() {
    let rooms = Rooms::start(RoomsOptions::new("expiry")).await;
    let short = chat_auth::mint(&auth_settings(SECRET), "alice", "acme", &[], 3);
    let mut ws = Ws::connect(&rooms.ws_url(), &short).await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect(5, "pong", |f| f["type"] == "pong").await;
    // Well past the expiry (3 s, plus the 5 s leeway of the handshake), the server has closed it.
    let code = loop {
        match ws.next(30).await {
            Got::Frame(_) => continue,
            Got::Closed(code) => break code,
            Got::Timeout => panic!("the session outlived its token by 30 s"),
        }
    };
    assert_eq!(code, Some(1008), "closed with policy violation (token expired)");
    // A fresh token connects again.
    let mut again = Ws::connect(&rooms.ws_url(), &token("alice", "acme")).await;
    again.send(json!({"type": "ping"})).await;
    again.expect(5, "pong", |f| f["type"] == "pong").await;
}
