//! The LINE gateway's settings: compiled-in defaults (`config/default.toml`), then the optional
//! file and `CHAT__SECTION__KEY` environment variables.

use chat_auth::AuthSettings;
use chat_bus::BrokerSettings;
use chat_kit::{DatabaseSettings, HttpSettings, RedisSettings};
use chat_telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

/// The compiled-in defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the LINE gateway is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: BrokerSettings,
    /// Not used by this slice; deployments pass it already.
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub authz: AuthzSettings,
    pub rooms: RoomsSettings,
    pub line: LineSettings,
    pub media: MediaSettings,
}

/// Where authz's decisions come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzSettings {
    /// Base URL of the authz service (internal).
    pub url: String,
    /// The service token presented on `/internal/` calls (`X-Internal-Token`).
    pub internal_token: SecretString,
}

/// Where the rooms service answers its public API (who is in a room, asked with the caller's
/// own token when a member other than the channel's reads a LINE medium).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsSettings {
    /// Base URL of the rooms service; empty: only the channel's member reads its media.
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSettings {
    /// Base64 of the 32-byte AES-256-GCM key of channel secrets and tokens at rest. Required.
    pub secrets_key: SecretString,
    /// The largest webhook body accepted, in bytes.
    pub webhook_max_bytes: usize,
    /// This process's node id on the bus; empty: the host name and a boot id.
    pub node_id: String,
    /// How long one room command may take.
    pub command_timeout_ms: u64,
    /// The Messaging API base URL (pushes, profiles).
    pub api_base_url: String,
    /// The content API base URL (media, a later slice).
    pub data_api_base_url: String,
    /// Inbox worker tasks, and as many sender worker tasks.
    pub workers: usize,
    /// The timeout of one Messaging API call (a push, a profile), in ms.
    pub push_timeout_ms: u64,
    /// Attempts of one push request before its message is given up.
    pub push_max_attempts: u32,
    /// Push requests per second and channel.
    pub push_per_second: u32,
    /// How long a member's message waits for the next ones to the same LINE user, to go out
    /// in one push with them (ms; 0: at once).
    pub batch_window_ms: u64,
}

/// Where the content of LINE users' media is kept (`object_store`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// `file` (a local directory) or `s3` (S3-compatible storage).
    pub store: MediaBackend,
    /// With `file`: the directory (created at start).
    pub path: String,
    /// With `s3`: the bucket, its region and, for S3-compatible storage, its endpoint. The keys
    /// come from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`, ...).
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    /// With `s3`: allow an `http://` endpoint.
    pub allow_http: bool,
    /// Larger content is not stored (the room message says so).
    pub max_bytes: u64,
    /// The engine's external URL of this gateway; media URLs are
    /// `<public_base_url>/v1/line/media/<media id>`.
    pub public_base_url: String,
    /// The external URL LINE fetches members' media from (signed links,
    /// `<line_base_url>/line/media/<id>?expires=..&signature=..`); must be https for LINE to
    /// show an image. Empty: `public_base_url`.
    pub line_base_url: String,
    /// How long a signed link stays valid, in days (LINE's apps fetch media lazily).
    pub link_ttl_days: u64,
}

impl MediaSettings {
    /// The base URL of signed links.
    pub fn line_base_url(&self) -> &str {
        if self.line_base_url.trim().is_empty() {
            &self.public_base_url
        } else {
            &self.line_base_url
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    File,
    S3,
}

impl Settings {
    /// The defaults, then `CHAT_CONFIG`'s file, then the environment.
    pub fn load() -> Result<Self, chat_kit::SettingsError> {
        chat_kit::load_settings(DEFAULTS)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    #[test]
    fn the_compiled_in_defaults_parse() {
        let settings: super::Settings = chat_kit::load_settings(super::DEFAULTS).unwrap();
        assert_eq!(settings.http.host, "127.0.0.1");
        assert_eq!(settings.database.schema, "line");
        assert_eq!(settings.line.webhook_max_bytes, 1_048_576);
        assert_eq!(settings.line.command_timeout_ms, 10_000);
        assert_eq!(settings.line.workers, 4);
        assert_eq!(settings.line.push_timeout_ms, 10_000);
        assert_eq!(settings.line.push_max_attempts, 8);
        assert_eq!(settings.line.push_per_second, 100);
        assert_eq!(settings.line.batch_window_ms, 250);
        assert_eq!(settings.rooms.url, "http://127.0.0.1:8081");
        assert_eq!(settings.line.api_base_url, "https://api.line.me");
        assert_eq!(settings.line.data_api_base_url, "https://api-data.line.me");
        assert!(settings.line.node_id.is_empty());
        assert!(settings.line.secrets_key.expose_secret().is_empty());
        assert_eq!(settings.media.store, super::MediaBackend::File);
        assert_eq!(settings.media.path, ".run/line-media");
        assert_eq!(settings.media.max_bytes, 50 * 1024 * 1024);
        assert_eq!(settings.media.public_base_url, "http://127.0.0.1:8083");
        assert!(!settings.media.allow_http);
        assert_eq!(settings.media.line_base_url(), "http://127.0.0.1:8083");
        assert_eq!(settings.media.link_ttl_days, 180);
    }

    #[test]
    fn an_unknown_key_stops_the_boot() {
        let typo = chat_kit::parse_layers::<super::Settings>(&[super::DEFAULTS, "[line]\nworkerz = 3\n"]);
        assert!(typo.is_err());
    }

    #[test]
    fn the_secrets_key_is_not_printed_by_debug() {
        let layer = "[line]\nsecrets_key = \"c2VjcmV0LWtleS1ieXRlcy1zZWNyZXQta2V5LWJ5dGVz\"\n";
        let settings = chat_kit::parse_layers::<super::Settings>(&[super::DEFAULTS, layer]).unwrap();
        assert!(!format!("{settings:?}").contains("c2VjcmV0"));
    }
}
