//! `RedisPresence` against the real Redis (`E2E_REDIS_URL`, default the local one), under a key
//! prefix of its own that is removed afterwards.

use chat_presence::{Presence, RedisPresence};
use chat_protocol::UserId;

fn url() -> String {
    std::env::var("E2E_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url()).expect("redis url");
    client.get_multiplexed_async_connection().await.expect("redis")
}

async fn cmd<T: redis::FromRedisValue>(args: &[&str]) -> T {
    let mut c = conn().await;
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query_async(&mut c).await.expect("redis command")
}

/// Delete every key of the prefix.
async fn clean(prefix: &str) {
    let keys: Vec<String> = cmd(&["KEYS", &format!("{prefix}*")]).await;
    for key in keys {
        let _: i64 = cmd(&["DEL", &key]).await;
    }
}

#[tokio::test]
async fn a_dead_nodes_entries_are_swept_and_a_node_thought_dead_writes_them_again() {
    let prefix = format!("e2e_presence_unit_{}:", std::process::id());
    let a = RedisPresence::connect(&url(), &prefix, "a").await.expect("node a");
    let b = RedisPresence::connect(&url(), &prefix, "b").await.expect("node b");
    let (alice, bob, carol) = (UserId::new("alice"), UserId::new("bob"), UserId::new("carol"));
    a.session_opened(&alice).await.unwrap();
    a.session_opened(&alice).await.unwrap();
    a.session_opened(&bob).await.unwrap();
    b.session_opened(&carol).await.unwrap();
    assert_eq!(b.sweep(100).await.unwrap(), 0, "nobody is dead");

    // Node a stops heartbeating: its liveness key expires (deleted here rather than waited for).
    let _: i64 = cmd(&["DEL", &format!("{prefix}presence:node:a")]).await;
    let users = [alice.clone(), bob.clone(), carol.clone()];
    let located = b.locate(&users).await.unwrap();
    assert_eq!(located.len(), 1, "only b is live: {located:?}");

    // Bounded rounds: one entry, then the rest.
    assert_eq!(b.sweep(1).await.unwrap(), 1);
    assert_eq!(b.sweep(100).await.unwrap(), 1);
    assert_eq!(b.sweep(100).await.unwrap(), 0);
    for user in ["alice", "bob"] {
        let fields: Vec<String> = cmd(&["HKEYS", &format!("{prefix}presence:user:{user}")]).await;
        assert!(fields.is_empty(), "{user}: {fields:?}");
    }
    let exists: i64 = cmd(&["EXISTS", &format!("{prefix}presence:node-users:a")]).await;
    assert_eq!(exists, 0);
    let nodes: Vec<String> = cmd(&["SMEMBERS", &format!("{prefix}presence:nodes")]).await;
    assert_eq!(nodes, vec!["b".to_owned()], "a left the registry");
    let carols: Vec<String> = cmd(&["HKEYS", &format!("{prefix}presence:user:carol")]).await;
    assert_eq!(carols, vec!["b".to_owned()], "a live node's entries stay");

    // Node a was only slow: its next heartbeat finds its key gone and writes its entries again.
    a.heartbeat().await.unwrap();
    let count: String = cmd(&["HGET", &format!("{prefix}presence:user:alice"), "a"]).await;
    assert_eq!(count, "2");
    // b found a dead less than a second ago, and trusts that answer for up to a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let located = b.locate(&users).await.unwrap();
        if located.get("a").map(Vec::len) == Some(2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{located:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A graceful leave takes everything of a away, registry included.
    a.leave().await.unwrap();
    let nodes: Vec<String> = cmd(&["SMEMBERS", &format!("{prefix}presence:nodes")]).await;
    assert_eq!(nodes, vec!["b".to_owned()]);
    clean(&prefix).await;
}
