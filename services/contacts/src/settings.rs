//! The contacts service's settings: compiled-in defaults (`config/default.toml`), then the
//! optional file and `CHAT__SECTION__KEY` environment variables.

use std::path::PathBuf;

use chat_auth::AuthSettings;
use chat_bus::BrokerSettings;
use chat_kit::{DatabaseSettings, HttpSettings};
use chat_telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

/// The compiled-in defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything contacts is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: BrokerSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub authz: AuthzSettings,
    pub contacts: ContactsSettings,
    pub invite: InviteSettings,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsSettings {
    /// This process's node id on the bus; empty: the host name and a boot id.
    pub node_id: String,
    /// How long a request waits for rooms' answer.
    pub command_timeout_ms: u64,
    /// The LINE add-friend URL without the basic id.
    pub add_friend_base: String,
    /// The largest page of a list.
    pub page_max: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteSettings {
    /// Fallback font files of the profile card, after the shipped DejaVu Sans.
    pub fonts: Vec<PathBuf>,
}

impl Settings {
    /// The defaults, then `CHAT_CONFIG`'s file, then the environment.
    pub fn load() -> Result<Self, chat_kit::SettingsError> {
        chat_kit::load_settings(DEFAULTS)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_defaults_parse() {
        let settings: super::Settings = chat_kit::load_settings(super::DEFAULTS).unwrap();
        assert_eq!(settings.http.host, "127.0.0.1");
        assert_eq!(settings.database.schema, "contacts");
        assert_eq!(settings.contacts.command_timeout_ms, 10_000);
        assert_eq!(settings.contacts.page_max, 200);
        assert_eq!(settings.contacts.add_friend_base, "https://line.me/R/ti/p/");
        assert!(settings.contacts.node_id.is_empty());
        assert!(settings.invite.fonts.is_empty());
    }

    #[test]
    fn an_unknown_key_stops_the_boot() {
        let typo = chat_kit::parse_layers::<super::Settings>(&[super::DEFAULTS, "[contacts]\npage_maxx = 3\n"]);
        assert!(typo.is_err());
    }
}
