//! The counters behind the room list against the history they stand for, on SQLite: after any
//! mix of posts (members' and the system's), joins, leaves and comebacks, recalls and read
//! markers set anywhere, every member's unread count and last message are what a count over the
//! events says; and the migration's backfill computes the same from a history written before
//! the counters existed.

use std::path::PathBuf;

use chat_kit::DatabaseSettings;
use chat_protocol::bus::{CommandEnvelope, MemberKind, MemberSpec, RoomCommand, RoomKind};
use chat_protocol::room::RoomInfo;
use chat_protocol::{new_id, Body, Limits, RoomId, TenantId, UserId};

use super::{Commit, EventKind, Fence, PostCommit, Store, StoreError};
use crate::domain::{self, MessageRef, RoomState};

/// A SQLite file of its own, removed at the end.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("rooms-store-{}.db", uuid::Uuid::new_v4().simple())))
    }

    fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: format!("sqlite://{}?mode=rwc", self.0.display()),
            schema: "rooms".into(),
            max_connections: 4,
            idle_in_transaction_timeout_ms: 0,
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// A fixed sequence of choices (xorshift), the same on every run.
struct Choices(u64);

impl Choices {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn member(user: &UserId) -> MemberSpec {
    MemberSpec { user: user.clone(), tenant: acme(), kind: MemberKind::Member }
}

/// One room driven the way its actor drives it: decide, commit, absorb.
struct Room {
    id: RoomId,
    state: Option<RoomState>,
}

impl Room {
    /// Apply `command` from `actor`; refusals and no-ops write nothing and are fine here.
    async fn apply(&mut self, store: &Store, actor: &UserId, command: RoomCommand, now_ms: i64) {
        let env = CommandEnvelope {
            command_id: new_id(),
            room_id: self.id.clone(),
            actor: actor.clone(),
            tenant: acme(),
            reply_to: None,
            issued_at_ms: now_ms,
            command,
        };
        let target: Option<MessageRef> = match &env.command {
            RoomCommand::Recall { message_id } => store.message_ref(&self.id, message_id).await.expect("look-up"),
            _ => None,
        };
        let limits = Limits::default();
        let decided = match &self.state {
            None => domain::decide_create(&env, &limits),
            Some(state) => domain::decide(state, &env, &limits, target.as_ref()),
        };
        let Ok(plan) = decided else { return };
        if plan.is_noop() {
            return;
        }
        let meta = plan.meta_after(self.state.as_ref()).expect("a room to change");
        let last_seq = self.state.as_ref().map_or(0, |s| s.last_seq);
        let commit = Commit { meta: &meta, last_seq, plan: &plan, command_id: &env.command_id, now_ms };
        store.commit(Fence { shard: 0, epoch: 1 }, &commit).await.expect("the commit is written");
        self.state = RoomState::after(self.state.take(), &plan, commit.new_last_seq(), 100);
    }

    /// Post a text with `fence`, as the actor does.
    async fn post(&mut self, store: &Store, actor: &UserId, fence: Fence) -> Result<(), StoreError> {
        let env = CommandEnvelope {
            command_id: new_id(),
            room_id: self.id.clone(),
            actor: actor.clone(),
            tenant: acme(),
            reply_to: None,
            issued_at_ms: 1,
            command: RoomCommand::Post { body: Body::Text { text: "hi".into() }, client_msg_id: None },
        };
        let state = self.state.as_ref().expect("a created room");
        let plan = domain::decide(state, &env, &Limits::default(), None).expect("a post is accepted");
        let meta = plan.meta_after(Some(state)).expect("meta");
        let commit =
            Commit { meta: &meta, last_seq: state.last_seq, plan: &plan, command_id: &env.command_id, now_ms: 1 };
        store.commit(fence, &commit).await?;
        self.state = RoomState::after(self.state.take(), &plan, commit.new_last_seq(), 100);
        Ok(())
    }

    /// Post from each of `senders` in one batch, as the actor does: decided in order, each
    /// after the ones before it, committed together, then absorbed.
    async fn post_batch(&mut self, store: &Store, senders: &[UserId], now_ms: i64) {
        let Some(state) = self.state.as_mut() else { return };
        let base = state.last_seq;
        let mut decided = Vec::new();
        for (i, sender) in senders.iter().enumerate() {
            let env = CommandEnvelope {
                command_id: new_id(),
                room_id: self.id.clone(),
                actor: sender.clone(),
                tenant: acme(),
                reply_to: None,
                issued_at_ms: now_ms,
                command: RoomCommand::Post {
                    body: Body::Text { text: format!("batch {now_ms}.{i}") },
                    client_msg_id: None,
                },
            };
            if let Ok(plan) = domain::decide(state, &env, &Limits::default(), None) {
                state.last_seq += 1;
                decided.push((env.command_id, plan, state.last_seq));
            }
        }
        state.last_seq = base;
        let posts: Vec<PostCommit<'_>> =
            decided.iter().map(|(id, plan, seq)| PostCommit { command_id: id, plan, seq: *seq }).collect();
        store.commit_posts(Fence { shard: 0, epoch: 1 }, &self.id, &posts, now_ms).await.expect("the batch is written");
        for (_, plan, seq) in &decided {
            self.state = RoomState::after(self.state.take(), plan, *seq, 100);
        }
    }

    fn members(&self) -> Vec<UserId> {
        self.state.as_ref().map(|s| s.members.keys().cloned().collect()).unwrap_or_default()
    }

    fn last_seq(&self) -> i64 {
        self.state.as_ref().map_or(0, |s| s.last_seq)
    }
}

/// Every member's view of `room`, in the list and alone, against the stored history.
async fn assert_counts_match_the_history(store: &Store, room: &RoomId) {
    let events = store.history(room, None, Some(0), None, 1_000_000).await.expect("history");
    let messages: Vec<_> = events.iter().filter(|e| e.kind == EventKind::Message).collect();
    for m in store.members(room).await.expect("members") {
        let listed = store.list_rooms(&m.user_id, &m.tenant, 100).await.expect("list");
        let view = listed.into_iter().find(|v| v.meta.id == *room).expect("the room is listed");
        let unread = messages.iter().filter(|e| e.seq > m.read_seq && e.sender() != m.user_id).count() as i64;
        assert_eq!(view.unread, unread, "{} at read_seq {} of {}", m.user_id, m.read_seq, view.last_seq);
        assert_eq!(view.read_seq, m.read_seq);
        assert_eq!(view.last_seq, events.last().map_or(0, |e| e.seq));
        assert_eq!(view.last_message.as_ref(), messages.last().copied(), "{}", m.user_id);
        let alone = store.room_view(room, &m.user_id, &m.tenant).await.expect("view").expect("a member's room");
        assert_eq!((alone.unread, alone.last_message), (view.unread, view.last_message));
    }
}

#[tokio::test]
async fn unread_counts_and_last_messages_follow_the_history_whatever_happens_in_the_rooms() {
    let db = TempDb::new();
    let store = Store::connect(&db.settings()).await.expect("store");
    counts_follow_the_history(&store).await;
}

/// The same on PostgreSQL (a schema of its own, dropped at the end): the batched posts' SQL is
/// built at run time, so each database checks its own.
#[tokio::test]
async fn unread_counts_and_last_messages_follow_the_history_on_postgresql_too() {
    let url = std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
    let schema = format!("e2e_rooms_store_{}", uuid::Uuid::new_v4().simple());
    let settings =
        DatabaseSettings { url, schema: schema.clone(), max_connections: 4, idle_in_transaction_timeout_ms: 0 };
    let store = Store::connect(&settings).await.expect("store");
    counts_follow_the_history(&store).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&store.pool).await.expect("dropped");
}

/// Any mix of commands, posts alone and in batches, leaves every member's counters what the
/// history says.
async fn counts_follow_the_history(store: &Store) {
    let store = store.clone();
    let people: Vec<UserId> = (0..5).map(|i| UserId::new(format!("u{i}"))).collect();
    let mut rooms = Vec::new();
    for (name, size) in [("big", 4), ("small", 2)] {
        let mut room = Room { id: RoomId::generate(), state: None };
        let create = RoomCommand::Create {
            kind: RoomKind::Group,
            members: people[..size].iter().map(member).collect(),
            info: RoomInfo { name: Some(name.into()), ..RoomInfo::default() },
        };
        room.apply(&store, &people[0], create, 1).await;
        rooms.push(room);
    }
    let mut choose = Choices(0x9e37_79b9_7f4a_7c15);
    for step in 0..400_i64 {
        let room = &mut rooms[choose.below(2)];
        let members = room.members();
        if members.is_empty() {
            continue;
        }
        let actor = choose.pick(&members).clone();
        let now = 10 + step;
        let roll = choose.below(100);
        let text = |t: String| Body::Text { text: t };
        let command = match roll {
            0..=14 => {
                let mut senders: Vec<UserId> =
                    (0..2 + choose.below(5)).map(|_| choose.pick(&members).clone()).collect();
                if choose.below(4) == 0 {
                    senders.push(UserId::system());
                }
                room.post_batch(&store, &senders, now).await;
                assert_counts_match_the_history(&store, &room.id).await;
                continue;
            }
            15..=49 => RoomCommand::Post { client_msg_id: None, body: text(format!("step {step}")) },
            50..=54 => {
                let post = RoomCommand::Post { client_msg_id: None, body: text(format!("system {step}")) };
                room.apply(&store, &UserId::system(), post, now).await;
                assert_counts_match_the_history(&store, &room.id).await;
                continue;
            }
            55..=71 => {
                // A read marker anywhere: before the start, on any event, past the end.
                let seq = choose.below(room.last_seq() as usize + 6) as i64 - 2;
                store.mark_read(&room.id, &actor, &acme(), seq).await.expect("marker");
                assert_counts_match_the_history(&store, &room.id).await;
                continue;
            }
            72..=78 if members.len() > 1 => RoomCommand::Leave,
            72..=86 => {
                let outside: Vec<_> = people.iter().filter(|p| !members.contains(p)).cloned().collect();
                if outside.is_empty() {
                    continue;
                }
                RoomCommand::AddMembers { users: vec![member(choose.pick(&outside))] }
            }
            87..=94 => {
                let history = store.history(&room.id, None, Some(0), None, 1_000_000).await.expect("history");
                let own: Vec<_> =
                    history.iter().filter(|e| e.kind == EventKind::Message && e.sender() == actor).collect();
                if own.is_empty() {
                    continue;
                }
                RoomCommand::Recall { message_id: choose.pick(&own).message_id() }
            }
            _ => RoomCommand::UpdateInfo {
                info: RoomInfo { description: Some(format!("d{step}")), ..RoomInfo::default() },
            },
        };
        room.apply(&store, &actor, command, now).await;
        assert_counts_match_the_history(&store, &room.id).await;
    }
    let posted = store.history(&rooms[0].id, None, Some(0), None, 1_000_000).await.expect("history");
    assert!(posted.iter().filter(|e| e.kind == EventKind::Message).count() > 50, "the run posted little");
}

#[tokio::test]
async fn the_migration_counts_a_history_written_before_the_counters() {
    let db = TempDb::new();
    let settings = db.settings();
    // The store as it was before the counters: the first migration only.
    let dir = std::env::temp_dir().join(format!("rooms-migrations-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("migrations dir");
    std::fs::write(dir.join("20261121000001_init.sql"), include_str!("../../migrations/20261121000001_init.sql"))
        .expect("first migration");
    let first = sqlx::migrate::Migrator::new(dir.as_path()).await.expect("first migration read");
    let old = chat_db::connect(&settings, &first).await.expect("old store");
    let _ = std::fs::remove_dir_all(&dir);
    let room = RoomId::generate();
    let exec = |sql: String| {
        let old = old.clone();
        async move { sqlx::query(&sql).execute(&old).await.expect(&sql) }
    };
    exec(format!(
        "INSERT INTO rooms (id, tenant, kind, name, last_seq, fence, created_at, updated_at) \
         VALUES ('{room}', 'acme', 'group', 'old', 60, 1, 0, 0)"
    ))
    .await;
    let mut choose = Choices(42);
    for seq in 1..=60 {
        let sql = match choose.below(4) {
            0 => format!(
                "INSERT INTO events (room_id, seq, kind, body, sent_at) VALUES ('{room}', {seq}, 'event', \
                 '{{\"type\":\"member_left\",\"user\":\"x\"}}', {seq})"
            ),
            n => format!(
                "INSERT INTO events (room_id, seq, kind, message_id, sender, body, recalled, sent_at) \
                 VALUES ('{room}', {seq}, 'message', '{}', 'u{n}', '{{\"type\":\"text\",\"text\":\"m\"}}', {}, {seq})",
                new_id(),
                i64::from(seq % 9 == 0)
            ),
        };
        exec(sql).await;
    }
    for (user, read_seq) in [("u0", 0), ("u1", 17), ("u2", 33), ("u3", 60)] {
        exec(format!(
            "INSERT INTO members (room_id, user_id, tenant, kind, role, joined_seq, read_seq) \
             VALUES ('{room}', '{user}', 'acme', 'member', 'member', 1, {read_seq})"
        ))
        .await;
    }
    old.close().await;

    let store = Store::connect(&settings).await.expect("migrated store");
    assert_counts_match_the_history(&store, &room).await;
    // And the room goes on from the backfilled counters.
    let state = store.activate(&room, Fence { shard: 0, epoch: 1 }, 100).await.expect("activate").map(|(s, _)| s);
    let mut going_on = Room { id: room.clone(), state };
    for (i, who) in ["u1", "u2", "u1", "u3"].into_iter().enumerate() {
        let post = RoomCommand::Post { client_msg_id: None, body: Body::Text { text: format!("new {i}") } };
        going_on.apply(&store, &UserId::new(who), post, 100 + i as i64).await;
    }
    store.mark_read(&room, &UserId::new("u2"), &acme(), 45).await.expect("marker");
    assert_counts_match_the_history(&store, &room).await;
}

/// A block period hides the blocked sender's messages sent during it from the blocker's history
/// and room preview, for good; others see everything; the events of a period apply in either
/// order.
#[tokio::test]
async fn a_block_period_hides_the_senders_messages_of_that_period_from_the_blocker_only() {
    let db = TempDb::new();
    let store = Store::connect(&db.settings()).await.expect("store");
    let (alice, bob, carol) = (UserId::new("alice@acme"), UserId::new("bob@acme"), UserId::new("carol@acme"));
    let mut room = Room { id: RoomId::generate(), state: None };
    let create = RoomCommand::Create {
        kind: RoomKind::Group,
        members: vec![member(&alice), member(&bob), member(&carol)],
        info: RoomInfo { name: Some("g".into()), ..RoomInfo::default() },
    };
    room.apply(&store, &alice, create, 500).await;
    let post = |text: &str| RoomCommand::Post { client_msg_id: None, body: Body::Text { text: text.into() } };
    room.apply(&store, &carol, post("before"), 1_000).await;
    // The unblock arrives first: the later block event of the same period cannot reopen it.
    store.record_block(&alice, &carol, 1_500, Some(2_500)).await.expect("unblock");
    store.record_block(&alice, &carol, 1_500, None).await.expect("block");
    room.apply(&store, &carol, post("during"), 2_000).await;
    room.apply(&store, &bob, post("bob during"), 2_100).await;
    let texts = |rows: Vec<super::EventRow>| -> Vec<String> {
        rows.into_iter()
            .filter(|r| r.kind == EventKind::Message)
            .filter_map(|r| r.body)
            .filter_map(|b| serde_json::from_str::<Body>(&b).ok())
            .map(|b| match b {
                Body::Text { text } => text,
                other => format!("{other:?}"),
            })
            .collect()
    };
    let id = room.id.clone();
    let of = |reader: Option<UserId>| {
        let (store, id) = (&store, id.clone());
        async move { store.history(&id, reader.as_ref(), Some(0), None, 100).await }
    };
    assert_eq!(texts(of(Some(alice.clone())).await.unwrap()), ["before", "bob during"]);
    assert_eq!(texts(of(Some(bob.clone())).await.unwrap()), ["before", "during", "bob during"]);
    assert_eq!(texts(of(None).await.unwrap()), ["before", "during", "bob during"]);
    // The newest page (no `after`) filters the same way.
    assert_eq!(texts(store.history(&room.id, Some(&alice), None, None, 1).await.unwrap()), ["bob during"]);
    assert!(store.room_blocks(&room.id).await.unwrap().is_empty(), "the period is over");

    room.apply(&store, &carol, post("after"), 3_000).await;
    store.record_block(&alice, &carol, 3_500, None).await.expect("blocked again");
    room.apply(&store, &carol, post("blocked again"), 4_000).await;
    assert_eq!(texts(of(Some(alice.clone())).await.unwrap()), ["before", "bob during", "after"]);
    let open = store.room_blocks(&room.id).await.unwrap();
    assert_eq!(open, [(alice.clone(), carol.clone())].into_iter().collect());
    assert_eq!(store.rooms_of_pair(&alice, &carol).await.unwrap().len(), 1);
    // alice's preview does not show carol's hidden last message; bob's does.
    let preview = |user: UserId| {
        let store = &store;
        let id = room.id.clone();
        async move { store.room_view(&id, &user, &acme()).await.unwrap().expect("member").last_message }
    };
    assert!(preview(alice.clone()).await.is_none());
    assert_eq!(preview(bob.clone()).await.map(|m| m.sender), Some(Some("carol@acme".to_owned())));
    let blocks = domain::Blocks::new(open);
    assert_eq!(blocks.recipients_of(&carol, &[alice.clone(), bob.clone()]), std::slice::from_ref(&bob));
    assert_eq!(blocks.recipients_of(&bob, &[alice.clone(), carol.clone()]), [alice, carol]);
}

#[tokio::test]
async fn a_write_older_than_the_shards_newest_owner_is_refused_even_in_a_room_it_never_touched() {
    let db = TempDb::new();
    let store = Store::connect(&db.settings()).await.expect("store");
    let alice = UserId::new("alice");
    let mut room = Room { id: RoomId::generate(), state: None };
    let create = RoomCommand::Create {
        kind: RoomKind::Group,
        info: RoomInfo { name: Some("r".into()), ..Default::default() },
        members: vec![member(&alice)],
    };
    room.apply(&store, &alice, create, 1).await;
    let old = Fence { shard: 0, epoch: 1 };
    room.post(&store, &alice, old).await.expect("the owner writes");

    // A new owner of shard 0 records its epoch before consuming; it has not activated the room.
    let new = Fence { shard: 0, epoch: 2 };
    assert!(store.raise_shard_fence(new).await.expect("raise"));
    let late = room.post(&store, &alice, old).await;
    assert!(matches!(late, Err(StoreError::Stale { .. })), "a late write of the old owner: {late:?}");
    let reclaimed = store.activate(&room.id, old, 100).await;
    assert!(matches!(reclaimed, Err(StoreError::Stale { .. })), "the old owner cannot claim it back");
    assert!(!store.raise_shard_fence(old).await.expect("raise"), "epochs never go back");
    let (state, _) = store.activate(&room.id, new, 100).await.expect("activate").expect("the room exists");
    assert_eq!(state.last_seq, room.last_seq(), "activation loads the room as written");
    // A room not created yet activates empty under the current epoch, and not under an old one.
    assert!(store.activate(&RoomId::generate(), new, 100).await.expect("activate").is_none());
    let unborn = store.activate(&RoomId::generate(), old, 100).await;
    assert!(matches!(unborn, Err(StoreError::Stale { .. })), "{unborn:?}");
    room.post(&store, &alice, new).await.expect("the new owner writes");
    // Another shard's fence is not this room's business.
    assert!(store.raise_shard_fence(Fence { shard: 1, epoch: 9 }).await.expect("raise"));
    room.post(&store, &alice, new).await.expect("still the owner");
    assert_eq!(store.max_fence().await.expect("max"), 9, "the floor for new epochs");
    let events = store.history(&room.id, None, Some(0), None, 100).await.expect("history");
    assert_eq!(events.iter().filter(|e| e.kind == EventKind::Message).count(), 3, "the refused write left nothing");
}
