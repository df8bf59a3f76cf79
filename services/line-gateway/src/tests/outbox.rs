//! The outbox against the fake LINE: `room.line_message` events consumed as the events
//! consumer does, rows claimed and sent as a sender worker does (with the clock moved by the
//! claims' `now`), and what LINE's answers make of them; profiles of new friends.

use chat_protocol::frames::NotificationKind;
use chat_protocol::RoomId;

use super::*;
use crate::outbound::{request_retry_key, retry_key};
use crate::service::{DeadLetterCursor, LineError};
use crate::store::{MediaRow, OutboundKey, OutboundRow, OutboundStatus};
use serde_json::Value;

const LEASE_MS: i64 = 60_000;

fn alice() -> UserId {
    UserId::new("alice@acme")
}

fn taro() -> UserId {
    UserId::new(format!("line:{TARO}"))
}

fn room() -> RoomId {
    line_direct_room_id(&alice(), &taro())
}

fn line_message(message_id: &str, seq: i64, body: Body) -> ChangeEvent {
    ChangeEvent::RoomLineMessage {
        room_id: room(),
        kind: RoomKind::LineDirect,
        tenant: TenantId::new("acme"),
        message_id: MessageId::new(message_id),
        seq,
        sender: alice(),
        body,
        line_recipients: vec![taro()],
        sent_at_ms: 1_700_000_000_000,
    }
}

fn text(text: &str) -> Body {
    Body::Text { text: text.into() }
}

fn key(message_id: &str) -> OutboundKey {
    OutboundKey { message_id: MessageId::new(message_id), line_user_id: TARO.to_owned() }
}

/// Deliver `event` to the gateway's consumer as the broker would (with the events published
/// before it, such as the gateway's own notifications, which it ignores).
async fn consume(core: &LineCore, queue: &mut Subscription, event: ChangeEvent) {
    let envelope = EventEnvelope::new(event);
    core.bus.publish_event(serde_json::to_vec(&envelope).unwrap()).await.unwrap();
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(2), queue.recv()).await.unwrap().unwrap();
        let id = serde_json::from_slice::<EventEnvelope>(&delivery.payload).unwrap().event_id;
        crate::events::handle(core, delivery).await;
        if id == envelope.event_id {
            return;
        }
    }
}

/// Claim the next due row at `now` and send it, as a worker does; false if none was due.
async fn send_next(core: &LineCore, client: &awc::Client, now: i64) -> bool {
    match core.store.claim_outbound(now, LEASE_MS).await.unwrap() {
        Some(row) => {
            crate::outbox::send(core, client, row).await;
            true
        }
        None => false,
    }
}

async fn row(core: &LineCore, message_id: &str) -> OutboundRow {
    core.store.outbound(&key(message_id)).await.unwrap().unwrap()
}

/// The next `notify` the core published (other events skipped).
async fn next_notify(published: &mut Subscription) -> (UserId, NotificationKind, String) {
    loop {
        if let ChangeEvent::Notify { user, kind, text, .. } = next_event(published).await {
            return (user, kind, text);
        }
    }
}

/// Nothing more is published for a moment (other than the test's own deliveries).
async fn no_notify(published: &mut Subscription) {
    while let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_millis(200), published.recv()).await {
        let envelope: EventEnvelope = serde_json::from_slice(&delivery.payload).unwrap();
        delivery.ack().await.unwrap();
        assert!(!matches!(envelope.event, ChangeEvent::Notify { .. }), "unexpected {:?}", envelope.event);
    }
}

#[actix_web::test]
async fn a_burst_goes_out_in_pushes_of_five_objects_fixed_before_their_first_attempt() {
    let db = TestDb::new().await;
    let (core, _published, _commands, line) = core_with_line(&db).await;
    let mut queue = core.bus.consume_events("line-gateway", true).await.unwrap();
    db.store.remember_line_user(CHANNEL, TARO, &room(), Some(true), 1).await.unwrap();
    let client = core.line_api.client();
    for n in 1..=6 {
        consume(&core, &mut queue, line_message(&format!("m-burst-{n}"), n, text(&format!("burst {n}")))).await;
    }
    // The first push fails: retried later with the same five messages and the same key,
    // though the rows behind it could have changed meanwhile.
    line.script_pushes([Scripted::status(500, "")]);
    let t0 = chat_protocol::now_ms();
    assert!(send_next(&core, &client, t0).await);
    consume(&core, &mut queue, line_message("m-burst-7", 7, text("burst 7"))).await;
    assert!(!send_next(&core, &client, t0 + 500).await, "the batch backs off as one");
    assert!(send_next(&core, &client, t0 + 5_000).await);
    assert!(send_next(&core, &client, t0 + 5_000).await);
    assert!(!send_next(&core, &client, t0 + 600_000).await, "three pushes in all: {:#?}", line.pushes());
    let pushes = line.pushes();
    let texts = |n: usize| -> Vec<String> {
        pushes[n].body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(pushes.len(), 3);
    let head_key = retry_key(&MessageId::new("m-burst-1"), TARO).to_string();
    assert_eq!((pushes[0].retry_key.as_str(), pushes[1].retry_key.as_str()), (&*head_key, &*head_key));
    assert_eq!(texts(0), ["burst 1", "burst 2", "burst 3", "burst 4", "burst 5"]);
    assert_eq!(texts(1), texts(0));
    assert_eq!(texts(2), ["burst 6", "burst 7"]);
    assert_eq!(pushes[2].retry_key, retry_key(&MessageId::new("m-burst-6"), TARO).to_string());
    for n in 1..=7 {
        let sent = row(&core, &format!("m-burst-{n}")).await;
        assert_eq!(sent.status, OutboundStatus::Sent, "m-burst-{n}");
    }
    db.drop().await;
}

#[actix_web::test]
async fn pushes_carry_their_retry_key_and_settle_by_lines_answer() {
    let db = TestDb::new().await;
    let (core, mut published, _commands, line) = core_with_line(&db).await;
    let mut queue = core.bus.consume_events("line-gateway", true).await.unwrap();
    db.store.remember_line_user(CHANNEL, TARO, &room(), Some(true), 1).await.unwrap();
    let client = core.line_api.client();

    // 500 then 200: retried after its backoff with the same key, sent once.
    line.script_pushes([Scripted::status(500, r#"{"message":"Internal error"}"#)]);
    consume(&core, &mut queue, line_message("m-500", 1, text("hello"))).await;
    let t0 = chat_protocol::now_ms();
    assert!(send_next(&core, &client, t0).await);
    let retried = row(&core, "m-500").await;
    assert_eq!((retried.status, retried.attempts), (OutboundStatus::Pending, 1));
    assert!(retried.last_error.as_deref().unwrap().contains("500"));
    assert!(retried.next_attempt_at >= t0 + 1_000, "backing off 1 s");
    assert!(!send_next(&core, &client, t0 + 500).await, "not before its backoff");
    assert!(send_next(&core, &client, t0 + 2_000).await);
    let sent = row(&core, "m-500").await;
    assert_eq!((sent.status, sent.chunks_sent, sent.last_error), (OutboundStatus::Sent, 1, None));
    let pushes = line.pushes();
    assert_eq!(pushes.len(), 2);
    let expected_key = retry_key(&MessageId::new("m-500"), TARO).to_string();
    assert_eq!((pushes[0].retry_key.as_str(), pushes[1].retry_key.as_str()), (&*expected_key, &*expected_key));
    assert_eq!(pushes[0].authorization, "Bearer access-token");
    assert_eq!(pushes[1].body, serde_json::json!({"to": TARO, "messages": [{"type": "text", "text": "hello"}]}));
    assert!(!send_next(&core, &client, t0 + 600_000).await, "sent once");

    // 409 with the accepted request id: sent, the id kept.
    line.script_pushes([Scripted::status(409, r#"{"message":"The retry key is already accepted"}"#)
        .header("x-line-accepted-request-id", "req-accepted-1")]);
    consume(&core, &mut queue, line_message("m-409", 2, text("again"))).await;
    assert!(send_next(&core, &client, chat_protocol::now_ms()).await);
    let accepted = row(&core, "m-409").await;
    assert_eq!(accepted.status, OutboundStatus::Sent);
    assert_eq!(accepted.accepted_request_id.as_deref(), Some("req-accepted-1"));

    // 429 with Retry-After: due again after it, then sent.
    line.script_pushes([Scripted::status(429, r#"{"message":"Too many requests"}"#).header("Retry-After", "7")]);
    consume(&core, &mut queue, line_message("m-429", 3, text("slow down"))).await;
    let t1 = chat_protocol::now_ms();
    assert!(send_next(&core, &client, t1).await);
    let limited = row(&core, "m-429").await;
    assert_eq!(limited.status, OutboundStatus::Pending);
    assert!(limited.next_attempt_at >= t1 + 7_000, "{} < {}", limited.next_attempt_at, t1 + 7_000);
    assert!(!send_next(&core, &client, t1 + 5_000).await);
    assert!(send_next(&core, &client, t1 + 60_000).await);
    assert_eq!(row(&core, "m-429").await.status, OutboundStatus::Sent);

    // A long text: two requests in order, each with its key; the second retried with its own.
    let long: String = "x".repeat(25_001);
    line.script_pushes([Scripted::status(200, "{}"), Scripted::status(503, "")]);
    let before = line.pushes().len();
    consume(&core, &mut queue, line_message("m-long", 4, text(&long))).await;
    let t2 = chat_protocol::now_ms();
    assert!(send_next(&core, &client, t2).await);
    assert_eq!(row(&core, "m-long").await.chunks_sent, 1);
    assert!(send_next(&core, &client, t2).await, "the next request is due at once");
    assert!(send_next(&core, &client, t2 + 5_000).await);
    let long_row = row(&core, "m-long").await;
    assert_eq!((long_row.status, long_row.chunks_sent), (OutboundStatus::Sent, 2));
    let pushes = &line.pushes()[before..];
    let first = retry_key(&MessageId::new("m-long"), TARO);
    let keys: Vec<_> = pushes.iter().map(|p| p.retry_key.clone()).collect();
    assert_eq!(
        keys,
        [first.to_string(), request_retry_key(first, 1).to_string(), request_retry_key(first, 1).to_string()]
    );
    assert_eq!(pushes[0].body["messages"].as_array().unwrap().len(), 5);
    assert_eq!(pushes[2].body["messages"].as_array().unwrap().len(), 1);
    no_notify(&mut published).await;

    // The monthly quota: failed at once, never retried, the sender told.
    line.script_pushes([Scripted::status(429, r#"{"message":"You have reached your monthly limit."}"#)]);
    consume(&core, &mut queue, line_message("m-quota", 5, text("over quota"))).await;
    let before = line.pushes().len();
    assert!(send_next(&core, &client, chat_protocol::now_ms()).await);
    let quota = row(&core, "m-quota").await;
    assert_eq!((quota.status, quota.notified), (OutboundStatus::Failed, true));
    assert!(quota.last_error.as_deref().unwrap().contains("monthly"));
    assert!(!send_next(&core, &client, chat_protocol::now_ms() + 3_600_000).await, "not retried");
    assert_eq!(line.pushes().len(), before + 1);
    let (user, kind, notice) = next_notify(&mut published).await;
    assert_eq!((user, kind), (alice(), NotificationKind::LineDeliveryFailed));
    assert!(notice.starts_with("Your message could not be delivered to LINE: "), "{notice}");
    assert!(notice.contains("monthly message limit"), "{notice}");
    let channel = db.store.channel(CHANNEL).await.unwrap().unwrap();
    assert!(channel.last_error.as_deref().unwrap().contains("monthly"));

    // 400: failed at once with LINE's reason, the sender told.
    line.script_pushes([Scripted::status(400, r#"{"message":"The request body has 1 error(s)"}"#)]);
    consume(&core, &mut queue, line_message("m-400", 6, text("bad"))).await;
    assert!(send_next(&core, &client, chat_protocol::now_ms()).await);
    let refused = row(&core, "m-400").await;
    assert_eq!(refused.status, OutboundStatus::Failed);
    assert_eq!(refused.last_error.as_deref(), Some("LINE answered 400: The request body has 1 error(s)"));
    let (_, kind, notice) = next_notify(&mut published).await;
    assert_eq!(kind, NotificationKind::LineDeliveryFailed);
    assert!(notice.ends_with("LINE answered 400: The request body has 1 error(s)"), "{notice}");
    assert!(!send_next(&core, &client, chat_protocol::now_ms() + 3_600_000).await);
    db.drop().await;
}

#[actix_web::test]
async fn retries_stop_after_the_configured_attempts() {
    let db = TestDb::new().await;
    let (core, mut published, _commands, line) = core_with_line(&db).await;
    let mut queue = core.bus.consume_events("line-gateway", true).await.unwrap();
    db.store.remember_line_user(CHANNEL, TARO, &room(), Some(true), 1).await.unwrap();
    let client = core.line_api.client();
    let max = i64::from(core.settings.line.push_max_attempts);
    line.script_pushes((0..max).map(|_| Scripted::status(502, "")));
    consume(&core, &mut queue, line_message("m-down", 1, text("anyone?"))).await;
    let mut now = chat_protocol::now_ms();
    for _ in 0..max {
        assert!(send_next(&core, &client, now).await);
        now += 600_000;
    }
    let dead = row(&core, "m-down").await;
    assert_eq!((dead.status, dead.attempts), (OutboundStatus::Failed, max));
    assert!(dead.last_error.unwrap().contains(&format!("after {max} attempts")));
    assert_eq!(line.pushes().len(), usize::try_from(max).unwrap());
    assert!(line.pushes().iter().all(|p| p.retry_key == line.pushes()[0].retry_key));
    assert!(!send_next(&core, &client, now).await);
    let (_, kind, _) = next_notify(&mut published).await;
    assert_eq!(kind, NotificationKind::LineDeliveryFailed);
    db.drop().await;
}

#[actix_web::test]
async fn a_replay_inserts_nothing_and_unreachable_recipients_are_dead_letters_told_to_their_sender() {
    let db = TestDb::new().await;
    let (core, mut published, _commands, line) = core_with_line(&db).await;
    let mut queue = core.bus.consume_events("line-gateway", true).await.unwrap();
    let client = core.line_api.client();

    // No channel reaches the recipient: a failed row (the dead letters), the sender told.
    consume(&core, &mut queue, line_message("m-nochannel", 1, text("hi"))).await;
    let unreachable = row(&core, "m-nochannel").await;
    assert_eq!((unreachable.status, unreachable.notified), (OutboundStatus::Failed, true));
    let (user, kind, notice) = next_notify(&mut published).await;
    assert_eq!((user, kind), (alice(), NotificationKind::LineDeliveryFailed));
    assert!(notice.contains("no LINE account of your company reaches this LINE user"), "{notice}");

    // Known: one row, and the replayed event inserts nothing new.
    db.store.remember_line_user(CHANNEL, TARO, &room(), Some(true), 1).await.unwrap();
    consume(&core, &mut queue, line_message("m-once", 2, text("once"))).await;
    let stored = row(&core, "m-once").await;
    assert_eq!(stored.retry_key, retry_key(&MessageId::new("m-once"), TARO).to_string());
    assert_eq!(stored.messages, r#"[{"text":"once","type":"text"}]"#);
    consume(&core, &mut queue, line_message("m-once", 2, text("once"))).await;
    assert_eq!(core.store.outbound_backlog().await.unwrap(), 1);
    assert!(send_next(&core, &client, chat_protocol::now_ms()).await);
    consume(&core, &mut queue, line_message("m-once", 2, text("once"))).await;
    assert_eq!(row(&core, "m-once").await.status, OutboundStatus::Sent, "a replay after the send changes nothing");
    assert_eq!(core.store.outbound_backlog().await.unwrap(), 0);
    assert_eq!(line.pushes().len(), 1);

    // A sticker off LINE's list: a failed row, the sender told, nothing pushed.
    let bought = Body::Sticker { package_id: "1234567".into(), sticker_id: "9".into() };
    consume(&core, &mut queue, line_message("m-sticker", 3, bought)).await;
    let sticker = row(&core, "m-sticker").await;
    assert_eq!(sticker.status, OutboundStatus::Failed);
    assert_eq!(
        sticker.last_error.as_deref(),
        Some("sticker package 1234567 is not on LINE's list of sendable stickers")
    );
    let (_, kind, notice) = next_notify(&mut published).await;
    assert_eq!(kind, NotificationKind::LineDeliveryFailed);
    assert!(notice.contains("sendable stickers"));
    assert!(!send_next(&core, &client, chat_protocol::now_ms()).await);
    assert_eq!(line.pushes().len(), 1);

    // Another tenant's room event does not reach this member's channel.
    let mut foreign = line_message("m-foreign", 4, text("hi"));
    if let ChangeEvent::RoomLineMessage { tenant, .. } = &mut foreign {
        *tenant = TenantId::new("globex");
    }
    consume(&core, &mut queue, foreign).await;
    let foreign = row(&core, "m-foreign").await;
    assert_eq!((foreign.status, foreign.channel_id.as_str()), (OutboundStatus::Failed, ""), "not alice's channel");
    let (_, _, notice) = next_notify(&mut published).await;
    assert!(notice.contains("no LINE account of your company"), "{notice}");

    // A suspended channel: nothing sent, the sender told.
    db.store.set_suspended(&alice(), &TenantId::new("acme"), true, 2).await.unwrap();
    consume(&core, &mut queue, line_message("m-suspended", 5, text("hi"))).await;
    assert_eq!(row(&core, "m-suspended").await.status, OutboundStatus::Failed);
    let (_, _, notice) = next_notify(&mut published).await;
    assert!(notice.contains("suspended"), "{notice}");
    assert!(!send_next(&core, &client, chat_protocol::now_ms()).await);
    assert_eq!(line.pushes().len(), 1);
    db.drop().await;
}

#[actix_web::test]
async fn a_follow_waits_out_lines_5xx_and_does_without_a_missing_profile() {
    let db = TestDb::new().await;
    let (core, mut published, _commands, line) = core_with_line(&db).await;
    // 500: the event is retried later, nothing published yet; then the profile comes.
    line.script_profiles([Scripted::status(500, "")]);
    let follow = event("01HFOLLOW0000000000000000B", "follow", r#","follow":{"isUnblocked":false}"#);
    let (_, events) = crate::webhook::parse_envelope(envelope(&[follow]).as_bytes()).unwrap();
    db.store.insert_events(DESTINATION, CHANNEL, &events, chat_protocol::now_ms()).await.unwrap();
    assert_eq!(drain_inbox(&core).await, 1);
    assert_eq!(db.store.backlog().await.unwrap(), 1, "retried later");
    let row = db.store.claim(chat_protocol::now_ms() + 600_000, 60_000).await.unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    crate::inbox::process(&core, row).await;
    let ChangeEvent::LineFollow { display_name, .. } = next_event(&mut published).await else { panic!("line.follow") };
    assert_eq!(display_name, "Taro Yamada");

    // A LINE user LINE has no profile for (404): the id stands in.
    let stranger = "U00000000000000000000000000000000";
    let follow =
        event("01HFOLLOW0000000000000000C", "follow", r#","follow":{"isUnblocked":false}"#).replace(TARO, stranger);
    let (_, events) = crate::webhook::parse_envelope(envelope(&[follow]).as_bytes()).unwrap();
    db.store.insert_events(DESTINATION, CHANNEL, &events, chat_protocol::now_ms()).await.unwrap();
    assert_eq!(drain_inbox(&core).await, 1);
    let ChangeEvent::LineFollow { display_name, picture_url, .. } = next_event(&mut published).await else {
        panic!("line.follow")
    };
    assert_eq!((display_name.as_str(), picture_url), (stranger, None));
    assert_eq!(line.0.lock().unwrap().profile_requests, 3);
    db.drop().await;
}

fn admin_of(tenant: &str) -> chat_auth::Principal {
    chat_auth::Principal {
        user_id: UserId::new(format!("admin@{tenant}")),
        tenant: TenantId::new(tenant),
        roles: vec!["admin".into()],
        expires_at_secs: u64::MAX,
    }
}

/// A token keeps its admin role for its lifetime; authz is asked whether the caller is an admin
/// now, so an admin demoted since the token was issued is refused at once.
#[actix_web::test]
async fn an_admin_demoted_since_the_token_was_issued_is_refused() {
    let db = TestDb::new().await;
    let (core, _published, _commands, line) = core_with_line(&db).await;
    let admin = admin_of("acme");
    assert_eq!(core.channels(&admin).await.unwrap().len(), 1, "alice's binding");
    line.demote("admin@acme");
    assert!(matches!(core.channels(&admin).await, Err(LineError::NotAdmin)));
    assert!(matches!(core.dead_letters(&admin, None, 50).await, Err(LineError::NotAdmin)));
    assert!(matches!(core.unbind_channel(&admin, "alice@acme").await, Err(LineError::NotAdmin)));
    assert_eq!(core.channels(&admin_of("acme-other")).await.unwrap().len(), 0, "another admin still may");
    assert_eq!(db.store.channels_of_tenant(&TenantId::new("acme")).await.unwrap().len(), 1, "still bound");
}

#[actix_web::test]
async fn admins_list_their_dead_letters_and_send_one_again_once_it_can_go() {
    let db = TestDb::new().await;
    let (core, _published, _commands, line) = core_with_line(&db).await;
    let mut queue = core.bus.consume_events("line-gateway", true).await.unwrap();
    let client = core.line_api.client();
    let admin = admin_of("acme");

    // Nobody reaches Taro yet: a dead letter, resendable only once a channel does.
    consume(&core, &mut queue, line_message("m-early", 1, text("before the follow"))).await;
    // The monthly quota: a dead letter once the push is refused.
    db.store.remember_line_user(CHANNEL, TARO, &room(), Some(true), 1).await.unwrap();
    line.script_pushes([Scripted::status(429, r#"{"message":"You have reached your monthly limit."}"#)]);
    consume(&core, &mut queue, line_message("m-quota", 2, text("over the quota"))).await;
    assert!(send_next(&core, &client, chat_protocol::now_ms()).await);
    let bought = Body::Sticker { package_id: "1234567".into(), sticker_id: "9".into() };
    consume(&core, &mut queue, line_message("m-sticker", 3, bought)).await;

    let listed = core.dead_letters(&admin, None, 50).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|r| r.key.message_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["m-early", "m-quota", "m-sticker"]);
    assert!(core.dead_letters(&admin_of("globex"), None, 50).await.unwrap().is_empty(), "another tenant's");
    let member = chat_auth::Principal { roles: vec![], ..admin_of("acme") };
    assert!(matches!(core.dead_letters(&member, None, 50).await, Err(LineError::NotAdmin)));
    assert!(matches!(core.dead_letters(&admin, None, 0).await, Err(LineError::InvalidField { .. })));
    let page = core.dead_letters(&admin, None, 2).await.unwrap();
    let rest = core.dead_letters(&admin, Some(DeadLetterCursor::after(&page[1])), 50).await.unwrap();
    assert_eq!(page.len() + rest.len(), 3, "pages by failure time");
    // Rows that failed in the same millisecond are neither skipped nor repeated across pages.
    sqlx::query("UPDATE outbound SET updated_at = 5000 WHERE status = 'failed'").execute(&db.store.pool).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = core.dead_letters(&admin, cursor.clone(), 1).await.unwrap();
        let Some(last) = page.last() else { break };
        seen.push(last.key.message_id.to_string());
        cursor = Some(DeadLetterCursor::after(last));
    }
    seen.sort();
    assert_eq!(seen, ["m-early", "m-quota", "m-sticker"], "each once, one per page");
    let cursor: DeadLetterCursor = "5000:m-quota:Uabc".parse().unwrap();
    assert_eq!(cursor.to_string(), "5000:m-quota:Uabc");
    assert!("5000:m-quota".parse::<DeadLetterCursor>().is_err() && "x:m:U".parse::<DeadLetterCursor>().is_err());

    // The sticker can never go; another tenant's admin finds nothing; the others go once.
    let taro_id = format!("line:{TARO}");
    assert!(matches!(core.resend(&admin, "m-sticker", &taro_id).await, Err(LineError::NotResendable(_))));
    assert!(matches!(core.resend(&admin_of("globex"), "m-quota", &taro_id).await, Err(LineError::DeadLetterNotFound)));
    assert!(matches!(core.resend(&admin, "m-quota", "U-not-a-line-user").await, Err(LineError::DeadLetterNotFound)));
    let before = line.pushes().len();
    core.resend(&admin, "m-early", &taro_id).await.unwrap();
    core.resend(&admin, "m-quota", &taro_id).await.unwrap();
    assert!(
        matches!(core.resend(&admin, "m-quota", &taro_id).await, Err(LineError::DeadLetterNotFound)),
        "pending now"
    );
    while send_next(&core, &client, chat_protocol::now_ms()).await {}
    assert_eq!(row(&core, "m-early").await.status, OutboundStatus::Sent);
    assert_eq!(row(&core, "m-quota").await.status, OutboundStatus::Sent);
    let pushes = &line.pushes()[before..];
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[1].retry_key, retry_key(&MessageId::new("m-quota"), TARO).to_string(), "its own key again");
    assert_eq!(core.dead_letters(&admin, None, 50).await.unwrap().len(), 1, "only the sticker is left");

    // Settled rows are purged after their time.
    assert_eq!(db.store.purge_outbound(0, 0).await.unwrap(), 0, "nothing that old");
    let far = chat_protocol::now_ms() + 1;
    assert_eq!(db.store.purge_outbound(far, 0).await.unwrap(), 2, "the two sent rows");
    assert_eq!(db.store.purge_outbound(far, far).await.unwrap(), 1, "and the dead letter");
    db.drop().await;
}

/// A medium `owner` uploaded for `room_id`, kept in the store: its row.
async fn uploaded(core: &LineCore, owner: &str, room_id: &RoomId, content_type: &str, bytes: Vec<u8>) -> MediaRow {
    let media_id = uuid::Uuid::new_v4().to_string();
    let key = crate::media::upload_key("acme", &media_id);
    core.media.put_bytes(&key, bytes.clone().into()).await.unwrap();
    let row = MediaRow {
        media_id: media_id.clone(),
        channel_id: String::new(),
        line_message_id: media_id,
        store_key: key.to_string(),
        content_type: content_type.into(),
        size: bytes.len() as u64,
        file_name: Some("photo.png".into()),
        kind: "image".into(),
        room_id: room_id.clone(),
        owner: UserId::new(owner),
        tenant: TenantId::new("acme"),
        created_at_ms: 1,
    };
    core.store.insert_media(&row).await.unwrap();
    row
}

/// The query of a signed link: (media id, expires, signature, preview).
fn link_parts(url: &str) -> (String, u64, String, bool) {
    let rest = url.strip_prefix(&format!("{LINE_MEDIA_BASE}/line/media/")).unwrap_or_else(|| panic!("{url}"));
    let (path, query) = rest.split_once('?').unwrap();
    let (media_id, preview) = match path.strip_suffix("/preview") {
        Some(id) => (id, true),
        None => (path, false),
    };
    let pairs: HashMap<&str, &str> = query.split('&').filter_map(|pair| pair.split_once('=')).collect();
    (media_id.to_owned(), pairs["expires"].parse().unwrap(), pairs["signature"].to_owned(), preview)
}

async fn read_linked(core: &LineCore, url: &str) -> Result<(String, Vec<u8>), LineError> {
    use futures_util::StreamExt;
    let (media_id, expires, signature, preview) = link_parts(url);
    let mut content = core.linked_media(&media_id, expires, &signature, preview).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = content.body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    Ok((content.row.content_type, bytes))
}

fn png_of(width: u32, height: u32) -> Vec<u8> {
    // Noise, so that the PNG stays large.
    let mut state = 0x2545_f491_u32;
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[actix_web::test]
async fn a_members_image_goes_to_line_as_a_signed_link_line_can_fetch_and_only_theirs() {
    let db = TestDb::new().await;
    let (core, _published, _commands, line) = core_with_line(&db).await;
    let mut queue = core.bus.consume_events("line-gateway", true).await.unwrap();
    db.store.remember_line_user(CHANNEL, TARO, &room(), Some(true), 1).await.unwrap();
    let client = core.line_api.client();
    // Over LINE's 1 MB preview limit: LINE gets a made preview.
    let big = png_of(800, 600);
    assert!(big.len() as u64 > crate::media::LINE_PREVIEW_MAX_BYTES, "{}", big.len());
    let mine = uploaded(&core, "alice@acme", &room(), "image/png", big.clone()).await;
    let (url, body) = core.media_message(&mine);
    assert_eq!(url, format!("http://engine.test/v1/line/media/{}", mine.media_id));
    consume(&core, &mut queue, line_message("m-img-1", 1, body)).await;
    // bob's, from another room: alice may not share it; it goes as it is.
    let other_room = RoomId::new("r-elsewhere");
    let bobs = uploaded(&core, "bob@acme", &other_room, "image/png", png_of(4, 4)).await;
    let bobs_url = core.media_message(&bobs).0;
    let image = |url: &str| Body::Image { url: url.to_owned(), name: None, size: None };
    consume(&core, &mut queue, line_message("m-img-2", 2, image(&bobs_url))).await;
    let t0 = chat_protocol::now_ms() + 1_000;
    while send_next(&core, &client, t0).await {}
    let pushes = line.pushes();
    let objects: Vec<Value> = pushes.iter().flat_map(|p| p.body["messages"].as_array().unwrap().clone()).collect();
    assert_eq!(objects.len(), 2, "{objects:#?}");
    assert_eq!(objects[0]["type"], "image");
    let original = objects[0]["originalContentUrl"].as_str().unwrap();
    let preview = objects[0]["previewImageUrl"].as_str().unwrap();
    assert_eq!(link_parts(original).0, mine.media_id);
    assert!(link_parts(preview).3, "{preview}");
    assert_eq!(objects[1]["type"], "text", "{:#?}", objects[1]);
    assert!(objects[1]["text"].as_str().unwrap().contains(&bobs_url));
    assert!(!objects[1].to_string().contains("signature"), "nothing of bob's is signed: {:#?}", objects[1]);

    // LINE fetches both without a token: the image as it is, the preview made small.
    let (content_type, bytes) = read_linked(&core, original).await.unwrap();
    assert_eq!((content_type.as_str(), bytes.len()), ("image/png", big.len()));
    assert_eq!(bytes, big);
    let (content_type, made) = read_linked(&core, preview).await.unwrap();
    assert_eq!(content_type, "image/jpeg");
    assert!((made.len() as u64) <= crate::media::LINE_PREVIEW_MAX_BYTES);
    let decoded = image::load_from_memory(&made).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (480, 360));
    assert_eq!(read_linked(&core, preview).await.unwrap().1, made, "made once, then kept");

    // An altered link is as good as absent; an expired one says so.
    let altered = original.replace("expires=", "expires=1");
    assert!(matches!(read_linked(&core, &altered).await, Err(LineError::MediaNotFound)));
    let other = original.replace(&mine.media_id, &bobs.media_id);
    assert!(matches!(read_linked(&core, &other).await, Err(LineError::MediaNotFound)));
    let old =
        crate::media_links::MediaLinks::new(core.secrets.media_links_key(), LINE_MEDIA_BASE, 1).sign(&mine.media_id, 1);
    assert!(matches!(read_linked(&core, &old.original).await, Err(LineError::LinkExpired)));
    // What LINE cannot show as an image has no preview.
    let doc = uploaded(&core, "alice@acme", &room(), "application/pdf", vec![1; 2 * 1024 * 1024]).await;
    let doc_link = core.links.sign(&doc.media_id, u64::try_from(chat_protocol::now_ms() / 1000).unwrap());
    assert_eq!(read_linked(&core, &doc_link.original).await.unwrap().1.len(), 2 * 1024 * 1024);
    assert!(matches!(read_linked(&core, &doc_link.preview).await, Err(LineError::MediaNotFound)));
    db.drop().await;
}
