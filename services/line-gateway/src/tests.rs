//! The webhook over HTTP and the inbox workers, over a real store (PostgreSQL, a schema per
//! test) and the in-process bus with a stand-in for rooms that records the commands it gets:
//! the webhook's order of checks (size, channel, signature, body) and its dedup, and what the
//! workers make of follows, messages, unsupported types and suspended channels. The media
//! and unsend scenarios, against the LINE simulator, are in `tests/media.rs`. LINE's
//! Messaging API is a local actix server scripted by each test (`FakeLine`); the outbox's
//! scenarios are in `tests/outbox.rs`.

mod media;
mod outbox;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{test, web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chat_auth::Verifier;
use chat_bus::{InProcBus, SharedBus, Subscription};
use chat_protocol::bus::{CommandEnvelope, CommandResult, MemberKind, NodeMessage, RoomCommand, RoomKind};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::{post_command_id, Body, MessageId, TenantId, UserId};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use tokio::sync::Notify;

use crate::authz::AuthzClient;
use crate::line_api::LineApi;
use crate::rooms::{line_direct_room_id, RoomsClient};
use crate::secrets::tests::test_key;
use crate::service::{push_limiter, LineCore};
use crate::settings::{Settings, DEFAULTS};
use crate::store::tests::TestDb;
use crate::store::{Bound, NewBinding};

const CHANNEL: &str = "1657000001";
const SECRET: &str = "8c570fa6dd201bb328f1c1eac23a96d8";
const DESTINATION: &str = "U0123456789abcdef0123456789abcdef";
const TARO: &str = "U4af4980629aaaaaaaaaaaaaaaaaaaaaaaa";
/// The webhook limit of these tests.
const LIMIT: usize = 4096;
/// Where LINE fetches members' media from in these tests (signed links).
const LINE_MEDIA_BASE: &str = "https://engine.test";

/// The room commands the stand-in for rooms answered.
type Commands = Arc<Mutex<Vec<CommandEnvelope>>>;

/// A stand-in for rooms on the in-process bus: every `Create` is answered `Created` in the
/// targeted room, every `Post` `Posted`.
async fn fake_rooms(bus: &SharedBus) -> Commands {
    let commands: Commands = Arc::default();
    for shard in 0..bus.shards() {
        let mut queue = bus.consume_shard(shard, 16).await.unwrap();
        let (bus, commands) = (bus.clone(), Arc::clone(&commands));
        tokio::spawn(async move {
            while let Some(delivery) = queue.recv().await {
                let envelope: CommandEnvelope = serde_json::from_slice(&delivery.payload).unwrap();
                let result = match &envelope.command {
                    RoomCommand::Create { .. } => {
                        CommandResult::Created { room_id: envelope.room_id.clone(), existed: false }
                    }
                    _ => CommandResult::Posted { message_id: MessageId::generate(), seq: 1 },
                };
                let reply_to = envelope.reply_to.clone().unwrap();
                let reply = NodeMessage::Reply { correlation_id: reply_to.correlation_id, outcome: Ok(result) };
                commands.lock().unwrap().push(envelope);
                bus.publish_to_node(&reply_to.node, serde_json::to_vec(&reply).unwrap()).await.unwrap();
                delivery.ack().await.unwrap();
            }
        });
    }
    commands
}

/// One scripted answer of the fake LINE.
#[derive(Debug, Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Scripted {
    fn status(status: u16, body: &str) -> Self {
        Self { status, headers: Vec::new(), body: body.to_owned() }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn respond(&self) -> HttpResponse {
        let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(self.status).unwrap());
        for (name, value) in &self.headers {
            res.insert_header((*name, value.clone()));
        }
        res.content_type("application/json").body(self.body.clone())
    }
}

/// A push the fake LINE received.
#[derive(Debug, Clone)]
struct Pushed {
    retry_key: String,
    authorization: String,
    body: serde_json::Value,
}

#[derive(Default)]
struct FakeLineState {
    /// Answers of the next pushes (then 200).
    push_script: VecDeque<Scripted>,
    pushes: Vec<Pushed>,
    /// Answers of the next profile requests (then the profile, or 404).
    profile_script: VecDeque<Scripted>,
    profiles: HashMap<String, serde_json::Value>,
    profile_requests: usize,
    /// Members whose admin role authz removed (their tokens may still say admin).
    demoted: HashSet<String>,
}

/// A stand-in for LINE's Messaging API on a local port, which also answers authz's decisions:
/// `admin@<tenant>` is an admin unless demoted.
#[derive(Clone, Default)]
struct FakeLine(Arc<Mutex<FakeLineState>>);

impl FakeLine {
    /// Serve on a free local port; the base URL.
    async fn start(&self) -> String {
        let data = web::Data::new(self.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v2/bot/message/push", web::post().to(fake_push))
                .route("/v2/bot/profile/{user_id}", web::get().to(fake_profile))
                .route("/internal/v1/decide", web::post().to(fake_decide))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        actix_web::rt::spawn(server.run());
        format!("http://{addr}")
    }

    fn script_pushes(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.0.lock().unwrap().push_script.extend(answers);
    }

    fn script_profiles(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.0.lock().unwrap().profile_script.extend(answers);
    }

    /// authz removes the member's admin role.
    fn demote(&self, user: &str) {
        self.0.lock().unwrap().demoted.insert(user.to_owned());
    }

    fn pushes(&self) -> Vec<Pushed> {
        self.0.lock().unwrap().pushes.clone()
    }
}

async fn fake_push(fake: web::Data<FakeLine>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut state = fake.0.lock().unwrap();
    state.pushes.push(Pushed {
        retry_key: header("x-line-retry-key"),
        authorization: header("authorization"),
        body: serde_json::from_slice(&body).unwrap(),
    });
    let answer = state.push_script.pop_front().unwrap_or_else(|| Scripted::status(200, r#"{"sentMessages":[]}"#));
    answer.respond()
}

async fn fake_decide(fake: web::Data<FakeLine>, body: web::Json<chat_protocol::authz::DecideRequest>) -> HttpResponse {
    let actor = body.actor.as_str();
    let admin = actor.starts_with("admin@") && !fake.0.lock().unwrap().demoted.contains(actor);
    HttpResponse::Ok().json(chat_protocol::authz::DecideResponse {
        actor_line: true,
        actor_admin: admin,
        trusted_tenants: vec![],
        verdicts: vec![],
    })
}

async fn fake_profile(fake: web::Data<FakeLine>, path: web::Path<String>) -> HttpResponse {
    let mut state = fake.0.lock().unwrap();
    state.profile_requests += 1;
    if let Some(answer) = state.profile_script.pop_front() {
        return answer.respond();
    }
    match state.profiles.get(path.as_str()) {
        Some(profile) => HttpResponse::Ok().json(profile),
        None => Scripted::status(404, r#"{"message":"Not found"}"#).respond(),
    }
}

/// A core over the test store and an in-process bus (authz's answers from the fake, no workers started:
/// the tests run them), with alice bound to `CHANNEL`; a subscription that sees every event
/// the core publishes; and the commands rooms got. LINE is a fake that knows TARO's profile.
async fn core(db: &TestDb) -> (Arc<LineCore>, Subscription, Commands) {
    let (core, published, commands, _line) = core_with_line(db).await;
    (core, published, commands)
}

/// `core`, and the fake LINE it calls.
async fn core_with_line(db: &TestDb) -> (Arc<LineCore>, Subscription, Commands, FakeLine) {
    let line = FakeLine::default();
    line.0.lock().unwrap().profiles.insert(
        TARO.to_owned(),
        serde_json::json!({"userId": TARO, "displayName": "Taro Yamada", "pictureUrl": "https://profile.example/taro"}),
    );
    let line_base = line.start().await;
    let (core, published, commands) = core_at(db, &line_base, MEDIA_MAX_BYTES).await;
    (core, published, commands, line)
}

/// The media limit of these tests.
const MEDIA_MAX_BYTES: u64 = 4096;

/// A core calling LINE (both APIs) at `line_base`, keeping media up to `media_max_bytes` in
/// a temporary directory (`media.public_base_url` is `http://engine.test`).
async fn core_at(db: &TestDb, line_base: &str, media_max_bytes: u64) -> (Arc<LineCore>, Subscription, Commands) {
    let line_base = line_base.to_owned();
    let mut settings: Settings = chat_kit::parse_layers(&[DEFAULTS]).unwrap();
    settings.line.api_base_url = line_base.clone();
    // authz's decisions come from the fake too (`fake_decide`).
    settings.authz.url = line_base.clone();
    settings.auth.jwt_secret = SecretString::from("line-test-secret-line-test-secret-line");
    settings.line.webhook_max_bytes = LIMIT;
    settings.line.batch_window_ms = 0;
    settings.line.data_api_base_url = line_base.clone();
    settings.media.path =
        std::env::temp_dir().join(format!("line-media-{}", uuid::Uuid::new_v4().simple())).to_string_lossy().into();
    settings.media.max_bytes = media_max_bytes;
    settings.media.public_base_url = "http://engine.test".into();
    let media = crate::media::MediaStore::from_settings(&settings.media).unwrap();
    // No rooms to ask here: only the channel's member reads media (the e2e tests ask rooms).
    settings.rooms.url = String::new();
    let membership = crate::membership::RoomMembership::new(&settings.rooms.url);
    let bus: SharedBus = Arc::new(InProcBus::new(4));
    let published = bus.consume_events("published", true).await.unwrap();
    let commands = fake_rooms(&bus).await;
    let rooms = RoomsClient::start(bus.clone(), "line-test-node".into(), Duration::from_secs(2)).await.unwrap();
    let secrets = test_key();
    let secret_enc = secrets.encrypt(&SecretString::from(SECRET));
    let token_enc = secrets.encrypt(&SecretString::from("access-token"));
    let binding = NewBinding {
        channel_id: CHANNEL,
        user_id: &UserId::new("alice@acme"),
        tenant: &TenantId::new("acme"),
        basic_id: "@alice",
        secret_enc: &secret_enc,
        token_enc: &token_enc,
    };
    assert!(matches!(db.store.bind(&binding, 1).await.unwrap(), Bound::Stored(_)));
    let links = crate::media_links::MediaLinks::new(secrets.media_links_key(), LINE_MEDIA_BASE, 180);
    let core = Arc::new(LineCore {
        store: db.store.clone(),
        bus,
        verifier: Verifier::new(&settings.auth),
        authz: AuthzClient::new(settings.authz.clone()),
        settings,
        rooms,
        secrets,
        inbox_wake: Arc::new(Notify::new()),
        line_api: LineApi::new(&line_base, Duration::from_secs(2)).with_data_api(&line_base),
        outbox_wake: Arc::new(Notify::new()),
        push_limiter: push_limiter(100),
        links,
        media,
        membership,
        previews: Arc::new(tokio::sync::Semaphore::new(1)),
    });
    (core, published, commands)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

fn event(id: &str, kind: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"{kind}","mode":"active","timestamp":1700000000000,"source":{{"type":"user","userId":"{TARO}"}},"webhookEventId":"{id}","deliveryContext":{{"isRedelivery":false}}{extra}}}"#
    )
}

fn envelope(events: &[String]) -> String {
    format!(r#"{{"destination":"{DESTINATION}","events":[{}]}}"#, events.join(","))
}

async fn next_event(published: &mut Subscription) -> ChangeEvent {
    let delivery = tokio::time::timeout(Duration::from_secs(2), published.recv()).await.unwrap().unwrap();
    let envelope: EventEnvelope = serde_json::from_slice(&delivery.payload).unwrap();
    delivery.ack().await.unwrap();
    envelope.event
}

/// Process every claimable inbox event, as a worker does.
async fn drain_inbox(core: &LineCore) -> usize {
    let mut processed = 0;
    while let Some(row) = core.store.claim(chat_protocol::now_ms(), 60_000).await.unwrap() {
        crate::inbox::process(core, row).await;
        processed += 1;
    }
    processed
}

fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["error"]["code"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn the_webhook_checks_size_channel_signature_and_body_in_that_order_and_stores_an_event_once() {
    let db = TestDb::new().await;
    let (core, _published, _commands) = core(&db).await;
    let app = test::init_service(App::new().configure(crate::configure(&core))).await;
    let path = format!("/line/webhook/{CHANNEL}");
    let post = |path: &str, body: &[u8], signature: Option<String>| {
        let mut req = test::TestRequest::post().uri(path).set_payload(body.to_vec());
        if let Some(signature) = signature {
            req = req.insert_header(("x-line-signature", signature));
        }
        req.to_request()
    };

    // (a) too large, whatever else is wrong with it
    let huge = vec![b' '; LIMIT + 1];
    let res = test::call_service(&app, post("/line/webhook/999", &huge, None)).await;
    assert_eq!(res.status(), 413);
    assert_eq!(error_code(&test::read_body(res).await), "payload_too_large");

    // (b) unknown channel
    let body = envelope(&[event("01HZZZZZZZZZZZZZZZZZZZZZZ1", "follow", "")]);
    let res = test::call_service(&app, post("/line/webhook/999", body.as_bytes(), Some(sign(body.as_bytes())))).await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(&test::read_body(res).await), "channel_not_found");

    // (c) missing or wrong signature: nothing stored
    for signature in [None, Some(sign(b"another body")), Some("bm90IGl0".to_owned())] {
        let res = test::call_service(&app, post(&path, body.as_bytes(), signature)).await;
        assert_eq!(res.status(), 401);
        assert_eq!(error_code(&test::read_body(res).await), "invalid_signature");
    }
    assert_eq!(db.store.backlog().await.unwrap(), 0);

    // (d) signed but malformed, or an event without an id: nothing stored
    for bad in ["{\"destination\":", "[1,2]", r#"{"destination":"U1","events":[{"type":"follow"}]}"#] {
        let res = test::call_service(&app, post(&path, bad.as_bytes(), Some(sign(bad.as_bytes())))).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    assert_eq!(db.store.backlog().await.unwrap(), 0);

    // connectivity check
    let empty = envelope(&[]);
    let res = test::call_service(&app, post(&path, empty.as_bytes(), Some(sign(empty.as_bytes())))).await;
    assert_eq!(res.status(), 200);

    // (e) stored once, however often delivered
    for _ in 0..2 {
        let res = test::call_service(&app, post(&path, body.as_bytes(), Some(sign(body.as_bytes())))).await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(db.store.backlog().await.unwrap(), 1);
    db.drop().await;
}

#[actix_web::test]
async fn escaped_text_verifies_on_the_raw_body() {
    let db = TestDb::new().await;
    let (core, _published, _commands) = core(&db).await;
    let app = test::init_service(App::new().configure(crate::configure(&core))).await;
    let body = envelope(&[event(
        "01HZZZZZZZZZZZZZZZZZZZZZZ2",
        "message",
        r#","message":{"id":"1","type":"text","quoteToken":"q","text":"\uD83E\uDD28"}"#,
    )]);
    let req = test::TestRequest::post()
        .uri(&format!("/line/webhook/{CHANNEL}"))
        .insert_header(("x-line-signature", sign(body.as_bytes())))
        .set_payload(body.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 200);
    assert_eq!(db.store.backlog().await.unwrap(), 1);
    db.drop().await;
}

#[actix_web::test]
async fn a_follow_opens_the_room_and_a_message_is_posted_once_as_the_line_user() {
    let db = TestDb::new().await;
    let (core, mut published, commands) = core(&db).await;
    let follow = event("01HFOLLOW0000000000000000A", "follow", r#","follow":{"isUnblocked":false}"#);
    let text = event(
        "01HTEXT00000000000000000AA",
        "message",
        r#","message":{"id":"2","type":"text","quoteToken":"q","text":"hello"}"#,
    );
    let sticker = event(
        "01HSTICKER00000000000000AA",
        "message",
        r#","message":{"id":"3","type":"sticker","packageId":"446","stickerId":"1988"}"#,
    );
    let image = event(
        "01HIMAGE0000000000000000AA",
        "message",
        r#","message":{"id":"4","type":"image","contentProvider":{"type":"line"}}"#,
    );
    let postback = event("01HPOSTBACK0000000000000AA", "postback", r#","postback":{"data":"x"}"#);
    let body = envelope(&[follow, text, sticker, image, postback]);
    let (destination, events) = crate::webhook::parse_envelope(body.as_bytes()).unwrap();
    db.store.insert_events(&destination, CHANNEL, &events, chat_protocol::now_ms()).await.unwrap();
    assert_eq!(drain_inbox(&core).await, 5);
    assert_eq!(db.store.backlog().await.unwrap(), 0);

    let alice = UserId::new("alice@acme");
    let taro = UserId::new(format!("line:{TARO}"));
    let room = line_direct_room_id(&alice, &taro);
    let ChangeEvent::LineFollow { user, line_user, at_ms, display_name, picture_url, .. } =
        next_event(&mut published).await
    else {
        panic!("line.follow first")
    };
    assert_eq!((user, line_user.clone(), at_ms), (alice.clone(), taro.clone(), 1_700_000_000_000));
    assert_eq!(
        (display_name.as_str(), picture_url.as_deref()),
        ("Taro Yamada", Some("https://profile.example/taro")),
        "the profile LINE has for the new friend"
    );

    let seen = commands.lock().unwrap().clone();
    let creates: Vec<_> = seen.iter().filter(|c| matches!(c.command, RoomCommand::Create { .. })).collect();
    let posts: Vec<_> = seen.iter().filter(|c| matches!(c.command, RoomCommand::Post { .. })).collect();
    assert_eq!(
        (creates.len(), posts.len()),
        (4, 2),
        "a room per follow and message; no post for the image, whose content this fake LINE lacks"
    );
    let RoomCommand::Create { kind, members, .. } = &creates[0].command else { unreachable!() };
    assert_eq!(*kind, RoomKind::LineDirect);
    assert_eq!((creates[0].actor.clone(), creates[0].room_id.clone()), (alice.clone(), room.clone()));
    assert_eq!(members[1].user, taro);
    assert_eq!((members[1].tenant.clone(), members[1].kind), (TenantId::line(), MemberKind::LineUser));
    let RoomCommand::Post { client_msg_id, body } = &posts[0].command else { unreachable!() };
    assert_eq!(body, &Body::Text { text: "hello".into() });
    let client_msg_id = client_msg_id.clone().unwrap();
    assert_eq!(client_msg_id, "line.01HTEXT00000000000000000AA");
    assert_eq!(posts[0].command_id, post_command_id(&taro, &client_msg_id));
    assert_eq!((posts[0].actor.clone(), posts[0].tenant.clone()), (taro.clone(), TenantId::line()));
    let RoomCommand::Post { body, .. } = &posts[1].command else { unreachable!() };
    assert_eq!(body, &Body::Sticker { package_id: "446".into(), sticker_id: "1988".into() });
    let known = db.store.line_user(CHANNEL, TARO).await.unwrap().unwrap();
    assert_eq!((known.room_id, known.followed), (Some(room), true));

    // An unfollow: published, the LINE user kept with their room.
    let unfollow = event("01HUNFOLLOW000000000000AAA", "unfollow", "");
    let (_, events) = crate::webhook::parse_envelope(envelope(&[unfollow]).as_bytes()).unwrap();
    db.store.insert_events(DESTINATION, CHANNEL, &events, chat_protocol::now_ms()).await.unwrap();
    assert_eq!(drain_inbox(&core).await, 1);
    assert!(matches!(next_event(&mut published).await, ChangeEvent::LineUnfollow { .. }));
    assert!(!db.store.line_user(CHANNEL, TARO).await.unwrap().unwrap().followed);
    db.drop().await;
}

#[actix_web::test]
async fn a_suspended_channels_events_are_processed_without_effect_until_access_returns() {
    let db = TestDb::new().await;
    let (core, _published, commands) = core(&db).await;
    let alice = UserId::new("alice@acme");
    let acme = TenantId::new("acme");
    let access = |allowed| {
        let event = ChangeEvent::LineAccess { tenant: acme.clone(), user: alice.clone(), allowed };
        serde_json::to_vec(&EventEnvelope::new(event)).unwrap()
    };
    let mut consumed = core.bus.consume_events("line-gateway", true).await.unwrap();
    core.bus.publish_event(access(false)).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(2), consumed.recv()).await.unwrap().unwrap();
    crate::events::handle(&core, delivery).await;
    assert!(db.store.channel(CHANNEL).await.unwrap().unwrap().suspended);

    let text = event("01HSUSPENDED00000000000AAA", "message", r#","message":{"id":"2","type":"text","text":"hi"}"#);
    let (_, events) = crate::webhook::parse_envelope(envelope(&[text]).as_bytes()).unwrap();
    db.store.insert_events(DESTINATION, CHANNEL, &events, chat_protocol::now_ms()).await.unwrap();
    assert_eq!(drain_inbox(&core).await, 1);
    assert_eq!(db.store.backlog().await.unwrap(), 0);
    assert!(commands.lock().unwrap().is_empty(), "nothing reached rooms");

    core.bus.publish_event(access(true)).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(2), consumed.recv()).await.unwrap().unwrap();
    crate::events::handle(&core, delivery).await;
    assert!(!db.store.channel(CHANNEL).await.unwrap().unwrap().suspended);

    // Blocks between a member and a LINE user are kept; others are not this service's.
    let taro = UserId::new(format!("line:{TARO}"));
    let blocked =
        ChangeEvent::ContactBlocked { tenant: acme.clone(), user: alice.clone(), peer: taro.clone(), since_ms: 5 };
    core.bus.publish_event(serde_json::to_vec(&EventEnvelope::new(blocked)).unwrap()).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(2), consumed.recv()).await.unwrap().unwrap();
    crate::events::handle(&core, delivery).await;
    assert_eq!(db.store.block_periods(&alice, &taro).await.unwrap().len(), 1);
    db.drop().await;
}
