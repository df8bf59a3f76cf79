//! `http_requests_total` and `http_request_duration_seconds`, labelled by route pattern (never
//! by raw path, which would explode cardinality with ids).

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{HistogramVec, IntCounterVec};

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
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let (requests, duration) = metrics();
    requests.with_label_values(&[service, &method, &route, res.status().as_str()]).inc();
    duration.with_label_values(&[service, &method, &route]).observe(start.elapsed().as_secs_f64());
    Ok(res)
}
