//! SIGKILL of the rooms process in the middle of traffic loses no acknowledged message.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::*;

/// client_msg_id -> (room, message_id, seq) of every acknowledged post.
type Acked = Arc<std::sync::Mutex<HashMap<String, (String, String, i64)>>>;

#[actix_rt::test]
async fn killing_the_rooms_process_mid_traffic_loses_no_acknowledged_message() {
    let mut rooms = Rooms::start(RoomsOptions::new("crash")).await;
    let base = rooms.base();
    let room_a = create_room(&base, "alice", "acme", &["bob"], Some("a")).await;
    let room_b = create_room(&base, "bob", "acme", &["alice"], Some("b")).await;
    // The restarted process listens on another port: the senders follow it.
    let port = Arc::new(AtomicU16::new(rooms.port));

    // Four senders post continuously; each remembers what was acknowledged (201).
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for (i, (room, user)) in
        [(&room_a, "alice"), (&room_a, "bob"), (&room_b, "alice"), (&room_b, "bob")].into_iter().enumerate()
    {
        let (room, user, acked, stop, port) =
            (room.clone(), user.to_owned(), acked.clone(), stop.clone(), port.clone());
        senders.push(actix_rt::spawn(async move {
            let base = || format!("http://127.0.0.1:{}", port.load(Ordering::Relaxed));
            let mut n = 0;
            let mut pending: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                // A sender retries an unacknowledged message with the same key, as clients do.
                let key = pending.take().unwrap_or_else(|| {
                    n += 1;
                    format!("s{i}-{n}")
                });
                let a = post_text(&base(), &room, &user, "acme", &key, &key).await;
                if a.status == 201 {
                    let id = a.body["message_id"].as_str().unwrap_or_default().to_owned();
                    let seq = a.body["seq"].as_i64().unwrap_or(-1);
                    acked.lock().unwrap().insert(key, (room.clone(), id, seq));
                } else {
                    pending = Some(key);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // Settle the last unacknowledged one, so every key sent is known.
            if let Some(key) = pending {
                for _ in 0..100 {
                    let a = post_text(&base(), &room, &user, "acme", &key, &key).await;
                    if a.status == 201 {
                        let id = a.body["message_id"].as_str().unwrap_or_default().to_owned();
                        acked
                            .lock()
                            .unwrap()
                            .insert(key.clone(), (room.clone(), id, a.body["seq"].as_i64().unwrap_or(-1)));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }

    // Let traffic flow, then kill -9 with commands in flight, then restart (on a new port).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 60 {
        assert!(std::time::Instant::now() < deadline, "traffic did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_kill = acked.lock().unwrap().len();
    rooms.restart().await;
    port.store(rooms.port, Ordering::Relaxed);
    let base = rooms.base();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < before_kill + 60 {
        assert!(std::time::Instant::now() < deadline, "traffic did not resume after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }

    // Every acknowledged message is stored exactly once, with the acknowledged id and seq,
    // and each room's seqs are contiguous.
    let acked = acked.lock().unwrap().clone();
    let mut stored: HashMap<String, BTreeMap<String, (String, i64)>> = HashMap::new();
    for room in [&room_a, &room_b] {
        let events = history(&base, room, "alice", "acme").await;
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap_or(0)).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "contiguous seqs in {room}");
        let by_key = stored.entry(room.clone()).or_default();
        for m in messages(&events) {
            let key = m["body"]["text"].as_str().unwrap_or_default().to_owned();
            let entry = (m["message_id"].as_str().unwrap_or_default().to_owned(), m["seq"].as_i64().unwrap_or(0));
            assert!(by_key.insert(key.clone(), entry).is_none(), "{key} stored twice");
        }
    }
    for (key, (room, id, seq)) in &acked {
        let got = stored.get(room).and_then(|m| m.get(key));
        assert_eq!(got, Some(&(id.clone(), *seq)), "acknowledged {key} lost or changed");
    }
    eprintln!("acknowledged {} messages, {} before the kill", acked.len(), before_kill);
}

#[actix_rt::test]
async fn sigterm_drains_and_exits_cleanly_and_keeps_what_was_acknowledged() {
    let mut rooms = Rooms::start(RoomsOptions::new("sigterm")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("t")).await;
    let acked = post_text(&base, &room, "alice", "acme", "before-term", "kept").await;
    assert_eq!(acked.status, 201);
    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;

    // A hang here is the failure this test exists for; 20 s is the pod's budget, not a speed goal.
    let status = rooms.terminate(20).expect("rooms did not exit within 20 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    match bob.next(5).await {
        Got::Closed(code) => assert_eq!(code, Some(1012), "sessions are told the service restarts"),
        other => panic!("expected the session closed on shutdown, got {other:?}"),
    }

    rooms.restart().await;
    let events = history(&rooms.base(), &room, "bob", "acme").await;
    assert_eq!(messages(&events).len(), 1);
    assert_eq!(messages(&events)[0]["message_id"], acked.body["message_id"]);
}
