//! `http_requests_total` and `http_request_duration_seconds`, labelled by route pattern (never
//! by raw path, which would explode cardinality with ids); and, while tracing is on, a server
//! span per request (`<METHOD> <route>`, the HTTP semantic conventions) that continues the
//! caller's trace (`traceparent`).

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{HistogramVec, IntCounterVec};
use tracing::{Instrument, Span};

fn metrics() -> &'static (IntCounterVec, HistogramVec) {
    static METRICS: OnceLock<(IntCounterVec, HistogramVec)> = OnceLock::new();
    METRICS.get_or_init(|| {
        let requests = prometheus::register_int_counter_vec!(
            "http_requests_total",
            "HTTP requests answered",
            &["service", "method", "route", "status"]
        )
        .unwrap_or_else(|e| panic!("metric registration is a startup invariant: {e}"));
        let duration = prometheus::register_histogram_vec!(
            "http_request_duration_seconds",
            "HTTP request duration",
            &["service", "method", "route"],
            vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
        )
        .unwrap_or_else(|e| panic!("metric registration is a startup invariant: {e}"));
        (requests, duration)
    })
}

/// Middleware body for `actix_web::middleware::from_fn`; `service` names the owner.
pub async fn record(
    service: &'static str,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let span = server_span(&req, &method);
    let res = next.call(req).instrument(span.clone()).await?;
    span.record("http.response.status_code", res.status().as_u16());
    if res.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let (requests, duration) = metrics();
    requests.with_label_values(&[service, &method, &route, res.status().as_str()]).inc();
    duration.with_label_values(&[service, &method, &route]).observe(start.elapsed().as_secs_f64());
    Ok(res)
}

/// The request's span, a disabled one while tracing is off. The route is the pattern the
/// request matches (`/v1/rooms/{room_id}`), never the raw path.
fn server_span(req: &ServiceRequest, method: &str) -> Span {
    if !chat_telemetry::tracing_on() {
        return Span::none();
    }
    let route = req.match_pattern();
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        "http request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route.as_deref(),
        url.path = req.path(),
        http.response.status_code = tracing::field::Empty,
    );
    let headers = req.headers();
    chat_telemetry::TraceParent::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok())).adopt(&span);
    span
}
