//! Calls to the other services of the engine, traced: a client span per call and its W3C
//! context in the request's `traceparent` header, so the callee's span continues the trace.

use tracing::Span;

/// `request` with the trace context of a new client span, and the span to run the call in
/// (`Instrument::instrument`); both untouched and disabled while tracing is off. `peer` names
/// the service called, `route` the path template.
pub fn traced(mut request: awc::ClientRequest, peer: &str, route: &str) -> (awc::ClientRequest, Span) {
    let span = chat_telemetry::client_span(request.get_method().as_str(), peer, route);
    for (name, value) in chat_telemetry::TraceParent::of(&span).headers() {
        request = request.insert_header((name, value));
    }
    (request, span)
}

/// Record the answer's status on a client span.
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}
