//! `CachedPresence` against a real Redis: a redis-server of each test's own, on a free port
//! (`E2E_REDIS_SERVER` names the binary, default `redis-server`), so the commands it counts are
//! only the test's.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_presence::{CacheConfig, CachedPresence, NodeMap, Presence, RedisPresence};
use chat_protocol::UserId;

const PREFIX: &str = "cache_test:";

/// An hour: in these tests only a change event (or a new subscription) can refresh an entry.
const NO_EXPIRY: CacheConfig = CacheConfig { max_users: 100_000, max_age: Duration::from_secs(3600) };

struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(std::env::var("E2E_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server (is it installed?): {e}"));
        let redis = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = redis::Client::open(redis.url()) {
                if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                    if redis::cmd("PING").query_async::<String>(&mut c).await.is_ok() {
                        return redis;
                    }
                }
            }
            assert!(Instant::now() < deadline, "redis-server on port {port} not answering within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    /// Commands the server ran so far, `INFO`, `PING` and `CLIENT` not counted (the test's own
    /// probes, the subscriber's pings).
    async fn commands(&self) -> u64 {
        let mut c = self.conn().await;
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
        info.lines()
            .filter_map(|line| line.strip_prefix("cmdstat_"))
            .filter(|line| !["info:", "ping:", "client|"].iter().any(|skip| line.starts_with(skip)))
            .filter_map(|line| line.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn users(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|n| UserId::new(*n)).collect()
}

fn sorted(mut map: NodeMap) -> NodeMap {
    map.values_mut().for_each(|v| v.sort());
    map
}

/// Let the change events of the writes just made reach the cache's subscriber (a read that a
/// change of its user overtakes is not cached, so a test counting reads waits for them first).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Poll `locate` until `done` holds of its answer (5 s at most), returning that answer.
async fn until(p: &CachedPresence, who: &[UserId], what: &str, done: impl Fn(&NodeMap) -> bool) -> NodeMap {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let map = p.locate(who).await.unwrap();
        if done(&map) {
            return map;
        }
        assert!(Instant::now() < deadline, "{what}: still {map:?} after 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn repeated_locates_ask_redis_nothing() {
    let redis = PrivateRedis::start().await;
    let a = CachedPresence::connect(&redis.url(), PREFIX, "a", NO_EXPIRY).await.unwrap();
    let b = RedisPresence::connect(&redis.url(), PREFIX, "b").await.unwrap();
    let room: Vec<UserId> = (0..100).map(|i| UserId::new(format!("u{i}"))).collect();
    for user in &room[..10] {
        a.session_opened(user).await.unwrap();
    }
    for user in &room[10..60] {
        b.session_opened(user).await.unwrap();
    }
    settle().await;

    let before = redis.commands().await;
    let first = sorted(a.locate(&room).await.unwrap());
    let first_cost = redis.commands().await - before;
    assert_eq!(first.get("a").map(Vec::len), Some(10));
    assert_eq!(first.get("b").map(Vec::len), Some(50));
    assert_eq!(first.len(), 2);
    // 100 HKEYS and the liveness of the 2 nodes.
    assert_eq!(first_cost, 102, "the first locate reads every user and node");

    let before = redis.commands().await;
    for _ in 0..100 {
        assert_eq!(sorted(a.locate(&room).await.unwrap()), first);
    }
    assert_eq!(redis.commands().await - before, 0, "100 more locates of the same room");
    let stats = a.stats();
    assert_eq!((stats.users, stats.misses, stats.hits), (100, 100, 100 * 100));

    // Past the liveness cache (1 s): one EXISTS per node, no user read again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = redis.commands().await;
    assert_eq!(sorted(a.locate(&room).await.unwrap()), first);
    assert_eq!(sorted(a.locate(&room).await.unwrap()), first);
    assert_eq!(redis.commands().await - before, 2, "the 2 nodes' liveness, once");
}

#[tokio::test]
async fn sessions_opened_and_closed_elsewhere_reach_the_cache_at_once() {
    let redis = PrivateRedis::start().await;
    let a = CachedPresence::connect(&redis.url(), PREFIX, "a", NO_EXPIRY).await.unwrap();
    let b = RedisPresence::connect(&redis.url(), PREFIX, "b").await.unwrap();
    let who = users(&["carol", "dave"]);
    assert!(a.locate(&who).await.unwrap().is_empty());
    let misses = a.stats().misses;

    let started = Instant::now();
    b.session_opened(&who[0]).await.unwrap();
    let map = until(&a, &who, "carol online on b", |m| m.contains_key("b")).await;
    assert_eq!(map.get("b"), Some(&users(&["carol"])));
    println!("carol seen online after {:?}", started.elapsed());

    // A second session on b changes nothing; closing one of two neither.
    b.session_opened(&who[0]).await.unwrap();
    b.session_closed(&who[0]).await.unwrap();
    assert_eq!(a.locate(&who).await.unwrap().get("b"), Some(&users(&["carol"])));

    // A session on this node itself (through the cache), and on both nodes at once.
    a.session_opened(&who[1]).await.unwrap();
    a.session_opened(&who[0]).await.unwrap();
    let map = sorted(until(&a, &who, "carol and dave on a", |m| m.get("a").is_some_and(|v| v.len() == 2)).await);
    assert_eq!(map.get("a"), Some(&users(&["carol", "dave"])));
    assert_eq!(map.get("b"), Some(&users(&["carol"])));

    let started = Instant::now();
    b.session_closed(&who[0]).await.unwrap();
    until(&a, &who, "carol gone from b", |m| !m.contains_key("b")).await;
    println!("carol seen offline on b after {:?}", started.elapsed());
    a.session_closed(&who[0]).await.unwrap();
    a.session_closed(&who[1]).await.unwrap();
    until(&a, &who, "everyone offline", NodeMap::is_empty).await;
    assert_eq!(a.stats().misses, misses, "every answer came from the cache, refreshed by changes");
}

#[tokio::test]
async fn cached_answers_still_skip_dead_nodes() {
    let redis = PrivateRedis::start().await;
    let a = CachedPresence::connect(&redis.url(), PREFIX, "a", NO_EXPIRY).await.unwrap();
    let b = RedisPresence::connect(&redis.url(), PREFIX, "b").await.unwrap();
    let who = users(&["erin"]);
    b.session_opened(&who[0]).await.unwrap();
    settle().await;
    assert_eq!(a.locate(&who).await.unwrap().get("b"), Some(&who));
    // b stops heartbeating: its liveness key expires (deleted here rather than waited for).
    let mut c = redis.conn().await;
    let _: i64 = redis::cmd("DEL").arg(format!("{PREFIX}presence:node:b")).query_async(&mut c).await.unwrap();
    until(&a, &who, "b dead", NodeMap::is_empty).await;
    // Back (it was only slow): it writes its entries again and tells the caches.
    b.heartbeat().await.unwrap();
    // (a remembers for up to a second that b was dead.)
    until(&a, &who, "b back", |m| m.contains_key("b")).await;
    assert_eq!(a.stats().misses, 1, "erin was read once, then served from the cache");
}

#[tokio::test]
async fn a_lost_subscription_empties_the_cache() {
    let redis = PrivateRedis::start().await;
    let a = CachedPresence::connect(&redis.url(), PREFIX, "a", NO_EXPIRY).await.unwrap();
    let b = RedisPresence::connect(&redis.url(), PREFIX, "b").await.unwrap();
    let who = users(&["frank"]);
    assert!(a.locate(&who).await.unwrap().is_empty());
    // A change whose event is lost: written behind the cache's back.
    let mut c = redis.conn().await;
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{PREFIX}presence:user:frank"))
        .arg("b")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(a.locate(&who).await.unwrap().is_empty(), "the cache answers, and does not know");
    assert_eq!(a.stats().subscriptions, 1);

    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut c).await.unwrap();
    assert_eq!(killed, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.stats().subscriptions < 2 {
        assert!(Instant::now() < deadline, "not subscribed again within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a.stats().users, 0, "emptied: changes may have been missed");
    assert_eq!(a.locate(&who).await.unwrap().get("b"), Some(&who));

    // And the new subscription carries changes again.
    let _: i64 = redis::cmd("DEL").arg(format!("{PREFIX}presence:user:frank")).query_async(&mut c).await.unwrap();
    b.session_opened(&who[0]).await.unwrap();
    b.session_closed(&who[0]).await.unwrap();
    until(&a, &who, "frank offline", NodeMap::is_empty).await;
}
