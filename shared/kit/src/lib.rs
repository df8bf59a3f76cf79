//! The service kit: layered configuration, health and metrics endpoints, the JSON error shape,
//! HTTP request metrics and the shutdown signal. Every service is built from these pieces.

pub mod error;
pub mod health;
pub mod http_metrics;
pub mod json_object;
pub mod openapi;
pub mod outbound;
pub mod service;
pub mod settings;
pub mod shutdown;

/// The allocator of static (musl) builds: see Cargo.toml.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::{json_config, path_config, query_config, serde_code, ApiError};
pub use health::{Health, Readiness};
pub use json_object::Object;
pub use service::{run_basic_service, HttpService};
pub use settings::{
    load_layered, load_settings, parse_layers, DatabaseSettings, HttpSettings, RedisSettings, SettingsError,
};
pub use shutdown::shutdown_signal;
