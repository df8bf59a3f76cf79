//! The rooms service's typed settings (`config/default.toml`, then `CHAT_CONFIG`, then
//! `CHAT__SECTION__KEY`). Unknown keys stop the boot.

use chat_auth::AuthSettings;
use chat_bus::BrokerSettings;
use chat_kit::{DatabaseSettings, HttpSettings, RedisSettings};
use chat_protocol::Limits;
use chat_telemetry::TelemetrySettings;
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
    }
}
