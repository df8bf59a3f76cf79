//! Logs, metrics and traces for every service: JSON logs to stdout (with the trace and span id
//! of the span they happen in, when tracing is on), Prometheus metrics in the process registry,
//! OpenTelemetry traces exported over OTLP/HTTP when an endpoint is configured and nothing at
//! all when not. Log and error messages are lowercase with facts as fields.
//!
//! `propagation` carries W3C trace context across processes (AMQP headers, HTTP headers).

mod logs;
pub mod propagation;
mod traces;

use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

pub use propagation::{client_span, current_trace_id, TraceParent};

/// Whether this process records and exports spans: code that would build spans or carry
/// trace context only for the exporter asks this first (it costs one atomic load).
pub fn tracing_on() -> bool {
    traces::is_on()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An `EnvFilter` directive such as `info` or `rooms=debug,info`.
    pub log_level: String,
    /// `json` (default, for machines) or `text` (for people at a terminal).
    pub log_format: String,
    /// Where traces go: an OTLP/HTTP collector's base URL (`http://otel-collector:4318`; the
    /// exporter posts to `<url>/v1/traces`). Empty: the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` when set, else no tracing at all.
    #[serde(default)]
    pub otlp_endpoint: String,
    /// `http/protobuf` or `http/json`; empty: `OTEL_EXPORTER_OTLP_PROTOCOL`, else protobuf.
    #[serde(default)]
    pub otlp_protocol: String,
    /// The share of new traces recorded (0.0 to 1.0); a trace begun upstream follows the
    /// caller's decision (parent-based sampling).
    #[serde(default = "default_sample_ratio")]
    pub trace_sample_ratio: f64,
}

fn default_sample_ratio() -> f64 {
    1.0
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_format: "json".into(),
            otlp_endpoint: String::new(),
            otlp_protocol: String::new(),
            trace_sample_ratio: default_sample_ratio(),
        }
    }
}

/// Held by `main` for the life of the process; dropping it flushes the spans not yet exported.
pub struct Telemetry {
    service: String,
    traces: Option<traces::Exporting>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown();
        }
        tracing::info!(service = %self.service, "telemetry flushed");
    }
}

/// Install the global subscriber once. A second call (tests, the standalone) is a no-op.
pub fn init(service: &str, settings: &TelemetrySettings) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if settings.log_format == "text" {
        fmt::layer().with_target(false).boxed()
    } else {
        fmt::layer().event_format(logs::JsonLines).boxed()
    };
    let (traces, exporting, trace_error) = match traces::Exporting::start(service, settings) {
        Ok(Some(exporting)) => (Some(exporting.layer()), Some(exporting), None),
        Ok(None) => (None, None, None),
        Err(err) => (None, None, Some(err)),
    };
    let endpoint = exporting.as_ref().map(|e| e.endpoint().to_owned());
    let installed = tracing_subscriber::registry().with(filter).with(logs).with(traces).try_init().is_ok();
    if !installed {
        // Another subscriber is in place (a test, or the standalone's second call): this
        // one's exporter would never see a span.
        if let Some(exporting) = exporting {
            exporting.shutdown();
        }
        return Telemetry { service: service.to_owned(), traces: None };
    }
    match (&endpoint, trace_error) {
        (_, Some(err)) => tracing::error!(service, error = %err, "telemetry started; tracing is off: bad settings"),
        (Some(endpoint), None) => tracing::info!(service, otlp_endpoint = %endpoint, "telemetry started with tracing"),
        (None, None) => tracing::info!(service, "telemetry started"),
    }
    Telemetry { service: service.to_owned(), traces: exporting }
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
