//! The contacts service: external contacts (LINE users, external workspace users), Clients/Partners, blocks, My ID, add-friend URL, QR code and the profile shown to LINE users.
//!
//! For now it answers health and metrics only; its own issue fills it in. Its settings are
//! already its real configuration surface, so deployments need no change when it grows.

use chat_kit::HttpSettings;
use chat_telemetry::TelemetrySettings;
use serde::Deserialize;

pub const SERVICE: &str = "contacts";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: chat_kit::DatabaseSettings,
    pub amqp: chat_bus::BrokerSettings,
    pub auth: chat_auth::AuthSettings,
    pub telemetry: TelemetrySettings,
}

impl Settings {
    pub fn load() -> Result<Self, chat_kit::SettingsError> {
        chat_kit::load_settings(DEFAULTS)
    }
}

/// The API prefixes this service owns.
pub const PREFIXES: &[&str] = &["/v1/contacts", "/v1/me/line-profile", "/v1/me/line-invite"];

/// The routes of this service (mounted by its binary and by the standalone one). Every call
/// is authenticated like in every service; the features themselves come with this service's
/// own issue and answer `501 not_implemented` until then.
pub fn routes(verifier: chat_auth::Verifier) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static {
    chat_auth::unbuilt_routes(SERVICE, PREFIXES, verifier)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_defaults_parse() {
        let s: super::Settings = chat_kit::load_settings(super::DEFAULTS).unwrap();
        assert_eq!(s.http.host, "127.0.0.1");
    }
}
