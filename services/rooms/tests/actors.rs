//! The shard and room actors for real: shard actors consuming the in-process bus, room actors
//! writing to a SQLite file, replies coming back through the node's hub, wired the way
//! `RoomsCore::start` wires them (without the HTTP side).
//!
//! The tests run one at a time (`SERIAL`): they read the process-wide `rooms_active` gauge
//! and the activation count, and each leaves no room actor behind, so those numbers move
//! only with the test that reads them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chat_bus::{InProcBus, SharedBus};
use chat_kit::DatabaseSettings;
use chat_presence::InProcPresence;
use chat_protocol::bus::{
    CommandEnvelope, CommandError, CommandOutcome, CommandResult, MemberKind, MemberSpec, ReplyTo, RoomCommand,
    RoomKind,
};
use chat_protocol::room::RoomInfo;
use chat_protocol::{
    new_id, now_ms, post_command_id, shard_of, Body, Limits, MessageId, Refusal, RoomId, TenantId, UserId,
};
use rooms::actors::room::Passivate;
use rooms::actors::shard::{Fenced, Own, Release, ShardActor};
use rooms::actors::{GaveUp, RoomContext, ShardTable};
use rooms::dispatch::{DispatchError, Dispatcher};
use rooms::hub::Hub;
use rooms::metrics::metrics;
use rooms::store::{EventKind, EventRow, Store};
use sqlx::Connection as _;
use tokio::sync::{oneshot, Mutex};

/// Every wait in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Long enough that no room passivates by itself during a test that does not want it to.
const NEVER_IDLE: Duration = Duration::from_secs(300);

static SERIAL: Mutex<()> = Mutex::const_new(());

fn alice() -> UserId {
    UserId::new("alice@acme")
}

fn bob() -> UserId {
    UserId::new("bob@acme")
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn text(t: &str) -> Body {
    Body::Text { text: t.to_owned() }
}

fn post(t: &str) -> RoomCommand {
    RoomCommand::Post { client_msg_id: None, body: text(t) }
}

fn create_group() -> RoomCommand {
    let member = |user: UserId| MemberSpec { user, tenant: acme(), kind: MemberKind::Member };
    RoomCommand::Create {
        kind: RoomKind::Group,
        members: vec![member(alice()), member(bob())],
        info: RoomInfo { name: Some("actors".into()), ..RoomInfo::default() },
    }
}

fn posted(outcome: &CommandOutcome) -> (MessageId, i64) {
    match outcome {
        Ok(CommandResult::Posted { message_id, seq }) => (message_id.clone(), *seq),
        other => panic!("expected Posted, got {other:?}"),
    }
}

/// Room actors alive in this process.
fn active_rooms() -> i64 {
    metrics().rooms_active.get()
}

/// Room activations (state loaded) so far in this process.
fn activations() -> u64 {
    metrics().activation_seconds.get_sample_count()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(TIMEOUT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

async fn answer(reply: oneshot::Receiver<CommandOutcome>) -> CommandOutcome {
    tokio::time::timeout(TIMEOUT, reply).await.expect("no answer in time").expect("the hub dropped the reply")
}

/// A SQLite file of its own, removed at the end.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("rooms-actors-{}.db", uuid::Uuid::new_v4().simple())))
    }

    fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// One rooms node: the store, the bus, one shard actor per shard, the hub and a dispatcher.
struct Node {
    db: TempDb,
    store: Store,
    bus: SharedBus,
    hub: Arc<Hub>,
    shards: Vec<Addr<ShardActor>>,
    dispatcher: Dispatcher,
    /// `rooms_active` before this node started any room actor.
    idle_rooms_active: i64,
    /// Where shards say they gave themselves up.
    gave_up: Mutex<tokio::sync::mpsc::Receiver<GaveUp>>,
}

impl Node {
    async fn start(shards: u16, dedup_window: usize, passivate_after: Duration) -> Self {
        Self::start_with_prefetch(shards, dedup_window, passivate_after, 64).await
    }

    async fn start_with_prefetch(shards: u16, dedup_window: usize, passivate_after: Duration, prefetch: u16) -> Self {
        let db = TempDb::new();
        let settings = DatabaseSettings {
            url: db.url(),
            schema: "rooms".into(),
            max_connections: 4,
            idle_in_transaction_timeout_ms: 0,
        };
        let store = Store::connect(&settings).await.expect("the store opens");
        let node_id = format!("test-{}", uuid::Uuid::new_v4().simple());
        let bus: SharedBus = Arc::new(InProcBus::new(shards));
        let epoch = store.max_fence().await.expect("the fence is readable") + 1;
        let (gave_up_tx, gave_up) = tokio::sync::mpsc::channel(16);
        let rc = Arc::new(RoomContext {
            store: store.clone(),
            bus: bus.clone(),
            presence: Arc::new(InProcPresence::new(&node_id)),
            limits: Limits::default(),
            dedup_window,
            passivate_after,
            ring_timeout: Duration::from_secs(30),
            shards: ShardTable::new(shards),
            gave_up: gave_up_tx,
        });
        let shards: Vec<Addr<ShardActor>> =
            (0..bus.shards()).map(|shard| ShardActor::new(shard, prefetch, rc.clone()).start()).collect();
        for shard in &shards {
            shard.send(Own { epoch }).await.expect("the shard takes ownership");
        }
        let hub = Arc::new(Hub::new(&node_id));
        let queue = bus.consume_node(&node_id).await.expect("the node queue");
        actix::spawn(hub.clone().run(queue));
        let dispatcher = Dispatcher::new(bus.clone(), hub.clone(), TIMEOUT);
        Self {
            db,
            store,
            bus,
            hub,
            shards,
            dispatcher,
            idle_rooms_active: active_rooms(),
            gave_up: Mutex::new(gave_up),
        }
    }

    fn shard_of(&self, room: &RoomId) -> &Addr<ShardActor> {
        &self.shards[usize::from(shard_of(room, self.bus.shards()))]
    }

    /// A command through the `Dispatcher`, as alice of acme.
    async fn execute(
        &self,
        room: &RoomId,
        command_id: Option<String>,
        command: RoomCommand,
    ) -> Result<CommandResult, DispatchError> {
        let (actor, tenant) = (alice(), acme());
        let executed = self.dispatcher.execute(room, &actor, &tenant, command_id, command);
        tokio::time::timeout(TIMEOUT * 2, executed).await.expect("the dispatcher gives up by itself")
    }

    async fn create_room_with_id(&self, room: &RoomId) {
        let created = self.execute(room, None, create_group()).await.expect("the room is created");
        assert_eq!(created, CommandResult::Created { room_id: room.clone(), existed: false });
    }

    async fn create_room(&self) -> RoomId {
        let room = RoomId::generate();
        self.create_room_with_id(&room).await;
        room
    }

    async fn post(&self, room: &RoomId, t: &str) -> (MessageId, i64) {
        posted(&self.execute(room, None, post(t)).await.map_err(CommandError::from))
    }

    /// Publish commands (as alice) straight onto their shard queues, one publish finished before
    /// the next starts, so each queue holds them in this order; the answers come back through
    /// the hub as the dispatcher's do.
    async fn publish_in_order(&self, commands: Vec<(RoomId, RoomCommand)>) -> Vec<oneshot::Receiver<CommandOutcome>> {
        let mut replies = Vec::new();
        for (room_id, command) in commands {
            let correlation_id = new_id();
            let envelope = CommandEnvelope {
                command_id: new_id(),
                room_id,
                actor: alice(),
                tenant: acme(),
                reply_to: Some(ReplyTo { node: self.hub.node_id().to_owned(), correlation_id: correlation_id.clone() }),
                issued_at_ms: now_ms(),
                command,
            };
            replies.push(self.hub.replies().expect(&correlation_id));
            let payload = serde_json::to_vec(&envelope).expect("encodable");
            let shard = shard_of(&envelope.room_id, self.bus.shards());
            self.bus.publish_command(shard, &envelope.command_id, payload).await.expect("published");
        }
        replies
    }

    async fn history(&self, room: &RoomId) -> Vec<EventRow> {
        self.store.history(room, None, Some(0), None, 1000).await.expect("history is readable")
    }

    /// Wait until every room actor this node started has stopped.
    async fn no_room_actor_left(&self) {
        let idle = self.idle_rooms_active;
        eventually("no room actor is left", || active_rooms() == idle).await;
    }

    /// Passivate these rooms and wait until their actors have stopped.
    async fn stop_rooms(&self, rooms: &[RoomId]) {
        for room in rooms {
            self.shard_of(room)
                .send(Passivate { room_id: room.clone(), failed: false, fenced: false })
                .await
                .expect("the shard is alive");
        }
        self.no_room_actor_left().await;
    }
}

fn message_text(row: &EventRow) -> String {
    assert_eq!(row.kind, EventKind::Message, "seq {} is not a message", row.seq);
    let body = row.body.as_deref().expect("a message has a body");
    match serde_json::from_str::<Body>(body) {
        Ok(Body::Text { text }) => text,
        other => panic!("seq {}: not a text body: {other:?}", row.seq),
    }
}

/// Seqs 1..=n, each once, in order.
fn assert_gapless(events: &[EventRow], n: i64) {
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "the history is not exactly seqs 1..={n}");
}

fn stored_copies(events: &[EventRow], message_id: &MessageId) -> usize {
    events.iter().filter(|e| e.kind == EventKind::Message && e.message_id() == *message_id).count()
}

#[actix::test]
async fn commands_that_arrive_while_a_room_passivates_are_buffered_and_applied_in_order() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(2, 64, NEVER_IDLE).await;
    let room = node.create_room().await;
    let (_, seq) = node.post(&room, "first").await;
    assert_eq!(seq, 3, "create wrote two events");
    let rooms_active = active_rooms();
    let activations_before = activations();

    // Hold SQLite's write lock so that the next post stays inside the old actor's commit: that
    // actor cannot handle its `StopRoom` before the post is done, so whatever reaches the shard
    // meanwhile has to wait in the shard's buffer (and not in a dying actor's mailbox).
    let mut writer = sqlx::SqliteConnection::connect(&node.db.url()).await.expect("a second connection");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.expect("the write lock");
    let in_flight = {
        let dispatcher = node.dispatcher.clone();
        let room = room.clone();
        actix::spawn(async move { dispatcher.execute(&room, &alice(), &acme(), None, post("in flight")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    // What an idle room sends, and right behind it twenty posts.
    node.shard_of(&room).do_send(Passivate { room_id: room.clone(), failed: false, fenced: false });
    let texts: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    let replies = node.publish_in_order(texts.iter().map(|t| (room.clone(), post(t))).collect()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    sqlx::query("ROLLBACK").execute(&mut writer).await.expect("the write lock is released");
    writer.close().await.expect("closed");

    let in_flight = tokio::time::timeout(TIMEOUT * 2, in_flight).await.expect("answered").expect("not cancelled");
    let (in_flight_id, in_flight_seq) = posted(&in_flight.map_err(CommandError::from));
    assert_eq!(in_flight_seq, 4, "the post in flight was finished by the old actor");
    let mut answered = Vec::new();
    for reply in replies {
        answered.push(posted(&answer(reply).await));
    }
    let seqs: Vec<i64> = answered.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (5..25).collect::<Vec<_>>(), "the buffered posts were applied once each, in queue order");

    let events = node.history(&room).await;
    assert_gapless(&events, 24);
    assert_eq!(message_text(&events[2]), "first");
    assert_eq!((events[3].message_id(), message_text(&events[3])), (in_flight_id, "in flight".to_owned()));
    for ((message_id, seq), t) in answered.iter().zip(&texts) {
        let row = &events[usize::try_from(*seq - 1).expect("positive")];
        assert_eq!((row.message_id(), message_text(row)), (message_id.clone(), t.clone()), "seq {seq}");
    }

    // The room really went through a fresh actor: one more activation, and the old actor is
    // gone (one actor for the room, as before).
    assert_eq!(activations(), activations_before + 1, "the room was activated again");
    assert_eq!(active_rooms(), rooms_active, "the old actor stopped and one new actor runs the room");

    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn a_repeated_command_id_is_answered_from_its_record_and_stored_once() {
    let _serial = SERIAL.lock().await;
    // Two command ids in memory, and rooms that passivate after 200 ms without a command.
    let node = Node::start(1, 2, Duration::from_millis(200)).await;
    let room = node.create_room().await;
    let k1 = post_command_id(&alice(), "k1");
    let post_k1 = || RoomCommand::Post { client_msg_id: Some("k1".into()), body: text("hello") };
    let send_k1 = || node.execute(&room, Some(k1.clone()), post_k1());

    let first = send_k1().await.expect("posted");
    let CommandResult::Posted { message_id, seq } = first.clone() else { panic!("expected Posted, got {first:?}") };
    assert_eq!(seq, 3);
    // From the in-memory window.
    assert_eq!(send_k1().await.expect("answered"), first);
    assert_eq!(stored_copies(&node.history(&room).await, &message_id), 1);

    // The idle room passivates by itself; the fresh actor reloads the window from the store.
    node.no_room_actor_left().await;
    let activations_before = activations();
    assert_eq!(send_k1().await.expect("answered"), first, "answered by a fresh actor");
    assert_eq!(activations(), activations_before + 1, "a fresh actor answered");
    let events = node.history(&room).await;
    assert_eq!(stored_copies(&events, &message_id), 1);
    assert_gapless(&events, 3);

    // Three more posts push k1 out of the two ids kept in memory: the `commands` table's key
    // catches the repeat, and it is answered from its record.
    for (i, expected) in (4..7).enumerate() {
        assert_eq!(node.post(&room, &format!("other {i}")).await.1, expected);
    }
    assert_eq!(send_k1().await.expect("answered"), first, "answered from the commands table");
    // The refused write took no seq: the next post gets the next one.
    assert_eq!(node.post(&room, "after").await.1, 7);
    let events = node.history(&room).await;
    assert_gapless(&events, 7);
    assert_eq!(stored_copies(&events, &message_id), 1);
    assert_eq!(events.iter().filter(|e| e.kind == EventKind::Message && message_text(e) == "hello").count(), 1);

    // A reloaded window (the last two ids) does not hold k1 either.
    node.no_room_actor_left().await;
    assert_eq!(send_k1().await.expect("answered"), first, "answered from the commands table after a reload");
    let events = node.history(&room).await;
    assert_gapless(&events, 7);
    assert_eq!(stored_copies(&events, &message_id), 1);

    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn posts_from_one_sender_are_stored_in_the_order_they_were_sent() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(2, 64, NEVER_IDLE).await;
    let room = node.create_room().await;

    // Through the `Dispatcher`, each post awaited before the next is sent. Concurrent
    // `execute` calls carry no order by design: each publish is retried with backoff on its
    // own (a retried publish lands behind later ones), and a WebSocket session spawns every
    // send after its own asynchronous access check. What a sender can rely on is this: a post
    // sent after the previous one was answered is stored after it.
    for i in 0..100 {
        let (_, seq) = node.post(&room, &format!("m{i}")).await;
        assert_eq!(seq, 3 + i, "m{i}");
    }

    // What the actors promise: a room applies its commands in queue order, even with many in
    // flight and with another room's commands interleaved (on the other shard).
    let other = loop {
        let id = RoomId::generate();
        if shard_of(&id, 2) != shard_of(&room, 2) {
            break id;
        }
    };
    node.create_room_with_id(&other).await;
    let commands =
        (0..100).flat_map(|i| [(room.clone(), post(&format!("p{i}"))), (other.clone(), post(&format!("q{i}")))]);
    let replies = node.publish_in_order(commands.collect()).await;
    let mut seqs = (Vec::new(), Vec::new());
    for (i, reply) in replies.into_iter().enumerate() {
        let (_, seq) = posted(&answer(reply).await);
        if i % 2 == 0 { &mut seqs.0 } else { &mut seqs.1 }.push(seq);
    }
    assert_eq!(seqs.0, (103..203).collect::<Vec<_>>(), "the pipelined posts in their room, in publish order");
    assert_eq!(seqs.1, (3..103).collect::<Vec<_>>(), "the other room's posts, in publish order");

    let events = node.history(&room).await;
    assert_gapless(&events, 202);
    let texts: Vec<String> = events[2..].iter().map(message_text).collect();
    let sent: Vec<String> = (0..100).map(|i| format!("m{i}")).chain((0..100).map(|i| format!("p{i}"))).collect();
    assert_eq!(texts, sent);
    let events = node.history(&other).await;
    assert_gapless(&events, 102);
    let texts: Vec<String> = events[2..].iter().map(message_text).collect();
    assert_eq!(texts, (0..100).map(|i| format!("q{i}")).collect::<Vec<_>>());

    node.stop_rooms(&[room, other]).await;
}

#[actix::test]
async fn a_command_for_a_room_that_does_not_exist_is_refused_and_leaves_no_actor() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 64, NEVER_IDLE).await;
    let room = RoomId::generate();
    let activations_before = activations();

    let refused = node.execute(&room, None, post("anyone?")).await.expect_err("refused");
    assert!(matches!(&refused, DispatchError::Refused(e) if e.code == Refusal::RoomNotFound), "{refused:?}");
    assert_eq!(activations(), activations_before + 1, "an actor was started to answer");
    node.no_room_actor_left().await;
    assert!(node.history(&room).await.is_empty(), "nothing was stored");

    // The next command meets a fresh actor, which creates the room.
    node.create_room_with_id(&room).await;
    assert_eq!(activations(), activations_before + 2, "a fresh actor took the create");
    assert_eq!(node.post(&room, "hello").await.1, 3);
    assert_gapless(&node.history(&room).await, 3);

    // A create sent right after the refusal meets the refusing actor still alive, stopping, or
    // gone, depending on the schedule; in every case it is applied, not swallowed.
    let mut rooms = vec![room];
    for _ in 0..20 {
        let room = RoomId::generate();
        let refused = node.execute(&room, None, post("anyone?")).await.expect_err("refused");
        assert!(matches!(&refused, DispatchError::Refused(e) if e.code == Refusal::RoomNotFound), "{refused:?}");
        node.create_room_with_id(&room).await;
        assert_eq!(node.post(&room, "hello").await.1, 3);
        assert_gapless(&node.history(&room).await, 3);
        rooms.push(room);
    }

    node.stop_rooms(&rooms).await;
}

/// Run one statement on the node's SQLite file from outside the node (a second connection).
async fn on_the_file(node: &Node, statement: &str) {
    let mut conn = sqlx::SqliteConnection::connect(&node.db.url()).await.expect("the file opens");
    sqlx::query(statement).execute(&mut conn).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

#[actix::test]
async fn a_store_failure_mid_stream_loses_no_command_and_keeps_their_order() {
    let _serial = SERIAL.lock().await;
    // A small prefetch: most commands wait in the queue, not in the shard.
    let node = Node::start_with_prefetch(1, 64, NEVER_IDLE, 4).await;
    let room = node.create_room().await;
    node.post(&room, "before").await;

    // The store loses the events table: every commit fails until it is back.
    on_the_file(&node, "ALTER TABLE events RENAME TO events_away").await;
    let first = node.publish_in_order((0..10).map(|i| (room.clone(), post(&format!("m{i}")))).collect()).await;
    // More commands arrive while the room is failing and backing off.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = node.publish_in_order((10..30).map(|i| (room.clone(), post(&format!("m{i}")))).collect()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    on_the_file(&node, "ALTER TABLE events_away RENAME TO events").await;

    let mut seqs = Vec::new();
    for reply in first.into_iter().chain(second) {
        seqs.push(posted(&answer(reply).await).1);
    }
    assert_eq!(seqs, (4..34).collect::<Vec<_>>(), "every post applied once, in the order it was published");
    let events = node.history(&room).await;
    assert_gapless(&events, 33);
    let texts: Vec<String> = events[3..].iter().map(message_text).collect();
    assert_eq!(texts, (0..30).map(|i| format!("m{i}")).collect::<Vec<_>>());
    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn a_released_shard_hands_over_what_it_holds_and_the_next_owner_applies_every_command_once() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 100, NEVER_IDLE).await;
    let room = node.create_room().await;
    let replies = node.publish_in_order((0..40).map(|i| (room.clone(), post(&format!("m{i}")))).collect()).await;

    // Handed over mid-stream: in-flight commands finish, the rest go back to the queue.
    let released = node.shards[0].send(Release { drain: TIMEOUT }).await.expect("the shard is alive");
    assert_eq!(released.still_stopping, 0, "every room actor stopped within the drain bound");
    node.no_room_actor_left().await;
    let stored_before = node.history(&room).await.len();

    // The next owner (a newer epoch) consumes the queue again.
    let epoch = node.store.max_fence().await.expect("fence") + 1;
    node.shards[0].send(Own { epoch }).await.expect("the shard is alive");
    let mut seqs = Vec::new();
    for reply in replies {
        seqs.push(posted(&answer(reply).await).1);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (3..43).collect::<Vec<_>>(), "every post applied once");
    let events = node.history(&room).await;
    assert_gapless(&events, 42);
    assert!(stored_before < events.len(), "the next owner applied what was handed over");
    let mut texts: Vec<String> = events[2..].iter().map(message_text).collect();
    texts.sort_unstable_by_key(|t| t[1..].parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(texts, (0..40).map(|i| format!("m{i}")).collect::<Vec<_>>());
    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn a_write_fenced_out_by_a_newer_owner_gives_the_whole_shard_up_and_is_applied_once_by_that_owner() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 100, NEVER_IDLE).await;
    let room = node.create_room().await;
    node.post(&room, "before").await;
    let epoch = node.store.max_fence().await.expect("fence");

    // A newer owner recorded its epoch (this node paused past its lease, say).
    let newer = rooms::store::Fence { shard: 0, epoch: epoch + 1 };
    assert!(node.store.raise_shard_fence(newer).await.expect("raise"));
    let mut replies = node.publish_in_order(vec![(room.clone(), post("late"))]).await;
    let gave_up = tokio::time::timeout(TIMEOUT, async { node.gave_up.lock().await.recv().await })
        .await
        .expect("the shard says it gave up in time")
        .expect("a give-up");
    assert_eq!(gave_up, GaveUp { shard: 0, epoch });
    node.no_room_actor_left().await;
    assert_eq!(node.history(&room).await.len(), 3, "the late write left nothing");
    let stale_before = metrics().stale_epoch_rejections.get();
    assert!(stale_before >= 1);

    // The newer owner applies it, once.
    node.shards[0].send(Own { epoch: newer.epoch }).await.expect("the shard is alive");
    let (_, seq) = posted(&answer(replies.remove(0)).await);
    assert_eq!(seq, 4);
    let events = node.history(&room).await;
    assert_gapless(&events, 4);
    assert_eq!(message_text(&events[3]), "late");
    node.shards[0].do_send(Fenced);
    node.no_room_actor_left().await;
}

#[actix::test]
async fn a_room_that_cannot_be_read_returns_its_commands_to_the_queue_until_the_delivery_limit_and_others_go_on() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 100, NEVER_IDLE).await;
    let (poisoned, healthy) = (node.create_room().await, node.create_room().await);
    node.stop_rooms(&[poisoned.clone(), healthy.clone()]).await;
    // The stored room can no longer be decoded (a kind no version of the code knows).
    on_the_file(&node, &format!("UPDATE rooms SET kind = 'bogus' WHERE id = '{poisoned}'")).await;

    let before = activations();
    let _lost = node.publish_in_order(vec![(poisoned.clone(), post("poison"))]).await;
    // Each delivery activates the room once and gives the command back: the in-process bus
    // drops it after its delivery limit (the broker dead-letters it), so this ends.
    eventually("the poisoned command is past its delivery limit", || activations() >= before + 50).await;
    node.post(&healthy, "still fine").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let settled = activations();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(activations() <= settled + 1, "no more redeliveries once past the limit");
    assert_eq!(node.history(&poisoned).await.len(), 2, "nothing of it was applied");
    node.stop_rooms(&[healthy]).await;
}

// Group commit: posts that wait together are committed in one transaction. To make a batch
// form, a second connection holds the file's write lock while the posts arrive: the room's
// first post waits on it, the others pile up behind it and go together once it is released.

/// A second connection holding the SQLite file's write lock until `release`.
struct WriteLock(sqlx::SqliteConnection);

impl WriteLock {
    async fn take(node: &Node) -> Self {
        let mut conn = sqlx::SqliteConnection::connect(&node.db.url()).await.expect("the file opens");
        sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.expect("the write lock");
        Self(conn)
    }

    async fn release(mut self) {
        sqlx::query("COMMIT").execute(&mut self.0).await.expect("the lock is released");
    }
}

/// Batches of two or more committed so far in this process, and the posts in them.
fn batches() -> (u64, f64) {
    let h = &metrics().commit_batch_size;
    (h.get_sample_count(), h.get_sample_sum())
}

/// An envelope of alice's, answered through the node's hub.
fn envelope(node: &Node, room: &RoomId, command_id: &str, command: RoomCommand) -> CommandEnvelope {
    CommandEnvelope {
        command_id: command_id.to_owned(),
        room_id: room.clone(),
        actor: alice(),
        tenant: acme(),
        reply_to: Some(ReplyTo { node: node.hub.node_id().to_owned(), correlation_id: new_id() }),
        issued_at_ms: now_ms(),
        command,
    }
}

impl Node {
    /// Publish these envelopes onto their shard queues in this order; their answers.
    async fn publish_envelopes(&self, envelopes: Vec<CommandEnvelope>) -> Vec<oneshot::Receiver<CommandOutcome>> {
        let mut replies = Vec::new();
        for envelope in envelopes {
            let reply_to = envelope.reply_to.as_ref().expect("answered");
            replies.push(self.hub.replies().expect(&reply_to.correlation_id));
            let payload = serde_json::to_vec(&envelope).expect("encodable");
            let shard = shard_of(&envelope.room_id, self.bus.shards());
            self.bus.publish_command(shard, &envelope.command_id, payload).await.expect("published");
        }
        replies
    }

    /// Publish `first`, then, while the file is locked and `first` waits on the lock, `rest`:
    /// they wait in the room actor together and form a batch once the lock is released.
    async fn publish_as_a_batch(
        &self,
        first: CommandEnvelope,
        rest: Vec<CommandEnvelope>,
    ) -> Vec<oneshot::Receiver<CommandOutcome>> {
        let lock = WriteLock::take(self).await;
        let mut replies = self.publish_envelopes(vec![first]).await;
        // The first is in hand (waiting on the lock) before the rest arrive.
        tokio::time::sleep(Duration::from_millis(100)).await;
        replies.extend(self.publish_envelopes(rest).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        lock.release().await;
        replies
    }
}

#[actix::test]
async fn a_command_redelivered_inside_a_batch_is_applied_once_and_both_copies_are_answered_alike() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 100, NEVER_IDLE).await;
    let room = node.create_room().await;
    node.post(&room, "before").await;
    let (count, sum) = batches();

    let first = envelope(&node, &room, &new_id(), post("first"));
    let twice = new_id();
    let rest = vec![
        envelope(&node, &room, &new_id(), post("a")),
        envelope(&node, &room, &twice, post("b")),
        envelope(&node, &room, &new_id(), post("c")),
        // The broker delivers "b" again (its first delivery was not acked in time, say).
        envelope(&node, &room, &twice, post("b")),
        envelope(&node, &room, &new_id(), post("d")),
    ];
    let replies = node.publish_as_a_batch(first, rest).await;
    let mut answers = Vec::new();
    for reply in replies {
        answers.push(posted(&answer(reply).await));
    }
    assert_eq!(batches().0, count + 1, "the five waited together and went as one batch");
    assert_eq!(batches().1, sum + 5.0);
    assert_eq!(answers[2], answers[4], "both copies of b are answered with what b did");
    let seqs: Vec<i64> = answers.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, vec![4, 5, 6, 7, 6, 8]);
    let events = node.history(&room).await;
    assert_gapless(&events, 8);
    let texts: Vec<String> = events[3..].iter().map(message_text).collect();
    assert_eq!(texts, ["first", "a", "b", "c", "d"], "b is stored once");
    assert_eq!(stored_copies(&events, &answers[2].0), 1);
    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn a_batch_holding_a_command_recorded_before_stores_every_other_command_once() {
    let _serial = SERIAL.lock().await;
    // A window of one: the repeated command is no longer in memory, only in the store.
    let node = Node::start(1, 1, NEVER_IDLE).await;
    let room = node.create_room().await;
    let old = new_id();
    let replies = node.publish_envelopes(vec![envelope(&node, &room, &old, post("old"))]).await;
    let (old_id, old_seq) = posted(&answer(replies.into_iter().next().expect("one")).await);
    node.post(&room, "since").await;
    let (count, _) = batches();

    let first = envelope(&node, &room, &new_id(), post("first"));
    let rest = vec![
        envelope(&node, &room, &new_id(), post("a")),
        envelope(&node, &room, &old, post("old")),
        envelope(&node, &room, &new_id(), post("b")),
    ];
    let replies = node.publish_as_a_batch(first, rest).await;
    let mut answers = Vec::new();
    for reply in replies {
        answers.push(posted(&answer(reply).await));
    }
    assert_eq!(batches().0, count + 1, "the three went as one batch");
    assert_eq!(answers[2], (old_id.clone(), old_seq), "the old command is answered from its record");
    let seqs: Vec<i64> = answers.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, vec![5, 6, old_seq, 7], "the others take the seqs that follow, in order");
    let events = node.history(&room).await;
    assert_gapless(&events, 7);
    let texts: Vec<String> = events[2..].iter().map(message_text).collect();
    assert_eq!(texts, ["old", "since", "first", "a", "b"]);
    assert_eq!(stored_copies(&events, &old_id), 1, "the old command is not applied again");
    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn posts_keep_their_order_across_batches() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 100, NEVER_IDLE).await;
    let room = node.create_room().await;
    node.post(&room, "before").await;
    let (count, sum) = batches();

    // More than two batches' worth wait at once.
    let n = 2 * rooms::actors::room::MAX_BATCH + 10;
    let first = envelope(&node, &room, &new_id(), post("m0"));
    let rest = (1..n).map(|i| envelope(&node, &room, &new_id(), post(&format!("m{i}")))).collect();
    let replies = node.publish_as_a_batch(first, rest).await;
    let mut seqs = Vec::new();
    for reply in replies {
        seqs.push(posted(&answer(reply).await).1);
    }
    assert!(batches().0 >= count + 3, "at least three batches");
    assert_eq!(batches().1, sum + (n - 1) as f64, "every post after the first was in a batch");
    assert_eq!(seqs, (4..4 + n as i64).collect::<Vec<_>>(), "answered in the order sent");
    let events = node.history(&room).await;
    assert_gapless(&events, 3 + n as i64);
    let texts: Vec<String> = events[3..].iter().map(message_text).collect();
    assert_eq!(texts, (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>());
    node.stop_rooms(&[room]).await;
}

#[actix::test]
async fn a_fenced_batch_writes_nothing_acks_nothing_and_the_newer_owner_applies_each_once() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(1, 100, NEVER_IDLE).await;
    let room = node.create_room().await;
    node.post(&room, "before").await;
    let epoch = node.store.max_fence().await.expect("fence");
    // A newer owner records its epoch right as the first post commits (that post still passed
    // the fence): the batch behind it is written with a stale epoch.
    on_the_file(
        &node,
        &format!(
            "CREATE TRIGGER newer_owner AFTER INSERT ON events WHEN NEW.body LIKE '%first%' \
             BEGIN UPDATE shard_fences SET fence = {} WHERE shard = 0; END",
            epoch + 1
        ),
    )
    .await;
    let (count, sum) = batches();
    let stale = metrics().stale_epoch_rejections.get();

    let first = envelope(&node, &room, &new_id(), post("first"));
    let rest = (0..10).map(|i| envelope(&node, &room, &new_id(), post(&format!("m{i}")))).collect();
    let mut replies = node.publish_as_a_batch(first, rest).await.into_iter();
    assert_eq!(posted(&answer(replies.next().expect("first")).await).1, 4);
    let gave_up = tokio::time::timeout(TIMEOUT, async { node.gave_up.lock().await.recv().await })
        .await
        .expect("the shard says it gave up in time")
        .expect("a give-up");
    assert_eq!(gave_up, GaveUp { shard: 0, epoch });
    node.no_room_actor_left().await;
    assert_eq!((batches().0, batches().1), (count + 1, sum + 10.0), "the ten went as one batch");
    assert_eq!(metrics().stale_epoch_rejections.get(), stale + 1, "one write refused: the batch's");
    assert_eq!(node.history(&room).await.len(), 4, "the fenced batch left nothing");
    on_the_file(&node, "DROP TRIGGER newer_owner").await;

    // Nothing of the batch was acked: every command is still on the queue, and the newer owner
    // applies each once.
    node.shards[0].send(Own { epoch: epoch + 1 }).await.expect("the shard is alive");
    let mut seqs = Vec::new();
    for reply in replies {
        seqs.push(posted(&answer(reply).await).1);
    }
    // Commands given back across a move may come back in another order (docs/scaling.md).
    seqs.sort_unstable();
    assert_eq!(seqs, (5..15).collect::<Vec<_>>());
    let events = node.history(&room).await;
    assert_gapless(&events, 14);
    let mut texts: Vec<String> = events[4..].iter().map(message_text).collect();
    texts.sort_unstable_by_key(|t| t[1..].parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(texts, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    node.shards[0].do_send(Fenced);
    node.no_room_actor_left().await;
}
