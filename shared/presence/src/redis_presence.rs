//! Presence in Redis, shared by every node.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chat_protocol::UserId;
use redis::aio::ConnectionManager;

use crate::{NodeMap, Presence, PresenceError};

/// How long a node stays live without a heartbeat.
const NODE_TTL: Duration = Duration::from_secs(15);
/// How long the set of live nodes is trusted before asking Redis again.
const LIVE_CACHE: Duration = Duration::from_secs(1);

pub struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    node: String,
    live_nodes: Mutex<Option<(Instant, HashSet<String>)>>,
}

fn redis_err(err: redis::RedisError) -> PresenceError {
    PresenceError::Redis(err.to_string())
}

impl RedisPresence {
    pub async fn connect(url: &str, prefix: &str, node: &str) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = ConnectionManager::new(client).await.map_err(redis_err)?;
        let presence = Self { conn, prefix: prefix.to_owned(), node: node.to_owned(), live_nodes: Mutex::new(None) };
        presence.heartbeat().await?;
        Ok(presence)
    }

    fn user_key(&self, user: &UserId) -> String {
        format!("{}presence:user:{user}", self.prefix)
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}presence:node:{node}", self.prefix)
    }

    fn node_users_key(&self) -> String {
        format!("{}presence:node-users:{}", self.prefix, self.node)
    }

    fn cached_live(&self, nodes: &HashSet<String>) -> Option<HashSet<String>> {
        let guard = self.live_nodes.lock().ok()?;
        let (at, live) = guard.as_ref()?;
        let fresh = at.elapsed() < LIVE_CACHE && nodes.iter().all(|n| live.contains(n));
        fresh.then(|| live.clone())
    }

    async fn live(&self, nodes: HashSet<String>) -> Result<HashSet<String>, PresenceError> {
        if let Some(live) = self.cached_live(&nodes) {
            return Ok(live);
        }
        let names: Vec<String> = nodes.into_iter().collect();
        let mut pipe = redis::pipe();
        for n in &names {
            pipe.exists(self.node_key(n));
        }
        let mut conn = self.conn.clone();
        let alive: Vec<bool> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
        let live: HashSet<String> = names.into_iter().zip(alive).filter_map(|(n, ok)| ok.then_some(n)).collect();
        if let Ok(mut guard) = self.live_nodes.lock() {
            *guard = Some((Instant::now(), live.clone()));
        }
        Ok(live)
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn session_opened(&self, user: &UserId) -> Result<(), PresenceError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .hincr(self.user_key(user), &self.node, 1)
            .ignore()
            .sadd(self.node_users_key(), user.as_str())
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)
    }

    async fn session_closed(&self, user: &UserId) -> Result<(), PresenceError> {
        // Decrement, and drop the field once no session is left (atomic in one script).
        let script = redis::Script::new(
            r"local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
              if n <= 0 then
                redis.call('HDEL', KEYS[1], ARGV[1])
                redis.call('SREM', KEYS[2], ARGV[2])
              end
              return n",
        );
        let mut conn = self.conn.clone();
        script
            .key(self.user_key(user))
            .key(self.node_users_key())
            .arg(&self.node)
            .arg(user.as_str())
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(redis_err)
    }

    async fn locate(&self, users: &[UserId]) -> Result<NodeMap, PresenceError> {
        if users.is_empty() {
            return Ok(NodeMap::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hkeys(self.user_key(user));
        }
        let mut conn = self.conn.clone();
        let nodes_per_user: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
        let all: HashSet<String> = nodes_per_user.iter().flatten().cloned().collect();
        if all.is_empty() {
            return Ok(NodeMap::new());
        }
        let live = self.live(all).await?;
        let mut map = NodeMap::new();
        for (user, nodes) in users.iter().zip(nodes_per_user) {
            for node in nodes.into_iter().filter(|n| live.contains(n)) {
                map.entry(node).or_default().push(user.clone());
            }
        }
        Ok(map)
    }

    async fn heartbeat(&self) -> Result<(), PresenceError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.node_key(&self.node))
            .arg(1)
            .arg("PX")
            .arg(NODE_TTL.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)
    }

    async fn leave(&self) -> Result<(), PresenceError> {
        let mut conn = self.conn.clone();
        let users: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.node_users_key()).query_async(&mut conn).await.map_err(redis_err)?;
        let mut pipe = redis::pipe();
        for user in users.into_iter().map(UserId::from) {
            pipe.hdel(self.user_key(&user), &self.node).ignore();
        }
        pipe.del(self.node_users_key()).ignore().del(self.node_key(&self.node)).ignore();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_err)
    }

    fn node_id(&self) -> &str {
        &self.node
    }
}
