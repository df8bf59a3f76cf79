//! Shard leases and membership in Redis. Every change is one Lua script, so it is atomic.
//!
//! Keys (after the configured prefix): `rooms:members` (sorted set: member -> expiry, ms of
//! Redis' clock), `rooms:draining` (set of members asked to drain), `rooms:boot` (a token set
//! once per Redis dataset: when it vanishes or changes, Redis lost its data),
//! `rooms:stats:<member>` (what the member runs, for the ops view), and per shard
//! `rooms:shard:{s}:lease` (`<member>|<epoch>`, with a TTL) and `rooms:shard:{s}:epoch` (the
//! counter epochs come from). The shard's hash tag keeps its two keys in one Redis Cluster slot.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::plan::pod_of;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer from redis: {0}")]
    Answer(String),
}

/// Acquire a free lease with a new epoch above `floor` (the counter may have been lost).
const ACQUIRE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('GET', KEYS[1])} end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
local e = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. e, 'PX', ARGV[2])
return {1, tostring(e)}
"#;

/// Renew each lease still held with the given value; 1 or 0 per key.
const RENEW: &str = r#"
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1]); out[i] = 1
  else out[i] = 0 end
end
return out
"#;

/// Delete a lease if it still holds the given value.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Register (or refresh) a member; forget expired ones; answer the boot token, Redis' time, the
/// live members with their expiries, and the draining ones.
const HEARTBEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, m in ipairs(dead) do
  redis.call('SREM', KEYS[2], m); redis.call('ZREM', KEYS[1], m)
end
if ARGV[1] ~= '' and ARGV[3] ~= '' then redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[2]) end
return {redis.call('GET', KEYS[3]) or '', tostring(now), redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('SMEMBERS', KEYS[2])}
"#;

/// Free the leases (and the membership) of earlier incarnations of a pod: a restarted process
/// with the same pod name knows its predecessor is dead.
const FREE_PREVIOUS: &str = r#"
local freed = 0
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] and string.sub(v, 1, #ARGV[2]) ~= ARGV[2] then
    redis.call('DEL', KEYS[i]); freed = freed + 1
  end
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, 1, #ARGV[1]) == ARGV[1] and m ~= ARGV[3] then redis.call('ZREM', KEYS[1], m) end
end
return freed
"#;

/// A lease as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub member: String,
    pub epoch: i64,
}

impl Holder {
    fn parse(value: &str) -> Option<Self> {
        let (member, epoch) = value.rsplit_once('|')?;
        Some(Self { member: member.to_owned(), epoch: epoch.parse().ok()? })
    }

    pub fn value(&self) -> String {
        format!("{}|{}", self.member, self.epoch)
    }
}

/// What a heartbeat answers.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The boot token ("" when Redis has none: it lost its data, or is new).
    pub boot: String,
    pub now_ms: i64,
    /// Live members and the instant (Redis ms) their registration expires.
    pub members: Vec<(String, i64)>,
    pub draining: Vec<String>,
}

#[derive(Clone)]
pub struct Leases {
    conn: ConnectionManager,
    prefix: String,
    shards: u16,
    timeout: Duration,
}

impl Leases {
    pub async fn connect(url: &str, prefix: &str, shards: u16, timeout: Duration) -> Result<Self, LeaseError> {
        let client = redis::Client::open(url)?;
        let conn = tokio::time::timeout(timeout, ConnectionManager::new(client))
            .await
            .map_err(|_| LeaseError::Timeout(timeout))??;
        Ok(Self { conn, prefix: prefix.to_owned(), shards, timeout })
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    fn key(&self, name: &str) -> String {
        format!("{}rooms:{name}", self.prefix)
    }

    fn lease_key(&self, shard: u16) -> String {
        format!("{}rooms:shard:{{{shard}}}:lease", self.prefix)
    }

    fn epoch_key(&self, shard: u16) -> String {
        format!("{}rooms:shard:{{{shard}}}:epoch", self.prefix)
    }

    fn stats_key(&self, member: &str) -> String {
        self.key(&format!("stats:{member}"))
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, LeaseError> {
        Ok(tokio::time::timeout(self.timeout, work).await.map_err(|_| LeaseError::Timeout(self.timeout))??)
    }

    /// Set the boot token unless there is one; answer the one in place.
    pub async fn boot_token(&self, mine: &str) -> Result<String, LeaseError> {
        let mut conn = self.conn.clone();
        let key = self.key("boot");
        let (token,): (String,) = self
            .bounded(redis::pipe().cmd("SET").arg(&key).arg(mine).arg("NX").ignore().get(&key).query_async(&mut conn))
            .await?;
        Ok(token)
    }

    /// Register `member` (empty: only read), store its stats, read the membership.
    pub async fn heartbeat(&self, member: &str, ttl: Duration, stats: &str) -> Result<Heartbeat, LeaseError> {
        let mut conn = self.conn.clone();
        let script = Script::new(HEARTBEAT);
        let mut call = script.prepare_invoke();
        call.key(self.key("members"))
            .key(self.key("draining"))
            .key(self.key("boot"))
            .key(self.stats_key(member))
            .arg(member)
            .arg(ttl.as_millis() as u64)
            .arg(stats);
        let (boot, now, flat, draining): (String, String, Vec<String>, Vec<String>) =
            self.bounded(call.invoke_async(&mut conn)).await?;
        let now_ms = now.parse().map_err(|_| LeaseError::Answer(format!("time {now}")))?;
        let members = flat
            .chunks(2)
            .filter_map(|pair| match pair {
                [m, score] => Some((m.clone(), score.parse::<f64>().ok()? as i64)),
                _ => None,
            })
            .collect();
        Ok(Heartbeat { boot, now_ms, members, draining })
    }

    /// Leave the membership (graceful stop).
    pub async fn leave(&self, member: &str) -> Result<(), LeaseError> {
        let mut conn = self.conn.clone();
        let pipe = redis::pipe()
            .cmd("ZREM")
            .arg(self.key("members"))
            .arg(member)
            .ignore()
            .cmd("SREM")
            .arg(self.key("draining"))
            .arg(member)
            .ignore()
            .cmd("DEL")
            .arg(self.stats_key(member))
            .ignore()
            .clone();
        self.bounded(pipe.query_async::<()>(&mut conn)).await
    }

    /// Ask `member` to drain (it hands its shards over and takes none until it leaves).
    pub async fn drain(&self, member: &str) -> Result<(), LeaseError> {
        let mut conn = self.conn.clone();
        self.bounded(redis::cmd("SADD").arg(self.key("draining")).arg(member).query_async::<()>(&mut conn)).await
    }

    /// Every shard's holder.
    pub async fn holders(&self) -> Result<Vec<Option<Holder>>, LeaseError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = (0..self.shards).map(|s| self.lease_key(s)).collect();
        let values: Vec<Option<String>> = self.bounded(redis::cmd("MGET").arg(&keys).query_async(&mut conn)).await?;
        Ok(values.into_iter().map(|v| v.as_deref().and_then(Holder::parse)).collect())
    }

    /// The stats each member stored (JSON), in the order given.
    pub async fn stats(&self, members: &[String]) -> Result<Vec<Option<String>>, LeaseError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = members.iter().map(|m| self.stats_key(m)).collect();
        self.bounded(redis::cmd("MGET").arg(&keys).query_async(&mut conn)).await
    }

    /// Try to acquire `shard` for `member`: `Ok(Some(epoch))`, or `Ok(None)` if it is held.
    pub async fn acquire(
        &self,
        shard: u16,
        member: &str,
        ttl: Duration,
        floor: i64,
    ) -> Result<Option<i64>, LeaseError> {
        let mut conn = self.conn.clone();
        let script = Script::new(ACQUIRE);
        let mut call = script.prepare_invoke();
        call.key(self.lease_key(shard)).key(self.epoch_key(shard)).arg(member).arg(ttl.as_millis() as u64).arg(floor);
        let (won, value): (i64, String) = self.bounded(call.invoke_async(&mut conn)).await?;
        if won != 1 {
            return Ok(None);
        }
        value.parse().map(Some).map_err(|_| LeaseError::Answer(format!("epoch {value}")))
    }

    /// Renew the given leases in one round trip: true for each still held.
    pub async fn renew(&self, held: &[(u16, Holder)], ttl: Duration) -> Result<Vec<bool>, LeaseError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let script = Script::new(RENEW);
        let mut call = script.prepare_invoke();
        call.arg(ttl.as_millis() as u64);
        for (shard, holder) in held {
            call.key(self.lease_key(*shard)).arg(holder.value());
        }
        let renewed: Vec<i64> = self.bounded(call.invoke_async(&mut conn)).await?;
        Ok(renewed.into_iter().map(|r| r == 1).collect())
    }

    /// Release a lease still held by `holder`; false if it was not.
    pub async fn release(&self, shard: u16, holder: &Holder) -> Result<bool, LeaseError> {
        let mut conn = self.conn.clone();
        let script = Script::new(RELEASE);
        let mut call = script.prepare_invoke();
        call.key(self.lease_key(shard)).arg(holder.value());
        let released: i64 = self.bounded(call.invoke_async(&mut conn)).await?;
        Ok(released == 1)
    }

    /// Free the leases and the registration of this pod's earlier incarnations.
    pub async fn free_previous(&self, member: &str) -> Result<i64, LeaseError> {
        let mut conn = self.conn.clone();
        let script = Script::new(FREE_PREVIOUS);
        let mut call = script.prepare_invoke();
        call.key(self.key("members"));
        for shard in 0..self.shards {
            call.key(self.lease_key(shard));
        }
        call.arg(format!("{}/", pod_of(member))).arg(format!("{member}|")).arg(member);
        self.bounded(call.invoke_async(&mut conn)).await
    }
}
