//! One trace across the engine: a member's message to a LINE user, posted over HTTP with a
//! W3C `traceparent` of the test's own, is traced by rooms (the request, the command's publish,
//! its consumption from the shard queue, the room's command and commit, the change event's
//! publish), carried through RabbitMQ in the message headers, and continued by the LINE
//! gateway (the event's consumption, and the push to LINE, made later from the outbox). The
//! services export over OTLP/HTTP (JSON) to a receiver in this test, and rooms' log lines of
//! that work carry the same trace id.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use e2e::line::allow_line_and_bind;
use e2e::*;
use line_sim::events::{self, Source};
use line_sim::{Channel, Profile, WebhookRequest};
use serde_json::{json, Value};

const LINE_USER: &str = "U0123456789abcdef0123456789abcd01";

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i64,
    attributes: Value,
}

/// Every span in an OTLP/JSON `ExportTraceServiceRequest`.
fn spans_of(request: &Value) -> Vec<Got> {
    let mut out = Vec::new();
    for resource in request["resourceSpans"].as_array().into_iter().flatten() {
        let service = resource["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .and_then(|a| a["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_owned();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                out.push(Got {
                    service: service.clone(),
                    trace_id: text("traceId").to_lowercase(),
                    span_id: text("spanId").to_lowercase(),
                    parent_span_id: text("parentSpanId").to_lowercase(),
                    name: text("name"),
                    kind: span["kind"].as_i64().unwrap_or_default(),
                    attributes: span["attributes"].clone(),
                });
            }
        }
    }
    out
}

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with JSON bodies.
async fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let store = web::Data::new(got.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(store.clone()).app_data(web::PayloadConfig::new(16 << 20)).route(
            "/v1/traces",
            web::post().to(|body: web::Bytes, store: web::Data<Arc<Mutex<Vec<Got>>>>| async move {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(request) => {
                        store.lock().unwrap().extend(spans_of(&request));
                        HttpResponse::Ok().content_type("application/json").body("{}")
                    }
                    Err(_) => HttpResponse::BadRequest().finish(),
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("the receiver binds");
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), got)
}

fn attribute<'a>(span: &'a Got, key: &str) -> Option<&'a Value> {
    span.attributes.as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

#[actix_rt::test]
async fn one_trace_crosses_rooms_rabbitmq_and_the_line_gateway_to_line() {
    let (endpoint, got) = receiver().await;
    let tracing_env = [
        ("CHAT__TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
        ("CHAT__TELEMETRY__OTLP_PROTOCOL", "http/json"),
        // Export every 100 ms rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let running = line_sim::start("127.0.0.1:0").expect("the simulator starts");
    let sim = running.client();
    let mut c = Cluster::start_with("tracing", &tracing_env, &tracing_env).await;
    c.start_contacts().await;
    let mut line_env = vec![
        ("CHAT__LINE__API_BASE_URL", running.base_url.as_str()),
        ("CHAT__LINE__DATA_API_BASE_URL", running.base_url.as_str()),
    ];
    line_env.extend(tracing_env);
    // The push's log line (debug) is the one this test reads.
    line_env.push(("RUST_LOG", "info,line_gateway::outbox=debug"));
    c.start_line_gateway(&line_env).await;

    let channel = Channel::random("1660000077");
    sim.register_channel(&channel).await.expect("channel");
    let profile = Profile {
        channel_id: channel.channel_id.clone(),
        user_id: LINE_USER.into(),
        display_name: "Hanako".into(),
        picture_url: None,
        status_message: None,
        language: None,
    };
    sim.add_profile(&profile).await.expect("profile");
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    allow_line_and_bind(&c, &admin, "alice@acme", &channel).await;
    let webhook_url = format!("{}/line/webhook/{}", c.line_gateway(), channel.channel_id);
    let follow =
        WebhookRequest::new(&channel.channel_id, &webhook_url, vec![events::follow(&Source::user(LINE_USER), false)]);
    let sent = sim.send_webhook(&follow).await.expect("webhook sent");
    assert_eq!(sent.status, 200, "{}", sent.body);
    let room = eventually(15, "the LINE 1:1 room", || async {
        let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), None).await;
        a.body["rooms"].as_array().and_then(|rooms| {
            rooms.iter().find(|r| r["kind"] == "line_direct").and_then(|r| r["id"].as_str().map(str::to_owned))
        })
    })
    .await;

    // The test's own trace: the post is its child, and all that follows from it.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let body = json!({"client_msg_id": "traced-1", "body": {"type": "text", "text": "Hello, traced"}}).to_string();
    let posted = call_with(
        "POST",
        &format!("{}/v1/rooms/{room}/messages", c.rooms.base()),
        Some(&alice),
        Some(&body),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert!(posted.status == 200 || posted.status == 201, "post: {} {}", posted.status, posted.body);
    eventually(15, "the push to LINE", || async {
        let pushes = sim.requests(Some("/v2/bot/message/push"), Some(&channel.channel_id)).await.expect("records");
        pushes.iter().any(|r| r.status == 200 && r.body["messages"].to_string().contains("Hello, traced")).then_some(())
    })
    .await;

    // Every step, in the one trace.
    let spans = eventually(20, "the spans of the trace from both services", || async {
        let spans: Vec<Got> = got.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        let has = |service: &str, pred: &dyn Fn(&Got) -> bool| spans.iter().any(|s| s.service == service && pred(s));
        let complete = has("rooms", &|s| s.name == "POST /v1/rooms/{room_id}/messages")
            && has("rooms", &|s| s.name == "room post")
            && has("rooms", &|s| s.name == "room commit")
            && has("rooms", &|s| s.name.starts_with("process ") && s.kind == 5)
            && has("rooms", &|s| s.name.starts_with("send ") && s.name.ends_with("events") && s.kind == 4)
            && has("line-gateway", &|s| s.name.starts_with("process ") && s.kind == 5)
            && has("line-gateway", &|s| s.name == "POST /v2/bot/message/push" && s.kind == 3);
        complete.then_some(spans)
    })
    .await;
    let one = |service: &str, pred: &dyn Fn(&Got) -> bool| -> Got {
        spans.iter().find(|s| s.service == service && pred(s)).cloned().expect("found above")
    };
    // The request continues the caller's span: a server span (kind 2) whose parent is ours.
    let request = one("rooms", &|s| s.name == "POST /v1/rooms/{room_id}/messages");
    assert_eq!(request.parent_span_id, caller_span, "the caller's span is the request's parent");
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(
        attribute(&request, "http.route").and_then(|v| v["stringValue"].as_str()),
        Some("/v1/rooms/{room_id}/messages")
    );
    // Across the broker: the gateway's consumer span is the child of rooms' producer span,
    // whose context went in the AMQP headers.
    let event_send = one("rooms", &|s| s.name.starts_with("send ") && s.name.ends_with("events"));
    let event_process = one("line-gateway", &|s| s.name.starts_with("process ") && s.kind == 5);
    assert_eq!(event_process.parent_span_id, event_send.span_id, "the gateway continues rooms' publish");
    assert_eq!(attribute(&event_send, "messaging.system").and_then(|v| v["stringValue"].as_str()), Some("rabbitmq"));
    assert_eq!(
        attribute(&event_process, "messaging.operation.type").and_then(|v| v["stringValue"].as_str()),
        Some("process")
    );
    // The command crossed the broker too: rooms' shard consumer continues the HTTP handler's
    // publish of the command.
    let command_send = one("rooms", &|s| s.name.starts_with("send ") && s.name.ends_with("rooms.cmd"));
    let command_process = one("rooms", &|s| s.name.starts_with("process ") && s.name.contains("rooms.cmd.s"));
    assert_eq!(command_process.parent_span_id, command_send.span_id, "the shard consumer continues the publish");
    assert!(spans.iter().all(|s| s.trace_id == trace_id));

    // A frame on a WebSocket begins a trace of its own that reaches LINE the same way.
    let mut ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let frame = json!({"type": "send", "room_id": room, "client_msg_id": "traced-ws", "body": {"type": "text", "text": "Hello over ws"}});
    ws.send(frame).await;
    eventually(20, "a ws frame's trace reaching the push to LINE", || async {
        let spans = got.lock().unwrap().clone();
        let frames: Vec<&Got> = spans.iter().filter(|s| s.service == "rooms" && s.name == "ws send").collect();
        frames
            .iter()
            .any(|frame| {
                let in_trace = |service: &str, name: &str| {
                    spans.iter().any(|s| s.trace_id == frame.trace_id && s.service == service && s.name == name)
                };
                frame.parent_span_id.is_empty()
                    && in_trace("rooms", "room post")
                    && in_trace("line-gateway", "POST /v2/bot/message/push")
            })
            .then_some(())
    })
    .await;

    // Log lines written inside the trace carry its id: the gateway's line for the push.
    let gateway = c.line_gateway.as_ref().expect("started");
    let log = std::fs::read_to_string(gateway.log_path()).expect("the gateway's log");
    let sent: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "sent to LINE")
        .collect();
    assert!(!sent.is_empty(), "the push is logged (at debug, turned on for this test)");
    assert!(
        sent.iter().any(|l| l["trace_id"] == trace_id.as_str()),
        "the push's log line carries the trace id: {sent:?}"
    );
    assert!(sent.iter().all(|l| l["span_id"].as_str().is_some_and(|id| id.len() == 16)), "{sent:?}");
}
