//! W3C trace context across processes: what goes in AMQP headers and HTTP headers so that a
//! span on the other side continues the same trace.
//!
//! Everything here does nothing (and allocates nothing) while tracing is off.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::traces;

/// The W3C `traceparent` header (and message header) name.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C `tracestate` header (and message header) name.
pub const TRACESTATE: &str = "tracestate";
/// Values longer than this are ignored: a `traceparent` is 55 characters, a `tracestate` at
/// most 512 (W3C Trace Context).
const MAX_VALUE: usize = 512;

/// The trace context one message or request carries: its `traceparent` and `tracestate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceParent {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl TraceParent {
    /// The context of `span`, to send along. Empty while tracing is off or `span` is not
    /// recorded.
    pub fn of(span: &Span) -> Self {
        let mut carrier = Self::default();
        if !traces::is_on() || span.is_disabled() {
            return carrier;
        }
        let cx = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&cx, &mut carrier));
        carrier
    }

    /// The context of the current span.
    pub fn current() -> Self {
        Self::of(&Span::current())
    }

    /// What arrived with a message or request: `get` reads a header by its (lowercase) name.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        if !traces::is_on() {
            return Self::default();
        }
        let read = |name| get(name).filter(|v| !v.is_empty() && v.len() <= MAX_VALUE).map(str::to_owned);
        Self { traceparent: read(TRACEPARENT), tracestate: read(TRACESTATE) }
    }

    /// A stored `traceparent` value (the `tracestate` is not kept with it).
    pub fn from_traceparent(value: &str) -> Self {
        Self::from_headers(|name| (name == TRACEPARENT).then_some(value))
    }

    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// The `traceparent` value, to store with work done later.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The headers to send: `(name, value)` pairs, none when empty.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let parent = self.traceparent.as_deref().map(|v| (TRACEPARENT, v));
        let state = self.traceparent.as_ref().and(self.tracestate.as_deref()).map(|v| (TRACESTATE, v));
        parent.into_iter().chain(state)
    }

    /// Make `span` continue the trace this came with: its parent becomes the remote span.
    /// Call it before the span is first entered. Nothing happens when this is empty or
    /// malformed.
    pub fn adopt(&self, span: &Span) {
        if let Some(cx) = self.remote() {
            let _ = span.set_parent(cx);
        }
    }

    /// Link `span` to the remote span this came with, without making it the parent (work
    /// done for several messages at once: one batch, many traces).
    pub fn link(&self, span: &Span) {
        if let Some(cx) = self.remote() {
            span.add_link(cx.span().span_context().clone());
        }
    }

    /// The trace id, as 32 hex digits, when this carries a valid context.
    pub fn trace_id(&self) -> Option<String> {
        self.remote().map(|cx| cx.span().span_context().trace_id().to_string())
    }

    fn remote(&self) -> Option<opentelemetry::Context> {
        if self.is_empty() || !traces::is_on() {
            return None;
        }
        // From an empty context: `extract` alone falls back to the current one when the
        // header is malformed, which would pass the local span off as the remote parent.
        let empty = opentelemetry::Context::new();
        let cx =
            opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract_with_context(&empty, self));
        cx.span().span_context().is_valid().then_some(cx)
    }
}

impl Injector for TraceParent {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

impl Extractor for TraceParent {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.headers().map(|(name, _)| name).collect()
    }
}

/// The trace id of the current span (32 hex digits), when it is recorded: for log lines and
/// error reports.
pub fn current_trace_id() -> Option<String> {
    if !traces::is_on() {
        return None;
    }
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// A client span for one HTTP call (`<METHOD> <route>`, kind client), a disabled one while
/// tracing is off. `peer` names the service or API called; `route` is the path template,
/// never a path with ids in it. Record `http.response.status_code` on it when the answer comes.
pub fn client_span(method: &str, peer: &str, route: &str) -> Span {
    if !traces::is_on() {
        return Span::none();
    }
    tracing::info_span!(
        "http call",
        otel.name = format!("{method} {route}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        server.address = peer,
        url.template = route,
        http.response.status_code = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_span_context_goes_out_as_traceparent_and_comes_back_as_the_parent() {
        // Spans recorded, nothing exported.
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        traces::set_on(true);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let sender = tracing::info_span!("send");
            let carried = TraceParent::of(&sender);
            let value = carried.traceparent().expect("a traceparent").to_owned();
            let parts: Vec<&str> = value.split('-').collect();
            assert_eq!((parts.len(), parts[0], parts[1].len(), parts[2].len()), (4, "00", 32, 16), "{value}");

            // Through a header map and back, then adopted by the receiving span.
            let headers: Vec<(String, String)> = carried.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            let received =
                TraceParent::from_headers(|name| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()));
            assert_eq!(received, carried);
            let receiver = tracing::info_span!("process");
            received.adopt(&receiver);
            let child = TraceParent::of(&receiver);
            assert_eq!(child.trace_id(), Some(parts[1].to_owned()), "the same trace");
            assert_ne!(child.traceparent(), Some(value.as_str()), "a span of its own");
            let _in = receiver.enter();
            assert_eq!(current_trace_id().as_deref(), Some(parts[1]));

            // What is malformed or too long is ignored, not an error.
            let junk = TraceParent::from_traceparent("00-nothex-0000-01");
            assert_eq!(junk.trace_id(), None);
            let long = "0".repeat(MAX_VALUE + 1);
            assert!(TraceParent::from_traceparent(&long).is_empty());
        });
        traces::set_on(false);
        assert!(TraceParent::of(&tracing::Span::current()).is_empty(), "nothing while tracing is off");
    }
}
