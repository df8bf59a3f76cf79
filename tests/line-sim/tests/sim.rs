//! The simulator over HTTP: spec validation, LINE's behaviour, scripting, webhooks, the binary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use line_sim::events::{self, Source};
use line_sim::{signature, Channel, Client, Profile, Running, ScriptedResponse, WebhookRequest};
use serde_json::{json, Value};

const RETRY_KEY: &str = "123e4567-e89b-12d3-a456-426614174000";

struct Fixture {
    sim: Running,
    client: Client,
    channel: Channel,
    http: awc::Client,
}

async fn fixture() -> Fixture {
    let sim = line_sim::start("127.0.0.1:0").expect("the simulator starts");
    let client = sim.client();
    let channel = Channel::random("1650000001");
    client.register_channel(&channel).await.expect("channel registered");
    Fixture { sim, client, channel, http: awc::Client::builder().timeout(Duration::from_secs(30)).finish() }
}

struct Answer {
    status: u16,
    headers: awc::http::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url)
    }

    async fn send(&self, req: awc::ClientRequest, body: Option<Value>) -> Answer {
        let sent = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        };
        let mut answer = sent.expect("the simulator answers");
        let body = answer.body().limit(1 << 20).await.expect("a body").to_vec();
        Answer { status: answer.status().as_u16(), headers: answer.headers().clone(), body }
    }

    fn authed(&self, req: awc::ClientRequest) -> awc::ClientRequest {
        req.insert_header(("authorization", format!("Bearer {}", self.channel.access_token)))
    }

    async fn push(&self, body: Value, retry_key: Option<&str>) -> Answer {
        let mut req = self.authed(self.http.post(self.url("/v2/bot/message/push")));
        if let Some(key) = retry_key {
            req = req.insert_header(("x-line-retry-key", key));
        }
        self.send(req, Some(body)).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.authed(self.http.get(self.url(path))), None).await
    }
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

#[actix_rt::test]
async fn a_valid_push_is_accepted_and_recorded() {
    let f = fixture().await;
    let answer = f.push(json!({"to": "U1234", "messages": [text("hello")]}), Some(RETRY_KEY)).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert!(answer.header("x-line-request-id").is_some());
    let sent = answer.json()["sentMessages"].as_array().cloned().unwrap();
    assert_eq!(sent.len(), 1);
    assert!(sent[0]["id"].is_string() && sent[0]["quoteToken"].is_string());

    let recorded = f.client.requests(Some("/v2/bot/message/push"), Some(&f.channel.channel_id)).await.unwrap();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert!(r.valid, "{:?}", r.violations);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["to"], "U1234");
    assert_eq!(r.retry_key(), Some(RETRY_KEY));
    assert!(!r.headers.contains_key("authorization"));
    assert_eq!(r.operation_id.as_deref(), Some("pushMessage"));
    f.client.assert_no_invalid().await.unwrap();
}

#[actix_rt::test]
async fn discriminator_subtypes_validate() {
    let f = fixture().await;
    let messages = json!([
        text("hi"),
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        {"type": "image", "originalContentUrl": "https://example.com/a.jpg", "previewImageUrl": "https://example.com/p.jpg"},
        {"type": "text", "text": "as", "sender": {"name": "Alice", "iconUrl": "https://example.com/i.png"}},
    ]);
    let answer = f.push(json!({"to": "Cabc", "messages": messages}), None).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["sentMessages"].as_array().map(Vec::len), Some(4));
    f.client.assert_no_invalid().await.unwrap();
}

#[actix_rt::test]
async fn requests_that_break_the_spec_are_refused_and_recorded_as_invalid() {
    let f = fixture().await;
    let cases = [
        ("six messages", json!({"to": "U1", "messages": vec![text("x"); 6]})),
        ("text without text", json!({"to": "U1", "messages": [{"type": "text"}]})),
        ("unknown type", json!({"to": "U1", "messages": [{"type": "file", "fileName": "a.pdf"}]})),
        ("no messages", json!({"to": "U1", "messages": []})),
        ("no recipient", json!({"messages": [text("x")]})),
    ];
    for (what, body) in &cases {
        let answer = f.push(body.clone(), None).await;
        assert_eq!(answer.status, 400, "{what}");
        assert!(!answer.json()["details"].as_array().unwrap().is_empty(), "{what}");
    }
    // No Authorization header.
    let answer =
        f.send(f.http.post(f.url("/v2/bot/message/push")), Some(json!({"to": "U1", "messages": [text("x")]}))).await;
    assert_eq!(answer.status, 401);
    // A token of no registered channel.
    let req = f.http.get(f.url("/v2/bot/info")).insert_header(("authorization", "Bearer nope"));
    assert_eq!(f.send(req, None).await.status, 401);
    // A path LINE does not have, and a method it does not allow.
    assert_eq!(f.get("/v2/bot/message/nothing/here/at/all").await.status, 400);
    assert_eq!(f.get("/v2/bot/message/push").await.status, 400);
    // A retry key on reply, and one that is no UUID.
    let req = f.authed(f.http.post(f.url("/v2/bot/message/reply"))).insert_header(("x-line-retry-key", RETRY_KEY));
    assert_eq!(f.send(req, Some(json!({"replyToken": "r", "messages": [text("x")]}))).await.status, 400);
    assert_eq!(f.push(json!({"to": "U1", "messages": [text("x")]}), Some("not-a-uuid")).await.status, 400);

    let invalid = f.client.invalid().await.unwrap();
    assert_eq!(invalid.len(), cases.len() + 6, "{invalid:#?}");
    assert!(invalid.iter().all(|r| !r.valid && !r.violations.is_empty() && r.status >= 400));
    assert!(f.client.assert_no_invalid().await.is_err());
    let unknown = invalid.iter().find(|r| r.path == "/v2/bot/message/nothing/here/at/all").unwrap();
    assert!(unknown.violations[0].contains("no path"), "{:?}", unknown.violations);
    f.client.clear_requests().await.unwrap();
    assert!(f.client.invalid().await.unwrap().is_empty());
}

#[actix_rt::test]
async fn a_retry_key_is_accepted_once_then_409_names_the_first_request() {
    let f = fixture().await;
    let body = json!({"to": "U1", "messages": [text("once")]});
    let first = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert_eq!(first.status, 200);
    let again = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["message"], "The retry key is already accepted");
    assert_eq!(again.header("x-line-accepted-request-id"), first.header("x-line-request-id"));
    assert_ne!(again.header("x-line-request-id"), first.header("x-line-request-id"));
    assert_eq!(again.json()["sentMessages"], first.json()["sentMessages"]);
    // Another key is another message.
    assert_eq!(f.push(body, Some("223e4567-e89b-12d3-a456-426614174000")).await.status, 200);
}

#[actix_rt::test]
async fn scripted_answers_come_in_order_then_normal_behaviour() {
    let f = fixture().await;
    f.client
        .script(
            "/v2/bot/message/push",
            vec![
                ScriptedResponse::status(500),
                ScriptedResponse::rate_limited(1),
                ScriptedResponse::quota_exceeded(),
                ScriptedResponse::status(409),
                ScriptedResponse::delay(700),
            ],
        )
        .await
        .unwrap();
    let body = json!({"to": "U1", "messages": [text("x")]});
    let a = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert_eq!(a.status, 500);
    let a = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert_eq!((a.status, a.header("retry-after").as_deref()), (429, Some("1")));
    assert_eq!(a.json(), json!({"message": "Too Many Requests"}));
    let a = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json(), json!({"message": "You have reached your monthly limit."}));
    let a = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert_eq!(a.status, 409);
    assert!(a.header("x-line-accepted-request-id").is_some());
    let started = Instant::now();
    let a = f.push(body.clone(), Some(RETRY_KEY)).await;
    assert!(started.elapsed() >= Duration::from_millis(700));
    // The failures did not accept the key: the delayed answer did.
    assert_eq!(a.status, 200);
    assert_eq!(f.push(body, Some(RETRY_KEY)).await.status, 409);
    let statuses: Vec<u16> =
        f.client.requests(Some("/v2/bot/message/push"), None).await.unwrap().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 429, 409, 200, 409]);
    f.client.assert_no_invalid().await.unwrap();
}

#[actix_rt::test]
async fn a_script_for_a_path_template_applies_to_every_concrete_path() {
    let f = fixture().await;
    f.client.script("/v2/bot/profile/{userId}", vec![ScriptedResponse::status(500)]).await.unwrap();
    assert_eq!(f.get("/v2/bot/profile/Uanyone").await.status, 500);
    assert_eq!(f.get("/v2/bot/profile/Uanyone").await.status, 404);
}

#[actix_rt::test]
async fn content_is_served_until_deleted() {
    let f = fixture().await;
    f.client.put_content("4711", "image/png", vec![0x89, b'P', b'N', b'G']).await.unwrap();
    let a = f.get("/v2/bot/message/4711/content").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(a.body, vec![0x89, b'P', b'N', b'G']);
    f.client.delete_content("4711").await.unwrap();
    let a = f.get("/v2/bot/message/4711/content").await;
    assert_eq!((a.status, a.json()), (404, json!({"message": "Not found"})));
    assert_eq!(f.get("/v2/bot/message/999/content").await.status, 404);
    f.client.assert_no_invalid().await.unwrap();
}

#[actix_rt::test]
async fn profiles_are_per_channel_and_bot_info_names_the_destination() {
    let f = fixture().await;
    let profile = Profile {
        channel_id: f.channel.channel_id.clone(),
        user_id: "U0123".into(),
        display_name: "Taro".into(),
        picture_url: Some("https://example.com/taro.png".into()),
        status_message: None,
        language: Some("ja".into()),
    };
    f.client.add_profile(&profile).await.unwrap();
    let a = f.get("/v2/bot/profile/U0123").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        json!({"userId": "U0123", "displayName": "Taro", "pictureUrl": "https://example.com/taro.png", "language": "ja"})
    );
    assert_eq!(f.get("/v2/bot/profile/Uunknown").await.json(), json!({"message": "Not found"}));
    // Another channel does not see it.
    let other = Channel::random("1650000002");
    f.client.register_channel(&other).await.unwrap();
    let req = f
        .http
        .get(f.url("/v2/bot/profile/U0123"))
        .insert_header(("authorization", format!("Bearer {}", other.access_token)));
    assert_eq!(f.send(req, None).await.status, 404);

    let info = f.get("/v2/bot/info").await.json();
    assert_eq!(info["userId"], f.channel.bot_user_id.as_str());
    assert_eq!(info["basicId"], f.channel.basic_id.as_str());
    assert!(info["displayName"].is_string());
    f.client.assert_no_invalid().await.unwrap();
}

#[actix_rt::test]
async fn a_reply_token_works_once() {
    let f = fixture().await;
    let body = json!({"replyToken": "abc", "messages": [text("hi")]});
    let first = f.send(f.authed(f.http.post(f.url("/v2/bot/message/reply"))), Some(body.clone())).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["sentMessages"].as_array().map(Vec::len), Some(1));
    let again = f.send(f.authed(f.http.post(f.url("/v2/bot/message/reply"))), Some(body)).await;
    assert_eq!((again.status, again.json()["message"].clone()), (400, json!("Invalid reply token")));
    f.client.assert_no_invalid().await.unwrap();
}

/// Each webhook received: its `x-line-signature` and exact body.
type Received = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

/// A webhook receiver: records each request's signature header and exact body.
async fn receiver() -> (String, Received, actix_web::dev::ServerHandle) {
    let got: Received = Arc::default();
    let shared = got.clone();
    let server = HttpServer::new(move || {
        let shared = shared.clone();
        App::new().route(
            "/webhook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let shared = shared.clone();
                async move {
                    let sig = req.headers().get("x-line-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    shared.lock().unwrap().push((sig, body.to_vec()));
                    HttpResponse::Ok().body("OK")
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (format!("http://127.0.0.1:{port}/webhook"), got, handle)
}

#[actix_rt::test]
async fn a_webhook_is_signed_over_the_exact_bytes_it_sends() {
    let f = fixture().await;
    let (url, got, handle) = receiver().await;
    let user = Source::user("U4af4980629");
    let mut hand_written = json!({"type": "unfollow", "source": {"type": "user", "userId": "U4af4980629"}});
    hand_written["extra"] = json!(1);
    let sent = f
        .client
        .send_webhook(&WebhookRequest::new(
            &f.channel.channel_id,
            &url,
            vec![events::text(&user, "1", "hello 🤨 こんにちは"), events::follow(&user, false), hand_written],
        ))
        .await
        .unwrap();
    assert_eq!((sent.status, sent.body.as_str()), (200, "OK"));
    assert!(sent.violations.is_empty(), "{:?}", sent.violations);
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (sig, body) = &got[0];
    assert_eq!(body, sent.webhook_body.as_bytes());
    assert_eq!(sig.as_deref(), Some(sent.signature.as_str()));
    assert!(signature::verify(&f.channel.channel_secret, body, sig.as_deref().unwrap()));
    assert_eq!(signature::sign(&f.channel.channel_secret, body), sent.signature);
    // LINE escapes non-ASCII: re-serialising the parsed JSON gives other bytes.
    let parsed: Value = serde_json::from_slice(body).unwrap();
    assert!(sent.webhook_body.contains("\\uD83E\\uDD28"));
    assert_ne!(serde_json::to_vec(&parsed).unwrap(), *body);
    assert_eq!(parsed["destination"], f.channel.bot_user_id.as_str());
    assert_eq!(parsed["events"][0]["message"]["text"], "hello 🤨 こんにちは");
    // The hand-written event was completed.
    let filled = &parsed["events"][2];
    assert_eq!(filled["mode"], "active");
    assert_eq!(filled["webhookEventId"].as_str().map(str::len), Some(26));
    assert_eq!(filled["deliveryContext"]["isRedelivery"], false);
    assert!(filled["timestamp"].is_u64());
    // A forged signature is sent as given.
    let mut forged = WebhookRequest::new(&f.channel.channel_id, &url, vec![]);
    forged.signature = Some("AAAA".into());
    f.client.send_webhook(&forged).await.unwrap();
    handle.stop(false).await;
}

#[test]
fn the_binary_logs_the_port_it_listens_on() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_line-sim"))
        .args(["--port", "0"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if event["message"] == "listening" {
            port = event["port"].as_u64();
            break;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(port.is_some_and(|p| p > 0), "no listening line with a port");
}
