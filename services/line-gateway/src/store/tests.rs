//! The store against the machine's PostgreSQL (`E2E_DATABASE_URL`), each test in a schema of
//! its own, dropped at its end: bindings, the inbox's dedup and claiming, block periods.

use chat_kit::DatabaseSettings;
use chat_protocol::MessageId;
use sqlx::Executor;

use super::*;

/// A schema of its own on the test PostgreSQL.
pub(crate) struct TestDb {
    pub store: Store,
    url: String,
    schema: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let url =
            std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
        let schema = format!("line_test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let settings = DatabaseSettings {
            url: url.clone(),
            schema: schema.clone(),
            max_connections: 4,
            idle_in_transaction_timeout_ms: 0,
        };
        let store = match Store::connect(&settings).await {
            Ok(store) => store,
            Err(err) => panic!("PostgreSQL is needed at {url} (make test starts it): {err}"),
        };
        Self { store, url, schema }
    }

    /// Drop the schema (call at the end of the test).
    pub async fn drop(self) {
        self.store.pool.close().await;
        let pool = sqlx::AnyPool::connect(&self.url).await.unwrap();
        pool.execute(format!("DROP SCHEMA \"{}\" CASCADE", self.schema).as_str()).await.unwrap();
        pool.close().await;
    }
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn alice() -> UserId {
    UserId::new("alice@acme")
}

fn binding<'a>(channel_id: &'a str, user: &'a UserId, tenant: &'a TenantId) -> NewBinding<'a> {
    NewBinding { channel_id, user_id: user, tenant, basic_id: "@abc1234x", secret_enc: "s-enc", token_enc: "t-enc" }
}

fn event(id: &str) -> InboxEvent {
    InboxEvent { webhook_event_id: id.into(), json: format!(r#"{{"type":"follow","webhookEventId":"{id}"}}"#) }
}

#[tokio::test]
async fn a_channel_is_one_members_and_rebinding_replaces_the_members_binding() {
    let db = TestDb::new().await;
    let store = &db.store;
    let Bound::Stored(first) = store.bind(&binding("1000000001", &alice(), &acme()), 1_000).await.unwrap() else {
        panic!("bound")
    };
    assert_eq!((first.created_at_ms, first.updated_at_ms, first.suspended), (1_000, 1_000, false));
    assert!(!format!("{first:?}").contains("s-enc"), "credentials are not printed");

    let bob = UserId::new("bob@acme");
    assert_eq!(store.bind(&binding("1000000001", &bob, &acme()), 2_000).await.unwrap(), Bound::TakenByAnother);
    let other_tenant = TenantId::new("globex");
    let mallory = UserId::new("alice@globex");
    assert_eq!(
        store.bind(&binding("1000000001", &mallory, &other_tenant), 2_000).await.unwrap(),
        Bound::TakenByAnother
    );
    assert_eq!(store.channel("1000000001").await.unwrap().unwrap().user_id, alice());

    let Bound::Stored(again) = store.bind(&binding("1000000001", &alice(), &acme()), 3_000).await.unwrap() else {
        panic!("bound again")
    };
    assert_eq!((again.created_at_ms, again.updated_at_ms), (1_000, 3_000));

    let Bound::Stored(moved) = store.bind(&binding("2000000002", &alice(), &acme()), 4_000).await.unwrap() else {
        panic!("moved")
    };
    assert_eq!(moved.channel_id, "2000000002");
    assert!(store.channel("1000000001").await.unwrap().is_none(), "the member's old binding is replaced");
    assert_eq!(store.channels_of_tenant(&acme()).await.unwrap().len(), 1);
    assert!(store.channels_of_tenant(&other_tenant).await.unwrap().is_empty());

    assert!(store.set_suspended(&alice(), &acme(), true, 5_000).await.unwrap());
    assert!(store.channel("2000000002").await.unwrap().unwrap().suspended);
    assert!(!store.set_suspended(&alice(), &other_tenant, false, 5_000).await.unwrap());
    assert!(!store.unbind(&alice(), &other_tenant).await.unwrap());
    assert!(store.unbind(&alice(), &acme()).await.unwrap());
    assert!(store.channel_of(&alice(), &acme()).await.unwrap().is_none());
    db.drop().await;
}

#[tokio::test]
async fn a_redelivered_event_inserts_nothing() {
    let db = TestDb::new().await;
    let store = &db.store;
    assert_eq!(store.insert_events("Ubot", "1", &[event("e1"), event("e2")], 1_000).await.unwrap(), 2);
    assert_eq!(store.insert_events("Ubot", "1", &[event("e2"), event("e3")], 2_000).await.unwrap(), 1);
    assert_eq!(store.insert_events("Ubot", "1", &[event("e1")], 3_000).await.unwrap(), 0);
    assert_eq!(store.insert_events("Uother", "2", &[event("e1")], 3_000).await.unwrap(), 1, "keyed by destination");
    assert_eq!(store.backlog().await.unwrap(), 4);
    db.drop().await;
}

#[tokio::test]
async fn events_are_claimed_oldest_first_one_at_a_time_per_channel() {
    let db = TestDb::new().await;
    let store = &db.store;
    store.insert_events("Ubot", "1", &[event("a1"), event("a2")], 1_000).await.unwrap();
    store.insert_events("Ubot2", "2", &[event("b1")], 1_001).await.unwrap();

    let first = store.claim(10_000, 60_000).await.unwrap().unwrap();
    assert_eq!((first.key.webhook_event_id.as_str(), first.attempts), ("a1", 1));
    let second = store.claim(10_000, 60_000).await.unwrap().unwrap();
    assert_eq!(second.key.webhook_event_id, "b1", "a2 waits for a1 of its channel");
    assert!(store.claim(10_000, 60_000).await.unwrap().is_none());

    // a1 fails for now: nothing of channel 1 until its backoff passes.
    store.retry_later(&first.key, 20_000, "rooms timed out").await.unwrap();
    store.mark_processed(&second.key, 10_500).await.unwrap();
    assert!(store.claim(15_000, 60_000).await.unwrap().is_none());
    let retried = store.claim(20_000, 60_000).await.unwrap().unwrap();
    assert_eq!((retried.key.webhook_event_id.as_str(), retried.attempts), ("a1", 2));
    store.mark_failed(&retried.key, 20_100, "given up").await.unwrap();
    let next = store.claim(20_200, 60_000).await.unwrap().unwrap();
    assert_eq!(next.key.webhook_event_id, "a2");

    // A worker that died: its lease passes and the event is taken again.
    assert!(store.claim(30_000, 60_000).await.unwrap().is_none());
    let again = store.claim(80_200, 60_000).await.unwrap().unwrap();
    assert_eq!((again.key.webhook_event_id.as_str(), again.attempts), ("a2", 2));
    store.mark_processed(&again.key, 80_300).await.unwrap();
    assert_eq!(store.backlog().await.unwrap(), 0);

    // Processed ids stay for the dedup until purged.
    assert_eq!(store.insert_events("Ubot", "1", &[event("a1")], 90_000).await.unwrap(), 0);
    assert_eq!(store.purge_processed(80_250).await.unwrap(), 2);
    assert_eq!(store.purge_processed(i64::MAX).await.unwrap(), 1);
    assert_eq!(store.insert_events("Ubot", "1", &[event("a1")], 90_000).await.unwrap(), 1);
    db.drop().await;
}

#[tokio::test]
async fn concurrent_claims_never_take_the_same_event() {
    let db = TestDb::new().await;
    let store = &db.store;
    for channel in 0..20 {
        store.insert_events(&format!("U{channel}"), &channel.to_string(), &[event("e")], 1_000).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            while let Some(row) = store.claim(2_000, 60_000).await.unwrap() {
                taken.push(row.key.destination);
            }
            taken
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (20, 20));
    db.drop().await;
}

#[tokio::test]
async fn block_periods_apply_in_either_order_and_line_users_keep_their_room() {
    let db = TestDb::new().await;
    let store = &db.store;
    let taro = UserId::new("line:U1");
    store.unblock(&alice(), &taro, 100, 200).await.unwrap();
    store.block(&alice(), &taro, 100).await.unwrap();
    store.block(&alice(), &taro, 300).await.unwrap();
    store.block(&alice(), &taro, 300).await.unwrap();
    assert_eq!(
        store.block_periods(&alice(), &taro).await.unwrap(),
        [BlockPeriod { since_ms: 100, until_ms: Some(200) }, BlockPeriod { since_ms: 300, until_ms: None }]
    );

    let room = RoomId::new("room-1");
    store.remember_line_user("1", "U1", &room, Some(true), 1).await.unwrap();
    store.mark_unfollowed("1", "U1", 2).await.unwrap();
    assert_eq!(
        store.line_user("1", "U1").await.unwrap(),
        Some(LineUser { room_id: Some(room.clone()), followed: false, reply_room: None })
    );
    store.remember_line_user("1", "U1", &room, None, 3).await.unwrap();
    assert!(!store.line_user("1", "U1").await.unwrap().unwrap().followed, "a message does not refollow");
    store.mark_unfollowed("1", "U2", 4).await.unwrap();
    assert_eq!(
        store.line_user("1", "U2").await.unwrap(),
        Some(LineUser { room_id: None, followed: false, reply_room: None })
    );
    db.drop().await;
}

fn outbound_row<'a>(
    key: &'a OutboundKey,
    channel_id: &'a str,
    room: &'a RoomId,
    seq: i64,
    sender: &'a UserId,
    tenant: &'a TenantId,
) -> NewOutbound<'a> {
    NewOutbound {
        key,
        channel_id,
        room_id: room,
        seq,
        tenant,
        sender,
        messages: r#"[{"type":"text","text":"hi"}]"#,
        retry_key: "6f0c1a8e-0000-5000-8000-000000000000",
        status: OutboundStatus::Pending,
        last_error: None,
        due_at: 0,
        trace_parent: None,
    }
}

#[tokio::test]
async fn outbound_rows_are_inserted_once_and_claimed_in_order_per_line_user() {
    let db = TestDb::new().await;
    let store = &db.store;
    let (room, sender, tenant) = (RoomId::new("room-1"), alice(), acme());
    let key =
        |message: &str, user: &str| OutboundKey { message_id: MessageId::new(message), line_user_id: user.into() };
    let (m1, m2, other) = (key("m1", "U1"), key("m2", "U1"), key("m3", "U2"));
    assert!(store.insert_outbound(&outbound_row(&m1, "1", &room, 1, &sender, &tenant), 1_000).await.unwrap());
    assert!(!store.insert_outbound(&outbound_row(&m1, "1", &room, 1, &sender, &tenant), 1_500).await.unwrap());
    assert!(store.insert_outbound(&outbound_row(&m2, "1", &room, 2, &sender, &tenant), 1_000).await.unwrap());
    assert!(store.insert_outbound(&outbound_row(&other, "1", &room, 3, &sender, &tenant), 1_001).await.unwrap());
    assert_eq!(store.outbound_backlog().await.unwrap(), 3);

    // m1 first; m2 waits for it (same LINE user), U2's message does not.
    let first = store.claim_outbound(10_000, 60_000).await.unwrap().unwrap();
    assert_eq!((first.key.clone(), first.attempts, first.chunks_sent), (m1.clone(), 1, 0));
    let second = store.claim_outbound(10_000, 60_000).await.unwrap().unwrap();
    assert_eq!(second.key, other);
    assert!(store.claim_outbound(10_000, 60_000).await.unwrap().is_none());

    // m1 backs off: still nothing of U1 until it is due; a dead worker's lease passes.
    store.outbound_retry_at(&m1, 20_000, "LINE answered 500", 10_001).await.unwrap();
    assert!(store.claim_outbound(15_000, 60_000).await.unwrap().is_none());
    let again = store.claim_outbound(20_000, 60_000).await.unwrap().unwrap();
    assert_eq!((again.key.clone(), again.attempts), (m1.clone(), 2));
    // Request 0 of 2 done: the next request is due at once, attempts start over.
    assert!(!store.outbound_request_done(&m1, 0, 2, None, 20_001).await.unwrap());
    assert!(!store.outbound_request_done(&m1, 0, 2, None, 20_001).await.unwrap(), "a repeat changes nothing");
    let next = store.claim_outbound(20_002, 60_000).await.unwrap().unwrap();
    assert_eq!((next.key.clone(), next.chunks_sent, next.attempts), (m1.clone(), 1, 1));
    assert!(store.outbound_request_done(&m1, 1, 2, Some("req-1"), 20_003).await.unwrap());
    let sent = store.outbound(&m1).await.unwrap().unwrap();
    assert_eq!((sent.status, sent.accepted_request_id.as_deref()), (OutboundStatus::Sent, Some("req-1")));

    // m2 now; given up, it waits to be told and blocks nothing.
    let m2_row = store.claim_outbound(20_004, 60_000).await.unwrap().unwrap();
    assert_eq!(m2_row.key, m2);
    store.outbound_failed(&m2, "LINE answered 400", true, 20_005).await.unwrap();
    let untold = store.outbound_unnotified(10).await.unwrap();
    assert_eq!(untold.len(), 1);
    assert_eq!(untold[0].key, m2);
    store.outbound_notified(&m2).await.unwrap();
    assert!(store.outbound_unnotified(10).await.unwrap().is_empty());
    assert_eq!(store.outbound(&m2).await.unwrap().unwrap().status, OutboundStatus::Failed);
    assert_eq!(store.outbound_backlog().await.unwrap(), 1, "U2's message, leased");

    // The channel of a LINE user is found through their room.
    store.remember_line_user("1", "U1", &room, Some(true), 1).await.unwrap();
    assert_eq!(store.channel_of_line_user(&room, "U1").await.unwrap().as_deref(), Some("1"));
    assert!(store.channel_of_line_user(&RoomId::new("room-2"), "U1").await.unwrap().is_none());

    // A status this build does not know is an error, never a default.
    sqlx::query("UPDATE outbound SET status = 'parked' WHERE message_id = 'm3'").execute(&store.pool).await.unwrap();
    assert!(matches!(store.outbound(&other).await, Err(StoreError::Unknown { .. })));
    db.drop().await;
}

impl Store {
    /// An inbox row's state: (processed, failed, last_error).
    pub(crate) async fn inbox_state(
        &self,
        destination: &str,
        webhook_event_id: &str,
    ) -> Option<(bool, bool, Option<String>)> {
        let row: Option<(Option<i64>, i64, Option<String>)> = sqlx::query_as(
            "SELECT processed_at, failed, last_error FROM inbox WHERE destination = $1 AND webhook_event_id = $2",
        )
        .bind(destination)
        .bind(webhook_event_id)
        .fetch_optional(&self.pool)
        .await
        .unwrap();
        row.map(|(processed_at, failed, last_error)| (processed_at.is_some(), failed != 0, last_error))
    }
}

#[tokio::test]
async fn media_and_posted_rows_are_kept_once_per_line_message() {
    let db = TestDb::new().await;
    let store = &db.store;
    let row = MediaRow {
        media_id: "m-1".into(),
        channel_id: "1000000001".into(),
        line_message_id: "325708".into(),
        store_key: "line/1000000001/325708".into(),
        content_type: "image/png".into(),
        size: 12,
        file_name: None,
        kind: "image".into(),
        room_id: RoomId::new("r-1"),
        owner: alice(),
        tenant: acme(),
        created_at_ms: 5,
    };
    store.insert_media(&row).await.unwrap();
    let again = MediaRow { size: 99, content_type: "image/jpeg".into(), ..row.clone() };
    store.insert_media(&again).await.unwrap();
    assert_eq!(store.media("m-1").await.unwrap(), Some(row.clone()), "the first row stays");
    assert_eq!(store.media_of_message("1000000001", "325708").await.unwrap(), Some(row));
    assert_eq!(store.media("m-2").await.unwrap(), None);
    assert_eq!(store.media_of_message("1000000002", "325708").await.unwrap(), None);

    let first = MessageId::new("msg-1");
    store.remember_posted("1000000001", "325708", &RoomId::new("r-1"), &first, 1).await.unwrap();
    store.remember_posted("1000000001", "325708", &RoomId::new("r-1"), &MessageId::new("msg-2"), 2).await.unwrap();
    let posted = store.posted("1000000001", "325708").await.unwrap().unwrap();
    assert_eq!((posted.room_id, posted.message_id), (RoomId::new("r-1"), first));
    assert_eq!(store.posted("1000000001", "1").await.unwrap(), None);
    db.drop().await;
}
