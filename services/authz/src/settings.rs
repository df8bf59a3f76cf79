//! The authz service's settings: compiled-in defaults (`config/default.toml`), then the
//! optional file and `CHAT__SECTION__KEY` environment variables.

use chat_bus::BrokerSettings;
use chat_kit::{DatabaseSettings, HttpSettings};
use chat_telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

/// The compiled-in defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything authz is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: BrokerSettings,
    pub tokens: TokenSettings,
    pub login: LoginSettings,
    pub internal: InternalSettings,
    pub telemetry: TelemetrySettings,
}

/// The access tokens authz signs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
}

/// Login attempts allowed per minute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Per account (tenant + username).
    pub per_account_per_minute: u32,
    /// Per client address.
    pub per_address_per_minute: u32,
}

/// Calls between services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalSettings {
    /// The shared token other services present on `/internal/` calls (`X-Internal-Token`).
    pub token: SecretString,
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
        assert_eq!(settings.tokens.ttl_secs, 900);
        assert!(!settings.amqp.is_in_process());
    }
}
