//! Bad input gets a clear error (status and stable code) and changes nothing.

use e2e::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::Message;

async fn setup(tag: &str) -> (Rooms, String) {
    let rooms = Rooms::start(RoomsOptions::new(tag)).await;
    let room = create_room(&rooms.base(), "alice", "acme", &["bob"], Some("guarded")).await;
    assert_eq!(post_text(&rooms.base(), &room, "alice", "acme", "ok-1", "fine").await.status, 201);
    (rooms, room)
}

/// The room's events as alice sees them: what "changes nothing" is checked against.
async fn snapshot(rooms: &Rooms, room: &str) -> Vec<serde_json::Value> {
    history(&rooms.base(), room, "alice", "acme").await
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["error"]["code"], code, "{}", a.body);
    assert!(a.body["error"]["message"].is_string(), "{}", a.body);
}

#[actix_rt::test]
async fn malformed_unknown_and_oversized_http_input_is_refused_and_changes_nothing() {
    let (rooms, room) = setup("badhttp").await;
    let before = snapshot(&rooms, &room).await;
    let url = format!("{}/v1/rooms/{room}/messages", rooms.base());
    let t = token("alice", "acme");

    assert_error(
        &call("POST", &url, Some(&t), Some("{\"client_msg_id\": \"x\", \"body\": ")).await,
        400,
        "malformed_json",
    );
    assert_error(
        &call("POST", &url, Some(&t), Some(r#"{"client_msg_id":"x","body":{"type":"text","text":"a"},"extra":1}"#))
            .await,
        400,
        "unknown_field",
    );
    assert_error(
        &call("POST", &url, Some(&t), Some(r#"{"client_msg_id":"x","body":{"type":"text","text":"a","bold":true}}"#))
            .await,
        400,
        "unknown_field",
    );
    assert_error(
        &call("POST", &url, Some(&t), Some(r#"{"client_msg_id":"x","body":{"type":"hologram","text":"a"}}"#)).await,
        400,
        "unknown_type",
    );
    assert_error(
        &call("POST", &url, Some(&t), Some(r#"{"client_msg_id":"x","body":{"type":"text","text":7}}"#)).await,
        400,
        "invalid_field",
    );
    let long = json!({"client_msg_id": "x", "body": {"type": "text", "text": "y".repeat(10_001)}}).to_string();
    assert_error(&call("POST", &url, Some(&t), Some(&long)).await, 413, "message_too_long");
    let huge = json!({"client_msg_id": "x", "body": {"type": "text", "text": "y".repeat(70_000)}}).to_string();
    assert_error(&call("POST", &url, Some(&t), Some(&huge)).await, 413, "payload_too_large");
    assert_error(
        &call("POST", &url, Some(&t), Some(r#"{"client_msg_id":"bad id!","body":{"type":"text","text":"a"}}"#)).await,
        400,
        "invalid_client_msg_id",
    );
    assert_error(&call("GET", &format!("{url}?after=0&colour=red"), Some(&t), None).await, 400, "unknown_field");
    assert_eq!(snapshot(&rooms, &room).await, before, "nothing changed");
}

#[actix_rt::test]
async fn a_room_name_over_the_limit_is_refused_and_changes_nothing() {
    let (rooms, room) = setup("badname").await;
    let t = token("alice", "acme");
    let list_before = call("GET", &format!("{}/v1/rooms", rooms.base()), Some(&t), None).await.body;
    let long_name = "n".repeat(101);
    let create = json!({"members": ["bob", "carl"], "name": long_name}).to_string();
    assert_error(
        &call("POST", &format!("{}/v1/rooms", rooms.base()), Some(&t), Some(&create)).await,
        400,
        "name_too_long",
    );
    let rename = json!({"name": long_name}).to_string();
    assert_error(
        &call("PATCH", &format!("{}/v1/rooms/{room}", rooms.base()), Some(&t), Some(&rename)).await,
        400,
        "name_too_long",
    );
    let unknown = json!({"name": "ok", "colour": "red"}).to_string();
    assert_error(
        &call("PATCH", &format!("{}/v1/rooms/{room}", rooms.base()), Some(&t), Some(&unknown)).await,
        400,
        "unknown_field",
    );
    let list_after = call("GET", &format!("{}/v1/rooms", rooms.base()), Some(&t), None).await.body;
    assert_eq!(list_before, list_after, "no room created or renamed");
    assert_eq!(list_after["rooms"][0]["name"], "guarded");
}

#[actix_rt::test]
async fn missing_expired_and_forged_tokens_get_401() {
    let (rooms, room) = setup("badtoken").await;
    let before = snapshot(&rooms, &room).await;
    let url = format!("{}/v1/rooms/{room}/messages", rooms.base());
    let body = r#"{"client_msg_id":"t1","body":{"type":"text","text":"sneaky"}}"#;

    assert_error(&call("POST", &url, None, Some(body)).await, 401, "unauthorized");
    let forged = chat_auth::mint(&auth_settings("not-the-secret-not-the-secret-0000000"), "alice", "acme", &[], 600);
    assert_error(&call("POST", &url, Some(&forged), Some(body)).await, 401, "invalid_token");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = chat_auth::Claims {
        sub: "alice".into(),
        tid: "acme".into(),
        iss: "chat".into(),
        aud: "chat-api".into(),
        exp: now - 600,
        iat: now - 1200,
        nbf: None,
        roles: vec![],
    };
    // Signed with the right secret: only the expiry is wrong.
    let expired = chat_auth::sign(&auth_settings(SECRET), &claims);
    assert_error(&call("POST", &url, Some(&expired), Some(body)).await, 401, "token_expired");
    assert_error(&call("POST", &url, Some("not.a.jwt"), Some(body)).await, 401, "invalid_token");

    // The WebSocket handshake is refused before the upgrade.
    assert!(Ws::try_connect(&rooms.ws_url(), None).await.is_err());
    assert!(Ws::try_connect(&rooms.ws_url(), Some(&forged)).await.is_err());
    assert_eq!(snapshot(&rooms, &room).await, before);
}

#[actix_rt::test]
async fn another_tenants_room_and_a_room_one_is_not_in_are_404_with_no_data() {
    let (rooms, room) = setup("isolation").await;
    let before = snapshot(&rooms, &room).await;
    let base = rooms.base();
    // Same user id, other tenant: not the member.
    for t in [token("alice", "globex"), token("mallory", "acme")] {
        for (method, path, body) in [
            ("GET", format!("/v1/rooms/{room}"), None),
            ("GET", format!("/v1/rooms/{room}/messages"), None),
            (
                "POST",
                format!("/v1/rooms/{room}/messages"),
                Some(r#"{"client_msg_id":"x1","body":{"type":"text","text":"in?"}}"#),
            ),
            ("PATCH", format!("/v1/rooms/{room}"), Some(r#"{"name":"mine"}"#)),
            ("POST", format!("/v1/rooms/{room}/members"), Some(r#"{"users":["mallory"]}"#)),
            ("POST", format!("/v1/rooms/{room}/read"), Some(r#"{"seq":1}"#)),
            ("POST", format!("/v1/rooms/{room}/leave"), None),
        ] {
            let a = call(method, &format!("{base}{path}"), Some(&t), body).await;
            assert_error(&a, 404, "room_not_found");
            assert!(a.body.get("id").is_none() && a.body.get("events").is_none(), "no data: {}", a.body);
        }
        let listed = call("GET", &format!("{base}/v1/rooms"), Some(&t), None).await;
        assert_eq!(listed.body["rooms"], json!([]));
    }
    // A room id that does not exist at all answers the same.
    let missing =
        call("GET", &format!("{base}/v1/rooms/{}", uuid::Uuid::now_v7()), Some(&token("alice", "acme")), None).await;
    assert_error(&missing, 404, "room_not_found");
    // Over the WebSocket: sync and send for a foreign room are refused without data.
    let mut ws = Ws::connect(&rooms.ws_url(), &token("alice", "globex")).await;
    ws.send(json!({"type": "sync", "rooms": {room.clone(): 0}})).await;
    let e = ws.expect(10, "error", |f| f["type"] == "error").await;
    assert_eq!(e["code"], "room_not_found");
    let synced = ws.expect(10, "synced", |f| f["type"] == "synced").await;
    assert_eq!(synced["rooms"], json!({}));
    ws.send(json!({"type": "send", "room_id": room, "client_msg_id": "w1", "body": {"type": "text", "text": "in?"}}))
        .await;
    let e = ws.expect(10, "error", |f| f["type"] == "error").await;
    assert_eq!(e["code"], "room_not_found");
    assert_eq!(snapshot(&rooms, &room).await, before, "nothing changed");
}

#[actix_rt::test]
async fn websocket_input_errors_answer_with_errors_or_close_codes() {
    let (rooms, room) = setup("badws").await;
    let before = snapshot(&rooms, &room).await;
    let t = token("alice", "acme");

    // Malformed and unknown frames: an error frame, the session stays open.
    let mut ws = Ws::connect(&rooms.ws_url(), &t).await;
    ws.send_raw(Message::text("{not json")).await;
    assert_eq!(ws.expect(10, "error", |f| f["type"] == "error").await["code"], "malformed_json");
    ws.send(json!({"type": "shout", "room_id": room})).await;
    assert_eq!(ws.expect(10, "error", |f| f["type"] == "error").await["code"], "unknown_type");
    ws.send(json!({"type": "ping", "loud": true})).await;
    assert_eq!(ws.expect(10, "error", |f| f["type"] == "error").await["code"], "unknown_field");
    let long = json!({"type": "send", "room_id": room, "client_msg_id": "l1", "body": {"type": "text", "text": "z".repeat(10_001)}});
    ws.send(long).await;
    let e = ws.expect(10, "error", |f| f["type"] == "error").await;
    assert_eq!(e["code"], "message_too_long");
    assert_eq!(e["client_msg_id"], "l1");
    ws.send(json!({"type": "ping"})).await;
    ws.expect(10, "pong: still open", |f| f["type"] == "pong").await;

    // Invalid UTF-8 in a text frame: close 1007.
    let mut ws = Ws::connect(&rooms.ws_url(), &t).await;
    let header = FrameHeader { opcode: OpCode::Data(Data::Text), is_final: true, ..FrameHeader::default() };
    ws.send_raw(Message::Frame(Frame::from_payload(header, vec![0x7b, 0xff, 0xfe, 0x7d].into()))).await;
    match ws.next(10).await {
        Got::Closed(code) => assert_eq!(code, Some(1007)),
        other => panic!("expected close 1007, got {other:?}"),
    }

    // A frame over the limit (64 KiB): close 1009.
    let mut ws = Ws::connect(&rooms.ws_url(), &t).await;
    ws.send_raw(Message::text("x".repeat(70 * 1024))).await;
    match ws.next(10).await {
        Got::Closed(code) => assert_eq!(code, Some(1009)),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert_eq!(snapshot(&rooms, &room).await, before, "nothing changed");
}

#[actix_rt::test]
async fn a_room_update_checks_urls_as_a_create_does_and_changes_nothing() {
    let (rooms, room) = setup("badurl").await;
    let t = token("alice", "acme");
    let room_url = format!("{}/v1/rooms/{room}", rooms.base());
    let before = call("GET", &room_url, Some(&t), None).await.body;
    let events_before = snapshot(&rooms, &room).await;
    for bad in ["javascript:alert(1)", "ftp://example.com/p.png", "https://exa mple.com/p.png"] {
        let update = json!({"photo_url": bad}).to_string();
        assert_error(&call("PATCH", &room_url, Some(&t), Some(&update)).await, 400, "invalid_url");
        let create = json!({"members": ["bob", "carl"], "name": "pics", "photo_url": bad}).to_string();
        let created = call("POST", &format!("{}/v1/rooms", rooms.base()), Some(&t), Some(&create)).await;
        assert_error(&created, 400, "invalid_url");
    }
    assert_eq!(call("GET", &room_url, Some(&t), None).await.body, before, "the room is unchanged");
    assert_eq!(snapshot(&rooms, &room).await, events_before, "no event was added");
    let good = json!({"photo_url": "https://example.com/p.png"}).to_string();
    let updated = call("PATCH", &room_url, Some(&t), Some(&good)).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["photo_url"], "https://example.com/p.png");
}
