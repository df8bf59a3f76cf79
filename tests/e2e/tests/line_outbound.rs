//! Both directions through the real binaries and the LINE platform simulator (`line-sim`), which
//! checks every request the gateway sends against LINE's `messaging-api.yml`: a LINE user
//! follows a member (signed webhook from the simulator; the profile comes from the simulator),
//! the member answers and the gateway pushes to LINE: once under a scripted 500-then-200 with one
//! retry key, 409 counted as sent, 429 retried after Retry-After, a quota 429 given up with a
//! notification to the member, a 12,000-character text in 3 parts, stickers only from LINE's
//! sendable list, a burst of 6 messages in 2 requests, a picture alice uploads as an image LINE
//! fetches through a signed link; and back: the LINE user's text, its unsend, and a photo served by the engine
//! after LINE deleted it.

use std::time::Duration;

use e2e::line::allow_line_and_bind;
use e2e::*;
use line_sim::events::{self, Source};
use line_sim::{Channel, Profile, RecordedRequest, ScriptedResponse, WebhookRequest};
use serde_json::{json, Value};

const PUSH: &str = "/v2/bot/message/push";
const LINE_USER: &str = "U0123456789abcdef0123456789abcdef";
const MEDIA_BASE: &str = "https://media.engine.test";

/// `POST /v1/line/media?room_id=&name=` with `bytes` of `content_type` (none: no header).
async fn upload(c: &Cluster, token: &str, room: &str, content_type: Option<&str>, bytes: Vec<u8>) -> Answer {
    let mut req = http()
        .post(format!("{}/v1/line/media?room_id={room}&name=chart.png", c.line_gateway()))
        .insert_header(("Authorization", format!("Bearer {token}")));
    if let Some(content_type) = content_type {
        req = req.insert_header(("Content-Type", content_type));
    }
    let mut res = req.send_body(bytes).await.expect("upload");
    let status = res.status().as_u16();
    let body = res.body().await.expect("answer");
    Answer { status, body: serde_json::from_slice(&body).unwrap_or(Value::Null), retry_after: None }
}

/// GET a signed link LINE would fetch, at the gateway's own address: status and bytes.
async fn fetch_link(c: &Cluster, link: &str) -> (u16, Vec<u8>) {
    let at = link.replacen(MEDIA_BASE, &c.line_gateway(), 1);
    let mut res = http().get(at).send().await.expect("link");
    (res.status().as_u16(), res.body().limit(1 << 20).await.expect("bytes").to_vec())
}

/// The pushes of this channel whose messages contain `needle`.
async fn pushes(sim: &line_sim::Client, channel: &str, needle: &str) -> Vec<RecordedRequest> {
    sim.requests(Some(PUSH), Some(channel))
        .await
        .expect("the simulator's records")
        .into_iter()
        .filter(|r| r.body["messages"].to_string().contains(needle))
        .collect()
}

async fn post(c: &Cluster, room: &str, token: &str, id: &str, body: Value) -> Answer {
    let body = json!({"client_msg_id": id, "body": body}).to_string();
    call("POST", &format!("{}/v1/rooms/{room}/messages", c.rooms.base()), Some(token), Some(&body)).await
}

async fn text(c: &Cluster, room: &str, token: &str, id: &str, text: &str) {
    let a = post(c, room, token, id, json!({"type": "text", "text": text})).await;
    assert!(a.status == 200 || a.status == 201, "post {id}: {}", a.body);
}

#[actix_rt::test]
async fn members_answers_reach_line_once_through_failures_and_every_request_matches_lines_spec() {
    let running = line_sim::start("127.0.0.1:0").expect("the simulator starts");
    let sim = running.client();
    // Room texts up to 12,000 characters here, to see one go out to LINE in 3 parts.
    let mut c = Cluster::start_with("line_out", &[], &[("CHAT__LIMITS__MAX_TEXT_CHARS", "12000")]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[
        ("CHAT__LINE__API_BASE_URL", &running.base_url),
        ("CHAT__LINE__DATA_API_BASE_URL", &running.base_url),
        ("CHAT__LINE__PUSH_TIMEOUT_MS", "3000"),
        // A burst posted within a second goes out together (the default is 250 ms; a second
        // keeps this test's burst inside one window on a slow machine).
        ("CHAT__LINE__BATCH_WINDOW_MS", "1000"),
        // Where LINE fetches members' media from (https, as LINE requires; this test reads the
        // links at the gateway's own address).
        ("CHAT__MEDIA__LINE_BASE_URL", MEDIA_BASE),
    ])
    .await;
    let channel = Channel::random("1660000042");
    sim.register_channel(&channel).await.expect("channel");
    let profile = Profile {
        channel_id: channel.channel_id.clone(),
        user_id: LINE_USER.into(),
        display_name: "Taro Yamada".into(),
        picture_url: Some("https://profile.line-scdn.net/taro".into()),
        status_message: None,
        language: None,
    };
    sim.add_profile(&profile).await.expect("profile");

    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    allow_line_and_bind(&c, &admin, "alice@acme", &channel).await;

    // The LINE user follows alice: a friend with the LINE profile's name, and the 1:1 room.
    let webhook_url = format!("{}/line/webhook/{}", c.line_gateway(), channel.channel_id);
    let user = Source::user(LINE_USER);
    let sent = sim
        .send_webhook(&WebhookRequest::new(&channel.channel_id, &webhook_url, vec![events::follow(&user, false)]))
        .await;
    let sent = sent.expect("webhook sent");
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.violations.is_empty(), "the follow is shaped like webhook.yml: {:?}", sent.violations);
    let friend = eventually(15, "the LINE friend", || async {
        let a = call("GET", &format!("{}/v1/contacts/line-friends", c.contacts()), Some(&alice), None).await;
        // The room's event may make the entry first; the follow then names it.
        a.body["line_friends"].as_array().and_then(|l| l.iter().find(|f| f["following"] == true).cloned())
    })
    .await;
    assert_eq!(friend["display_name"], "Taro Yamada", "from the LINE profile");
    let room = eventually(15, "the LINE 1:1 room", || async {
        let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), None).await;
        a.body["rooms"].as_array().and_then(|rooms| {
            rooms.iter().find(|r| r["kind"] == "line_direct").and_then(|r| r["id"].as_str().map(str::to_owned))
        })
    })
    .await;

    // A plain answer: one push to the LINE user, with a retry key.
    text(&c, &room, &alice, "a1", "Hello Taro").await;
    let first = eventually(15, "the push", || async {
        let p = pushes(&sim, &channel.channel_id, "Hello Taro").await;
        (p.len() == 1 && p[0].status == 200).then_some(p)
    })
    .await;
    assert_eq!(first[0].body["to"], LINE_USER);
    assert_eq!(first[0].body["messages"], json!([{"type": "text", "text": "Hello Taro"}]));
    assert!(first[0].retry_key().is_some());

    // 500 then 200: retried once with the same key, on LINE once.
    sim.script(PUSH, vec![ScriptedResponse::status(500)]).await.expect("script");
    text(&c, &room, &alice, "a2", "after a 500").await;
    let tries = eventually(20, "the retried push", || async {
        let p = pushes(&sim, &channel.channel_id, "after a 500").await;
        (p.iter().any(|r| r.status == 200)).then_some(p)
    })
    .await;
    assert_eq!(tries.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200]);
    assert_eq!(tries[0].retry_key(), tries[1].retry_key(), "one retry key");

    // 409: LINE already has it; counted as sent, not retried.
    sim.script(PUSH, vec![ScriptedResponse::status(409)]).await.expect("script");
    text(&c, &room, &alice, "a3", "already accepted").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = pushes(&sim, &channel.channel_id, "already accepted").await;
    assert_eq!(accepted.iter().map(|r| r.status).collect::<Vec<_>>(), [409], "no retry after a 409");

    // 429 with Retry-After: retried after it.
    sim.script(PUSH, vec![ScriptedResponse::rate_limited(1)]).await.expect("script");
    text(&c, &room, &alice, "a4", "after a rate limit").await;
    let limited = eventually(20, "the push after the rate limit", || async {
        let p = pushes(&sim, &channel.channel_id, "after a rate limit").await;
        (p.iter().any(|r| r.status == 200)).then_some(p)
    })
    .await;
    assert_eq!(limited.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);

    // The monthly quota: not retried; alice is told.
    sim.script(PUSH, vec![ScriptedResponse::quota_exceeded()]).await.expect("script");
    text(&c, &room, &alice, "a5", "over the quota").await;
    let notice = eventually(20, "alice's notification", || async {
        let a = call("GET", &format!("{}/v1/notifications", c.rooms.base()), Some(&alice), None).await;
        a.body["notifications"].as_array().and_then(|l| l.iter().find(|n| n["kind"] == "line_delivery_failed").cloned())
    })
    .await;
    assert!(notice["text"].as_str().unwrap_or("").contains("LINE"), "{notice}");
    assert_eq!(pushes(&sim, &channel.channel_id, "over the quota").await.len(), 1, "a quota 429 is not retried");
    // It is a dead letter: the admin sees it and, the quota renewed, sends it again, once.
    let dead = call("GET", &format!("{}/v1/admin/line/dead-letters", c.line_gateway()), Some(&admin), None).await;
    assert_eq!(dead.status, 200, "{}", dead.body);
    let letter = dead.body["dead_letters"][0].clone();
    assert_eq!(letter["line_user"], format!("line:{LINE_USER}"), "{letter}");
    assert!(letter["error"].as_str().unwrap_or("").contains("monthly"), "{letter}");
    let by_member = call("GET", &format!("{}/v1/admin/line/dead-letters", c.line_gateway()), Some(&alice), None).await;
    assert_eq!(by_member.status, 403);
    let resend = format!(
        "{}/v1/admin/line/dead-letters/{}/{}/resend",
        c.line_gateway(),
        letter["message_id"].as_str().expect("message id"),
        letter["line_user"].as_str().expect("line user")
    );
    assert_eq!(call("POST", &resend, Some(&admin), None).await.status, 202);
    let again = eventually(15, "the resent push", || async {
        let p = pushes(&sim, &channel.channel_id, "over the quota").await;
        (p.len() == 2 && p[1].status == 200).then_some(p)
    })
    .await;
    assert_eq!(again[0].retry_key(), again[1].retry_key(), "the same message, the same key");
    assert_eq!(call("POST", &resend, Some(&admin), None).await.status, 404, "no longer a dead letter");

    // A long text goes out in parts of at most 5,000 UTF-16 units: 12,000 characters, 3 parts;
    // and a sendable sticker as a sticker, an unsendable one is refused before it is stored.
    let long: String = "あ".repeat(12_000);
    text(&c, &room, &alice, "a6", &long).await;
    let parts = eventually(15, "the long text", || async {
        let p = pushes(&sim, &channel.channel_id, "あああ").await;
        (p.len() == 1 && p[0].status == 200).then_some(p)
    })
    .await;
    let messages = parts[0].body["messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 3, "one request, three text objects");
    let joined: String = messages.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(joined, long);
    let refused =
        post(&c, &room, &alice, "a7", json!({"type": "sticker", "package_id": "999999", "sticker_id": "1"})).await;
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (400, Some("sticker_not_sendable")));
    let ok = post(&c, &room, &alice, "a8", json!({"type": "sticker", "package_id": "446", "sticker_id": "1988"})).await;
    assert!(ok.status == 200 || ok.status == 201, "{}", ok.body);
    eventually(15, "the sticker push", || async {
        let p = pushes(&sim, &channel.channel_id, "\"packageId\":\"446\"").await;
        (p.len() == 1).then_some(())
    })
    .await;

    // A burst of 6 messages: 2 requests (5 message objects, then 1), in order, each with its
    // retry key; LINE counts requests against the monthly quota, not the objects in them.
    for n in 1..=6 {
        text(&c, &room, &alice, &format!("b{n}"), &format!("burst {n}")).await;
    }
    let burst = eventually(15, "the burst", || async {
        let p = pushes(&sim, &channel.channel_id, "burst ").await;
        let objects: usize = p.iter().map(|r| r.body["messages"].as_array().map_or(0, Vec::len)).sum();
        (objects >= 6).then_some(p)
    })
    .await;
    let texts: Vec<Vec<&str>> = burst
        .iter()
        .map(|r| r.body["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str()).collect())
        .collect();
    // (5 then 1 when the burst lands within the window; a slower burst splits elsewhere, still
    // in 2 requests: the second goes once its own window passed, when all had landed.)
    assert_eq!(texts.len(), 2, "a 6-message burst in 2 requests: {texts:?}");
    assert!(texts.iter().all(|request| request.len() <= 5), "{texts:?}");
    let in_order: Vec<&str> = texts.concat();
    assert_eq!(in_order, ["burst 1", "burst 2", "burst 3", "burst 4", "burst 5", "burst 6"]);
    assert!(burst.iter().all(|r| r.status == 200 && r.retry_key().is_some()));
    assert_ne!(burst[0].retry_key(), burst[1].retry_key());

    // And the LINE user's answer comes back to alice's room.
    let mut ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let answer = events::text(&user, "m-answer-1", "ありがとう 🙏");
    let sent =
        sim.send_webhook(&WebhookRequest::new(&channel.channel_id, &webhook_url, vec![answer])).await.expect("webhook");
    assert_eq!(sent.status, 200, "{}", sent.body);
    let got = ws.expect(15, "Taro's answer", |f| f["body"]["text"] == "ありがとう 🙏").await;
    assert_eq!(got["sender"], format!("line:{LINE_USER}"));

    // He unsends it: hidden in the room.
    let unsend = events::unsend(&user, "m-answer-1");
    let sent =
        sim.send_webhook(&WebhookRequest::new(&channel.channel_id, &webhook_url, vec![unsend])).await.expect("webhook");
    assert_eq!(sent.status, 200, "{}", sent.body);
    let recalled = ws.expect(15, "the unsend", |f| f["event"]["type"] == "message_recalled").await;
    assert_eq!(recalled["event"]["message_id"], got["message_id"]);

    // A photo: downloaded from LINE at once, served by the engine after LINE deleted it.
    let photo: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    sim.put_content("600000000000001", "image/jpeg", photo.clone()).await.expect("content");
    let image = events::image(&user, "600000000000001");
    let sent =
        sim.send_webhook(&WebhookRequest::new(&channel.channel_id, &webhook_url, vec![image])).await.expect("webhook");
    assert_eq!(sent.status, 200, "{}", sent.body);
    let shown = ws.expect(15, "the photo", |f| f["body"]["type"] == "image").await;
    sim.delete_content("600000000000001").await.expect("LINE deletes it");
    let url = shown["body"]["url"].as_str().expect("an engine URL");
    let path = &url[url.find("/v1/line/media/").expect("the media path")..];
    let mut res = http()
        .get(format!("{}{path}", c.line_gateway()))
        .insert_header(("Authorization", format!("Bearer {alice}")))
        .send()
        .await
        .expect("media");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.body().limit(1 << 20).await.expect("bytes").to_vec(), photo, "the same bytes, LINE's copy gone");
    let carol = c.login("globex", "carol").await;
    let foreign = http()
        .get(format!("{}{path}", c.line_gateway()))
        .insert_header(("Authorization", format!("Bearer {carol}")))
        .send()
        .await;
    assert_eq!(foreign.expect("answer").status().as_u16(), 404, "another company's member");

    // alice sends Taro a picture she uploads: LINE gets an image whose URLs it can fetch
    // without a token (signed links, https), and fetches the same bytes. Nobody else uploads
    // into her room, and what is not a media type is refused.
    let chart: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
    let refused = upload(&c, &carol, &room, Some("image/png"), chart.clone()).await;
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (404, Some("room_not_found")));
    let untyped = upload(&c, &alice, &room, None, chart.clone()).await;
    assert_eq!((untyped.status, untyped.body["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    let uploaded = upload(&c, &alice, &room, Some("image/png"), chart.clone()).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    assert_eq!((uploaded.body["size"].as_u64(), uploaded.body["kind"].as_str()), (Some(30_000), Some("image")));
    let a = post(&c, &room, &alice, "a9", uploaded.body["body"].clone()).await;
    assert!(a.status == 200 || a.status == 201, "{}", a.body);
    let pushed = eventually(15, "the picture's push", || async {
        let p = pushes(&sim, &channel.channel_id, MEDIA_BASE).await;
        (p.len() == 1 && p[0].status == 200).then_some(p)
    })
    .await;
    let object = &pushed[0].body["messages"][0];
    assert_eq!(object["type"], "image", "{object}");
    let original = object["originalContentUrl"].as_str().expect("original");
    let preview = object["previewImageUrl"].as_str().expect("preview");
    let media_id = uploaded.body["media_id"].as_str().expect("media id");
    assert!(original.starts_with(&format!("{MEDIA_BASE}/line/media/{media_id}?expires=")), "{original}");
    assert_eq!(fetch_link(&c, original).await, (200, chart.clone()), "LINE fetches it without a token");
    assert_eq!(fetch_link(&c, preview).await, (200, chart.clone()), "under 1 MB, the preview is the image");
    assert_eq!(fetch_link(&c, &original.replace("signature=", "signature=A")).await.0, 404, "an altered link");
    let unsigned = format!("{}/line/media/{media_id}", c.line_gateway());
    assert_eq!(http().get(unsigned).send().await.expect("answer").status().as_u16(), 404, "no signature");

    let invalid = sim.invalid().await.expect("records");
    assert!(invalid.is_empty(), "every request to LINE matches messaging-api.yml: {invalid:?}");
}
