//! The room list (`GET /v1/rooms`) against a large history: what it answers (unread counts for
//! read markers anywhere, the last message) stays exact, and what it reads of the `events` table
//! does not grow with the history. Rows read are PostgreSQL's own counters for this test's
//! schema (`pg_stat_user_tables`), never a time.

use std::time::{Duration, Instant};

use e2e::*;
use futures_util::future::join_all;
use serde_json::{json, Value};

/// Messages in the large room: enough that reading the history is unmistakable next to the
/// handful of rows the list needs.
const HISTORY: usize = 2000;

/// Rows of `events` in `schema` read so far (sequential and index fetches), and index scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventReads {
    tuples: i64,
    scans: i64,
}

fn event_reads(schema: &str) -> EventReads {
    let sql = format!(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0), coalesce(seq_scan, 0) + coalesce(idx_scan, 0) \
         from pg_stat_user_tables where schemaname = '{schema}' and relname = 'events'"
    );
    let out = std::process::Command::new("psql").args([database_url().as_str(), "-AtF", " ", "-c", &sql]).output();
    let out = out.expect("psql runs");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut fields = text.split(' ').map(|f| f.parse::<i64>().unwrap_or_else(|_| panic!("stats row: {text:?}")));
    EventReads { tuples: fields.next().expect("tuples"), scans: fields.next().expect("scans") }
}

/// The counters once every backend has reported: a backend that is idle reports what it has
/// pending within 10 s (PostgreSQL 15's idle stats interval), so counters unchanged for longer
/// than that hold every read done before this call.
async fn settled_event_reads(schema: &str) -> EventReads {
    let quiet_for = Duration::from_secs(12);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = event_reads(schema);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = event_reads(schema);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet_for {
            return now;
        }
        assert!(Instant::now() < deadline, "the statistics of {schema}.events never settled");
    }
}

async fn list(base: &str, user: &str) -> Vec<Value> {
    let a = call("GET", &format!("{base}/v1/rooms"), Some(&token(user, "acme")), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["rooms"].as_array().cloned().expect("rooms")
}

fn room_in<'a>(rooms: &'a [Value], id: &str) -> &'a Value {
    rooms.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("room {id} not listed: {rooms:?}"))
}

/// What the list must say about `room` for `user` whose marker is `read_seq`, computed from the
/// whole history as a client would.
fn expected_unread(events: &[Value], user: &str, read_seq: i64) -> i64 {
    messages(events).iter().filter(|m| m["seq"].as_i64() > Some(read_seq) && m["sender"] != user).count() as i64
}

async fn mark_read(base: &str, room: &str, user: &str, seq: i64) -> i64 {
    let body = json!({ "seq": seq }).to_string();
    let a = call("POST", &format!("{base}/v1/rooms/{room}/read"), Some(&token(user, "acme")), Some(&body)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["read_seq"].as_i64().expect("read_seq")
}

#[actix_rt::test]
async fn the_room_list_reads_a_few_event_rows_however_long_the_history_and_its_counts_stay_exact() {
    // The history is a fixture: posted as fast as the room takes it, past the per-user budget.
    let rooms = Rooms::start(RoomsOptions::new("roomlist").env("CHAT__QUOTA__POSTS_PER_MINUTE", "0")).await;
    let base = rooms.base();
    let schema = rooms.opts.name.clone();
    let big = create_room(&base, "alice", "acme", &["bob"], Some("busy")).await;
    let quiet = create_room(&base, "alice", "acme", &["bob", "carl"], Some("quiet")).await;

    // A long history: mostly alice, every seventh message bob's, sixteen posts in flight.
    let indices: Vec<usize> = (0..HISTORY).collect();
    for chunk in indices.chunks(16) {
        let posts = chunk.iter().map(|i| {
            let (base, big) = (base.clone(), big.clone());
            let sender = if i % 7 == 3 { "bob" } else { "alice" };
            async move { post_text(&base, &big, sender, "acme", &format!("m{i}"), &format!("message {i}")).await }
        });
        for posted in join_all(posts).await {
            assert_eq!(posted.status, 201, "{}", posted.body);
        }
    }
    assert_eq!(post_text(&base, &quiet, "carl", "acme", "q1", "hello quiet").await.status, 201);

    // What the list says is what the history says, for every member.
    let events = history(&base, &big, "alice", "acme").await;
    assert_eq!(messages(&events).len(), HISTORY);
    let last_message = messages(&events).last().copied().cloned().expect("a last message");
    let last_seq = events.last().and_then(|e| e["seq"].as_i64()).expect("last seq");
    for user in ["alice", "bob"] {
        let listed = list(&base, user).await;
        let room = room_in(&listed, &big);
        assert_eq!(room["unread"].as_i64(), Some(expected_unread(&events, user, 0)), "{user}: {room}");
        assert_eq!(room["last_seq"].as_i64(), Some(last_seq));
        assert_eq!(room["read_seq"].as_i64(), Some(0));
        assert_eq!(room["last_message"], last_message, "{user}");
        let quiet_room = room_in(&listed, &quiet);
        assert_eq!(quiet_room["unread"].as_i64(), Some(1), "carl's message is unread for {user}");
        assert_eq!(quiet_room["last_message"]["body"]["text"], "hello quiet");
    }

    // The list's cost: rows of `events` read by three lists of a member with 2 rooms.
    let before = settled_event_reads(&schema).await;
    for _ in 0..3 {
        assert_eq!(list(&base, "bob").await.len(), 2);
    }
    let after = settled_event_reads(&schema).await;
    let (tuples, scans) = (after.tuples - before.tuples, after.scans - before.scans);
    println!("3 room lists over a {HISTORY}-message history read {tuples} event rows in {scans} scans");
    assert!(
        tuples <= 3 * 2,
        "3 room lists read {tuples} rows of events ({scans} scans) for a {HISTORY}-message history: \
         the list reads the history instead of one row per room"
    );

    // Read markers anywhere: on a system event, on bob's own message, on alice's, past the end.
    let seq_of = |pred: &dyn Fn(&Value) -> bool| events.iter().find(|e| pred(e)).and_then(|e| e["seq"].as_i64());
    let own = seq_of(&|e| e["sender"] == "bob" && e["seq"].as_i64() > Some(500)).expect("a message of bob's");
    let others = seq_of(&|e| e["sender"] == "alice" && e["seq"].as_i64() > Some(own)).expect("one of alice's");
    for seq in [1, own, others, last_seq - 3, last_seq + 100] {
        let marker = mark_read(&base, &big, "bob", seq).await;
        assert_eq!(marker, seq.min(last_seq));
        let room = room_in(&list(&base, "bob").await, &big).clone();
        assert_eq!(room["read_seq"].as_i64(), Some(marker));
        assert_eq!(room["unread"].as_i64(), Some(expected_unread(&events, "bob", marker)), "marker {marker}");
        let one = call("GET", &format!("{base}/v1/rooms/{big}"), Some(&token("bob", "acme")), None).await;
        assert_eq!(one.body["unread"], room["unread"], "the room's own view agrees at marker {marker}");
    }
    assert_eq!(room_in(&list(&base, "bob").await, &big)["unread"].as_i64(), Some(0));

    // Members who join later, leave and come back count from the history, their own posts aside.
    let add = |user: &'static str| {
        let (base, big) = (base.clone(), big.clone());
        async move {
            let body = json!({ "users": [user] }).to_string();
            let a = call("POST", &format!("{base}/v1/rooms/{big}/members"), Some(&token("alice", "acme")), Some(&body))
                .await;
            assert_eq!(a.body["added"], json!([user]), "{}", a.body);
        }
    };
    add("carl").await;
    for i in 0..2 {
        assert_eq!(post_text(&base, &big, "carl", "acme", &format!("c{i}"), "carl here").await.status, 201);
    }
    let left = call("POST", &format!("{base}/v1/rooms/{big}/leave"), Some(&token("carl", "acme")), None).await;
    assert_eq!(left.status, 200, "{}", left.body);
    add("carl").await;
    // Carl's last message, recalled: still the last message, shown recalled.
    let carls = history(&base, &big, "carl", "acme").await;
    let carls_last = messages(&carls).last().copied().cloned().expect("carl's message");
    assert_eq!(carls_last["sender"], "carl");
    let recalled = call(
        "DELETE",
        &format!("{base}/v1/rooms/{big}/messages/{}", carls_last["message_id"].as_str().expect("id")),
        Some(&token("carl", "acme")),
        None,
    )
    .await;
    assert_eq!(recalled.status, 200, "{}", recalled.body);
    let events = history(&base, &big, "alice", "acme").await;
    for user in ["alice", "bob", "carl"] {
        let listed = list(&base, user).await;
        let room = room_in(&listed, &big);
        let read_seq = room["read_seq"].as_i64().expect("read_seq");
        assert_eq!(room["unread"].as_i64(), Some(expected_unread(&events, user, read_seq)), "{user}: {room}");
        let last = messages(&events).last().copied().cloned().expect("a last message");
        assert_eq!(last["recalled"], true);
        assert_eq!(room["last_message"], last, "{user}");
    }
    assert_eq!(room_in(&list(&base, "carl").await, &big)["unread"].as_i64(), Some(HISTORY as i64));
}
