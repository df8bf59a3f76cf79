//! Every event and message shape of LINE's `webhook.yml` through the real binaries (authz,
//! rooms, contacts, line-gateway) and the LINE platform simulator: three signed webhooks (a
//! LINE user's 1:1 chat, a LINE group and a multi-person chat, the channel-wide events without
//! a source) whose bodies together hold every shape the spec defines (`uncovered_shapes` of the
//! bytes sent is empty), each shaped like the spec (no violations). The gateway answers each
//! 200 and processes every event as documented: follow, unfollow, messages of every type
//! (content on LINE downloaded, `external` content linked), unsend, join, leave, memberJoined
//! and memberLeft applied; the other types (postback, videoPlayComplete, beacon, accountLink,
//! membership, module, activated, deactivated, botSuspended, botResumed, delivery) counted as
//! ignored; none failed, none unknown. Every request the gateway sent LINE matches
//! `messaging-api.yml`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::line::{allow_line_and_bind, history_of, line_profile, rooms_of_kind, webhook_url};
use e2e::*;
use line_sim::events::{self, Emoji, Mention, Provider, Source, StickerExtras, TextExtras};
use line_sim::{Channel, Group, WebhookRequest};
use serde_json::{json, Value};

const USER: &str = "U5a1e3b7c9d2f4a6b8c0e1d3f5a7b9c2e";
const GROUP: &str = "C7e2a4c6e8a0b2d4f6a8c0e2a4c6e8a0b";
const ROOM: &str = "R1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a";
const RIKO: &str = "U1111111111111111111111111111111a";
const KENJI: &str = "U2222222222222222222222222222222b";
const TARO: &str = "U3333333333333333333333333333333c";
const HANA: &str = "U4444444444444444444444444444444d";

/// LINE's message ids (numbers) of what the test refers to again: media whose content is on
/// LINE, and the messages quoted or unsent.
const IMAGE: &str = "710000000000101";
const SET_1: &str = "710000000000102";
const SET_2: &str = "710000000000103";
const SET_3: &str = "710000000000104";
const VIDEO: &str = "710000000000105";
const AUDIO: &str = "710000000000106";
const FILE: &str = "710000000000107";
const HELLO: &str = "710000000000108";
const GROUP_HELLO: &str = "710000000000118";

/// Outcomes that mean an event failed (`inbox.rs`: given up, or never applicable).
const FAILURES: &[&str] = &["failed", "undecodable", "refused", "gone"];

/// The events to send, and what the gateway is expected to count for each
/// (`line_events_total{type, outcome}`).
#[derive(Default)]
struct Plan {
    events: Vec<Value>,
    outcomes: BTreeMap<(String, String), u64>,
}

impl Plan {
    fn add(&mut self, event: Value, outcome: &str) {
        let kind = event["type"].as_str().expect("a typed event").to_owned();
        *self.outcomes.entry((kind, outcome.to_owned())).or_default() += 1;
        self.events.push(event);
    }

    fn applied(&mut self, events: impl IntoIterator<Item = Value>) {
        for event in events {
            self.add(event, "applied");
        }
    }

    fn ignored(&mut self, events: impl IntoIterator<Item = Value>) {
        for event in events {
            self.add(event, "ignored");
        }
    }
}

async fn metrics_text(c: &Cluster) -> String {
    match http().get(format!("{}/metrics", c.line_gateway())).send().await {
        Ok(mut res) => String::from_utf8_lossy(&res.body().limit(8 << 20).await.unwrap_or_default()).to_string(),
        Err(_) => String::new(),
    }
}

/// The value of label `name` in a series' `a="x",b="y"` labels.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
}

/// `line_events_total` by (type, outcome).
fn event_outcomes(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((labels, value)) = line.strip_prefix("line_events_total{").and_then(|l| l.split_once("} ")) else {
            continue;
        };
        let (Some(kind), Some(outcome)) = (label(labels, "type"), label(labels, "outcome")) else { continue };
        let count = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        if count > 0 {
            out.insert((kind.to_owned(), outcome.to_owned()), count);
        }
    }
    out
}

/// The sum of a metric's series whose labels contain `needle` (`""`: all of them).
fn metric(text: &str, name: &str, needle: &str) -> f64 {
    text.lines()
        .filter(|l| (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))) && l.contains(needle))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// The 1:1 chat of a LINE user with alice's account: messages of every type and shape, every
/// event type LINE sends about a user, then the unfollow.
fn one_to_one(plan: &mut Plan) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let user = Source::user(USER);
    let mark = events::with_mark_as_read_token;
    let mut content = Vec::new();
    let mut bytes = |id: &'static str, content_type: &'static str, size: usize| {
        content.push((id, content_type, (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>()));
    };
    bytes(IMAGE, "image/jpeg", 2_000);
    bytes(SET_1, "image/png", 1_000);
    bytes(SET_2, "image/png", 1_100);
    bytes(SET_3, "image/png", 1_200);
    bytes(VIDEO, "video/mp4", 3_000);
    bytes(AUDIO, "audio/mp4", 1_500);
    bytes(FILE, "application/pdf", 2_048);

    plan.add(events::follow(&user, false), "applied");
    let extras = TextExtras {
        emojis: vec![Emoji {
            index: 0,
            length: 7,
            product_id: "5ac1bfd5040ab15980c9b435".into(),
            emoji_id: "001".into(),
        }],
        mentions: vec![
            Mention { index: 8, length: 5, user_id: Some(RIKO.into()), is_self: false },
            Mention { index: 14, length: 4, user_id: None, is_self: false },
        ],
        quoted_message_id: Some(HELLO.into()),
    };
    let external_image =
        Provider::external("https://cdn.example.com/photo.jpg", Some("https://cdn.example.com/photo-preview.jpg"));
    let external_video =
        Provider::external("https://cdn.example.com/clip.mp4", Some("https://cdn.example.com/clip-preview.jpg"));
    let external_audio = Provider::external("https://cdn.example.com/voice.m4a", None);
    let message_sticker = StickerExtras {
        keywords: vec!["cony".into(), "see you".into()],
        text: Some("See you at 7".into()),
        quoted_message_id: Some(HELLO.into()),
    };
    plan.applied([
        events::text(&user, HELLO, "hello"),
        mark(&events::text_with(&user, "710000000000109", "(hello) @Riko @All", &extras)),
        mark(&events::sticker_with(&user, "710000000000110", "11537", "52002738", "MESSAGE", &message_sticker)),
    ]);
    plan.applied(
        events::STICKER_RESOURCE_TYPES
            .iter()
            .enumerate()
            .map(|(i, kind)| events::sticker(&user, &format!("7200000000000{i:02}"), "446", "1988", kind)),
    );
    plan.applied([mark(&events::image_with(&user, IMAGE, &Provider::Line, None))]);
    plan.applied(events::image_set(
        &user,
        "E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855",
        &[SET_1, SET_2, SET_3],
    ));
    plan.applied([
        events::image_with(&user, "710000000000111", &external_image, None),
        mark(&events::video_with(&user, VIDEO, Some(6_000), &Provider::Line)),
        events::video_with(&user, "710000000000112", None, &external_video),
        mark(&events::audio_with(&user, AUDIO, Some(3_000), &Provider::Line)),
        events::audio_with(&user, "710000000000113", Some(1_000), &external_audio),
        mark(&events::file(&user, FILE, "report.pdf", 2_048)),
        mark(&events::location(&user, "710000000000114", "Tokyo Tower", "4 Chome-2-8 Shibakoen", 35.6586, 139.7454)),
        events::location_at(&user, "710000000000115", 34.7025, 135.4959),
        events::standby(&events::text(&user, "710000000000116", "written while a module held the chat")),
        events::redelivered(&events::text(&user, "710000000000117", "delivered again by LINE")),
    ]);
    plan.add(events::unsend(&user, HELLO), "applied");
    plan.ignored([
        events::postback(&user, "action=buy&itemid=111", None),
        events::postback(&user, "action=reserve", Some(json!({"datetime": "2026-12-25T19:00"}))),
        events::video_play_complete(&user, "track-1"),
        events::account_link(&user, "nonce-ok", true),
        events::account_link(&user, "nonce-failed", false),
        events::activated(&user, 1_900_000_000_000),
        events::deactivated(&user),
        events::delivery(&user, "d7f2e8b1c0a94f3e8d2b6a1c5e9f0a3b"),
    ]);
    plan.ignored(events::BEACON_TYPES.iter().map(|kind| events::beacon(&user, "d41d8cd98f", kind, None)));
    plan.ignored([events::beacon(&user, "d41d8cd98f", "enter", Some("1234567890abcdef"))]);
    plan.ignored(events::MEMBERSHIP_TYPES.iter().map(|kind| events::membership(&user, kind, 3189)));
    plan.add(events::unfollow(&user), "applied");
    content
}

/// A LINE group and a multi-person chat the account is in: members come and go, write (from
/// LINE's phone apps with their ids, from a desktop app without), unsend; the account leaves.
fn groups(plan: &mut Plan) {
    let group = Source::group(GROUP, None);
    let kenji = Source::group(GROUP, Some(KENJI));
    let room = Source::room(ROOM, None);
    let taro = Source::room(ROOM, Some(TARO));
    plan.applied([
        events::join(&group),
        events::member_joined(&group, &[RIKO, KENJI]),
        events::text(&kenji, GROUP_HELLO, "hello from the group"),
        events::text(&group, "710000000000119", "written in LINE for PC"),
        events::unsend(&kenji, GROUP_HELLO),
        events::member_left(&group, &[RIKO]),
        events::text(&room, "710000000000120", "a multi-person chat"),
        events::with_mark_as_read_token(&events::location_at(&taro, "710000000000121", 35.0116, 135.7681)),
        events::member_joined(&room, &[HANA]),
        events::member_left(&room, &[HANA]),
        events::leave(&room),
        events::leave(&group),
    ]);
}

/// What LINE sends a module channel about the whole account: no source.
fn channel_wide(plan: &mut Plan, bot_user_id: &str) {
    plan.ignored([
        events::module_attached(bot_user_id, &["message:send", "message:receive"]),
        events::module_detached(bot_user_id),
        events::bot_suspended(),
        events::bot_resumed(),
    ]);
}

#[actix_rt::test]
async fn every_event_and_message_shape_of_webhook_yml_is_processed_as_documented() {
    let running = line_sim::start("127.0.0.1:0").expect("the simulator starts");
    let sim = running.client();
    let mut c = Cluster::start("line_shapes", &[]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[
        ("CHAT__LINE__API_BASE_URL", &running.base_url),
        ("CHAT__LINE__DATA_API_BASE_URL", &running.base_url),
    ])
    .await;
    let channel = Channel::random("1660000091");
    sim.register_channel(&channel).await.expect("channel");
    for (id, name) in [(USER, "Yui"), (RIKO, "Riko"), (KENJI, "Kenji"), (TARO, "Taro"), (HANA, "Hana")] {
        sim.add_profile(&line_profile(&channel, id, name, None)).await.expect("profile");
    }
    let summary = Group {
        channel_id: channel.channel_id.clone(),
        group_id: GROUP.into(),
        group_name: "Shapes club".into(),
        picture_url: None,
    };
    sim.add_group(&summary).await.expect("group");
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    allow_line_and_bind(&c, &admin, "alice@acme", &channel).await;
    let webhook_url = webhook_url(&c, &channel);

    let mut plans = [Plan::default(), Plan::default(), Plan::default()];
    let content = one_to_one(&mut plans[0]);
    groups(&mut plans[1]);
    channel_wide(&mut plans[2], &channel.bot_user_id);
    for (id, content_type, bytes) in content {
        sim.put_content(id, content_type, bytes).await.expect("content");
    }

    let mut bodies = Vec::new();
    for plan in &plans {
        let request = WebhookRequest::new(&channel.channel_id, &webhook_url, plan.events.clone());
        let sent = sim.send_webhook(&request).await.expect("webhook sent");
        assert_eq!(sent.status, 200, "{}", sent.body);
        assert!(sent.violations.is_empty(), "shaped like webhook.yml: {:?}", sent.violations);
        bodies.push(serde_json::from_str::<Value>(&sent.webhook_body).expect("the body sent is JSON"));
    }
    let uncovered = events::uncovered_shapes(&bodies);
    assert!(uncovered.is_empty(), "shapes of webhook.yml the bodies sent lack: {uncovered:?}");

    // Every event processed, each as documented: nothing failed, nothing unknown.
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for plan in &plans {
        for (key, count) in &plan.outcomes {
            *expected.entry(key.clone()).or_default() += count;
        }
    }
    let total: u64 = expected.values().sum();
    let settled = |outcomes: &BTreeMap<(String, String), u64>| -> u64 {
        outcomes.iter().filter(|((_, outcome), _)| outcome != "retried").map(|(_, n)| n).sum()
    };
    let deadline = Instant::now() + Duration::from_secs(45);
    let outcomes = loop {
        let outcomes = event_outcomes(&metrics_text(&c).await);
        if settled(&outcomes) >= total {
            break outcomes;
        }
        assert!(Instant::now() < deadline, "{total} events not all processed: {outcomes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let final_outcomes: BTreeMap<(String, String), u64> =
        outcomes.iter().filter(|((_, outcome), _)| outcome != "retried").map(|(k, v)| (k.clone(), *v)).collect();
    let failed: Vec<_> = final_outcomes.keys().filter(|(_, outcome)| FAILURES.contains(&outcome.as_str())).collect();
    assert!(failed.is_empty(), "events failed: {failed:?} (all outcomes {outcomes:?})");
    assert!(!final_outcomes.keys().any(|(kind, _)| kind == "unknown"), "every type is known: {outcomes:?}");
    assert_eq!(final_outcomes, expected, "line_events_total by (type, outcome)");
    let text = metrics_text(&c).await;
    assert_eq!(metric(&text, "line_media_total", "outcome=\"stored\""), 7.0, "the 7 media on LINE kept");
    assert_eq!(metric(&text, "line_media_total", "outcome=\"external\""), 3.0, "the 3 external media linked");
    assert_eq!(metric(&text, "line_outbound_dead_total", ""), 0.0);
    eventually(15, "an empty inbox", || async {
        (metric(&metrics_text(&c).await, "line_inbox_backlog", "") == 0.0).then_some(())
    })
    .await;

    // The 1:1 room holds every message of the LINE user, the unsent one hidden.
    let direct = rooms_of_kind(&c, &alice, "line_direct").await;
    assert_eq!(direct.len(), 1, "one 1:1 room: {direct:?}");
    let direct_history = history_of(&c, &direct[0], &alice).await;
    let said = messages(&direct_history);
    let sent_messages = plans[0].events.iter().filter(|e| e["type"] == "message").count();
    assert_eq!(said.len(), sent_messages, "{said:#?}");
    assert!(said.iter().all(|m| m["sender"] == format!("line:{USER}")), "{said:#?}");
    assert_eq!(said.iter().filter(|m| m["recalled"] == true).count(), 1, "the unsent hello");
    let bodies_of = |kind: &str| said.iter().filter(|m| m["body"]["type"] == kind).count();
    assert_eq!(bodies_of("sticker"), events::STICKER_RESOURCE_TYPES.len() + 1);
    assert_eq!(bodies_of("image"), 5, "one, a set of three, one external");
    assert_eq!(bodies_of("file"), 5, "two videos, two audios, one file");
    assert_eq!(bodies_of("location"), 2);
    for url in
        ["https://cdn.example.com/photo.jpg", "https://cdn.example.com/clip.mp4", "https://cdn.example.com/voice.m4a"]
    {
        assert!(said.iter().any(|m| m["body"]["url"] == url), "{url} linked as it is");
    }
    assert!(said.iter().any(|m| m["body"]["name"] == "report.pdf"));

    // The group's and the multi-person chat's rooms: written in, then left.
    let group_rooms = rooms_of_kind(&c, &alice, "line_group").await;
    assert_eq!(group_rooms.len(), 2, "the group's and the chat's: {group_rooms:?}");
    let mut group_messages = Vec::new();
    for room in &group_rooms {
        group_messages.extend(messages(&history_of(&c, room, &alice).await).into_iter().cloned());
    }
    let senders: Vec<&str> = group_messages.iter().filter_map(|m| m["sender"].as_str()).collect();
    for who in [KENJI, GROUP, ROOM, TARO] {
        assert!(senders.contains(&format!("line:{who}").as_str()), "{who} wrote: {senders:?}");
    }
    assert_eq!(group_messages.iter().filter(|m| m["recalled"] == true).count(), 1, "Kenji's unsent hello");

    let invalid = sim.invalid().await.expect("records");
    assert!(invalid.is_empty(), "every request to LINE matches messaging-api.yml: {invalid:?}");
}
