//! Spans of the bus, after the OpenTelemetry messaging conventions: a producer span per
//! publish (`send <exchange>`), whose context travels in the message's `traceparent` and
//! `tracestate` headers, and a consumer span per delivery (`process <queue>`) that continues
//! it. While tracing is off, no span is made and no header is added.

use chat_telemetry::TraceParent;
use tracing::Span;

/// The `messaging.system` of every span here.
const SYSTEM: &str = "rabbitmq";

/// A producer span for one publish, and the context to send with the message.
pub(crate) fn send(exchange: &str, routing_key: &str, message_id: Option<&str>, bytes: usize) -> (Span, TraceParent) {
    if !chat_telemetry::tracing_on() {
        return (Span::none(), TraceParent::default());
    }
    let span = tracing::info_span!(
        "send",
        otel.name = format!("send {exchange}"),
        otel.kind = "producer",
        messaging.system = SYSTEM,
        messaging.operation.type = "send",
        messaging.operation.name = "publish",
        messaging.destination.name = exchange,
        messaging.rabbitmq.destination.routing_key = routing_key,
        messaging.message.id = message_id,
        messaging.message.body.size = bytes,
    );
    let parent = TraceParent::of(&span);
    (span, parent)
}

/// A consumer span for one delivery from `queue`, continuing the trace it came with.
pub(crate) fn process(queue: &str, trace: &TraceParent, bytes: usize, redelivered: bool) -> Span {
    if !chat_telemetry::tracing_on() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "process",
        otel.name = format!("process {queue}"),
        otel.kind = "consumer",
        messaging.system = SYSTEM,
        messaging.operation.type = "process",
        messaging.operation.name = "deliver",
        messaging.destination.subscription.name = queue,
        messaging.message.body.size = bytes,
        messaging.rabbitmq.redelivered = redelivered,
    );
    trace.adopt(&span);
    span
}
