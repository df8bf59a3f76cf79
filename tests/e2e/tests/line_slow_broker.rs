//! The LINE gateway answers LINE's webhook at once however slow RabbitMQ is: the gateway (alone)
//! reaches the broker through a TCP proxy the test controls; with the proxy slowed to 3 s per
//! chunk each way, a signed text webhook from the LINE platform simulator is answered `200` in
//! under 2 s (a generous bound, measured from the test), while the message itself, which goes to
//! rooms over the bus, cannot reach the member's room before the link is fast again; then it
//! arrives, once.
//!
//! Why this would fail if the webhook handler waited on the broker: every broker operation the
//! gateway can await is a round trip over its one AMQP connection, which is the proxied one
//! (the test checks the proxy carries it). Publishes wait for their confirm (the bus publishes
//! with confirms only), commands for their reply, declares and queue depths for the broker's
//! answer: at least one chunk to the broker and one back, 3 s + 3 s while slow. A handler that
//! awaited any of them would answer in 6 s or more, three times the bound. (Only a write to
//! the socket that nothing waits on would not be seen: the proxy reads eagerly; but that is not
//! waiting on the broker.) The room's side shows the slowing is real: the same message, whose
//! processing does use the bus, is not in the room while the link stays slow.

use std::time::{Duration, Instant};

use e2e::line::{allow_line_and_bind, history_texts};
use e2e::proxy::Proxy;
use e2e::*;
use line_sim::events::{self, Source};
use line_sim::{Channel, Profile, WebhookRequest, WebhookResult};
use serde_json::Value;

const LINE_USER: &str = "U5107b20c1d2e3f40516273849a0b1c2d";

/// The delay of each chunk, both ways, while the gateway's broker link is slow.
const SLOW: Duration = Duration::from_secs(3);

/// The bound on the webhook's answer while the link is slow (LINE's own limit is about 2 s).
const BOUND: Duration = Duration::from_secs(2);

/// How long, from the webhook, the link stays slow before it is made fast again: longer than
/// the bound, shorter than the one-way delay, so a message posted to the room over the bus
/// (the publish alone takes `SLOW` to reach the broker) cannot be there yet.
const SLOW_FOR: Duration = Duration::from_millis(2_500);

/// Have the simulator sign and deliver `events` to the gateway: its answer and how long the
/// delivery took, seen from the test (the simulator waits up to 20 s for the answer, so that
/// a slow answer is measured rather than cut short).
async fn deliver(
    sim: &line_sim::Client,
    channel: &Channel,
    url: &str,
    events: Vec<Value>,
) -> (WebhookResult, Duration) {
    let mut request = WebhookRequest::new(&channel.channel_id, url, events);
    request.timeout_ms = Some(20_000);
    let started = Instant::now();
    let sent = sim.send_webhook(&request).await.expect("the simulator delivered the webhook");
    let took = started.elapsed();
    assert!(sent.violations.is_empty(), "the webhook is shaped like webhook.yml: {:?}", sent.violations);
    (sent, took)
}

/// The next frame on `ws` whose text is `text`, if one comes before `until`.
async fn text_frame_before(ws: &mut Ws, text: &str, until: Instant) -> Option<Value> {
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next(60)).await {
            Err(_) => return None,
            Ok(Got::Frame(f)) if f["body"]["text"] == text => return Some(f),
            Ok(Got::Frame(_)) => {}
            Ok(other) => panic!("alice's socket while waiting for {text:?}: {other:?}"),
        }
    }
}

#[actix_rt::test]
async fn the_webhook_is_answered_within_2_s_while_the_gateways_broker_link_is_slow() {
    let running = line_sim::start("127.0.0.1:0").expect("the LINE platform simulator");
    let sim = running.client();
    let mut c = Cluster::start("line_slow_broker", &[]).await;
    c.start_contacts().await;
    // The gateway alone reaches the broker through the proxy (same vhost, credentials, prefix).
    let proxy = Proxy::start(c.authz.vhost.broker());
    let via_proxy = c.authz.vhost.url_via(proxy.addr);
    c.start_line_gateway(&[
        ("CHAT__AMQP__URL", &via_proxy),
        ("CHAT__LINE__API_BASE_URL", &running.base_url),
        ("CHAT__LINE__DATA_API_BASE_URL", &running.base_url),
    ])
    .await;
    assert!(proxy.connections() >= 1, "the gateway's broker connection goes through the proxy");

    let channel = Channel::random("1660000077");
    sim.register_channel(&channel).await.expect("the channel in the simulator");
    let profile = Profile {
        channel_id: channel.channel_id.clone(),
        user_id: LINE_USER.into(),
        display_name: "Hanako Sato".into(),
        picture_url: None,
        status_message: None,
        language: None,
    };
    sim.add_profile(&profile).await.expect("the LINE user's profile");

    // While the link is fast: alice may use LINE, her channel is bound, the LINE user follows.
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    allow_line_and_bind(&c, &admin, "alice@acme", &channel).await;
    let mut ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let webhook_url = format!("{}/line/webhook/{}", c.line_gateway(), channel.channel_id);
    let user = Source::user(LINE_USER);
    let (followed, _) = deliver(&sim, &channel, &webhook_url, vec![events::follow(&user, false)]).await;
    assert_eq!(followed.status, 200, "{}", followed.body);
    let room = eventually(20, "the LINE 1:1 room", || async {
        let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), None).await;
        a.body["rooms"].as_array().and_then(|rooms| {
            rooms.iter().find(|r| r["kind"] == "line_direct").and_then(|r| r["id"].as_str().map(str::to_owned))
        })
    })
    .await;
    // One message end to end while fast: the whole path works, and is warm.
    let (warm, fast_took) =
        deliver(&sim, &channel, &webhook_url, vec![events::text(&user, "700000000000000001", "before")]).await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    let before = ws.expect(20, "the message sent while fast", |f| f["body"]["text"] == "before").await;
    assert_eq!(before["room_id"], room.as_str());

    // The broker link turns slow: 3 s per chunk each way, on the gateway's open connection.
    proxy.slow(SLOW);
    let text = "sent while RabbitMQ is slow";
    let sent_at = Instant::now();
    let (answer, slow_took) =
        deliver(&sim, &channel, &webhook_url, vec![events::text(&user, "700000000000000002", text)]).await;
    eprintln!("webhook answered in {fast_took:?} with a fast broker link, {slow_took:?} with a slow one");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        slow_took < BOUND,
        "the webhook was answered in {slow_took:?} while the broker link was slow ({SLOW:?} per chunk): \
         the webhook path waited on RabbitMQ"
    );
    // The slowing is real: the message, which reaches rooms over the bus, is not there while
    // the link stays slow.
    let early = text_frame_before(&mut ws, text, sent_at + SLOW_FOR).await;
    assert!(early.is_none(), "the message reached the room over a slowed bus in {:?}", sent_at.elapsed());
    assert!(!history_texts(&c, &room, &alice).await.iter().any(|t| t == text), "in the room while slow");

    // Fast again: the stored event is processed; the message arrives, once.
    proxy.fast();
    let arrived = text_frame_before(&mut ws, text, Instant::now() + Duration::from_secs(30)).await;
    let arrived = arrived.expect("the message reached alice's socket within 30 s of the link being fast");
    eprintln!("the message reached alice's socket {:?} after the webhook", sent_at.elapsed());
    assert_eq!(arrived["room_id"], room.as_str());
    assert_eq!(arrived["sender"], format!("line:{LINE_USER}"));
    // Retries while the link was slow (a command timing out, say) post it once all the same.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = text_frame_before(&mut ws, text, Instant::now() + Duration::from_secs(1)).await;
    assert!(again.is_none(), "the message came twice on alice's socket: {again:?}");
    assert_eq!(history_texts(&c, &room, &alice).await, ["before", text], "each message once, in order");
    sim.assert_no_invalid().await.expect("every request to LINE matches its spec");
}
