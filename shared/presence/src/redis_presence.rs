//! Presence in Redis, shared by every node.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chat_protocol::UserId;
use redis::aio::ConnectionManager;

use crate::{NodeMap, Presence, PresenceError};

/// How long a node stays live without a heartbeat.
const NODE_TTL: Duration = Duration::from_secs(15);
/// How long a node's liveness (alive or not) is trusted before asking Redis again.
const LIVE_CACHE: Duration = Duration::from_secs(1);
/// Liveness answers kept at most before the old ones are dropped (node ids carry a boot id, so
/// every restart adds one).
const LIVE_CACHE_NODES: usize = 256;
/// Entries one sweep script removes at most (one short step of Redis's single thread).
const SWEEP_STEP: usize = 200;

/// Remove up to ARGV[2] entries of a node (ARGV[1]) whose liveness key (KEYS[1]) is gone: its
/// field in each listed user's hash (ARGV[3] is the user key prefix), the users from its set
/// (KEYS[2]), and the node from the node registry (KEYS[3]) once its set is empty. Atomic, so a
/// node that comes back (and writes its entries again) is never swept halfway. -1: alive.
const SWEEP_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local users = redis.call('SRANDMEMBER', KEYS[2], tonumber(ARGV[2]))
for _, user in ipairs(users) do redis.call('HDEL', ARGV[3] .. user, ARGV[1]) end
if #users > 0 then redis.call('SREM', KEYS[2], unpack(users)) end
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[1]) end
return #users";

/// A session opened: count it (KEYS[1] the user's hash, ARGV[1] this node), list the user in the
/// node's set (KEYS[2], ARGV[2] the user) and, when it is the user's first session on this node,
/// publish the change (channel ARGV[3], message ARGV[4]). One atomic step: a subscriber that
/// reads the hash after the change was published sees it, one that read it before gets the
/// message after its answer was sent.
const OPEN_SCRIPT: &str = r"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
if n == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return n";

/// A session closed: decrement, and once no session is left drop the field, the user from the
/// node's set, and publish the change (same arguments as [`OPEN_SCRIPT`]).
const CLOSE_SCRIPT: &str = r"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return n";

/// A change of presence, as published on the changes channel: `user` has (`online`) or no longer
/// has sessions on `node`. Encoded as `+` or `-`, the node, a newline, the user (node ids have
/// no newline; user ids may hold anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub online: bool,
    pub node: String,
    pub user: UserId,
}

impl Change {
    pub(crate) fn encode(online: bool, node: &str, user: &UserId) -> String {
        format!("{}{node}\n{user}", if online { '+' } else { '-' })
    }

    pub(crate) fn decode(message: &[u8]) -> Option<Change> {
        let text = std::str::from_utf8(message).ok()?;
        let online = match text.as_bytes().first()? {
            b'+' => true,
            b'-' => false,
            _ => return None,
        };
        let (node, user) = text[1..].split_once('\n')?;
        Some(Change { online, node: node.to_owned(), user: UserId::from(user.to_owned()) })
    }
}

pub struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    node: String,
    /// Node -> when its liveness key was last checked, and whether it existed.
    live_nodes: Mutex<HashMap<String, (Instant, bool)>>,
    /// This node's sessions per user, to write the entries again if they were swept while this
    /// node was thought dead (its liveness key had expired).
    local: Mutex<HashMap<UserId, u64>>,
}

fn redis_err(err: redis::RedisError) -> PresenceError {
    PresenceError::Redis(err.to_string())
}

impl RedisPresence {
    pub async fn connect(url: &str, prefix: &str, node: &str) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = ConnectionManager::new(client).await.map_err(redis_err)?;
        let presence = Self {
            conn,
            prefix: prefix.to_owned(),
            node: node.to_owned(),
            live_nodes: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
        };
        presence.heartbeat().await?;
        Ok(presence)
    }

    fn user_key_prefix(&self) -> String {
        format!("{}presence:user:", self.prefix)
    }

    fn user_key(&self, user: &UserId) -> String {
        format!("{}{user}", self.user_key_prefix())
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}presence:node:{node}", self.prefix)
    }

    fn users_of_key(&self, node: &str) -> String {
        format!("{}presence:node-users:{node}", self.prefix)
    }

    fn node_users_key(&self) -> String {
        self.users_of_key(&self.node)
    }

    fn nodes_key(&self) -> String {
        format!("{}presence:nodes", self.prefix)
    }

    /// The pub/sub channel where every node publishes its users' changes (see [`Change`]).
    pub(crate) fn changes_channel(&self) -> String {
        format!("{}presence:changes", self.prefix)
    }

    /// Count a session of `user` opening (+1) or closing (-1) in the local copy.
    fn count_local(&self, user: &UserId, opened: bool) {
        let Ok(mut local) = self.local.lock() else { return };
        let count = local.entry(user.clone()).or_default();
        if opened {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                local.remove(user);
            }
        }
    }

    /// Write every entry of this node again from the local copy.
    async fn register_again(&self) -> Result<(), PresenceError> {
        let entries: Vec<(UserId, u64)> = match self.local.lock() {
            Ok(local) => local.iter().map(|(user, count)| (user.clone(), *count)).collect(),
            Err(_) => return Err(PresenceError::Redis("poisoned".into())),
        };
        if entries.is_empty() {
            return Ok(());
        }
        tracing::warn!(users = entries.len(), "this node was thought dead; writing its presence again");
        let mut pipe = redis::pipe();
        for (user, count) in &entries {
            pipe.hset(self.user_key(user), &self.node, *count).ignore();
            pipe.sadd(self.node_users_key(), user.as_str()).ignore();
            // Caches that read the hash while our entries were swept learn they are back.
            pipe.publish(self.changes_channel(), Change::encode(true, &self.node, user)).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_err)
    }

    /// Remove up to `batch` entries of `node` if it is dead: how many went, or `None` when it
    /// is alive.
    async fn sweep_node(&self, node: &str, batch: usize) -> Result<Option<usize>, PresenceError> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::Script::new(SWEEP_SCRIPT)
            .key(self.node_key(node))
            .key(self.users_of_key(node))
            .key(self.nodes_key())
            .arg(node)
            .arg(batch)
            .arg(self.user_key_prefix())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(usize::try_from(removed).ok())
    }

    /// The nodes of each user (one `HKEYS` per user, one round trip), live or not.
    pub(crate) async fn fetch_nodes(&self, users: &[UserId]) -> Result<Vec<Vec<String>>, PresenceError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hkeys(self.user_key(user));
        }
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await.map_err(redis_err)
    }

    /// Those of `nodes` whose liveness key exists; each node's answer is trusted for
    /// [`LIVE_CACHE`], so this asks Redis (one `EXISTS` per node, one round trip) at most that
    /// often per node.
    pub(crate) async fn live(&self, nodes: HashSet<String>) -> Result<HashSet<String>, PresenceError> {
        let now = Instant::now();
        let mut live = HashSet::new();
        let mut unknown = Vec::new();
        {
            let known = self.live_nodes.lock().map_err(|_| PresenceError::Redis("poisoned".into()))?;
            for node in nodes {
                match known.get(&node) {
                    Some((at, alive)) if now.duration_since(*at) < LIVE_CACHE => {
                        if *alive {
                            live.insert(node);
                        }
                    }
                    _ => unknown.push(node),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(live);
        }
        let mut pipe = redis::pipe();
        for n in &unknown {
            pipe.exists(self.node_key(n));
        }
        let mut conn = self.conn.clone();
        let alive: Vec<bool> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
        let now = Instant::now();
        let mut known = self.live_nodes.lock().map_err(|_| PresenceError::Redis("poisoned".into()))?;
        if known.len() > LIVE_CACHE_NODES {
            known.retain(|_, (at, _)| now.duration_since(*at) < LIVE_CACHE);
        }
        for (node, alive) in unknown.into_iter().zip(alive) {
            known.insert(node.clone(), (now, alive));
            if alive {
                live.insert(node);
            }
        }
        Ok(live)
    }

    /// Users grouped by the live node among theirs (`nodes_per_user` in the order of `users`).
    pub(crate) async fn group_live(
        &self,
        users: &[UserId],
        nodes_per_user: Vec<Vec<String>>,
    ) -> Result<NodeMap, PresenceError> {
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
}

#[async_trait]
impl Presence for RedisPresence {
    async fn session_opened(&self, user: &UserId) -> Result<(), PresenceError> {
        let mut conn = self.conn.clone();
        redis::Script::new(OPEN_SCRIPT)
            .key(self.user_key(user))
            .key(self.node_users_key())
            .arg(&self.node)
            .arg(user.as_str())
            .arg(self.changes_channel())
            .arg(Change::encode(true, &self.node, user))
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(redis_err)?;
        // Counted only once written: a session whose write failed is not closed in presence.
        self.count_local(user, true);
        Ok(())
    }

    async fn session_closed(&self, user: &UserId) -> Result<(), PresenceError> {
        self.count_local(user, false);
        let mut conn = self.conn.clone();
        redis::Script::new(CLOSE_SCRIPT)
            .key(self.user_key(user))
            .key(self.node_users_key())
            .arg(&self.node)
            .arg(user.as_str())
            .arg(self.changes_channel())
            .arg(Change::encode(false, &self.node, user))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(redis_err)
    }

    async fn locate(&self, users: &[UserId]) -> Result<NodeMap, PresenceError> {
        let nodes_per_user = self.fetch_nodes(users).await?;
        self.group_live(users, nodes_per_user).await
    }

    async fn heartbeat(&self) -> Result<(), PresenceError> {
        let mut conn = self.conn.clone();
        let (previous,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(self.node_key(&self.node))
            .arg(1)
            .arg("PX")
            .arg(NODE_TTL.as_millis() as u64)
            .arg("GET")
            .sadd(self.nodes_key(), &self.node)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if previous.is_none() {
            // New, or thought dead long enough for a sweep to take our entries.
            self.register_again().await?;
        }
        Ok(())
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
        pipe.srem(self.nodes_key(), &self.node).ignore();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_err)
    }

    async fn sweep(&self, batch: usize) -> Result<usize, PresenceError> {
        let mut conn = self.conn.clone();
        let nodes: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.nodes_key()).query_async(&mut conn).await.map_err(redis_err)?;
        let others: Vec<String> = nodes.into_iter().filter(|n| *n != self.node).collect();
        if others.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for node in &others {
            pipe.exists(self.node_key(node));
        }
        let alive: Vec<bool> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
        let mut removed = 0;
        for (node, _) in others.iter().zip(alive).filter(|(_, alive)| !alive) {
            // Step by step, so no script holds Redis long; stop at the round's budget.
            while removed < batch {
                let step = SWEEP_STEP.min(batch - removed);
                match self.sweep_node(node, step).await? {
                    Some(n) => {
                        removed += n;
                        if n < step {
                            break; // this node is done
                        }
                    }
                    None => break, // it came back
                }
            }
        }
        Ok(removed)
    }

    fn node_id(&self) -> &str {
        &self.node
    }
}
