//! Room features through the real binary: kinds, membership, notifications, recall, reads.

use e2e::*;
use serde_json::json;

#[actix_rt::test]
async fn a_one_to_one_room_is_unique_per_pair_and_found_by_its_members() {
    let rooms = Rooms::start(RoomsOptions::new("direct")).await;
    let base = rooms.base();
    let first =
        call("POST", &format!("{base}/v1/rooms"), Some(&token("alice", "acme")), Some(r#"{"members":["bob"]}"#)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["kind"], "direct");
    assert_eq!(first.body["markers"], json!([]));
    // Created again, from either side: the same room.
    let again =
        call("POST", &format!("{base}/v1/rooms"), Some(&token("bob", "acme")), Some(r#"{"members":["alice"]}"#)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    let found = call("GET", &format!("{base}/v1/rooms?members=bob"), Some(&token("alice", "acme")), None).await;
    let ids: Vec<_> = found.body["rooms"].as_array().expect("rooms").iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![first.body["id"].clone()]);
    // A 1:1 room has no name and takes no more members.
    let id = first.body["id"].as_str().expect("id");
    let rename =
        call("PATCH", &format!("{base}/v1/rooms/{id}"), Some(&token("alice", "acme")), Some(r#"{"name":"x"}"#)).await;
    assert_eq!(rename.status, 409);
    assert_eq!(rename.body["error"]["code"], "not_allowed_for_kind");
}

#[actix_rt::test]
async fn members_added_and_removed_get_events_and_notifications_and_the_removed_stop_receiving() {
    let rooms = Rooms::start(RoomsOptions::new("members")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("project")).await;
    let mut carl = Ws::connect(&rooms.ws_url(), &token("carl", "acme")).await;

    let added = call(
        "POST",
        &format!("{base}/v1/rooms/{room}/members"),
        Some(&token("alice", "acme")),
        Some(r#"{"users":["carl","bob"]}"#),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["added"], json!(["carl"]), "bob was already in");
    assert_eq!(added.body["excluded"], json!([]));
    // Both arrive, the room event and the notification (in no promised order).
    let frames = carl.drain(2).await;
    assert!(frames.iter().any(|f| f["type"] == "notification" && f["kind"] == "room_added"), "{frames:?}");
    assert!(frames.iter().any(|f| f["type"] == "room_event" && f["event"]["type"] == "members_joined"), "{frames:?}");

    let renamed =
        call("PATCH", &format!("{base}/v1/rooms/{room}"), Some(&token("bob", "acme")), Some(r#"{"name":"project x"}"#))
            .await;
    assert_eq!(renamed.body["name"], "project x");
    let ev = carl.expect(10, "rename event", |f| f["type"] == "room_event").await;
    assert_eq!(ev["event"]["type"], "info_updated");
    assert_eq!(ev["event"]["name"], "project x");

    // Carl is removed: he sees his removal, then nothing more from this room.
    let removed =
        call("DELETE", &format!("{base}/v1/rooms/{room}/members/carl"), Some(&token("alice", "acme")), None).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let gone = carl.expect(10, "removal event", |f| f["type"] == "room_event").await;
    assert_eq!(gone["event"]["type"], "member_removed");
    assert_eq!(post_text(&base, &room, "alice", "acme", "after", "not for carl").await.status, 201);
    let rest = carl.drain(2).await;
    assert!(rest.iter().all(|f| f["type"] == "notification"), "carl still receives the room: {rest:?}");
    assert_eq!(call("GET", &format!("{base}/v1/rooms/{room}"), Some(&token("carl", "acme")), None).await.status, 404);
    let notes = call("GET", &format!("{base}/v1/notifications"), Some(&token("carl", "acme")), None).await;
    let kinds: Vec<_> =
        notes.body["notifications"].as_array().expect("list").iter().map(|n| n["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("room_removed"), json!("room_added")]);

    // Bob leaves; the room's events tell the story in order.
    assert_eq!(
        call("POST", &format!("{base}/v1/rooms/{room}/leave"), Some(&token("bob", "acme")), None).await.status,
        200
    );
    let events = history(&base, &room, "alice", "acme").await;
    let types: Vec<_> = events.iter().map(|e| e["event"]["type"].as_str().unwrap_or("message").to_owned()).collect();
    assert_eq!(
        types,
        [
            "room_created",
            "members_joined",
            "members_joined",
            "info_updated",
            "member_removed",
            "message",
            "member_left"
        ]
    );
}

#[actix_rt::test]
async fn only_the_sender_recalls_a_message_and_the_recall_is_an_event() {
    let rooms = Rooms::start(RoomsOptions::new("recall")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("r")).await;
    let posted = post_text(&base, &room, "alice", "acme", "oops", "wrong room").await;
    let id = posted.body["message_id"].as_str().expect("id");
    let by_bob =
        call("DELETE", &format!("{base}/v1/rooms/{room}/messages/{id}"), Some(&token("bob", "acme")), None).await;
    assert_eq!(by_bob.status, 403);
    assert_eq!(by_bob.body["error"]["code"], "recall_not_allowed");
    let by_alice =
        call("DELETE", &format!("{base}/v1/rooms/{room}/messages/{id}"), Some(&token("alice", "acme")), None).await;
    assert_eq!(by_alice.status, 200, "{}", by_alice.body);
    let twice =
        call("DELETE", &format!("{base}/v1/rooms/{room}/messages/{id}"), Some(&token("alice", "acme")), None).await;
    assert_eq!(twice.body["error"]["code"], "already_recalled");
    let events = history(&base, &room, "bob", "acme").await;
    let msg = messages(&events)[0];
    assert_eq!(msg["recalled"], true);
    assert!(msg["body"].is_null(), "a recalled body is not served: {msg}");
    let last = events.last().expect("event");
    assert_eq!(last["event"]["type"], "message_recalled");
    assert_eq!(last["event"]["message_id"], id);
}

#[actix_rt::test]
async fn read_markers_move_forward_and_set_the_unread_count() {
    let rooms = Rooms::start(RoomsOptions::new("reads")).await;
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("u")).await;
    let mut last = 0;
    for i in 0..3 {
        last = post_text(&base, &room, "alice", "acme", &format!("u{i}"), "hello").await.body["seq"]
            .as_i64()
            .expect("seq");
    }
    let unread = |body: &serde_json::Value| body["rooms"][0]["unread"].as_i64();
    let bob = token("bob", "acme");
    assert_eq!(unread(&call("GET", &format!("{base}/v1/rooms"), Some(&bob), None).await.body), Some(3));
    let read =
        call("POST", &format!("{base}/v1/rooms/{room}/read"), Some(&bob), Some(&json!({"seq": last - 1}).to_string()))
            .await;
    assert_eq!(read.body["read_seq"], last - 1);
    assert_eq!(unread(&call("GET", &format!("{base}/v1/rooms"), Some(&bob), None).await.body), Some(1));
    // Never backwards, never past the end.
    let back = call("POST", &format!("{base}/v1/rooms/{room}/read"), Some(&bob), Some(r#"{"seq":1}"#)).await;
    assert_eq!(back.body["read_seq"], last - 1);
    let past = call("POST", &format!("{base}/v1/rooms/{room}/read"), Some(&bob), Some(r#"{"seq":999999}"#)).await;
    assert_eq!(past.body["read_seq"], last);
    assert_eq!(unread(&call("GET", &format!("{base}/v1/rooms"), Some(&bob), None).await.body), Some(0));
    // The sender's own messages are never unread for them.
    assert_eq!(
        unread(&call("GET", &format!("{base}/v1/rooms"), Some(&token("alice", "acme")), None).await.body),
        Some(0)
    );
}
