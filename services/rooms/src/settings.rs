//! The rooms service's typed settings (`config/default.toml`, then `CHAT_CONFIG`, then
//! `CHAT__SECTION__KEY`). Unknown keys stop the boot.

use std::time::Duration;

use chat_auth::AuthSettings;
use chat_bus::BrokerSettings;
use chat_kit::{DatabaseSettings, HttpSettings, RedisSettings};
use chat_protocol::Limits;
use chat_telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub node: NodeSettings,
    pub database: DatabaseSettings,
    pub amqp: BrokerSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub authz: crate::authz::AuthzSettings,
    pub rooms: RoomsSettings,
    pub limits: Limits,
    pub ws: WsSettings,
    pub quota: QuotaSettings,
    pub presence: PresenceSettings,
    pub calls: CallSettings,
    #[serde(default)]
    pub cluster: crate::cluster::ClusterSettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsSettings {
    pub passivate_after_secs: u64,
    pub command_timeout_ms: u64,
    pub dedup_window: usize,
    pub arbiters: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSettings {
    /// Largest frame (and reassembled message) accepted; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Frames waiting for a slow client; when full the session is closed (1008).
    pub outbound_queue: usize,
    pub heartbeat_interval_secs: u64,
    pub client_timeout_secs: u64,
    /// Events per page when answering `sync`.
    pub sync_page: i64,
    /// Frames of one session in progress at most (sends waiting for their ack, syncs, read
    /// markers); more are answered at once with an error frame `too_many_in_flight`.
    pub max_in_flight: usize,
}

/// Per-user budgets (token buckets, per node), keyed by user id. A rate of 0 turns a budget off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// Posts (HTTP `POST /v1/rooms/{id}/messages` and WebSocket `send`) refilled per minute.
    pub posts_per_minute: u32,
    /// Posts allowed at once (the bucket's size).
    pub posts_burst: u32,
    /// Room creations (`POST /v1/rooms`) refilled per minute.
    pub rooms_per_minute: u32,
    /// Room creations allowed at once.
    pub rooms_burst: u32,
    /// How often users whose buckets are full again are forgotten (keeps the key map small).
    pub forget_idle_every_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceSettings {
    /// How often this node removes the presence entries of nodes whose liveness key expired.
    pub sweep_interval_secs: u64,
    /// Entries removed per sweep at most (bounded work per round; the rest wait for the next).
    pub sweep_batch: usize,
    /// Users whose nodes this node keeps in memory for fan-out (kept fresh by presence change
    /// events); 0 asks Redis for every recipient of every event.
    pub cache_users: usize,
    /// A cached user's nodes are read from Redis again once this old (in case a change event
    /// was missed).
    pub cache_max_age_secs: u64,
}

/// `[calls]`: voice and video calls, and the ICE servers their participants are handed
/// (`crate::turn`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSettings {
    /// How long an unanswered call rings before it ends as missed.
    pub ring_timeout_secs: u64,
    /// `stun:`/`stuns:` URLs, handed out as one ICE server without credentials. A TOML list, or
    /// one string separated by commas (`CHAT__CALLS__STUN_URLS`).
    #[serde(deserialize_with = "crate::turn::deserialize_stun_urls")]
    pub stun_urls: Vec<String>,
    /// `turn:`/`turns:` URLs of the TURN server (coturn), handed out with time-limited
    /// credentials. A TOML list, or one string separated by commas (`CHAT__CALLS__TURN_URLS`).
    #[serde(deserialize_with = "crate::turn::deserialize_turn_urls")]
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`), from
    /// `CHAT__CALLS__TURN_SECRET`. Absent or empty: no TURN server is handed out. Text only: a
    /// value the environment loader would read as a number or a boolean stops the boot.
    #[serde(default, deserialize_with = "crate::turn::deserialize_turn_secret")]
    pub turn_secret: Option<SecretString>,
    /// How long a TURN credential stays valid (coturn refuses it for new allocations after).
    pub turn_ttl_secs: u64,
}

impl CallSettings {
    /// How long an unanswered call rings.
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout_secs)
    }
}

impl Settings {
    pub fn load() -> Result<Self, chat_kit::SettingsError> {
        chat_kit::load_settings(DEFAULTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_defaults_parse() {
        let s: Settings = chat_kit::load_settings(DEFAULTS).unwrap();
        assert_eq!(s.amqp.shards, 256);
        assert_eq!(s.ws.max_frame_bytes, 65536);
        assert_eq!(s.ws.max_in_flight, 128);
        assert_eq!((s.quota.posts_per_minute, s.quota.posts_burst), (600, 100));
        assert_eq!((s.quota.rooms_per_minute, s.quota.rooms_burst), (10, 20));
        assert_eq!((s.presence.sweep_interval_secs, s.presence.sweep_batch), (10, 1000));
        assert_eq!((s.presence.cache_users, s.presence.cache_max_age_secs), (100_000, 30));
        assert_eq!((s.calls.ring_timeout_secs, s.calls.turn_ttl_secs), (30, 86_400));
        assert!(s.calls.stun_urls.is_empty() && s.calls.turn_urls.is_empty() && s.calls.turn_secret.is_none());
    }
}
