//! What the simulated platform holds: channels, profiles, message content, scripts, accepted
//! retry keys, used reply tokens and the log of every request received.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};

use crate::model::{Channel, Group, Profile, RecordedRequest, ScriptedResponse};

/// A message LINE accepted: `sentMessages[]` of the answer.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub id: String,
    pub quote_token: String,
}

impl SentMessage {
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "quoteToken": self.quote_token})
    }
}

/// A retry key already accepted: the first request's id and what it sent.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub request_id: String,
    pub sent: Vec<SentMessage>,
}

#[derive(Default)]
struct Inner {
    channels: BTreeMap<String, Channel>,
    /// Access token -> channel id.
    tokens: HashMap<String, String>,
    /// (channel id, user id) -> profile.
    profiles: HashMap<(String, String), Profile>,
    groups: HashMap<(String, String), Group>,
    /// Message id -> (content type, bytes).
    content: HashMap<String, (String, Vec<u8>)>,
    /// Path -> answers still to give.
    scripts: HashMap<String, VecDeque<ScriptedResponse>>,
    /// (channel id, retry key) -> the accepted request.
    retry_keys: HashMap<(String, String), Accepted>,
    used_reply_tokens: HashSet<String>,
    requests: Vec<RecordedRequest>,
    next_seq: u64,
    next_message_id: u64,
    /// Messages accepted by push, multicast and broadcast (replies are free).
    counted: usize,
}

/// The simulator's state, shared by every worker.
#[derive(Default)]
pub struct Sim {
    inner: Mutex<Inner>,
}

/// Why a channel was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("bot_user_id must be U followed by 32 lowercase hex digits")]
    BotUserId,
    #[error("the access token is already used by channel {0}")]
    TokenTaken(String),
}

fn is_bot_user_id(id: &str) -> bool {
    id.len() == 33 && id.starts_with('U') && id[1..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Sim {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register (or replace) a channel.
    pub fn register_channel(&self, channel: Channel) -> Result<(), ChannelError> {
        if !is_bot_user_id(&channel.bot_user_id) {
            return Err(ChannelError::BotUserId);
        }
        let mut inner = self.lock();
        if let Some(owner) = inner.tokens.get(&channel.access_token) {
            if *owner != channel.channel_id {
                return Err(ChannelError::TokenTaken(owner.clone()));
            }
        }
        if let Some(old) = inner.channels.remove(&channel.channel_id) {
            inner.tokens.remove(&old.access_token);
        }
        inner.tokens.insert(channel.access_token.clone(), channel.channel_id.clone());
        inner.channels.insert(channel.channel_id.clone(), channel);
        Ok(())
    }

    pub fn channel(&self, channel_id: &str) -> Option<Channel> {
        self.lock().channels.get(channel_id).cloned()
    }

    pub fn channel_by_token(&self, token: &str) -> Option<Channel> {
        let inner = self.lock();
        inner.tokens.get(token).and_then(|id| inner.channels.get(id)).cloned()
    }

    pub fn add_group(&self, group: Group) {
        self.lock().groups.insert((group.channel_id.clone(), group.group_id.clone()), group);
    }

    pub fn group(&self, channel_id: &str, group_id: &str) -> Option<Group> {
        self.lock().groups.get(&(channel_id.to_owned(), group_id.to_owned())).cloned()
    }

    pub fn add_profile(&self, profile: Profile) {
        self.lock().profiles.insert((profile.channel_id.clone(), profile.user_id.clone()), profile);
    }

    pub fn profile(&self, channel_id: &str, user_id: &str) -> Option<Profile> {
        self.lock().profiles.get(&(channel_id.to_owned(), user_id.to_owned())).cloned()
    }

    pub fn put_content(&self, message_id: &str, content_type: &str, bytes: Vec<u8>) {
        self.lock().content.insert(message_id.to_owned(), (content_type.to_owned(), bytes));
    }

    /// True when there was content to delete.
    pub fn delete_content(&self, message_id: &str) -> bool {
        self.lock().content.remove(message_id).is_some()
    }

    pub fn content(&self, message_id: &str) -> Option<(String, Vec<u8>)> {
        self.lock().content.get(message_id).cloned()
    }

    /// Queue `responses` for `path` after those already queued.
    pub fn script(&self, path: &str, responses: Vec<ScriptedResponse>) {
        self.lock().scripts.entry(path.to_owned()).or_default().extend(responses);
    }

    pub fn clear_scripts(&self) {
        self.lock().scripts.clear();
    }

    /// The next scripted answer for the first of `paths` that has one.
    pub fn next_scripted(&self, paths: &[&str]) -> Option<ScriptedResponse> {
        let mut inner = self.lock();
        paths.iter().find_map(|p| inner.scripts.get_mut(*p).and_then(VecDeque::pop_front))
    }

    fn mint(inner: &mut Inner, count: usize) -> Vec<SentMessage> {
        (0..count)
            .map(|_| {
                inner.next_message_id += 1;
                SentMessage {
                    id: format!("{}", 600_000_000_000_000_000u64 + inner.next_message_id),
                    quote_token: format!("q{}", uuid::Uuid::new_v4().simple()),
                }
            })
            .collect()
    }

    /// Accept `count` messages, once per retry key: `Err` with the first acceptance when the
    /// key was already accepted.
    pub fn accept(
        &self,
        channel_id: &str,
        retry_key: Option<&str>,
        count: usize,
        request_id: &str,
    ) -> Result<Vec<SentMessage>, Accepted> {
        let mut inner = self.lock();
        let key = retry_key.map(|k| (channel_id.to_owned(), k.to_ascii_lowercase()));
        if let Some(accepted) = key.as_ref().and_then(|k| inner.retry_keys.get(k)) {
            return Err(accepted.clone());
        }
        let sent = Self::mint(&mut inner, count);
        inner.counted += count;
        if let Some(key) = key {
            inner.retry_keys.insert(key, Accepted { request_id: request_id.to_owned(), sent: sent.clone() });
        }
        if let Some(request) = inner.requests.iter_mut().rev().find(|r| r.request_id == request_id) {
            request.sent_message_ids = sent.iter().map(|m| m.id.clone()).collect();
        }
        Ok(sent)
    }

    /// Use a reply token: `None` when it was used before (LINE: "Invalid reply token").
    pub fn reply(&self, reply_token: &str, count: usize) -> Option<Vec<SentMessage>> {
        let mut inner = self.lock();
        if !inner.used_reply_tokens.insert(reply_token.to_owned()) {
            return None;
        }
        Some(Self::mint(&mut inner, count))
    }

    /// Log a request; its `seq` is assigned here and returned.
    pub fn record(&self, mut request: RecordedRequest) -> u64 {
        let mut inner = self.lock();
        inner.next_seq += 1;
        request.seq = inner.next_seq;
        inner.requests.push(request);
        inner.next_seq
    }

    /// Set the status answered to request `seq`.
    pub fn answered(&self, seq: u64, status: u16) {
        if let Some(r) = self.lock().requests.iter_mut().find(|r| r.seq == seq) {
            r.status = status;
        }
    }

    /// The requests received, in order, optionally only those to `path` (as sent, or the
    /// operation's template) and of `channel_id`.
    pub fn requests(&self, path: Option<&str>, channel_id: Option<&str>) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| path.is_none_or(|p| r.path == p || r.path_template.as_deref() == Some(p)))
            .filter(|r| channel_id.is_none_or(|c| r.channel_id.as_deref() == Some(c)))
            .cloned()
            .collect()
    }

    pub fn invalid(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().filter(|r| !r.valid).cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Messages accepted by push, multicast and broadcast so far (the quota consumption).
    pub fn total_usage(&self) -> usize {
        self.lock().counted
    }
}
