//! Presence in Redis: a crashed node's entries are swept by the live ones, and a session is
//! present before it serves its first frame. Real binaries, Redis read with `redis-cli` under
//! the test's key prefix.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use e2e::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn redis_url() -> String {
    std::env::var("E2E_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// One `redis-cli` command; its output lines.
fn redis(args: &[&str]) -> Vec<String> {
    let out = Command::new("redis-cli").arg("-u").arg(redis_url()).arg("--raw").args(args).output().expect("redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// The nodes holding presence entries of `user`.
fn nodes_of(prefix: &str, user: &str) -> Vec<String> {
    redis(&["HKEYS", &format!("{prefix}presence:user:{user}")])
}

#[actix_rt::test]
async fn the_presence_entries_of_a_crashed_node_are_swept_by_a_live_one() {
    let mut rooms = Rooms::start(RoomsOptions::new("sweep")).await;
    let prefix = format!("{}:", rooms.opts.name);
    let _alice = Ws::connect(&rooms.ws_url(), &token("alice", "acme")).await;
    let _bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;
    let dead = eventually(10, "alice's presence", || async { nodes_of(&prefix, "alice").pop() }).await;
    eventually(10, "bob's presence", || async { nodes_of(&prefix, "bob").contains(&dead).then_some(()) }).await;
    let node_users = format!("{prefix}presence:node-users:{dead}");
    assert_eq!(redis(&["SCARD", &node_users]), vec!["2"]);

    // kill -9: nothing is cleaned up by the dying node. A new node starts on the same keys.
    rooms.restart().await;
    let mut carol = Ws::connect(&rooms.ws_url(), &token("carol", "acme")).await;
    carol.send(json!({"type": "ping"})).await;
    carol.expect(5, "pong", |f| f["type"] == "pong").await;
    let live = eventually(10, "carol's presence", || async { nodes_of(&prefix, "carol").pop() }).await;
    assert_ne!(live, dead);

    // Within the liveness TTL (15 s) and a sweep interval (10 s) the dead node's entries go.
    eventually(60, "the crashed node's entries swept", || async {
        let left = nodes_of(&prefix, "alice").contains(&dead)
            || nodes_of(&prefix, "bob").contains(&dead)
            || redis(&["EXISTS", &node_users]) != vec!["0"];
        (!left).then_some(())
    })
    .await;
    // The live node's entries stay.
    assert_eq!(nodes_of(&prefix, "carol"), vec![live.clone()]);
    assert!(redis(&["SISMEMBER", &format!("{prefix}presence:node-users:{live}"), "carol"]) == vec!["1"]);
}

/// A TCP proxy to Redis that holds back, by `delay`, every client chunk carrying a `HINCRBY`
/// (a session's presence write) and whatever follows it on that connection.
async fn slow_presence_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if buf[..n].windows(7).any(|w| w.eq_ignore_ascii_case(b"HINCRBY")) {
                            tokio::time::sleep(delay).await;
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    addr
}

#[actix_rt::test]
async fn a_message_committed_right_after_a_sync_is_pushed_even_when_the_presence_write_is_slow() {
    // Node A runs the rooms; node B (same store, queues and keys) hosts bob's session and writes
    // its presence through a proxy that delays each presence write by 400 ms (less than the
    // Redis client's response timeout).
    let a = Rooms::start(RoomsOptions::new("presrace")).await;
    let room = create_room(&a.base(), "alice", "acme", &["bob"], Some("race")).await;
    let redis_addr: SocketAddr = {
        let url = redis_url();
        let hostport = url.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_owned();
        tokio::net::lookup_host(hostport).await.expect("redis address").next().expect("an address")
    };
    let proxy = slow_presence_proxy(redis_addr, Duration::from_millis(400)).await;
    let name = a.opts.name.clone();
    let mut opts = RoomsOptions::new("presrace-b");
    opts.vhost = a.opts.vhost.clone();
    let opts = opts
        .env("CHAT__DATABASE__SCHEMA", &name)
        .env("CHAT__AMQP__PREFIX", &format!("{name}."))
        .env("CHAT__REDIS__PREFIX", &format!("{name}:"))
        .env("CHAT__REDIS__URL", &format!("redis://{proxy}"));
    let b = Rooms::start(opts).await;

    for round in 0..3 {
        let mut bob = Ws::connect(&b.ws_url(), &token("bob", "acme")).await;
        bob.send(json!({"type": "sync", "rooms": {room.clone(): 0}})).await;
        let synced = bob.expect(10, "synced", |f| f["type"] == "synced").await;
        let after = synced["rooms"][&room].as_i64().unwrap_or(0);
        // Committed after bob's sync was answered: the sync cannot have it, so it must be pushed.
        let key = format!("r{round}");
        let posted = post_text(&a.base(), &room, "alice", "acme", &key, &key).await;
        assert_eq!(posted.status, 201, "{}", posted.body);
        let seq = posted.body["seq"].as_i64().expect("seq");
        assert!(seq > after);
        let what = format!("round {round}: the message committed after bob's sync, pushed to him");
        bob.expect(10, &what, |f| f["type"] == "message" && f["seq"].as_i64() == Some(seq)).await;
    }
}

/// Pushes a session missed (its presence entry was gone, as after Redis lost its data) are read
/// from the store and sent before the next push of that room, so the client gets the room's
/// events once each, in seq order, without reconnecting. The presence cache is off here: with
/// it, a user's entry deleted behind its back is still found (until it expires), and this test
/// needs the pushes missed.
#[actix_rt::test]
async fn pushes_a_session_missed_are_filled_from_the_store_in_seq_order_before_the_next_one() {
    let rooms = Rooms::start(RoomsOptions::new("gapfill").env("CHAT__PRESENCE__CACHE_USERS", "0")).await;
    let prefix = format!("{}:", rooms.opts.name);
    let base = rooms.base();
    let room = create_room(&base, "alice", "acme", &["bob"], Some("g")).await;
    let mut bob = Ws::connect(&rooms.ws_url(), &token("bob", "acme")).await;
    let node = eventually(10, "bob's presence", || async { nodes_of(&prefix, "bob").pop() }).await;
    assert_eq!(post_text(&base, &room, "alice", "acme", "m1", "m1").await.status, 201);
    let first = bob.expect(10, "m1", |f| f["type"] == "message" && f["body"]["text"] == "m1").await;

    // Bob's presence entry vanishes: the next posts do not reach his node.
    let key = format!("{prefix}presence:user:bob");
    redis(&["DEL", &key]);
    for text in ["m2", "m3"] {
        assert_eq!(post_text(&base, &room, "alice", "acme", text, text).await.status, 201);
    }
    let missed = bob.drain(1).await;
    assert!(missed.iter().all(|f| f["type"] != "message"), "nothing reached bob meanwhile: {missed:?}");

    // It is back; the next post's push shows the gap, which is filled first.
    redis(&["HSET", &key, &node, "1"]);
    assert_eq!(post_text(&base, &room, "alice", "acme", "m4", "m4").await.status, 201);
    let mut got = Vec::new();
    while got.len() < 3 {
        match bob.next(10).await {
            Got::Frame(f) if f["type"] == "message" => got.push(f),
            Got::Frame(f) => assert_ne!(f["type"], "synced", "a gap fill is not a client's sync"),
            other => panic!("bob got {} of 3 messages, then {other:?}", got.len()),
        }
    }
    let texts: Vec<&str> = got.iter().map(|f| f["body"]["text"].as_str().unwrap_or_default()).collect();
    assert_eq!(texts, ["m2", "m3", "m4"]);
    let seqs: Vec<i64> = got.iter().map(|f| f["seq"].as_i64().unwrap_or_default()).collect();
    let m1 = first["seq"].as_i64().unwrap_or_default();
    assert_eq!(seqs, [m1 + 1, m1 + 2, m1 + 3], "in seq order, none twice");
    assert!(bob.drain(1).await.iter().all(|f| f["type"] != "message"), "nothing sent twice");
}
