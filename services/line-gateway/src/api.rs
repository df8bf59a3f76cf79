//! The LINE gateway's HTTP API: the admins' channel bindings (bearer token, admin role) and
//! LINE's webhook (no token: LINE signs the body). Each handler parses the request, calls one
//! rule of `LineCore` and serialises its typed answer; refusals become codes and statuses in
//! one place (`From<LineError> for ApiError`). Answers never hold a secret or a token.

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use chat_auth::Principal;
use chat_kit::openapi::ErrorBody;
use chat_kit::{ApiError, Object};
use chat_protocol::ids::LINE_USER_PREFIX;
use chat_protocol::{MessageId, Refusal, RoomId, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::media::INLINE_IMAGE_TYPES;
use crate::metrics::metrics;
use crate::service::{DeadLetterCursor, LineCore, LineError, MediaContent, NewChannel, Upload};
use crate::store::{Channel, OutboundRow, StoreError};
use crate::webhook::SIGNATURE_HEADER;

type Res = Result<HttpResponse, ApiError>;
type Core = web::Data<LineCore>;

/// Mount the routes; the webhook's body is read raw, up to `webhook_max_bytes`.
/// (`/v1/openapi.json` is mounted by the caller: the standalone serves one merged document.)
pub fn routes(cfg: &mut web::ServiceConfig, webhook_max_bytes: usize) {
    register(&mut ServiceConfig::new(cfg), webhook_max_bytes);
}

/// Every route, each registered with its OpenAPI operation (`crate::openapi` collects them).
pub fn register(cfg: &mut ServiceConfig, webhook_max_bytes: usize) {
    cfg.service(list_channels)
        .service(bind_channel)
        .service(unbind_channel)
        .service(list_dead_letters)
        .service(resend_dead_letter)
        .service(upload_media)
        .service(get_media)
        .service(linked_media)
        .service(linked_preview)
        .service(line_profiles)
        .service(
            utoipa_actix_web::scope("/line/webhook")
                .app_data(web::PayloadConfig::new(webhook_max_bytes))
                .service(webhook),
        );
}

// ----- errors -----

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(&err)
    }
}

/// The one mapping of refusals to codes (the code fixes the status) and messages.
impl From<LineError> for ApiError {
    fn from(err: LineError) -> Self {
        let message = err.to_string();
        let code = match err {
            LineError::InvalidField { .. } => Refusal::InvalidField,
            LineError::NotAdmin => Refusal::Forbidden,
            LineError::UserNotFound(_) => Refusal::UserNotFound,
            LineError::LineNotAuthorized => Refusal::LineNotAuthorized,
            LineError::ChannelExists => Refusal::ChannelExists,
            LineError::ChannelNotFound => Refusal::ChannelNotFound,
            LineError::InvalidSignature => Refusal::InvalidSignature,
            LineError::MalformedJson(_) => Refusal::MalformedJson,
            LineError::MissingEventId(_) => Refusal::MissingField,
            LineError::AuthzUnavailable(cause) => {
                tracing::warn!(error = %cause, "authz unavailable");
                return ApiError::new(Refusal::AuthzUnavailable, "authorization is temporarily unavailable");
            }
            LineError::RoomsUnavailable(cause) => {
                tracing::warn!(error = %cause, "rooms unavailable");
                return ApiError::new(Refusal::Unavailable, "the service is temporarily unavailable; retrying is safe");
            }
            LineError::BusUnavailable(cause) => {
                tracing::warn!(error = %cause, "bus unavailable");
                return ApiError::new(Refusal::Unavailable, "the service is temporarily unavailable; retrying is safe");
            }
            LineError::MediaNotFound | LineError::DeadLetterNotFound => Refusal::NotFound,
            LineError::NotResendable(_) => Refusal::NotResendable,
            LineError::LinkExpired => Refusal::LinkExpired,
            LineError::RoomNotFound => Refusal::RoomNotFound,
            LineError::UnsupportedMediaType => Refusal::UnsupportedMediaType,
            LineError::PayloadTooLarge(_) => Refusal::PayloadTooLarge,
            LineError::Store(store) => return store.into(),
            internal @ (LineError::Credentials(_)
            | LineError::Encode(_)
            | LineError::Media(_)
            | LineError::Preview(_)) => return ApiError::internal(&internal),
        };
        ApiError::new(code, message)
    }
}

// ----- media -----

/// `GET /v1/line/media/{media_id}`: a LINE user's medium, streamed from the media store with
/// its content type; private to the browser's cache for an hour. Anything but an image is
/// offered as a download (`attachment`), and nothing is sniffed.
#[utoipa::path(
    tag = "media",
    summary = "a LINE user's medium, for a member of its room (images inline, anything else as a download)",
    params(("media_id" = String, Path)),
    responses(
        (status = 200, description = "the medium, with its content type", content_type = "*/*", body = Vec<u8>, headers(("Cache-Control" = String), ("X-Content-Type-Options" = String, description = "nosniff"), ("Content-Security-Policy" = String))),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "no such medium, or not in a room of the caller (not_found)", body = ErrorBody),
        (status = 503, description = "authz, rooms or the bus did not answer (authz_unavailable, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/line/media/{media_id}")]
async fn get_media(principal: Principal, req: HttpRequest, path: web::Path<String>, core: Core) -> Res {
    let media = core.media_for(&principal, bearer(&req), &path).await?;
    Ok(serve(media, "private, max-age=3600"))
}

/// The token the principal came from (checked already), to ask rooms as the caller.
fn bearer(req: &HttpRequest) -> &str {
    req.headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    room_id: RoomId,
    name: Option<String>,
}

/// The answer to an upload: what the member posts next (`body`, a message body with the URL).
#[derive(Serialize, ToSchema)]
struct UploadedBody {
    media_id: String,
    url: String,
    kind: String,
    content_type: String,
    size: u64,
    name: Option<String>,
    body: chat_protocol::Body,
}

/// `POST /v1/line/media?room_id=&name=`: a member's image or file for a room they are in,
/// the body raw with its `Content-Type`, at most `media.max_bytes`; 201 with its engine URL
/// and the message body to post. Sent to LINE users, it goes as a signed link.
#[utoipa::path(
    tag = "media",
    summary = "upload an image or file for a room the caller is in: 201 with its URL and the message body to post",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "*/*", description = "the file, raw, with its Content-Type"),
    responses(
        (status = 201, description = "kept", body = UploadedBody),
        (status = 400, description = "bad query (invalid_query) or name (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "no such room for the caller (room_not_found)", body = ErrorBody),
        (status = 413, description = "over media.max_bytes (payload_too_large)", body = ErrorBody),
        (status = 415, description = "no valid Content-Type (unsupported_media_type)", body = ErrorBody),
        (status = 503, description = "authz, rooms or the bus did not answer (authz_unavailable, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/line/media")]
async fn upload_media(
    principal: Principal,
    req: HttpRequest,
    query: Result<web::Query<UploadQuery>, actix_web::Error>,
    payload: web::Payload,
    core: Core,
) -> Res {
    let query = query.map_err(|err| ApiError::new(Refusal::InvalidQuery, err.to_string()))?.into_inner();
    // Room ids are UUIDs: any other is no room of the caller's (and never reaches rooms).
    if uuid::Uuid::parse_str(query.room_id.as_str()).is_err() {
        return Err(LineError::RoomNotFound.into());
    }
    let max = core.media.max_bytes;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(LineError::PayloadTooLarge(max).into());
    }
    let content_type =
        req.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let upload = Upload { room_id: query.room_id, name: query.name, content_type, body: Box::pin(payload) };
    let row = core.upload(&principal, bearer(&req), upload).await?;
    let (url, body) = core.media_message(&row);
    Ok(HttpResponse::Created().json(UploadedBody {
        media_id: row.media_id,
        url,
        kind: row.kind,
        content_type: row.content_type,
        size: row.size,
        name: row.file_name,
        body,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LinkQuery {
    expires: u64,
    signature: String,
}

/// `GET /line/media/{media_id}?expires=&signature=`: a member's medium for LINE (no token:
/// the link is signed); `404` when altered, `410 link_expired` when past its time.
#[utoipa::path(
    tag = "media",
    summary = "a member's medium, for LINE: the link is signed",
    params(("media_id" = String, Path), LinkQuery),
    responses(
        (status = 200, description = "the medium", content_type = "*/*", body = Vec<u8>, headers(("Cache-Control" = String), ("X-Content-Type-Options" = String, description = "nosniff"), ("Content-Security-Policy" = String))),
        (status = 404, description = "no such medium, or the link was altered (not_found)", body = ErrorBody),
        (status = 410, description = "the link is past its time (link_expired)", body = ErrorBody),
    ),
    security(()),
)]
#[get("/line/media/{media_id}")]
async fn linked_media(
    path: web::Path<String>,
    query: Result<web::Query<LinkQuery>, actix_web::Error>,
    core: Core,
) -> Res {
    linked(&path, query, false, &core).await
}

/// `GET /line/media/{media_id}/preview?expires=&signature=`: its preview (at most 1 MB).
#[utoipa::path(
    tag = "media",
    summary = "its preview (at most 1 MB)",
    params(("media_id" = String, Path), LinkQuery),
    responses(
        (status = 200, description = "the medium", content_type = "*/*", body = Vec<u8>, headers(("Cache-Control" = String), ("X-Content-Type-Options" = String, description = "nosniff"), ("Content-Security-Policy" = String))),
        (status = 404, description = "no such medium, or the link was altered (not_found)", body = ErrorBody),
        (status = 410, description = "the link is past its time (link_expired)", body = ErrorBody),
    ),
    security(()),
)]
#[get("/line/media/{media_id}/preview")]
async fn linked_preview(
    path: web::Path<String>,
    query: Result<web::Query<LinkQuery>, actix_web::Error>,
    core: Core,
) -> Res {
    linked(&path, query, true, &core).await
}

async fn linked(
    media_id: &str,
    query: Result<web::Query<LinkQuery>, actix_web::Error>,
    preview: bool,
    core: &LineCore,
) -> Res {
    // A link without its signature is as good as absent.
    let query = query.map_err(|_| ApiError::from(LineError::MediaNotFound))?;
    let media = core.linked_media(media_id, query.expires, &query.signature, preview).await?;
    // LINE's servers and apps may cache it; it never changes under this link.
    Ok(serve(media, "public, max-age=86400, immutable"))
}

/// A medium's answer: its content type, streamed; anything but a raster image is offered as a
/// download (`attachment`), and nothing is sniffed.
fn serve(media: MediaContent, cache_control: &'static str) -> HttpResponse {
    let row = &media.row;
    // Only raster formats are shown inline: an SVG (script) from LINE is a download.
    let image = row.kind == "image" && INLINE_IMAGE_TYPES.contains(&row.content_type.as_str());
    let content_type = if row.kind == "image" && !image { "application/octet-stream" } else { &row.content_type };
    let mut res = HttpResponse::Ok();
    res.content_type(content_type)
        .insert_header(("cache-control", cache_control))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("content-security-policy", "sandbox; default-src 'none'"))
        .no_chunking(row.size);
    if !image {
        res.insert_header(("content-disposition", attachment(row.file_name.as_deref())));
    }
    res.streaming(media.body)
}

/// `attachment`, with the file name if it is plain ASCII (others are left to the URL).
fn attachment(name: Option<&str>) -> String {
    match name.filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !n.contains('"')) {
        Some(name) => format!("attachment; filename=\"{name}\""),
        None => "attachment".to_owned(),
    }
}

// ----- channels -----

/// A binding as the API shows it: no secret, no token.
#[derive(Serialize, ToSchema)]
struct ChannelBody<'a> {
    user_id: &'a UserId,
    channel_id: &'a str,
    basic_id: &'a str,
    suspended: bool,
    last_error: Option<&'a str>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl<'a> From<&'a Channel> for ChannelBody<'a> {
    fn from(c: &'a Channel) -> Self {
        Self {
            user_id: &c.user_id,
            channel_id: &c.channel_id,
            basic_id: &c.basic_id,
            suspended: c.suspended,
            last_error: c.last_error.as_deref(),
            created_at_ms: c.created_at_ms,
            updated_at_ms: c.updated_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ChannelsBody<'a> {
    channels: Vec<ChannelBody<'a>>,
}

/// `PUT /v1/admin/line/channels/{user_id}`. The credentials are `SecretString`s from the start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BindingBody {
    #[schema(pattern = "^[0-9]{1,20}$")]
    channel_id: String,
    /// 1 to 512 printable ASCII characters, not only spaces.
    #[schema(value_type = String, format = Password, max_length = 512, pattern = "^ *[!-~][ -~]*$")]
    channel_secret: SecretString,
    /// 1 to 512 printable ASCII characters, not only spaces.
    #[schema(value_type = String, format = Password, max_length = 512, pattern = "^ *[!-~][ -~]*$")]
    access_token: SecretString,
    #[schema(pattern = "^@[A-Za-z0-9._-]{1,32}$")]
    basic_id: String,
}

#[utoipa::path(
    tag = "channels",
    summary = "bind a member to a LINE Official Account; secrets are never returned or logged",
    params(("user_id" = String, Path, description = "the member")),
    request_body = BindingBody,
    responses(
        (status = 200, description = "the binding (no secret)", body = ChannelBody),
        (status = 400, description = "invalid body or field (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden), or the member may not use LINE (line_not_authorized)", body = ErrorBody),
        (status = 404, description = "no such member in the tenant (user_not_found)", body = ErrorBody),
        (status = 409, description = "the channel is bound to another member (channel_exists)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 503, description = "authz, rooms or the bus did not answer (authz_unavailable, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[put("/v1/admin/line/channels/{user_id}")]
async fn bind_channel(
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<Object<BindingBody>>,
    core: Core,
) -> Res {
    let BindingBody { channel_id, channel_secret, access_token, basic_id } = body.into_inner().0;
    let new = NewChannel { channel_id, channel_secret, access_token, basic_id };
    let channel = core.bind_channel(&principal, &path, new).await?;
    Ok(HttpResponse::Ok().json(ChannelBody::from(&channel)))
}

#[utoipa::path(
    tag = "channels",
    summary = "the tenant's bindings, secrets redacted, with quota and last error",
    responses((status = 200, description = "the bindings", body = ChannelsBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/admin/line/channels")]
async fn list_channels(principal: Principal, core: Core) -> Res {
    let channels = core.channels(&principal).await?;
    Ok(HttpResponse::Ok().json(ChannelsBody { channels: channels.iter().map(ChannelBody::from).collect() }))
}

#[utoipa::path(
    tag = "channels",
    summary = "unbind a member's LINE Official Account",
    params(("user_id" = String, Path, description = "the member")),
    responses(
        (status = 204, description = "unbound"),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 404, description = "no binding for that member (channel_not_found)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[delete("/v1/admin/line/channels/{user_id}")]
async fn unbind_channel(principal: Principal, path: web::Path<String>, core: Core) -> Res {
    core.unbind_channel(&principal, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ----- LINE users' profiles -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ProfilesQuery {
    /// Comma-separated `line:<id>`s, at most 100.
    #[param(pattern = "^[^,]*(,[^,]*){0,99}$")]
    users: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = LineUserProfile)]
struct ProfileBody<'a> {
    user: &'a UserId,
    display_name: &'a str,
    picture_url: Option<&'a str>,
}

/// `GET /v1/line/profiles?users=line:U1,line:U2`: the LINE display names and pictures a channel
/// of the caller's company knows (others are left out).
#[utoipa::path(
    tag = "profiles",
    summary = "the LINE display names and pictures a channel of the caller's company knows (others are left out)",
    params(ProfilesQuery),
    responses(
        (status = 200, description = "the profiles", body = ProfilesBody),
        (status = 400, description = "bad query (invalid_query, unknown_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/line/profiles")]
async fn line_profiles(principal: Principal, query: web::Query<ProfilesQuery>, core: Core) -> Res {
    let users: Vec<UserId> = query.users.split(',').map(str::trim).filter(|u| !u.is_empty()).map(UserId::new).collect();
    let profiles = core.line_profiles(&principal, &users).await?;
    let body: Vec<ProfileBody> = profiles
        .iter()
        .map(|p| ProfileBody { user: &p.user, display_name: &p.display_name, picture_url: p.picture_url.as_deref() })
        .collect();
    Ok(HttpResponse::Ok().json(ProfilesBody { profiles: body }))
}

// ----- dead letters -----

/// An undelivered message as the API shows it (no message content).
#[derive(Serialize, ToSchema)]
struct DeadLetterBody<'a> {
    message_id: &'a MessageId,
    room_id: &'a RoomId,
    line_user: String,
    sender: &'a UserId,
    channel_id: Option<&'a str>,
    error: Option<&'a str>,
    failed_at_ms: i64,
    resendable: bool,
}

impl<'a> From<&'a OutboundRow> for DeadLetterBody<'a> {
    fn from(r: &'a OutboundRow) -> Self {
        Self {
            message_id: &r.key.message_id,
            room_id: &r.room_id,
            line_user: format!("{LINE_USER_PREFIX}{}", r.key.line_user_id),
            sender: &r.sender,
            channel_id: Some(r.channel_id.as_str()).filter(|id| !id.is_empty()),
            error: r.last_error.as_deref(),
            failed_at_ms: r.updated_at_ms,
            resendable: r.messages != "[]",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeadLetterQuery {
    /// Where the previous page ended (its `next`).
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The default page of dead letters.
const DEAD_LETTER_PAGE: i64 = 50;

/// `GET /v1/admin/line/dead-letters?cursor=&limit=`: the tenant's undelivered messages, newest
/// first; `next` (a cursor) pages on.
#[utoipa::path(
    tag = "dead letters",
    summary = "the tenant's undelivered messages, newest first",
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "a page", body = DeadLettersBody),
        (status = 400, description = "bad query or cursor (invalid_query, invalid_field, unknown_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/admin/line/dead-letters")]
async fn list_dead_letters(principal: Principal, query: web::Query<DeadLetterQuery>, core: Core) -> Res {
    let limit = query.limit.unwrap_or(DEAD_LETTER_PAGE);
    let cursor = query.cursor.as_deref().map(str::parse::<DeadLetterCursor>).transpose()?;
    let rows = core.dead_letters(&principal, cursor, limit).await?;
    let full = rows.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let next = full.then(|| rows.last().map(|row| DeadLetterCursor::after(row).to_string())).flatten();
    let dead_letters: Vec<DeadLetterBody> = rows.iter().map(DeadLetterBody::from).collect();
    Ok(HttpResponse::Ok().json(DeadLettersBody { dead_letters, next }))
}

/// `POST /v1/admin/line/dead-letters/{message_id}/{line_user}/resend`: 202, queued again.
#[utoipa::path(
    tag = "dead letters",
    summary = "queue an undelivered message again",
    params(("message_id" = String, Path), ("line_user" = String, Path, description = "line:<LINE user id>")),
    responses(
        (status = 202, description = "queued again", body = Queued),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 404, description = "no such dead letter (not_found)", body = ErrorBody),
        (status = 409, description = "it cannot be sent again as it is (not_resendable)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/admin/line/dead-letters/{message_id}/{line_user}/resend")]
async fn resend_dead_letter(principal: Principal, path: web::Path<(String, String)>, core: Core) -> Res {
    let (message_id, line_user) = path.into_inner();
    core.resend(&principal, &message_id, &line_user).await?;
    Ok(HttpResponse::Accepted().json(Queued { queued: true }))
}

/// `GET /v1/line/profiles`.
#[derive(Serialize, ToSchema)]
struct ProfilesBody<'a> {
    profiles: Vec<ProfileBody<'a>>,
}

/// `GET /v1/admin/line/dead-letters`: a page, and the cursor of the next one.
#[derive(Serialize, ToSchema)]
struct DeadLettersBody<'a> {
    dead_letters: Vec<DeadLetterBody<'a>>,
    next: Option<String>,
}

/// `POST .../resend`.
#[derive(Serialize, ToSchema)]
struct Queued {
    queued: bool,
}

// ----- webhook -----

/// `POST /line/webhook/{channel_id}`: 413 over the limit (before anything else), then the
/// channel, the signature, the envelope; 200 once the events are stored.
#[utoipa::path(
    tag = "webhook",
    summary = "the LINE Platform's webhook: signed with the channel secret",
    params(("channel_id" = String, Path, description = "the bound channel"), ("x-line-signature" = String, Header, description = "base64 HMAC-SHA256 of the body with the channel secret")),
    request_body(content = Object, description = "LINE's webhook envelope: destination and events"),
    responses(
        (status = 200, description = "the events are stored"),
        (status = 400, description = "not a webhook envelope (malformed_json, missing_field)", body = ErrorBody),
        (status = 401, description = "the signature is missing or does not match (invalid_signature)", body = ErrorBody),
        (status = 404, description = "no channel bound under this id (channel_not_found)", body = ErrorBody),
        (status = 413, description = "over line.webhook_max_bytes (payload_too_large)", body = ErrorBody),
    ),
    security(("line_signature" = [])),
)]
#[post("/{channel_id}")]
async fn webhook(
    req: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
    core: Core,
) -> Res {
    let body = match body {
        Ok(body) => body,
        Err(err) if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => {
            metrics().webhooks.with_label_values(&["too_large"]).inc();
            let limit = core.settings.line.webhook_max_bytes;
            return Err(ApiError::new(Refusal::PayloadTooLarge, format!("the body is larger than {limit} bytes")));
        }
        Err(err) => return Err(ApiError::new(Refusal::MalformedJson, err.to_string())),
    };
    let signature = req.headers().get(SIGNATURE_HEADER).and_then(|value| value.to_str().ok());
    core.receive_webhook(&path, signature, &body).await?;
    Ok(HttpResponse::Ok().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_codes_and_statuses() {
        let cases = [
            (LineError::InvalidField { field: "basic_id", reason: "x" }, "invalid_field", 400),
            (LineError::NotAdmin, "forbidden", 403),
            (LineError::UserNotFound("bob@acme".into()), "user_not_found", 404),
            (LineError::LineNotAuthorized, "line_not_authorized", 403),
            (LineError::ChannelExists, "channel_exists", 409),
            (LineError::ChannelNotFound, "channel_not_found", 404),
            (LineError::InvalidSignature, "invalid_signature", 401),
            (LineError::MalformedJson("x".into()), "malformed_json", 400),
            (LineError::MissingEventId(0), "missing_field", 400),
            (LineError::AuthzUnavailable("down".into()), "authz_unavailable", 503),
            (LineError::BusUnavailable("amqp://secret@host".into()), "unavailable", 503),
        ];
        for (err, code, status) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.code.as_str(), api.status().as_u16()), (code, status), "{api}");
            assert!(!api.message.contains("secret@host"));
        }
    }

    #[test]
    fn a_binding_body_refuses_unknown_fields_and_hides_its_credentials() {
        let json = r#"{"channel_id":"1","channel_secret":"s3cret-value","access_token":"t0ken-value","basic_id":"@a"}"#;
        let body: BindingBody = serde_json::from_str(json).unwrap();
        let printed = format!("{body:?}");
        assert!(!printed.contains("s3cret-value") && !printed.contains("t0ken-value"), "{printed}");
        let unknown = serde_json::from_str::<BindingBody>(
            r#"{"channel_id":"1","channel_secret":"s","access_token":"t","basic_id":"@a","x":1}"#,
        )
        .unwrap_err();
        assert_eq!(chat_kit::serde_code(&unknown), Refusal::UnknownField);
    }

    #[test]
    fn a_channel_shows_no_credentials() {
        let channel = Channel {
            channel_id: "1".into(),
            user_id: "alice@acme".into(),
            tenant: "acme".into(),
            basic_id: "@a".into(),
            secret_enc: "SECRET-CIPHERTEXT".into(),
            token_enc: "TOKEN-CIPHERTEXT".into(),
            suspended: false,
            last_error: None,
            created_at_ms: 1,
            updated_at_ms: 2,
        };
        let json = serde_json::to_string(&ChannelBody::from(&channel)).unwrap();
        assert!(!json.contains("CIPHERTEXT"), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["user_id"], "alice@acme");
        assert_eq!(value["created_at_ms"], 1);
        assert_eq!(value["last_error"], serde_json::Value::Null);
    }
}
