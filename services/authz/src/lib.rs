//! The authz service: tenants, users and admins, login and tokens (EdDSA JWTs, JWKS, key
//! rotation), LINE permission per member, bilateral trust between tenants, the audit trail,
//! decisions at the point of use (`/internal/v1/decide`) and change events on the bus.

mod api;
mod app;
mod keys;
mod password;
pub mod store;

use chat_kit::{BrokerSettings, DatabaseSettings, HttpSettings};
use chat_telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

pub use app::{AuthzCore, DEMO_USERS};
pub use keys::KeyRing;

pub const SERVICE: &str = "authz";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    pub per_account_per_minute: u32,
    pub per_address_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalSettings {
    pub token: SecretString,
}

impl Settings {
    pub fn load() -> Result<Self, chat_kit::SettingsError> {
        chat_kit::load_settings(DEFAULTS)
    }
}

/// Connect the store and the bus named by the settings.
pub async fn connect(settings: &Settings) -> anyhow::Result<(store::Store, chat_bus::SharedBus)> {
    let store = store::Store::connect(&settings.database).await?;
    let bus: chat_bus::SharedBus = if settings.amqp.url == "inproc" {
        std::sync::Arc::new(chat_bus::InProcBus::new(settings.amqp.shards))
    } else {
        let amqp = chat_bus::AmqpSettings {
            url: settings.amqp.url.clone(),
            heartbeat_secs: settings.amqp.heartbeat_secs,
            delivery_limit: settings.amqp.delivery_limit,
        };
        let topology = chat_bus::Topology::new(&settings.amqp.prefix, settings.amqp.shards);
        std::sync::Arc::new(chat_bus::AmqpBus::connect(&amqp, topology).await?)
    };
    Ok((store, bus))
}

/// Serve until `shutdown`.
pub async fn run(settings: Settings, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let (store, bus) = connect(&settings).await?;
    let http = settings.http.clone();
    let core = AuthzCore::start(settings, store, bus).await?;
    chat_kit::run_basic_service(SERVICE, &http, core.configure(), shutdown).await?;
    Ok(())
}

/// Run one administrative command against the store.
pub async fn command<F, Fut>(settings: Settings, f: F) -> anyhow::Result<()>
where
    F: FnOnce(std::sync::Arc<AuthzCore>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (store, bus) = connect(&settings).await?;
    let core = AuthzCore::start(settings, store, bus).await?;
    f(core).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_defaults_parse() {
        let s: super::Settings = chat_kit::load_settings(super::DEFAULTS).unwrap();
        assert_eq!(s.tokens.ttl_secs, 900);
    }
}
