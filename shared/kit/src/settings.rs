//! Configuration: defaults compiled in, then an optional file (`CHAT_CONFIG=path.toml`), then
//! environment variables `CHAT__SECTION__KEY`. Unknown keys stop the boot with their name.

use serde::de::DeserializeOwned;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(String);

/// Load a service's typed settings over its compiled-in defaults (TOML).
pub fn load_settings<T: DeserializeOwned>(defaults_toml: &str) -> Result<T, SettingsError> {
    load_layered(&[defaults_toml])
}

/// Settings from compiled-in layers only (no file, no environment): for a service embedded in
/// another process whose environment belongs to that process.
pub fn parse_layers<T: DeserializeOwned>(layers: &[&str]) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    for layer in layers {
        builder = builder.add_source(config::File::from_str(layer, config::FileFormat::Toml));
    }
    builder.build().and_then(|c| c.try_deserialize()).map_err(|e| SettingsError(e.to_string()))
}

/// Like `load_settings`, with several compiled-in layers, later ones winning.
pub fn load_layered<T: DeserializeOwned>(layers: &[&str]) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    for layer in layers {
        builder = builder.add_source(config::File::from_str(layer, config::FileFormat::Toml));
    }
    if let Ok(path) = std::env::var("CHAT_CONFIG") {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    builder = builder
        .add_source(config::Environment::with_prefix("CHAT").prefix_separator("__").separator("__").try_parsing(true));
    let config = builder.build().map_err(|e| SettingsError(e.to_string()))?;
    config.try_deserialize().map_err(|e| SettingsError(e.to_string()))
}

/// Where a service listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port (tests); the chosen port is logged.
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// Largest JSON body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
}

fn default_body_limit() -> usize {
    64 * 1024
}

/// The service's PostgreSQL (or SQLite, standalone) database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://...` or `sqlite://path?mode=rwc`.
    pub url: String,
    /// PostgreSQL schema of this service (tests use one per run).
    pub schema: String,
    pub max_connections: u32,
    /// PostgreSQL ends a session left idle inside a transaction this long (0: never), and so
    /// frees its row locks: a process frozen mid-transaction (SIGSTOP, a stalled VM) cannot
    /// hold up the next owner of its rows for longer.
    #[serde(default)]
    pub idle_in_transaction_timeout_ms: u64,
}

/// Redis, or `inproc` for the standalone's in-process presence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    /// Prefix of every key (isolates test runs).
    pub prefix: String,
}
