//! Chatting through the real rooms binary against the real RabbitMQ, Redis and PostgreSQL.

use e2e::*;
use serde_json::json;

#[actix_rt::test]
async fn two_users_chat_over_websockets() {
    let rooms = Rooms::start(RoomsOptions::new("chat")).await;
    let room = create_room(&rooms.base(), "alice", "acme", &["bob"], Some("pair")).await;
    let mut alice = Ws::connect(&rooms.ws_url(), &token("alice", "acme")).await;
    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;

    alice
        .send(
            json!({"type": "send", "room_id": room, "client_msg_id": "a1", "body": {"type": "text", "text": "hi bob"}}),
        )
        .await;
    let ack = alice.expect(10, "ack", |f| f["type"] == "ack").await;
    assert_eq!(ack["client_msg_id"], "a1");
    let got = bob.expect(10, "alice's message", |f| f["type"] == "message").await;
    assert_eq!(got["body"]["text"], "hi bob");
    assert_eq!(got["sender"], "alice");
    assert_eq!(got["seq"], ack["seq"]);

    bob.send(json!({"type": "send", "room_id": room, "client_msg_id": "b1", "body": {"type": "sticker", "package_id": "446", "sticker_id": "1988"}})).await;
    let reply = alice.expect(10, "bob's sticker", |f| f["type"] == "message").await;
    assert_eq!(reply["body"]["sticker_id"], "1988");
    assert_eq!(reply["seq"].as_i64(), ack["seq"].as_i64().map(|s| s + 1));

    // Pings are answered, and both messages are in the history in order.
    bob.send(json!({"type": "ping"})).await;
    bob.expect(10, "pong", |f| f["type"] == "pong").await;
    let events = history(&rooms.base(), &room, "bob", "acme").await;
    let texts: Vec<_> = messages(&events).iter().map(|m| m["sender"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(texts, vec!["alice", "bob"]);
}

#[actix_rt::test]
async fn a_reconnecting_client_receives_what_it_missed_in_order_via_sync() {
    let rooms = Rooms::start(RoomsOptions::new("sync")).await;
    let room = create_room(&rooms.base(), "alice", "acme", &["bob", "carl"], Some("team")).await;
    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;
    let first = post_text(&rooms.base(), &room, "alice", "acme", "m0", "before").await;
    let seen = bob.expect(10, "first message", |f| f["type"] == "message").await;
    let last_seen = seen["seq"].as_i64().expect("seq");
    assert_eq!(Some(last_seen), first.body["seq"].as_i64());
    drop(bob); // bob goes offline

    let mut sent = Vec::new();
    for i in 1..=25 {
        let a = post_text(
            &rooms.base(),
            &room,
            if i % 2 == 0 { "alice" } else { "carl" },
            "acme",
            &format!("m{i}"),
            &format!("while away {i}"),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        sent.push(a.body["seq"].as_i64().expect("seq"));
    }

    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;
    bob.send(json!({"type": "sync", "rooms": {room.clone(): last_seen}})).await;
    let mut got = Vec::new();
    loop {
        let f = bob.expect(10, "sync frames", |_| true).await;
        if f["type"] == "synced" {
            assert_eq!(f["rooms"][&room].as_i64(), sent.last().copied());
            break;
        }
        assert_eq!(f["type"], "message", "unexpected frame {f}");
        got.push(f["seq"].as_i64().expect("seq"));
    }
    assert_eq!(got, sent, "everything missed, in order, nothing else");
}

#[actix_rt::test]
async fn the_same_client_msg_id_sent_twice_is_stored_once() {
    let rooms = Rooms::start(RoomsOptions::new("dedup")).await;
    let room = create_room(&rooms.base(), "alice", "acme", &["bob"], None).await;
    let a = post_text(&rooms.base(), &room, "alice", "acme", "same-1", "once").await;
    let b = post_text(&rooms.base(), &room, "alice", "acme", "same-1", "once").await;
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    assert_eq!(a.body, b.body, "the same answer twice");

    // Over the WebSocket too: the same key from the same sender is the same message.
    let mut alice = Ws::connect(&rooms.ws_url(), &token("alice", "acme")).await;
    alice.send(json!({"type": "send", "room_id": room, "client_msg_id": "same-1", "body": {"type": "text", "text": "once"}})).await;
    let ack = alice.expect(10, "ack", |f| f["type"] == "ack").await;
    assert_eq!(ack["message_id"], a.body["message_id"]);

    // Another sender may use the same key: that is a different message.
    let c = post_text(&rooms.base(), &room, "bob", "acme", "same-1", "mine").await;
    assert_ne!(c.body["message_id"], a.body["message_id"]);

    let events = history(&rooms.base(), &room, "bob", "acme").await;
    let msgs = messages(&events);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[0]["message_id"], a.body["message_id"]);
}

#[actix_rt::test]
async fn a_passivated_room_comes_back_with_its_history() {
    let mut opts = RoomsOptions::new("passivate");
    opts.passivate_after_secs = 1;
    let rooms = Rooms::start(opts).await;
    let room = create_room(&rooms.base(), "alice", "acme", &["bob"], Some("quiet")).await;
    for i in 0..3 {
        assert_eq!(
            post_text(&rooms.base(), &room, "alice", "acme", &format!("p{i}"), &format!("msg {i}")).await.status,
            201
        );
    }
    assert!(rooms.metric("rooms_active").await >= 1.0);
    let activations_before = rooms.metric("rooms_activation_seconds_count").await;

    // Idle: the actor passivates.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while rooms.metric("rooms_active").await > 0.0 {
        assert!(std::time::Instant::now() < deadline, "room actor never passivated");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The next command activates it again from the store: seq continues, dedup still holds.
    let again = post_text(&rooms.base(), &room, "alice", "acme", "p0", "msg 0").await;
    assert_eq!(again.status, 201);
    let next = post_text(&rooms.base(), &room, "bob", "acme", "b0", "after the nap").await;
    assert_eq!(rooms.metric("rooms_activation_seconds_count").await, activations_before + 1.0);
    let events = history(&rooms.base(), &room, "bob", "acme").await;
    let msgs = messages(&events);
    assert_eq!(msgs.len(), 4, "three before, one after; the repeated p0 stored once");
    assert_eq!(msgs[3]["body"]["text"], "after the nap");
    assert_eq!(msgs[3]["seq"], next.body["seq"]);
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap_or(0)).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "contiguous seqs");
}
