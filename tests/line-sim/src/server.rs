//! The HTTP surface: LINE's API (every path outside `/_sim/`, each request checked against
//! `messaging-api.yml` and recorded) and the scripting and inspection API under `/_sim/`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chat_kit::{Health, HttpService, HttpSettings, Readiness};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::{Channel, Group, Profile, RecordedRequest, Script, ScriptedResponse, WebhookRequest, WebhookResult};
use crate::spec::{self, Checked, RequestView};
use crate::state::{Accepted, SentMessage, Sim};
use crate::{events, signature};

/// The service name in logs and metrics.
pub const SERVICE: &str = "line-sim";
/// Largest body accepted (LINE's limit is 2 MB; content uploads under `/_sim/` may be larger).
const BODY_LIMIT: usize = 32 * 1024 * 1024;
const WEBHOOK_TIMEOUT_MS: u64 = 10_000;

/// Mount the simulator's routes on `cfg` (next to the kit's health and metrics endpoints).
pub fn routes(sim: Arc<Sim>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(sim.clone()))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .service(
                web::scope("/_sim")
                    .route("/channels", web::post().to(register_channel))
                    .route("/profiles", web::post().to(add_profile))
                    .route("/groups", web::post().to(add_group))
                    .route("/content/{message_id}", web::put().to(put_content))
                    .route("/content/{message_id}", web::delete().to(delete_content))
                    .route("/script", web::post().to(add_script))
                    .route("/script", web::delete().to(clear_scripts))
                    .route("/requests", web::get().to(list_requests))
                    .route("/requests", web::delete().to(clear_requests))
                    .route("/invalid", web::get().to(list_invalid))
                    .route("/webhook", web::post().to(send_webhook))
                    .default_service(web::to(|| async {
                        HttpResponse::NotFound().json(json!({"error": "no such /_sim endpoint"}))
                    })),
            )
            .default_service(web::to(line_api));
    }
}

// ---------------------------------------------------------------------------------------------
// /_sim/

fn bad_request(message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": message.to_string()}))
}

async fn register_channel(sim: web::Data<Sim>, channel: web::Json<Channel>) -> HttpResponse {
    match sim.register_channel(channel.into_inner()) {
        Ok(()) => HttpResponse::Ok().json(json!({"ok": true})),
        Err(e) => bad_request(e),
    }
}

async fn add_profile(sim: web::Data<Sim>, profile: web::Json<Profile>) -> HttpResponse {
    sim.add_profile(profile.into_inner());
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn add_group(sim: web::Data<Sim>, group: web::Json<Group>) -> HttpResponse {
    sim.add_group(group.into_inner());
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn put_content(
    sim: web::Data<Sim>,
    req: HttpRequest,
    message_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    sim.put_content(&message_id, &content_type, body.to_vec());
    HttpResponse::Ok().json(json!({"ok": true, "bytes": body.len()}))
}

async fn delete_content(sim: web::Data<Sim>, message_id: web::Path<String>) -> HttpResponse {
    let deleted = sim.delete_content(&message_id);
    HttpResponse::Ok().json(json!({"ok": true, "deleted": deleted}))
}

async fn add_script(sim: web::Data<Sim>, script: web::Json<Script>) -> HttpResponse {
    let Script { path, responses } = script.into_inner();
    sim.script(&path, responses);
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn clear_scripts(sim: web::Data<Sim>) -> HttpResponse {
    sim.clear_scripts();
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct RequestFilter {
    path: Option<String>,
    channel_id: Option<String>,
}

async fn list_requests(sim: web::Data<Sim>, filter: web::Query<RequestFilter>) -> HttpResponse {
    let path = filter.path.as_deref().filter(|p| !p.is_empty());
    let channel = filter.channel_id.as_deref().filter(|c| !c.is_empty());
    HttpResponse::Ok().json(sim.requests(path, channel))
}

async fn list_invalid(sim: web::Data<Sim>) -> HttpResponse {
    HttpResponse::Ok().json(sim.invalid())
}

async fn clear_requests(sim: web::Data<Sim>) -> HttpResponse {
    sim.clear_requests();
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn send_webhook(sim: web::Data<Sim>, webhook: web::Json<WebhookRequest>) -> HttpResponse {
    let webhook = webhook.into_inner();
    let Some(channel) = sim.channel(&webhook.channel_id) else {
        return HttpResponse::NotFound().json(json!({"error": format!("unknown channel {}", webhook.channel_id)}));
    };
    let mut all = webhook.events;
    all.iter_mut().for_each(events::complete);
    let envelope = events::callback(&channel.bot_user_id, all);
    let violations = spec::validate_callback(&envelope);
    let bytes = signature::to_body(&envelope, webhook.escape_non_ascii.unwrap_or(true));
    let sig = webhook.signature.unwrap_or_else(|| signature::sign(&channel.channel_secret, &bytes));
    let timeout = Duration::from_millis(webhook.timeout_ms.unwrap_or(WEBHOOK_TIMEOUT_MS));
    let client = awc::Client::builder().timeout(timeout).finish();
    let sent = client
        .post(&webhook.target_url)
        .insert_header(("content-type", "application/json; charset=utf-8"))
        .insert_header((signature::HEADER, sig.clone()))
        .insert_header(("user-agent", "LineBotWebhook/2.0"))
        .send_body(bytes.clone())
        .await;
    let mut answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(target_url = %webhook.target_url, error = %e, "webhook delivery failed");
            return HttpResponse::BadGateway().json(json!({"error": format!("webhook delivery failed: {e}")}));
        }
    };
    let status = answer.status().as_u16();
    let body = answer.body().limit(BODY_LIMIT).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    HttpResponse::Ok().json(WebhookResult {
        status,
        body: body.unwrap_or_else(|e| format!("<body not read: {e}>")),
        webhook_body: String::from_utf8_lossy(&bytes).into_owned(),
        signature: sig,
        violations,
    })
}

// ---------------------------------------------------------------------------------------------
// LINE's API

/// A LINE answer: JSON with a fresh `x-line-request-id`.
fn line_json(status: StatusCode, request_id: &str, body: Value) -> HttpResponse {
    HttpResponse::build(status).insert_header(("x-line-request-id", request_id)).json(body)
}

fn not_found(request_id: &str) -> HttpResponse {
    line_json(StatusCode::NOT_FOUND, request_id, json!({"message": "Not found"}))
}

fn sent_json(sent: &[SentMessage]) -> Value {
    json!({"sentMessages": sent.iter().map(SentMessage::to_json).collect::<Vec<_>>()})
}

fn conflict(request_id: &str, accepted: &Accepted) -> HttpResponse {
    HttpResponse::Conflict()
        .insert_header(("x-line-request-id", request_id))
        .insert_header(("x-line-accepted-request-id", accepted.request_id.as_str()))
        .json(json!({"message": "The retry key is already accepted", "sentMessages": sent_json(&accepted.sent)["sentMessages"]}))
}

/// The channel of the `Authorization: Bearer` token, or why not.
fn authorize(sim: &Sim, headers: &BTreeMap<String, String>) -> Result<Channel, String> {
    let Some(value) = headers.get("authorization") else {
        return Err("the Authorization header is missing".to_owned());
    };
    let Some(token) = value.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
        return Err("the Authorization header is not `Bearer <channel access token>`".to_owned());
    };
    sim.channel_by_token(token).ok_or_else(|| "the channel access token is not one of a registered channel".to_owned())
}

fn request_view(req: &HttpRequest, body: &web::Bytes) -> RequestView {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    RequestView {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers,
        body: body.to_vec(),
    }
}

fn recorded_body(checked: &Checked, raw: &[u8]) -> Value {
    if let Some(body) = &checked.body {
        return body.clone();
    }
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

async fn line_api(req: HttpRequest, body: web::Bytes, sim: web::Data<Sim>) -> HttpResponse {
    let view = request_view(&req, &body);
    let request_id = uuid::Uuid::new_v4().to_string();
    let checked = spec::messaging_api().check(&view);
    let needs_auth = checked.operation.as_ref().is_none_or(|op| op.needs_auth);
    let auth = authorize(&sim, &view.headers);
    let channel = auth.as_ref().ok().cloned();
    let mut violations = checked.violations.clone();
    let auth_failed = needs_auth && auth.is_err();
    if let (true, Err(why)) = (needs_auth, &auth) {
        violations.push(why.clone());
    }
    let mut headers = view.headers.clone();
    headers.remove("authorization");
    let record = RecordedRequest {
        seq: 0,
        method: view.method.clone(),
        path: view.path.clone(),
        query: view.query.clone(),
        operation_id: checked.operation.as_ref().map(|op| op.operation_id.clone()),
        path_template: checked.operation.as_ref().map(|op| op.path.clone()),
        channel_id: channel.as_ref().map(|c| c.channel_id.clone()),
        headers,
        body: recorded_body(&checked, &view.body),
        valid: violations.is_empty(),
        violations: violations.clone(),
        status: 0,
        request_id: request_id.clone(),
        sent_message_ids: Vec::new(),
    };
    let seq = sim.record(record);
    let response = answer(&sim, &view, &checked, channel, violations, auth_failed, &request_id).await;
    sim.answered(seq, response.status().as_u16());
    response
}

async fn answer(
    sim: &Sim,
    view: &RequestView,
    checked: &Checked,
    channel: Option<Channel>,
    violations: Vec<String>,
    auth_failed: bool,
    request_id: &str,
) -> HttpResponse {
    if !violations.is_empty() {
        tracing::warn!(method = %view.method, path = %view.path, ?violations, "invalid request to the LINE API");
        let details: Vec<Value> = violations.iter().map(|v| json!({"message": v})).collect();
        let (status, message) = if auth_failed && checked.violations.is_empty() {
            (
                StatusCode::UNAUTHORIZED,
                "Authentication failed due to the following reason: invalid token. Confirm that the access token \
                 in the authorization header is valid.",
            )
        } else {
            (StatusCode::BAD_REQUEST, "The request does not match LINE's OpenAPI spec (line-sim)")
        };
        return line_json(status, request_id, json!({"message": message, "details": details}));
    }
    let (Some(op), Some(channel)) = (&checked.operation, channel) else {
        // Every operation of the spec needs a token, so a valid request has both.
        return line_json(StatusCode::UNAUTHORIZED, request_id, json!({"message": "Authentication failed"}));
    };
    let template = op.path.as_str();
    if let Some(scripted) = sim.next_scripted(&[view.path.as_str(), template]) {
        if let Some(ms) = scripted.delay_ms {
            actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(status) = scripted.status {
            return scripted_answer(&scripted, status, request_id);
        }
    }
    behave(sim, &op.operation_id, checked, &channel, view, request_id)
}

fn scripted_answer(scripted: &ScriptedResponse, status: u16, request_id: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let default_body = match status.as_u16() {
        429 if scripted.quota => json!({"message": "You have reached your monthly limit."}),
        429 => json!({"message": "Too Many Requests"}),
        409 => json!({"message": "The retry key is already accepted"}),
        400 => json!({"message": "The request body has 1 error(s)"}),
        401 => json!({"message": "Authentication failed due to the following reason: invalid token."}),
        403 => json!({"message": "Access to this API is not available for your account"}),
        404 => json!({"message": "Not found"}),
        500 => json!({"message": "Internal server error"}),
        _ => json!({"message": status.canonical_reason().unwrap_or("Error")}),
    };
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("x-line-request-id", request_id));
    if let (429, Some(secs)) = (status.as_u16(), scripted.retry_after_secs) {
        builder.insert_header(("retry-after", secs.to_string()));
    }
    if status == StatusCode::CONFLICT {
        builder.insert_header(("x-line-accepted-request-id", uuid::Uuid::new_v4().to_string()));
    }
    builder.json(scripted.body.clone().unwrap_or(default_body))
}

fn message_count(checked: &Checked) -> usize {
    checked.body.as_ref().and_then(|b| b.get("messages")).and_then(Value::as_array).map_or(0, Vec::len)
}

/// LINE's answer to a valid request of `operation_id`.
fn behave(
    sim: &Sim,
    operation_id: &str,
    checked: &Checked,
    channel: &Channel,
    view: &RequestView,
    request_id: &str,
) -> HttpResponse {
    let ok = |body: Value| line_json(StatusCode::OK, request_id, body);
    let param = |name: &str| checked.path_params.get(name).map(String::as_str).unwrap_or_default();
    let retry_key = view.headers.get("x-line-retry-key").map(String::as_str);
    match operation_id {
        "pushMessage" => match sim.accept(&channel.channel_id, retry_key, message_count(checked), request_id) {
            Ok(sent) => ok(sent_json(&sent)),
            Err(accepted) => conflict(request_id, &accepted),
        },
        "multicast" | "broadcast" => {
            match sim.accept(&channel.channel_id, retry_key, message_count(checked), request_id) {
                Ok(_) => ok(json!({})),
                Err(accepted) => conflict(request_id, &accepted),
            }
        }
        "replyMessage" => {
            let token = checked.body.as_ref().and_then(|b| b.get("replyToken")).and_then(Value::as_str).unwrap_or("");
            match sim.reply(token, message_count(checked)) {
                Some(sent) => ok(sent_json(&sent)),
                None => line_json(StatusCode::BAD_REQUEST, request_id, json!({"message": "Invalid reply token"})),
            }
        }
        "getProfile" => match sim.profile(&channel.channel_id, param("userId")) {
            Some(p) => ok(profile_json(&p, true)),
            None => not_found(request_id),
        },
        "getGroupMemberProfile" | "getRoomMemberProfile" => match sim.profile(&channel.channel_id, param("userId")) {
            Some(p) => ok(profile_json(&p, false)),
            None => not_found(request_id),
        },
        "getGroupSummary" => match sim.group(&channel.channel_id, param("groupId")) {
            Some(g) => {
                let mut out = json!({"groupId": g.group_id, "groupName": g.group_name});
                if let Some(url) = &g.picture_url {
                    out["pictureUrl"] = url.as_str().into();
                }
                ok(out)
            }
            None => not_found(request_id),
        },
        "getMessageContent" | "getMessageContentPreview" => match sim.content(param("messageId")) {
            Some((content_type, bytes)) => HttpResponse::Ok()
                .insert_header(("x-line-request-id", request_id))
                .content_type(content_type)
                .body(bytes),
            None => not_found(request_id),
        },
        "getMessageContentTranscodingByMessageId" => match sim.content(param("messageId")) {
            Some(_) => ok(json!({"status": "succeeded"})),
            None => not_found(request_id),
        },
        "getBotInfo" => ok(json!({
            "userId": channel.bot_user_id,
            "basicId": channel.basic_id,
            "displayName": channel.display_name.clone().unwrap_or_else(|| format!("line-sim {}", channel.channel_id)),
            "chatMode": "chat",
            "markAsReadMode": "manual",
        })),
        "getMessageQuota" => ok(json!({"type": "none"})),
        "getMessageQuotaConsumption" => ok(json!({"totalUsage": sim.total_usage()})),
        "showLoadingAnimation" | "narrowcast" => line_json(StatusCode::ACCEPTED, request_id, json!({})),
        "markMessagesAsRead" | "markMessagesAsReadByToken" | "leaveGroup" | "leaveRoom" => ok(json!({})),
        id if id.starts_with("validate") => ok(json!({})),
        other => line_json(
            StatusCode::NOT_IMPLEMENTED,
            request_id,
            json!({"message": format!("line-sim does not simulate {other}")}),
        ),
    }
}

fn profile_json(p: &Profile, full: bool) -> Value {
    let mut out = json!({"userId": p.user_id, "displayName": p.display_name});
    if let Some(url) = &p.picture_url {
        out["pictureUrl"] = url.as_str().into();
    }
    if full {
        if let Some(s) = &p.status_message {
            out["statusMessage"] = s.as_str().into();
        }
        if let Some(l) = &p.language {
            out["language"] = l.as_str().into();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Starting it

/// HTTP settings of the simulator on `listener`'s host.
pub fn http_settings(host: &str, port: u16) -> HttpSettings {
    HttpSettings { host: host.to_owned(), port, workers: 2, body_limit_bytes: BODY_LIMIT }
}

/// Stops an in-process simulator (also on drop).
pub struct Handle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Stop serving and wait for the server thread (in-flight requests get up to the kit's
    /// shutdown timeout). Blocks the calling thread.
    pub fn stop(mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.signal();
    }
}

/// A simulator serving in this process.
pub struct Running {
    /// `http://127.0.0.1:<port>`: LINE's API base URL and data API base URL at once.
    pub base_url: String,
    pub port: u16,
    /// Its state, to inspect without HTTP.
    pub sim: Arc<Sim>,
    pub handle: Handle,
}

impl Running {
    /// A client of its `/_sim/` API.
    pub fn client(&self) -> crate::Client {
        crate::Client::new(&self.base_url)
    }
}

/// Start a simulator in this process on `bind_addr` (`127.0.0.1:0` picks a free port), served
/// by its own thread and actix system, so it works under any test runtime.
pub fn start(bind_addr: &str) -> std::io::Result<Running> {
    let listener = TcpListener::bind(bind_addr)?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = sim.clone();
    let thread = std::thread::Builder::new().name("line-sim".into()).spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let settings = http_settings(&addr.ip().to_string(), addr.port());
            let readiness = Readiness::default();
            let service =
                match HttpService::listen(&settings, listener, Health::new(SERVICE, readiness.clone()), routes(served))
                {
                    Ok(service) => service,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
            readiness.set(true);
            let _ = ready_tx.send(Ok(()));
            let stopped = async move {
                let _ = stop_rx.await;
            };
            if let Err(e) = service.run_until_stopped(stopped, async move { readiness.set(false) }).await {
                tracing::error!(error = %e, "line-sim server failed");
            }
        });
    })?;
    ready_rx.recv().map_err(|_| std::io::Error::other("the line-sim thread ended before serving"))??;
    let shown =
        if addr.ip().is_unspecified() { std::net::SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
    Ok(Running {
        base_url: format!("http://{shown}"),
        port: addr.port(),
        sim,
        handle: Handle { stop: Some(stop_tx), thread: Some(thread) },
    })
}
