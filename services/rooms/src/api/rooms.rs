//! Room, message and notification endpoints. Writes go to the room's actor through the bus;
//! reads go to the store, always filtered by the caller's membership and tenant.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chat_auth::Principal;
use chat_kit::ApiError;
use chat_protocol::bus::{CommandResult, Excluded, MemberKind, MemberSpec, RoomCommand};
use chat_protocol::room::RoomInfo;
use chat_protocol::{is_valid_client_id, post_command_id, Body, Limits, MessageId, Refusal, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    members: Vec<UserId>,
    name: Option<String>,
    description: Option<String>,
    photo_url: Option<String>,
}

/// `POST /v1/rooms`: members are user ids; other tenants' members and LINE users join only as
/// far as authz allows (the excluded are listed with their reason).
pub async fn create(
    req: HttpRequest,
    p: Principal,
    body: web::Json<CreateRoom>,
    sc: web::Data<Arc<SessionContext>>,
) -> Res {
    let (store, dispatcher, limits) = (&sc.store, &sc.dispatcher, &sc.limits);
    let body = body.into_inner();
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
#[derive(Serialize)]
struct RoomDetails<'a> {
    #[serde(flatten)]
    room: RoomJson,
    members: Vec<MemberJson>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated user ids: only rooms whose participants are exactly these (and the
    /// caller).
    members: Option<String>,
}

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
    Ok(HttpResponse::Ok().json(json!({"rooms": rooms.iter().map(views::room_json).collect::<Vec<_>>()})))
}

pub async fn get(p: Principal, path: web::Path<String>, store: web::Data<Store>) -> Res {
    let id = room_id(&path)?;
    room_response(&store, &id, &p, false, &[]).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    name: Option<String>,
    description: Option<String>,
    photo_url: Option<String>,
}

pub async fn update(
    req: HttpRequest,
    p: Principal,
    path: web::Path<String>,
    body: web::Json<UpdateRoom>,
    store: web::Data<Store>,
    dispatcher: web::Data<Dispatcher>,
    limits: web::Data<Limits>,
) -> Res {
    let id = room_id(&path)?;
    let body = body.into_inner();
    let info = RoomInfo { name: body.name, description: body.description, photo_url: body.photo_url };
    limits.check_info(&info)?;
    let command_id = idempotency::command_id(&req, &p.user_id, "update_info")?;
    dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, RoomCommand::UpdateInfo { info }).await?;
    room_response(&store, &id, &p, false, &[]).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    users: Vec<UserId>,
}

pub async fn add_members(
    req: HttpRequest,
    p: Principal,
    path: web::Path<String>,
    body: web::Json<AddMembers>,
    sc: web::Data<Arc<SessionContext>>,
) -> Res {
    let id = room_id(&path)?;
    for u in &body.users {
        check_user_id(u)?;
    }
    let mut resolved = resolve_members(&p, &body.users, &sc.authz).await?;
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
    Ok(HttpResponse::Ok().json(json!({"added": added, "excluded": excluded, "seq": seq})))
}

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
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

pub async fn leave(req: HttpRequest, p: Principal, path: web::Path<String>, dispatcher: web::Data<Dispatcher>) -> Res {
    let id = room_id(&path)?;
    let command_id = idempotency::command_id(&req, &p.user_id, "leave")?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, command_id, RoomCommand::Leave).await?;
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

fn result_json(result: &CommandResult) -> serde_json::Value {
    match result {
        CommandResult::Done { seq } => json!({"seq": seq}),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    client_msg_id: String,
    body: Body,
}

/// `POST /v1/rooms/{id}/messages`: 201 with `{message_id, seq}`; the same `client_msg_id`
/// from the same sender returns the same answer and stores nothing new.
pub async fn post_message(
    p: Principal,
    path: web::Path<String>,
    body: web::Json<PostMessage>,
    sc: web::Data<Arc<SessionContext>>,
) -> Res {
    let id = room_id(&path)?;
    let PostMessage { client_msg_id, body } = body.into_inner();
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
    Ok(HttpResponse::Created().json(json!({"message_id": message_id, "seq": seq})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
}

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
    Ok(HttpResponse::Ok().json(json!({"events": events})))
}

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
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadMarker {
    seq: i64,
}

pub async fn read(p: Principal, path: web::Path<String>, body: web::Json<ReadMarker>, store: web::Data<Store>) -> Res {
    let id = room_id(&path)?;
    let marker = store.mark_read(&id, &p.user_id, &p.tenant, body.seq).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(json!({"read_seq": marker})))
}

pub async fn notifications(p: Principal, store: web::Data<Store>) -> Res {
    let rows = store.notifications(&p.user_id, &p.tenant, 100).await?;
    let items: Vec<_> = rows.iter().map(views::notification_frame).collect();
    Ok(HttpResponse::Ok().json(json!({"notifications": items})))
}
