//! A node-local cache of Redis presence, kept fresh by the change events every node publishes.
//!
//! `locate` answers from memory (user -> nodes, offline users included) and asks Redis only for
//! the users it does not hold, one round trip, caching the answers; the live-node filter still
//! applies to every answer. Each node publishes a change when a user's first session opens on
//! it and when the last one closes (in the same atomic step as the write, see
//! `redis_presence.rs`); the cache subscribes to them (a dedicated pub/sub connection) and
//! updates the users it holds.
//!
//! Freshness bounds:
//! - While the subscription is down the cache is empty and unused (every `locate` goes to
//!   Redis); when it is (re)established the cache starts empty, since changes may have been
//!   missed meanwhile. A silently dead subscription is found by a ping every [`PING_EVERY`].
//! - An answer read from Redis is not cached if a change of that user arrived while it was on
//!   its way (it may predate the change), nor if the subscription was re-established meanwhile.
//! - Every entry is read again after `max_age`, whatever happened: a missed change cannot hide
//!   a user for longer.
//! - At most `max_users` users are held: when full, expired entries go; if that frees less than
//!   half, everything goes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chat_protocol::UserId;
use futures_util::StreamExt;

use crate::redis_presence::Change;
use crate::{NodeMap, Presence, PresenceError, RedisPresence};

/// How often the subscription is checked with a ping.
const PING_EVERY: Duration = Duration::from_secs(10);
/// A ping not answered within this means the subscription is dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits between attempts to subscribe again: the first, doubling up to the last.
const RESUBSCRIBE_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Bounds of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Users held at most.
    pub max_users: usize,
    /// An entry is read from Redis again once this old (the safety net for missed changes).
    pub max_age: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { max_users: 100_000, max_age: Duration::from_secs(30) }
    }
}

/// What the cache did so far (for tests and diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Users held now.
    pub users: usize,
    /// Users answered from memory.
    pub hits: u64,
    /// Users asked from Redis.
    pub misses: u64,
    /// Times the subscription was established (1 after `connect`; more after reconnections).
    pub subscriptions: u64,
}

struct Entry {
    nodes: Vec<String>,
    read_at: Instant,
}

/// Reads from Redis of a user on their way, and whether a change of that user arrived meanwhile.
#[derive(Default)]
struct InFlight {
    reads: usize,
    changed: bool,
}

struct State {
    config: CacheConfig,
    /// Whether the subscription is up (and so entries may be used and added).
    subscribed: bool,
    /// Raised whenever the entries are dropped for missed changes; reads started before are
    /// not cached.
    generation: u64,
    entries: HashMap<UserId, Entry>,
    in_flight: HashMap<UserId, InFlight>,
    stats: CacheStats,
}

impl State {
    fn new(config: CacheConfig) -> Self {
        Self {
            config,
            subscribed: false,
            generation: 0,
            entries: HashMap::new(),
            in_flight: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    fn get(&self, user: &UserId, now: Instant) -> Option<&[String]> {
        if !self.subscribed {
            return None;
        }
        let entry = self.entries.get(user)?;
        (now.duration_since(entry.read_at) < self.config.max_age).then_some(entry.nodes.as_slice())
    }

    /// Reads of `users` start; returns the generation to hand to [`State::finish`].
    fn begin(&mut self, users: &[UserId]) -> u64 {
        for user in users {
            self.in_flight.entry(user.clone()).or_default().reads += 1;
        }
        self.generation
    }

    /// Reads of `users` (begun at `generation`) end with these answers (`None`: they failed).
    fn finish(&mut self, generation: u64, users: &[UserId], answers: Option<&[Vec<String>]>, now: Instant) {
        let cacheable = self.subscribed && generation == self.generation;
        for (i, user) in users.iter().enumerate() {
            let Some(flight) = self.in_flight.get_mut(user) else { continue };
            let changed = flight.changed;
            flight.reads -= 1;
            if flight.reads == 0 {
                self.in_flight.remove(user);
            }
            if let Some(nodes) = answers.and_then(|a| a.get(i)) {
                if cacheable && !changed {
                    self.insert(user.clone(), nodes.clone(), now);
                }
            }
        }
    }

    fn insert(&mut self, user: UserId, nodes: Vec<String>, now: Instant) {
        let max = self.config.max_users.max(1);
        if self.entries.len() >= max && !self.entries.contains_key(&user) {
            let max_age = self.config.max_age;
            self.entries.retain(|_, e| now.duration_since(e.read_at) < max_age);
            if self.entries.len() > max / 2 {
                self.entries.clear();
            }
        }
        self.entries.insert(user, Entry { nodes, read_at: now });
    }

    fn apply(&mut self, change: Change) {
        if let Some(entry) = self.entries.get_mut(&change.user) {
            let present = entry.nodes.iter().position(|n| *n == change.node);
            match (change.online, present) {
                (true, None) => entry.nodes.push(change.node),
                (false, Some(i)) => {
                    entry.nodes.swap_remove(i);
                }
                _ => {}
            }
        } else if let Some(flight) = self.in_flight.get_mut(&change.user) {
            flight.changed = true;
        }
    }

    /// Drop every entry (changes may have been missed); `subscribed`: whether the subscription
    /// is up from now on.
    fn reset(&mut self, subscribed: bool) {
        self.entries.clear();
        self.generation += 1;
        self.subscribed = subscribed;
        if subscribed {
            self.stats.subscriptions += 1;
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every update leaves the state consistent: a panic elsewhere does not poison its meaning.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads on their way, ended on drop if not finished (an error, or `locate` cancelled).
struct Reads<'a> {
    state: &'a Mutex<State>,
    generation: u64,
    users: Vec<UserId>,
    done: bool,
}

impl<'a> Reads<'a> {
    fn begin(state: &'a Mutex<State>, users: Vec<UserId>) -> Self {
        let generation = lock(state).begin(&users);
        Self { state, generation, users, done: false }
    }

    fn finish(mut self, answers: &[Vec<String>]) {
        self.done = true;
        lock(self.state).finish(self.generation, &self.users, Some(answers), Instant::now());
    }
}

impl Drop for Reads<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(self.state).finish(self.generation, &self.users, None, Instant::now());
        }
    }
}

/// [`RedisPresence`] with a cache of `locate`'s answers; everything else goes to it.
pub struct CachedPresence {
    inner: RedisPresence,
    state: Arc<Mutex<State>>,
    subscriber: tokio::task::AbortHandle,
}

impl CachedPresence {
    /// Subscribe to the changes (`url`: the Redis that `inner` uses), then serve from the cache.
    /// The subscriber runs on the current Tokio runtime until this is dropped.
    pub async fn new(inner: RedisPresence, url: &str, config: CacheConfig) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url).map_err(|e| PresenceError::Redis(e.to_string()))?;
        let channel = inner.changes_channel();
        let pubsub = subscribe(&client, &channel).await.map_err(|e| PresenceError::Redis(e.to_string()))?;
        let state = Arc::new(Mutex::new(State::new(config)));
        lock(&state).reset(true);
        let subscriber = tokio::spawn(run_subscriber(client, channel, state.clone(), pubsub)).abort_handle();
        Ok(Self { inner, state, subscriber })
    }

    /// Connect a [`RedisPresence`] and its cache.
    pub async fn connect(url: &str, prefix: &str, node: &str, config: CacheConfig) -> Result<Self, PresenceError> {
        let inner = RedisPresence::connect(url, prefix, node).await?;
        Self::new(inner, url, config).await
    }

    pub fn stats(&self) -> CacheStats {
        let state = lock(&self.state);
        CacheStats { users: state.entries.len(), ..state.stats }
    }
}

impl Drop for CachedPresence {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Apply the changes as they come; when the subscription breaks, drop the entries and stop
/// using the cache until it is established again.
async fn run_subscriber(client: redis::Client, channel: String, state: Arc<Mutex<State>>, first: redis::aio::PubSub) {
    let mut pubsub = first;
    loop {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => match Change::decode(msg.get_payload_bytes()) {
                        Some(change) => lock(&state).apply(change),
                        None => tracing::warn!(channel, "presence change not understood"),
                    },
                    None => {
                        tracing::warn!(channel, "presence change subscription lost");
                        break;
                    }
                },
                _ = ping.tick() => match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(channel, error = %err, "presence change subscription failed its ping");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(channel, "presence change subscription did not answer its ping");
                        break;
                    }
                },
            }
        }
        lock(&state).reset(false);
        let mut wait = RESUBSCRIBE_BACKOFF.0;
        pubsub = loop {
            tokio::time::sleep(wait).await;
            match subscribe(&client, &channel).await {
                Ok(pubsub) => break pubsub,
                Err(err) => {
                    tracing::warn!(channel, error = %err, "presence change subscription not established");
                    wait = (wait * 2).min(RESUBSCRIBE_BACKOFF.1);
                }
            }
        };
        // Anything read from Redis from now on is followed by its changes.
        lock(&state).reset(true);
        tracing::info!(channel, "presence change subscription established again; cache emptied");
    }
}

#[async_trait]
impl Presence for CachedPresence {
    async fn session_opened(&self, user: &UserId) -> Result<(), PresenceError> {
        self.inner.session_opened(user).await
    }

    async fn session_closed(&self, user: &UserId) -> Result<(), PresenceError> {
        self.inner.session_closed(user).await
    }

    async fn locate(&self, users: &[UserId]) -> Result<NodeMap, PresenceError> {
        if users.is_empty() {
            return Ok(NodeMap::new());
        }
        let mut nodes_per_user: Vec<Vec<String>> = Vec::with_capacity(users.len());
        let mut missing: Vec<usize> = Vec::new();
        {
            let now = Instant::now();
            let mut state = lock(&self.state);
            for (i, user) in users.iter().enumerate() {
                match state.get(user, now) {
                    Some(nodes) => nodes_per_user.push(nodes.to_vec()),
                    None => {
                        nodes_per_user.push(Vec::new());
                        missing.push(i);
                    }
                }
            }
            state.stats.hits += (users.len() - missing.len()) as u64;
            state.stats.misses += missing.len() as u64;
        }
        if !missing.is_empty() {
            let mut seen = HashSet::new();
            let to_read: Vec<UserId> =
                missing.iter().map(|&i| &users[i]).filter(|u| seen.insert(*u)).cloned().collect();
            let reads = Reads::begin(&self.state, to_read);
            let answers = self.inner.fetch_nodes(&reads.users).await?;
            let by_user: HashMap<&UserId, &Vec<String>> = reads.users.iter().zip(&answers).collect();
            for &i in &missing {
                if let Some(nodes) = by_user.get(&users[i]) {
                    nodes_per_user[i] = (*nodes).clone();
                }
            }
            drop(by_user);
            reads.finish(&answers);
        }
        self.inner.group_live(users, nodes_per_user).await
    }

    async fn heartbeat(&self) -> Result<(), PresenceError> {
        self.inner.heartbeat().await
    }

    async fn leave(&self) -> Result<(), PresenceError> {
        self.inner.leave().await
    }

    async fn sweep(&self, batch: usize) -> Result<usize, PresenceError> {
        self.inner.sweep(batch).await
    }

    fn node_id(&self) -> &str {
        self.inner.node_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_users: usize) -> State {
        let mut s = State::new(CacheConfig { max_users, max_age: Duration::from_secs(3600) });
        s.reset(true);
        s
    }

    fn change(online: bool, node: &str, user: &str) -> Change {
        Change { online, node: node.into(), user: user.into() }
    }

    #[test]
    fn changes_round_trip_through_their_encoding() {
        for (online, node, user) in [(true, "n1", "alice"), (false, "host-1.boot", "a b\nc")] {
            let encoded = Change::encode(online, node, &user.into());
            assert_eq!(Change::decode(encoded.as_bytes()), Some(change(online, node, user)));
        }
        assert_eq!(Change::decode(b"?n\nu"), None);
        assert_eq!(Change::decode(b"+no-newline"), None);
    }

    #[test]
    fn changes_update_held_users_only() {
        let mut s = state(10);
        let now = Instant::now();
        let (alice, bob): (UserId, UserId) = ("alice".into(), "bob".into());
        let g = s.begin(std::slice::from_ref(&alice));
        s.finish(g, std::slice::from_ref(&alice), Some(&[vec![]]), now);
        assert_eq!(s.get(&alice, now), Some(&[][..]), "offline users are held too");
        s.apply(change(true, "n1", "alice"));
        s.apply(change(true, "n1", "alice"));
        s.apply(change(true, "n2", "alice"));
        assert_eq!(s.get(&alice, now).unwrap(), ["n1".to_owned(), "n2".to_owned()]);
        s.apply(change(false, "n1", "alice"));
        assert_eq!(s.get(&alice, now).unwrap(), ["n2".to_owned()]);
        s.apply(change(true, "n1", "bob"));
        assert_eq!(s.get(&bob, now), None, "a user not held stays unknown");
        assert!(s.in_flight.is_empty());
    }

    #[test]
    fn a_read_overtaken_by_a_change_or_a_resubscription_is_not_cached() {
        let mut s = state(10);
        let now = Instant::now();
        let users: Vec<UserId> = vec!["alice".into(), "bob".into()];
        let g = s.begin(&users);
        s.apply(change(true, "n1", "alice"));
        s.finish(g, &users, Some(&[vec![], vec![]]), now);
        assert_eq!(s.get(&users[0], now), None, "alice's answer may predate her change");
        assert_eq!(s.get(&users[1], now), Some(&[][..]));

        let g = s.begin(&users);
        s.reset(false);
        s.reset(true);
        s.finish(g, &users, Some(&[vec![], vec![]]), now);
        assert!(s.entries.is_empty(), "read before the subscription was established again");

        let g = s.begin(&users);
        s.finish(g, &users, None, now);
        assert!(s.entries.is_empty() && s.in_flight.is_empty(), "a failed read caches nothing");
    }

    #[test]
    fn unsubscribed_it_serves_nothing_and_entries_expire() {
        let mut s = State::new(CacheConfig { max_users: 10, max_age: Duration::from_secs(30) });
        let now = Instant::now();
        let alice: UserId = "alice".into();
        let g = s.begin(std::slice::from_ref(&alice));
        s.finish(g, std::slice::from_ref(&alice), Some(&[vec![]]), now);
        assert_eq!(s.get(&alice, now), None, "not subscribed yet");
        s.reset(true);
        let g = s.begin(std::slice::from_ref(&alice));
        s.finish(g, std::slice::from_ref(&alice), Some(&[vec![]]), now);
        assert!(s.get(&alice, now).is_some());
        assert_eq!(s.get(&alice, now + Duration::from_secs(31)), None, "too old");
    }

    #[test]
    fn it_holds_at_most_max_users() {
        let mut s = state(4);
        let now = Instant::now();
        for i in 0..20 {
            let user: UserId = format!("u{i}").into();
            s.insert(user, vec![], now);
            assert!(s.entries.len() <= 4);
        }
        assert!(s.entries.contains_key("u19"));
    }
}
