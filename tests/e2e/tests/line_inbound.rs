//! The LINE gateway's inbound path through the real binaries (authz, rooms, contacts,
//! line-gateway; the bus on RabbitMQ): an admin binds a member to a LINE Official Account, and
//! signed webhooks shaped like LINE's (`webhook.yml`) become LINE friends, the member's LINE 1:1
//! room and messages on the member's socket; redeliveries are processed once; bad signatures,
//! oversized and malformed bodies are refused and change nothing; a member whose LINE permission
//! is withdrawn receives nothing more through their channel.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use e2e::line::history_texts;
use e2e::*;
use hmac::Mac;
use serde_json::{json, Value};

const CHANNEL: &str = "1660000001";
const SECRET_OF_CHANNEL: &str = "0123456789abcdef0123456789abcdef";
const TOKEN_OF_CHANNEL: &str = "e2e-channel-access-token-never-shown";
const DESTINATION: &str = "U0000000000000000000000000000aaaa";
const LINE_USER: &str = "U1234567890abcdef1234567890abcdef";

fn signature(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET_OF_CHANNEL.as_bytes()).expect("any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

async fn webhook(c: &Cluster, body: &[u8], signature: Option<&str>) -> Answer {
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(s) = signature {
        headers.push(("x-line-signature", s.to_owned()));
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = format!("{}/line/webhook/{CHANNEL}", c.line_gateway());
    call_with("POST", &url, None, Some(std::str::from_utf8(body).expect("utf-8")), &headers).await
}

fn event(kind: &str, id: &str, extra: Value) -> Value {
    let mut e = json!({
        "type": kind,
        "timestamp": chat_protocol::now_ms(),
        "mode": "active",
        "webhookEventId": id,
        "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": LINE_USER},
    });
    if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(extra.clone());
    }
    e
}

fn text(id: &str, text: &str) -> Value {
    event(
        "message",
        id,
        json!({"replyToken": "r", "message": {"id": format!("m{id}"), "type": "text", "text": text, "quoteToken": "q"}}),
    )
}

fn body(events: &[Value]) -> Vec<u8> {
    json!({"destination": DESTINATION, "events": events}).to_string().into_bytes()
}

async fn signed(c: &Cluster, events: &[Value]) -> Answer {
    let b = body(events);
    webhook(c, &b, Some(&signature(&b))).await
}

/// The sum of a metric's series whose labels contain `label` (e.g. `outcome="suspended"`).
async fn gateway_metric(c: &Cluster, name: &str, label: &str) -> f64 {
    let text = match http().get(format!("{}/metrics", c.line_gateway())).send().await {
        Ok(mut res) => String::from_utf8_lossy(&res.body().await.unwrap_or_default()).to_string(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

#[actix_rt::test]
async fn signed_webhooks_become_line_friends_rooms_and_messages_once_and_nothing_else_gets_in() {
    // LINE itself is the simulator (profiles of new friends; it knows none here: the id stands in).
    let line = line_sim::start("127.0.0.1:0").expect("the LINE platform simulator");
    let mut c = Cluster::start("line_in", &[]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[
        ("CHAT__LINE__WEBHOOK_MAX_BYTES", "4096"),
        ("CHAT__LINE__API_BASE_URL", &line.base_url),
        ("CHAT__LINE__DATA_API_BASE_URL", &line.base_url),
    ])
    .await;
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    let channels = format!("{}/v1/admin/line/channels", c.line_gateway());
    let binding = json!({
        "channel_id": CHANNEL, "channel_secret": SECRET_OF_CHANNEL,
        "access_token": TOKEN_OF_CHANNEL, "basic_id": "@acme1234x",
    });

    // Not allowed to use LINE yet: the binding is refused.
    let refused = call("PUT", &format!("{channels}/alice@acme"), Some(&admin), Some(&binding.to_string())).await;
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (403, Some("line_not_authorized")));
    let mode =
        call("PUT", &format!("{}/v1/admin/line-access", c.authz.base()), Some(&admin), Some(r#"{"mode":"all"}"#)).await;
    assert_eq!(mode.status, 200, "{}", mode.body);
    // Only the tenant's admin binds; secrets never come back.
    let by_alice = call("PUT", &format!("{channels}/alice@acme"), Some(&alice), Some(&binding.to_string())).await;
    assert_eq!(by_alice.status, 403);
    let bound = call("PUT", &format!("{channels}/alice@acme"), Some(&admin), Some(&binding.to_string())).await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    let listed = call("GET", &channels, Some(&admin), None).await;
    assert_eq!(listed.status, 200);
    for shown in [&bound.body, &listed.body] {
        let text = shown.to_string();
        assert!(!text.contains(SECRET_OF_CHANNEL) && !text.contains(TOKEN_OF_CHANNEL), "{text}");
    }
    assert_eq!(listed.body["channels"][0]["basic_id"], "@acme1234x");
    let globex_admin = c.login("globex", "admin").await;
    let foreign = call("GET", &channels, Some(&globex_admin), None).await;
    assert_eq!(foreign.body["channels"].as_array().map(Vec::len), Some(0), "{}", foreign.body);
    // contacts learned the binding: alice's invite is ready.
    eventually(10, "alice's invite", || async {
        let a = call("GET", &format!("{}/v1/me/line-invite", c.contacts()), Some(&alice), None).await;
        (a.body["add_friend_url"] == "https://line.me/R/ti/p/@acme1234x").then_some(())
    })
    .await;

    // A connectivity check; then the LINE user follows alice.
    assert_eq!(signed(&c, &[]).await.status, 200);
    let mut ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let follow =
        event("follow", "01JFOLLOW000000000000000001", json!({"replyToken": "r", "follow": {"isUnblocked": false}}));
    assert_eq!(signed(&c, &[follow]).await.status, 200);
    let line_user = format!("line:{LINE_USER}");
    let friend = eventually(15, "the LINE friend", || async {
        let a = call("GET", &format!("{}/v1/contacts/line-friends", c.contacts()), Some(&alice), None).await;
        // The room's event may make the entry first; the follow then marks it followed.
        a.body["line_friends"]
            .as_array()
            .and_then(|l| l.iter().find(|f| f["user"] == line_user.as_str() && f["following"] == true).cloned())
    })
    .await;
    let room = eventually(15, "the LINE 1:1 room", || async {
        let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), None).await;
        a.body["rooms"].as_array().and_then(|rooms| {
            rooms.iter().find(|r| r["kind"] == "line_direct").and_then(|r| r["id"].as_str().map(str::to_owned))
        })
    })
    .await;
    assert_eq!(friend["following"], true);

    // A message: on alice's socket, from the LINE user; its redelivery changes nothing.
    let hello = text("01JMSG00000000000000000001", "hello from LINE");
    assert_eq!(signed(&c, std::slice::from_ref(&hello)).await.status, 200);
    let got = ws.expect(15, "the LINE user's message", |f| f["body"]["text"] == "hello from LINE").await;
    assert_eq!(got["sender"], line_user.as_str());
    assert_eq!(got["room_id"], room.as_str());
    let mut again = hello.clone();
    again["deliveryContext"]["isRedelivery"] = json!(true);
    assert_eq!(signed(&c, &[again]).await.status, 200);
    let duplicates = gateway_metric(&c, "line_webhooks_total", "outcome=\"duplicate\"").await;
    assert_eq!(duplicates, 1.0, "the redelivery was recognised at the door, not queued again");

    // Refused, and nothing of theirs is processed.
    let forged = body(&[text("01JMSG00000000000000000002", "forged")]);
    let bad = webhook(&c, &forged, Some(&signature(b"something else"))).await;
    assert_eq!((bad.status, bad.body["error"]["code"].as_str()), (401, Some("invalid_signature")));
    assert_eq!(webhook(&c, &forged, None).await.status, 401);
    let big = body(&[text("01JMSG00000000000000000003", &"x".repeat(5000))]);
    assert_eq!(webhook(&c, &big, Some(&signature(&big))).await.status, 413);
    let malformed = br#"{"destination": "U0", "events": [ {"type": "message", "#;
    let m = webhook(&c, malformed, Some(&signature(malformed))).await;
    assert_eq!((m.status, m.body["error"]["code"].as_str()), (400, Some("malformed_json")));
    let unknown = event("somethingNew", "01JNEW0000000000000000000001", json!({"whatever": {"x": 1}}));
    assert_eq!(signed(&c, &[unknown]).await.status, 200, "unknown event types are accepted");
    // A later valid message marks the point after which the refused ones would have arrived.
    assert_eq!(signed(&c, &[text("01JMSG00000000000000000004", "second")]).await.status, 200);
    ws.expect(15, "the second message", |f| f["body"]["text"] == "second").await;
    let texts = history_texts(&c, &room, &alice).await;
    assert_eq!(texts, ["hello from LINE", "second"], "once each, nothing forged or oversized");

    // alice loses LINE: her channel is suspended, nothing more arrives through it.
    let before = gateway_metric(&c, "line_events_total", "outcome=\"suspended\"").await;
    let none =
        call("PUT", &format!("{}/v1/admin/line-access", c.authz.base()), Some(&admin), Some(r#"{"mode":"none"}"#))
            .await;
    assert_eq!(none.status, 200);
    eventually(20, "the channel is suspended", || async {
        let a = call("GET", &channels, Some(&admin), None).await;
        (a.body["channels"][0]["suspended"] == true).then_some(())
    })
    .await;
    assert_eq!(signed(&c, &[text("01JMSG00000000000000000005", "after the revocation")]).await.status, 200);
    eventually(15, "the event was handled as suspended", || async {
        (gateway_metric(&c, "line_events_total", "outcome=\"suspended\"").await > before).then_some(())
    })
    .await;
    // rooms excluded alice from her LINE room by rule; the room took no new message either.
    let gone = call("GET", &format!("{}/v1/rooms/{room}", c.rooms.base()), Some(&alice), None).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    // And nothing of hers goes out to LINE: her message is refused before it is stored.
    let body = json!({"client_msg_id": "after-revocation", "body": {"type": "text", "text": "are you there?"}});
    let url = format!("{}/v1/rooms/{room}/messages", c.rooms.base());
    let refused = call("POST", &url, Some(&alice), Some(&body.to_string())).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    let pushed = line.client().requests(Some("/v2/bot/message/push"), None).await.expect("the simulator's records");
    assert!(pushed.iter().all(|r| !r.body.to_string().contains("are you there?")), "{pushed:?}");
    let posted = gateway_metric(&c, "line_events_total", "outcome=\"applied\"").await;
    assert_eq!(signed(&c, &[text("01JMSG00000000000000000006", "still suspended")]).await.status, 200);
    eventually(15, "the second suspended event", || async {
        (gateway_metric(&c, "line_events_total", "outcome=\"suspended\"").await >= before + 2.0).then_some(())
    })
    .await;
    assert_eq!(gateway_metric(&c, "line_events_total", "outcome=\"applied\"").await, posted, "nothing applied");
}
