//! Logs and metrics for every service: JSON logs to stdout, Prometheus metrics in the process
//! registry. Log and error messages are lowercase with facts as fields.

use serde::Deserialize;
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An `EnvFilter` directive such as `info` or `rooms=debug,info`.
    pub log_level: String,
    /// `json` (default, for machines) or `text` (for people at a terminal).
    pub log_format: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self { log_level: "info".into(), log_format: "json".into() }
    }
}

/// Held by `main` for the life of the process.
pub struct Telemetry {
    service: String,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        tracing::info!(service = %self.service, "telemetry flushed");
    }
}

/// Install the global subscriber once. A second call (tests, the standalone) is a no-op.
pub fn init(service: &str, settings: &TelemetrySettings) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let result = if settings.log_format == "text" {
        fmt().with_env_filter(filter).with_target(false).try_init()
    } else {
        fmt().json().with_env_filter(filter).with_current_span(false).flatten_event(true).try_init()
    };
    if result.is_ok() {
        tracing::info!(service, "telemetry started");
    }
    Telemetry { service: service.to_owned() }
}

/// The Prometheus text exposition of every metric registered in this process.
pub fn render_metrics() -> String {
    use prometheus::Encoder;
    let encoder = prometheus::TextEncoder::new();
    let mut out = Vec::new();
    if encoder.encode(&prometheus::gather(), &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}
