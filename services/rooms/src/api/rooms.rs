//! Room, message and notification endpoints. Writes go to the room's actor through the bus;
//! reads go to the store, always filtered by the caller's membership and tenant.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use chat_auth::Principal;
use chat_kit::openapi::ErrorBody;
use chat_kit::{ApiError, Object};
use chat_protocol::bus::{CommandResult, Excluded, MemberKind, MemberSpec, RoomCommand};
use chat_protocol::frames::ServerFrame;
use chat_protocol::room::RoomInfo;
use chat_protocol::{is_valid_client_id, post_command_id, Body, Limits, MessageId, Refusal, RoomId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::idempotency;
use crate::access::{may_post, resolve_members};
use crate::actors::session::SessionContext;
use crate::dispatch::Dispatcher;
use crate::domain::{direct_key, kind_for};
use crate::store::Store;
use crate::views::{self, MemberJson, RoomJson};

type Res = Result<HttpResponse, ApiError>;

fn not_found() -> ApiError {
    ApiError::new(Refusal::RoomNotFound, "room not found")
}

/// Room ids are UUIDs; anything else cannot exist (and never reaches a room actor).
fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    uuid::Uuid::parse_str(raw).map(|u| RoomId::new(u.to_string())).map_err(|_| not_found())
}

fn check_user_id(id: &UserId) -> Result<(), ApiError> {
    let id = id.as_str();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::new(Refusal::InvalidMembers, "member ids are 1-128 characters"));
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// The other members (the caller joins anyway); 1:1 with one, a group with several.
    #[schema(value_type = Vec<MemberId>, min_items = 1)]
    members: Vec<UserId>,
    /// At most 100 characters once trimmed; blank is no name.
    #[schema(max_length = 100, pattern = "^[^\\u0000]*$")]
    name: Option<String>,
    #[schema(max_length = 1000, pattern = "^[^\\u0000]*$")]
    description: Option<String>,
    /// An absolute http(s) URL; empty clears the photo.
    #[schema(
        max_length = 2048,
        pattern = "^(|https?://[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*)$"
    )]
    photo_url: Option<String>,
}

/// A member id as a request names it: 1 to 128 characters, no control characters (a schema
/// only: requests carry `UserId`s).
struct MemberId;

impl utoipa::PartialSchema for MemberId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("a user id: 1 to 128 characters, no control characters"))
            .pattern(Some("^[^\\u0000-\\u001F\\u007F-\\u009F]{1,128}$"))
            .into()
    }
}

impl ToSchema for MemberId {}

/// `POST /v1/rooms`: members are user ids; other tenants' members and LINE users join only as
/// far as authz allows (the excluded are listed with their reason).
#[utoipa::path(
    tag = "rooms",
    summary = "create a room; a 1:1 room is unique per pair (creating it again answers the existing one)",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9._@-]{1,64}$", description = "a retry with the same key is applied once")),
    request_body = CreateRoom,
    responses(
        (status = 201, description = "created", body = RoomDetails),
        (status = 200, description = "the pair's existing 1:1 room", body = RoomDetails),
        (status = 400, description = "invalid body, members (invalid_members, too_many_members), info (name_too_long, description_too_long, invalid_url) or Idempotency-Key (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "no requested member may join (not_authorized)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 429, description = "over the caller's quota (rate_limited)", body = ErrorBody, headers(("Retry-After" = u64, description = "seconds until a retry may succeed"))),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/rooms")]
pub async fn create(
    req: HttpRequest,
    p: Principal,
    body: web::Json<Object<CreateRoom>>,
    sc: web::Data<Arc<SessionContext>>,
) -> Res {
    let (store, dispatcher, limits) = (&sc.store, &sc.dispatcher, &sc.limits);
    let body = body.into_inner().0;
    let info = RoomInfo { name: body.name, description: body.description, photo_url: body.photo_url };
    limits.check_info(&info)?;
    let mut ids: BTreeSet<UserId> = BTreeSet::new();
    for m in &body.members {
        check_user_id(m)?;
        ids.insert(m.clone());
    }
    ids.remove(&p.user_id);
    if ids.is_empty() {
        return Err(ApiError::new(Refusal::InvalidMembers, "a room needs at least one other member"));
    }
    if ids.len() + 1 > limits.max_members {
        return Err(ApiError::new(Refusal::TooManyMembers, format!("at most {} members", limits.max_members)));
    }
    sc.quotas.create_room(&p.user_id).map_err(ApiError::rate_limited)?;
    let ids: Vec<UserId> = ids.into_iter().collect();
    let mut resolved = resolve_members(&p, &ids, &sc.authz).await?;
    if resolved.has_line_users() {
        resolved.keep_out_of_line();
    }
    let (mut members, excluded) = (resolved.allowed, resolved.excluded);
    if members.is_empty() {
        let who: Vec<String> = excluded.iter().map(|e| format!("{} ({})", e.user, e.reason)).collect();
        return Err(ApiError::new(Refusal::NotAuthorized, format!("no requested member may join: {}", who.join(", "))));
    }
    members.push(MemberSpec { user: p.user_id.clone(), tenant: p.tenant.clone(), kind: MemberKind::Member });
    members.sort_by(|a, b| a.user.cmp(&b.user));
    let named = info.name.as_deref().is_some_and(|n| !n.trim().is_empty());
    let kind = kind_for(&p.tenant, &members, named);
    // A 1:1 room exists once per pair: creating it again goes to that room, which takes back
    // a participant who had left it (the domain's `decide_create_existing`).
    let existing = if kind.is_one_to_one() {
        store.find_direct(&direct_key(kind, &members[0].user, &members[1].user)).await?
    } else {
        None
    };
    // With an idempotency key, a retried create names the same new room and the same command.
    let command_id = idempotency::command_id(&req, &p.user_id, "create")?;
    let target = match (existing, &command_id) {
        (Some(room), _) => room,
        (None, Some(id)) => RoomId::new(id.clone()),
        (None, None) => RoomId::generate(),
    };
    let command = RoomCommand::Create { kind, members, info };
    let mut result = dispatcher.execute(&target, &p.user_id, &p.tenant, command_id, command.clone()).await?;
    if let CommandResult::Created { room_id, existed: true } = &result {
        if *room_id != target {
            // Another create of this pair made the room first: that room takes this one.
            result = dispatcher.execute(room_id, &p.user_id, &p.tenant, None, command).await?;
        }
    }
    let CommandResult::Created { room_id, existed } = result else {
        return Err(ApiError::internal(&"unexpected result"));
    };
    room_response(store, &room_id, &p, !existed, &excluded).await
}

/// A room with its members, as `POST /v1/rooms` and `GET /v1/rooms/{id}` answer it.
#[derive(Serialize, ToSchema)]
pub struct RoomDetails<'a> {
    #[serde(flatten)]
    room: RoomJson,
    members: Vec<MemberJson>,
    /// Who was left out, with the reason (creating a room; empty otherwise).
    #[schema(value_type = Vec<Excluded>)]
    excluded: &'a [Excluded],
}

async fn room_response(store: &Store, room_id: &RoomId, p: &Principal, created: bool, excluded: &[Excluded]) -> Res {
    let view = store.room_view(room_id, &p.user_id, &p.tenant).await?.ok_or_else(not_found)?;
    let members = store.members(room_id).await?;
    let body = RoomDetails {
        room: views::room_json(&view),
        members: members.iter().map(views::member_json).collect(),
        excluded,
    };
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated user ids: only rooms whose participants are exactly these (and the
    /// caller).
    members: Option<String>,
}

#[utoipa::path(
    tag = "rooms",
    summary = "the caller's rooms (at most 500), or those whose participants are exactly `members` and the caller",
    params(ListQuery),
    responses(
        (status = 200, description = "the rooms, most recent first", body = RoomList),
        (status = 400, description = "bad query (invalid_query, unknown_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/rooms")]
pub async fn list(p: Principal, q: web::Query<ListQuery>, store: web::Data<Store>) -> Res {
    let rooms = store.list_rooms(&p.user_id, &p.tenant, 500).await?;
    let rooms = match &q.members {
        None => rooms,
        Some(list) => {
            let mut wanted: BTreeSet<UserId> =
                list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(UserId::from).collect();
            wanted.insert(p.user_id.clone());
            let sets = store.member_sets(&p.user_id, &p.tenant).await?;
            rooms
                .into_iter()
                .filter(|r| sets.get(&r.meta.id).is_some_and(|m| m.iter().cloned().collect::<BTreeSet<_>>() == wanted))
                .collect()
        }
    };
    Ok(HttpResponse::Ok().json(RoomList { rooms: rooms.iter().map(views::room_json).collect() }))
}

#[utoipa::path(
    tag = "rooms",
    summary = "a room with its members",
    params(("room_id" = String, Path, description = "the room (a UUID)")),
    responses((status = 200, description = "the room", body = RoomDetails), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/rooms/{room_id}")]
pub async fn show(p: Principal, path: web::Path<String>, store: web::Data<Store>) -> Res {
    let id = room_id(&path)?;
    room_response(&store, &id, &p, false, &[]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    /// Not blank, at most 100 characters once trimmed.
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000]*$"
    )]
    name: Option<String>,
    #[schema(max_length = 1000, pattern = "^[^\\u0000]*$")]
    description: Option<String>,
    /// An absolute http(s) URL; empty clears the photo.
    #[schema(
        max_length = 2048,
        pattern = "^(|https?://[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*)$"
    )]
    photo_url: Option<String>,
}

#[utoipa::path(
    tag = "rooms",
    summary = "rename a room, edit its description or photo (absent fields stay)",
    params(("room_id" = String, Path, description = "the room (a UUID)"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9._@-]{1,64}$", description = "a retry with the same key is applied once")),
    request_body = UpdateRoom,
    responses(
        (status = 200, description = "the room", body = RoomDetails),
        (status = 400, description = "invalid body, info (name_too_long, description_too_long, invalid_url) or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "not the Group Master of an external group (not_group_master)", body = ErrorBody),
        (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody),
        (status = 409, description = "a 1:1 room cannot be renamed (not_allowed_for_kind), or a LINE room is closed (line_room_closed)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/rooms/{room_id}")]
pub async fn update(
    req: HttpRequest,
    p: Principal,
    path: web::Path<String>,
    body: web::Json<Object<UpdateRoom>>,
    store: web::Data<Store>,
    dispatcher: web::Data<Dispatcher>,
    limits: web::Data<Limits>,
) -> Res {
    let id = room_id(&path)?;
    let body = body.into_inner().0;
    let info = RoomInfo { name: body.name, description: body.description, photo_url: body.photo_url };
    limits.check_info(&info)?;
    let command_id = idempotency::command_id(&req, &p.user_id, "update_info")?;
    dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, RoomCommand::UpdateInfo { info }).await?;
    room_response(&store, &id, &p, false, &[]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    #[schema(value_type = Vec<MemberId>)]
    users: Vec<UserId>,
}

#[utoipa::path(
    tag = "rooms",
    summary = "invite users; those who may not join come back in `excluded` with the reason",
    params(("room_id" = String, Path, description = "the room (a UUID)"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9._@-]{1,64}$", description = "a retry with the same key is applied once")),
    request_body = AddMembers,
    responses(
        (status = 200, description = "who was added, who was left out", body = MembersAdded),
        (status = 400, description = "invalid body, member ids (invalid_members, too_many_members) or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "not the Group Master of an external group (not_group_master)", body = ErrorBody),
        (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody),
        (status = 409, description = "a 1:1 room cannot be widened (not_allowed_for_kind), or a LINE room is closed (line_room_closed)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/rooms/{room_id}/members")]
pub async fn add_members(
    req: HttpRequest,
    p: Principal,
    path: web::Path<String>,
    body: web::Json<Object<AddMembers>>,
    sc: web::Data<Arc<SessionContext>>,
) -> Res {
    let id = room_id(&path)?;
    let users = body.into_inner().0.users;
    for u in &users {
        check_user_id(u)?;
    }
    let mut resolved = resolve_members(&p, &users, &sc.authz).await?;
    if sc.kinds.get(&sc.store, &id).await?.is_some_and(|k| k.is_line()) || resolved.has_line_users() {
        resolved.keep_out_of_line();
    }
    let dispatcher = &sc.dispatcher;
    let mut excluded = resolved.excluded;
    let command = RoomCommand::AddMembers { users: resolved.allowed };
    let command_id = idempotency::command_id(&req, &p.user_id, "add_members")?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, command).await?;
    let CommandResult::MembersAdded { added, excluded: by_room, seq } = result else {
        return Err(ApiError::internal(&"unexpected result"));
    };
    excluded.extend(by_room);
    Ok(HttpResponse::Ok().json(MembersAdded { added, excluded, seq }))
}

#[utoipa::path(
    tag = "rooms",
    summary = "remove a member (the Group Master, in external group rooms)",
    params(("room_id" = String, Path, description = "the room (a UUID)"), ("user" = String, Path, description = "the member's user id"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9._@-]{1,64}$", description = "a retry with the same key is applied once")),
    responses(
        (status = 200, description = "removed: the seq of the room event", body = SeqBody),
        (status = 400, description = "invalid Idempotency-Key (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "not allowed to remove members here (not_group_master, forbidden)", body = ErrorBody),
        (status = 404, description = "no such room for the caller (room_not_found), or no such member (member_not_found)", body = ErrorBody),
        (status = 409, description = "not in a room of this kind (not_allowed_for_kind), or a LINE room is closed (line_room_closed)", body = ErrorBody),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[delete("/v1/rooms/{room_id}/members/{user}")]
pub async fn remove_member(
    req: HttpRequest,
    p: Principal,
    path: web::Path<(String, String)>,
    dispatcher: web::Data<Dispatcher>,
) -> Res {
    let (raw, user) = path.into_inner();
    let id = room_id(&raw)?;
    let command = RoomCommand::RemoveMember { user: UserId::new(user) };
    let command_id = idempotency::command_id(&req, &p.user_id, "remove_member")?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, command).await?;
    done(result)
}

#[utoipa::path(
    tag = "rooms",
    summary = "leave a room",
    params(("room_id" = String, Path, description = "the room (a UUID)"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9._@-]{1,64}$", description = "a retry with the same key is applied once")),
    responses(
        (status = 200, description = "left: the seq of the room event", body = SeqBody),
        (status = 400, description = "invalid Idempotency-Key (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody),
        (status = 409, description = "not in a room of this kind (not_allowed_for_kind)", body = ErrorBody),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/rooms/{room_id}/leave")]
pub async fn leave(req: HttpRequest, p: Principal, path: web::Path<String>, dispatcher: web::Data<Dispatcher>) -> Res {
    let id = room_id(&path)?;
    let command_id = idempotency::command_id(&req, &p.user_id, "leave")?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, RoomCommand::Leave).await?;
    done(result)
}

/// The answer of a command that ends in one room event: its seq.
fn done(result: CommandResult) -> Res {
    let CommandResult::Done { seq } = result else {
        return Err(ApiError::internal(&"unexpected result"));
    };
    Ok(HttpResponse::Ok().json(SeqBody { seq }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The sender's key for this message: the same key again is the same message.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    client_msg_id: String,
    body: Body,
}

/// `POST /v1/rooms/{id}/messages`: 201 with `{message_id, seq}`; the same `client_msg_id`
/// from the same sender returns the same answer and stores nothing new.
#[utoipa::path(
    tag = "messages",
    summary = "post a message; the same client_msg_id again answers the same message",
    params(("room_id" = String, Path, description = "the room (a UUID)")),
    request_body = PostMessage,
    responses(
        (status = 201, description = "posted (or posted before with this client_msg_id)", body = Posted),
        (status = 400, description = "invalid body, client_msg_id (invalid_client_msg_id), empty message (message_empty), or a sticker LINE users cannot get (sticker_not_sendable)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "the caller may no longer post here (line_not_authorized, external_not_authorized)", body = ErrorBody),
        (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody),
        (status = 409, description = "a LINE room with no LINE participant left (line_room_closed)", body = ErrorBody),
        (status = 413, description = "the message or the body is too long (message_too_long, payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 429, description = "over the caller's quota (rate_limited)", body = ErrorBody, headers(("Retry-After" = u64, description = "seconds until a retry may succeed"))),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/rooms/{room_id}/messages")]
pub async fn post_message(
    p: Principal,
    path: web::Path<String>,
    body: web::Json<Object<PostMessage>>,
    sc: web::Data<Arc<SessionContext>>,
) -> Res {
    let id = room_id(&path)?;
    let PostMessage { client_msg_id, body } = body.into_inner().0;
    if !is_valid_client_id(&client_msg_id) {
        return Err(ApiError::new(Refusal::InvalidClientMsgId, "client_msg_id must be 1-64 of [A-Za-z0-9._@-]"));
    }
    sc.limits.check_body(&body)?;
    sc.quotas.post(&p.user_id).map_err(ApiError::rate_limited)?;
    may_post(&p, &id, &sc.store, &sc.kinds, &sc.authz).await?;
    let command_id = post_command_id(&p.user_id, &client_msg_id);
    let command = RoomCommand::Post { client_msg_id: Some(client_msg_id), body };
    let result = sc.dispatcher.execute(&id, &p.user_id, &p.tenant, Some(command_id), command).await?;
    let CommandResult::Posted { message_id, seq } = result else {
        return Err(ApiError::internal(&"unexpected result"));
    };
    Ok(HttpResponse::Created().json(Posted { message_id, seq }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Events after this seq.
    after: Option<i64>,
    /// Events before this seq.
    before: Option<i64>,
    /// 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[utoipa::path(
    tag = "messages",
    summary = "a room's history by sequence number",
    params(("room_id" = String, Path, description = "the room (a UUID)"), HistoryQuery),
    responses(
        (status = 200, description = "messages and room events, by seq", body = History),
        (status = 400, description = "bad query: limit is 1..=500 (invalid_query, unknown_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/rooms/{room_id}/messages")]
pub async fn history(
    p: Principal,
    path: web::Path<String>,
    q: web::Query<HistoryQuery>,
    store: web::Data<Store>,
) -> Res {
    let id = room_id(&path)?;
    if !store.is_member(&id, &p.user_id, &p.tenant).await? {
        return Err(not_found());
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(Refusal::InvalidQuery, "limit is 1..=500"));
    }
    let rows = store.history(&id, Some(&p.user_id), q.after, q.before, limit).await?;
    let events: Vec<_> = rows.iter().map(|r| views::event_frame(&id, r)).collect();
    Ok(HttpResponse::Ok().json(History { events }))
}

#[utoipa::path(
    tag = "messages",
    summary = "recall one's own message (refused in rooms with LINE members)",
    params(("room_id" = String, Path, description = "the room (a UUID)"), ("message_id" = String, Path, description = "the message"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9._@-]{1,64}$", description = "a retry with the same key is applied once")),
    responses(
        (status = 200, description = "recalled: the seq of the room event", body = SeqBody),
        (status = 400, description = "invalid Idempotency-Key (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "another member's message, or a room with LINE members (recall_not_allowed)", body = ErrorBody),
        (status = 404, description = "no such room for the caller (room_not_found), or no such message (message_not_found)", body = ErrorBody),
        (status = 409, description = "recalled before (already_recalled)", body = ErrorBody),
        (status = 503, description = "the room or authz did not answer in time, or the bus is down (command_timeout, unavailable, authz_unavailable): retrying with the same key is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[delete("/v1/rooms/{room_id}/messages/{message_id}")]
pub async fn recall(
    req: HttpRequest,
    p: Principal,
    path: web::Path<(String, String)>,
    dispatcher: web::Data<Dispatcher>,
) -> Res {
    let (raw, message_id) = path.into_inner();
    let id = room_id(&raw)?;
    let command = RoomCommand::Recall { message_id: MessageId::new(message_id) };
    let command_id = idempotency::command_id(&req, &p.user_id, "recall")?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, command).await?;
    done(result)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMarker {
    #[serde(deserialize_with = "chat_protocol::json_int::i64")]
    seq: i64,
}

#[utoipa::path(
    tag = "messages",
    summary = "move the caller's read marker (it never goes back)",
    params(("room_id" = String, Path, description = "the room (a UUID)")),
    request_body = ReadMarker,
    responses(
        (status = 200, description = "the read marker now", body = ReadSeq),
        (status = 400, description = "the body is not valid JSON of this shape (malformed_json, unknown_field, missing_field, invalid_field, unknown_type)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "no such room, or the caller is not in it (room_not_found)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/rooms/{room_id}/read")]
pub async fn read(
    p: Principal,
    path: web::Path<String>,
    body: web::Json<Object<ReadMarker>>,
    store: web::Data<Store>,
) -> Res {
    let id = room_id(&path)?;
    let marker = store.mark_read(&id, &p.user_id, &p.tenant, body.into_inner().0.seq).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(ReadSeq { read_seq: marker }))
}

#[utoipa::path(
    tag = "notifications",
    summary = "the caller's notifications (the last 100)",
    responses((status = 200, description = "the notifications", body = Notifications), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))),
    security(("bearer" = [])),
)]
#[get("/v1/notifications")]
pub async fn notifications(p: Principal, store: web::Data<Store>) -> Res {
    let rows = store.notifications(&p.user_id, &p.tenant, 100).await?;
    let items: Vec<_> = rows.iter().map(views::notification_frame).collect();
    Ok(HttpResponse::Ok().json(Notifications { notifications: items }))
}

// ----- answers -----

/// `GET /v1/rooms`.
#[derive(Serialize, ToSchema)]
pub struct RoomList {
    rooms: Vec<RoomJson>,
}

/// `POST /v1/rooms/{id}/members`.
#[derive(Serialize, ToSchema)]
pub struct MembersAdded {
    added: Vec<UserId>,
    /// Left out by authz or by the room's rules, with the reason.
    excluded: Vec<Excluded>,
    /// The seq of the room event; none when nobody was added.
    seq: Option<i64>,
}

/// The seq of the room event a command wrote (remove, leave, recall).
#[derive(Serialize, ToSchema)]
pub struct SeqBody {
    seq: i64,
}

/// `POST /v1/rooms/{id}/messages`.
#[derive(Serialize, ToSchema)]
pub struct Posted {
    message_id: MessageId,
    seq: i64,
}

/// `GET /v1/rooms/{id}/messages`: `message` and `room_event` frames.
#[derive(Serialize, ToSchema)]
pub struct History {
    events: Vec<ServerFrame>,
}

/// `POST /v1/rooms/{id}/read`.
#[derive(Serialize, ToSchema)]
pub struct ReadSeq {
    read_seq: i64,
}

/// `GET /v1/notifications`: `notification` frames, newest first.
#[derive(Serialize, ToSchema)]
pub struct Notifications {
    notifications: Vec<ServerFrame>,
}
