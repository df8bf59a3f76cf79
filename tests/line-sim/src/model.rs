//! The JSON of the scripting and inspection API under `/_sim/`, shared by the server and the
//! [`crate::Client`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A LINE channel (one official account's bot) the simulator knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub channel_id: String,
    /// Signs webhooks (`x-line-signature`).
    pub channel_secret: String,
    /// The `Authorization: Bearer` token the bot sends.
    pub access_token: String,
    /// `@xxxx`, in `GET /v2/bot/info`.
    pub basic_id: String,
    /// `U` + 32 hex: the bot's user id, the webhook `destination`.
    pub bot_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl Channel {
    /// A channel with fresh random credentials (secret, token, bot user id).
    pub fn random(channel_id: &str) -> Self {
        let hex = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            channel_id: channel_id.to_owned(),
            channel_secret: hex(),
            access_token: format!("sim-{}{}", hex(), hex()),
            basic_id: format!("@{}", &hex()[..8]),
            bot_user_id: format!("U{}", hex()),
            display_name: None,
        }
    }
}

/// A LINE user's profile as one channel sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub channel_id: String,
    pub user_id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// A LINE group one channel's account is in (`GET /v2/bot/group/{groupId}/summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub channel_id: String,
    pub group_id: String,
    pub group_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
}

/// One scripted answer. `status` absent: the normal behaviour (after `delay_ms`, if any).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptedResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// With 429: the `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// With 429: the monthly quota is used up (not a rate limit).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quota: bool,
    /// Sleep this long before answering (to make the caller time out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Replaces the default error body of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl ScriptedResponse {
    pub fn status(status: u16) -> Self {
        Self { status: Some(status), ..Self::default() }
    }

    /// 429 rate limit with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self { status: Some(429), retry_after_secs: Some(retry_after_secs), ..Self::default() }
    }

    /// 429 "You have reached your monthly limit."
    pub fn quota_exceeded() -> Self {
        Self { status: Some(429), quota: true, ..Self::default() }
    }

    /// The normal answer, `ms` late.
    pub fn delay(ms: u64) -> Self {
        Self { delay_ms: Some(ms), ..Self::default() }
    }
}

/// `POST /_sim/script`: the next requests to `path` (as sent, or the spec's template such as
/// `/v2/bot/profile/{userId}`) get `responses` in order, then the normal behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Script {
    pub path: String,
    pub responses: Vec<ScriptedResponse>,
}

/// A request the simulator received on the LINE API surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// The spec's operation, when the path and method name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The spec's path template of that operation (`/v2/bot/profile/{userId}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_template: Option<String>,
    /// The channel of the bearer token, when it names a registered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// Lowercase names; never `authorization`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (a string when not JSON, null when empty).
    pub body: Value,
    pub valid: bool,
    pub violations: Vec<String>,
    /// The status answered (0 while still being answered, e.g. during a scripted delay).
    pub status: u16,
    /// The `x-line-request-id` answered.
    pub request_id: String,
    /// The ids of the messages an accepted push sent (what a LINE user's `quotedMessageId`
    /// names when they quote one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_message_ids: Vec<String>,
}

impl RecordedRequest {
    /// The `X-Line-Retry-Key` header, if sent.
    pub fn retry_key(&self) -> Option<&str> {
        self.headers.get("x-line-retry-key").map(String::as_str)
    }
}

/// `POST /_sim/webhook`: sign `events` for `channel_id` and POST them to `target_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRequest {
    pub channel_id: String,
    pub target_url: String,
    pub events: Vec<Value>,
    /// Sends this `x-line-signature` instead of the right one (to test rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Write non-ASCII characters as `\uXXXX` escapes, as LINE does (default true): the body
    /// then differs from a re-serialisation of its parsed JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escape_non_ascii: Option<bool>,
    /// How long to wait for the target's answer (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl WebhookRequest {
    pub fn new(channel_id: &str, target_url: &str, events: Vec<Value>) -> Self {
        Self {
            channel_id: channel_id.to_owned(),
            target_url: target_url.to_owned(),
            events,
            signature: None,
            escape_non_ascii: None,
            timeout_ms: None,
        }
    }
}

/// The answer of `POST /_sim/webhook`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookResult {
    /// The target's HTTP status.
    pub status: u16,
    /// The target's body (lossy UTF-8).
    pub body: String,
    /// The exact bytes sent (UTF-8).
    pub webhook_body: String,
    /// The `x-line-signature` sent.
    pub signature: String,
    /// Where the body departs from `webhook.yml`'s `CallbackRequest` (it is sent all the same,
    /// so tests can send what LINE may add without notice).
    #[serde(default)]
    pub violations: Vec<String>,
}
