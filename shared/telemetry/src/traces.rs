//! The OTLP trace pipeline: a tracer provider with a batch processor (its own thread) and an
//! OTLP/HTTP exporter, built only when an endpoint is configured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use crate::TelemetrySettings;

/// Whether spans of this process are exported (and so trace context is worth carrying).
static TRACING: AtomicBool = AtomicBool::new(false);

pub(crate) fn is_on() -> bool {
    TRACING.load(Ordering::Relaxed)
}

#[cfg(test)]
pub(crate) fn set_on(on: bool) {
    TRACING.store(on, Ordering::Relaxed);
}

/// How long shutting down may wait for the last spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Exporting {
    provider: SdkTracerProvider,
    endpoint: String,
}

impl Exporting {
    /// Build the pipeline, or `None` when no endpoint is configured anywhere.
    pub(crate) fn start(service: &str, settings: &TelemetrySettings) -> Result<Option<Self>, String> {
        let from_env = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"].iter().find_map(|name| {
            std::env::var(name).ok().filter(|value| !value.trim().is_empty()).map(|value| (*name, value))
        });
        let endpoint = match (settings.otlp_endpoint.trim(), from_env) {
            ("", None) => return Ok(None),
            // Ours is a base URL, like the standard variable: the signal's path is added.
            (base, _) if !base.is_empty() => Some(format!("{}/v1/traces", base.trim_end_matches('/'))),
            // The exporter reads the standard variables itself (and adds the path where the
            // specification says so).
            _ => None,
        };
        let protocol = match settings.otlp_protocol.trim() {
            "" => match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
                Ok("http/json") => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            },
            "http/protobuf" => Protocol::HttpBinary,
            "http/json" => Protocol::HttpJson,
            other => return Err(format!("telemetry.otlp_protocol {other:?}: use http/protobuf or http/json")),
        };
        let ratio = settings.trace_sample_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!("telemetry.trace_sample_ratio {ratio}: use a number from 0.0 to 1.0"));
        }
        let service = service.to_owned();
        let shown = endpoint.clone().unwrap_or_else(|| "from OTEL_EXPORTER_OTLP_* variables".into());
        // The blocking HTTP client starts a runtime of its own: build it away from the
        // caller's (an async `main`'s) runtime.
        let provider = std::thread::spawn(move || -> Result<SdkTracerProvider, String> {
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_timeout(EXPORT_TIMEOUT);
            if let Some(endpoint) = endpoint {
                exporter = exporter.with_endpoint(endpoint);
            }
            let exporter = exporter.build().map_err(|e| e.to_string())?;
            Ok(SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
                .with_resource(Resource::builder().with_service_name(service).build())
                .build())
        })
        .join()
        .map_err(|_| "building the trace exporter panicked".to_owned())??;
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        TRACING.store(true, Ordering::Relaxed);
        Ok(Some(Self { provider, endpoint: shown }))
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.provider.tracer("chat");
        tracing_opentelemetry::layer().with_tracer(tracer).with_tracked_inactivity(false).with_threads(false)
    }

    /// Export what is left, on a thread of its own (the exporter's client must not be
    /// dropped on an async runtime).
    pub(crate) fn shutdown(self) {
        TRACING.store(false, Ordering::Relaxed);
        let provider = self.provider;
        let _ = std::thread::spawn(move || {
            if let Err(err) = provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
                // The subscriber may be gone by now: straight to stderr, as a log line.
                let line =
                    serde_json::json!({"level": "WARN", "message": "flushing traces failed", "error": err.to_string()});
                eprintln!("{line}");
            }
        })
        .join();
    }
}
