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

/// Login attempts allowed per minute, and how the client address is found.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Per account (tenant + username).
    pub per_account_per_minute: u32,
    /// Per client address (IPv6 per /64).
    pub per_address_per_minute: u32,
    /// Peers (CIDR blocks or addresses) whose `X-Forwarded-For` is believed: the ingress. The
    /// client is then the right-most address of the header that none of them added. A TOML
    /// list, or in the environment a comma-separated string.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
    /// The most keys each limiter (accounts, addresses) tracks; while one is full of active
    /// keys, attempts are refused.
    pub max_tracked_keys: usize,
}

/// A list of strings, or one string of comma-separated items (environment variables).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCommas {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match ListOrCommas::deserialize(deserializer)? {
        ListOrCommas::List(items) => items,
        ListOrCommas::Commas(text) => {
            text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
        }
    })
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
        assert!(settings.login.trusted_proxies.is_empty());
        assert_eq!(settings.login.max_tracked_keys, 100_000);
    }

    #[test]
    fn trusted_proxies_are_a_list_or_comma_separated() {
        let list: super::Settings =
            chat_kit::parse_layers(&[super::DEFAULTS, "[login]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n"])
                .unwrap();
        assert_eq!(list.login.trusted_proxies, vec!["10.0.0.0/8".to_owned(), "::1".to_owned()]);
        let commas: super::Settings =
            chat_kit::parse_layers(&[super::DEFAULTS, "[login]\ntrusted_proxies = \"10.0.0.0/8, ::1\"\n"]).unwrap();
        assert_eq!(commas.login.trusted_proxies, list.login.trusted_proxies);
    }
}
