//! Room, message and notification endpoints. Writes go to the room's actor through the bus;
//! reads go to the store, always filtered by the caller's membership and tenant.

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use chat_auth::Principal;
use chat_kit::ApiError;
use chat_protocol::bus::{CommandResult, Excluded, MemberKind, MemberSpec, RoomCommand};
use chat_protocol::{is_valid_client_id, new_id, post_command_id, Body, Limits};
use serde::Deserialize;
use serde_json::json;

use super::guard::{may_post, resolve_members};
use crate::actors::session::SessionContext;
use crate::authz::AuthzClient;
use crate::dispatch::Dispatcher;
use crate::domain::{direct_key, kind_for};
use crate::store::Store;
use crate::views;

type Res = Result<HttpResponse, ApiError>;

fn not_found() -> ApiError {
    ApiError::not_found("room_not_found", "room not found")
}

fn store_err(e: crate::store::StoreError) -> ApiError {
    ApiError::internal(&e)
}

/// Room ids are UUIDs; anything else cannot exist (and never reaches a room actor).
fn room_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw).map(|u| u.to_string()).map_err(|_| not_found())
}

fn check_user_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_members", "member ids are 1-128 characters"));
    }
    Ok(())
}

fn limit_err(e: chat_protocol::LimitError) -> ApiError {
    let status = if e.is_too_large() {
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
    } else {
        actix_web::http::StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code(), e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    members: Vec<String>,
    name: Option<String>,
    description: Option<String>,
    photo_url: Option<String>,
}

/// `POST /v1/rooms`: members are user ids of the caller's tenant (other tenants and LINE
/// users join through the contacts and LINE services, which hold those permissions).
pub async fn create(
    p: Principal,
    body: web::Json<CreateRoom>,
    store: web::Data<Store>,
    dispatcher: web::Data<Dispatcher>,
    limits: web::Data<Limits>,
    authz: web::Data<AuthzClient>,
) -> Res {
    let body = body.into_inner();
    if let Some(name) = &body.name {
        limits.check_name(name).map_err(limit_err)?;
    }
    if let Some(d) = &body.description {
        limits.check_description(d).map_err(limit_err)?;
    }
    if let Some(u) = body.photo_url.as_deref().filter(|u| !u.is_empty()) {
        limits.check_url(u).map_err(limit_err)?;
    }
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for m in &body.members {
        check_user_id(m)?;
        ids.insert(m.clone());
    }
    ids.remove(&p.user_id);
    if ids.is_empty() {
        return Err(ApiError::bad_request("invalid_members", "a room needs at least one other member"));
    }
    if ids.len() + 1 > limits.max_members {
        return Err(ApiError::bad_request("too_many_members", format!("at most {} members", limits.max_members)));
    }
    let ids: Vec<String> = ids.into_iter().collect();
    let (mut members, excluded) = resolve_members(&p, &ids, &authz).await?;
    if members.is_empty() {
        let who: Vec<String> = excluded.iter().map(|e| format!("{} ({})", e.user, e.reason)).collect();
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "not_authorized",
            format!("no requested member may join: {}", who.join(", ")),
        ));
    }
    members.push(MemberSpec { user: p.user_id.clone(), tenant: p.tenant.clone(), kind: MemberKind::Member });
    members.sort_by(|a, b| a.user.cmp(&b.user));
    let named = body.name.as_deref().is_some_and(|n| !n.trim().is_empty());
    let kind = kind_for(&p.tenant, &members, named);
    if kind.is_one_to_one() {
        let key = direct_key(kind, &members[0].user, &members[1].user);
        if let Some(existing) = store.find_direct(&key).await.map_err(store_err)? {
            return room_response(&store, &existing, &p, false, &excluded).await;
        }
    }
    let room_id = new_id();
    let command = RoomCommand::Create {
        kind,
        members,
        name: body.name,
        description: body.description,
        photo_url: body.photo_url,
    };
    let result = dispatcher.execute(&room_id, &p.user_id, &p.tenant, None, command).await?;
    let CommandResult::Created { room_id, existed } = result else {
        return Err(ApiError::internal(&"unexpected result"));
    };
    room_response(&store, &room_id, &p, !existed, &excluded).await
}

async fn room_response(store: &Store, room_id: &str, p: &Principal, created: bool, excluded: &[Excluded]) -> Res {
    let view = store.room_view(room_id, &p.user_id, &p.tenant).await.map_err(store_err)?.ok_or_else(not_found)?;
    let members = store.members(room_id).await.map_err(store_err)?;
    let mut body = views::room_json(&view);
    body["members"] = json!(members
        .iter()
        .map(|m| json!({"user": m.user_id, "tenant": m.tenant, "kind": m.kind, "role": m.role, "read_seq": m.read_seq}))
        .collect::<Vec<_>>());
    body["excluded"] = json!(excluded);
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
    let rooms = store.list_rooms(&p.user_id, &p.tenant, 500).await.map_err(store_err)?;
    let rooms = match &q.members {
        None => rooms,
        Some(list) => {
            let mut wanted: BTreeSet<String> =
                list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            wanted.insert(p.user_id.clone());
            let sets = store.member_sets(&p.user_id, &p.tenant).await.map_err(store_err)?;
            rooms
                .into_iter()
                .filter(|r| sets.get(&r.id).is_some_and(|m| m.iter().cloned().collect::<BTreeSet<_>>() == wanted))
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
    p: Principal,
    path: web::Path<String>,
    body: web::Json<UpdateRoom>,
    store: web::Data<Store>,
    dispatcher: web::Data<Dispatcher>,
    limits: web::Data<Limits>,
) -> Res {
    let id = room_id(&path)?;
    let body = body.into_inner();
    if let Some(name) = &body.name {
        limits.check_name(name).map_err(limit_err)?;
    }
    if let Some(d) = &body.description {
        limits.check_description(d).map_err(limit_err)?;
    }
    let command = RoomCommand::UpdateInfo { name: body.name, description: body.description, photo_url: body.photo_url };
    dispatcher.execute(&id, &p.user_id, &p.tenant, None, command).await?;
    room_response(&store, &id, &p, false, &[]).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    users: Vec<String>,
}

pub async fn add_members(
    p: Principal,
    path: web::Path<String>,
    body: web::Json<AddMembers>,
    dispatcher: web::Data<Dispatcher>,
    authz: web::Data<AuthzClient>,
) -> Res {
    let id = room_id(&path)?;
    for u in &body.users {
        check_user_id(u)?;
    }
    let (users, mut excluded) = resolve_members(&p, &body.users, &authz).await?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, None, RoomCommand::AddMembers { users }).await?;
    let CommandResult::MembersAdded { added, excluded: by_room, seq } = result else {
        return Err(ApiError::internal(&"unexpected result"));
    };
    excluded.extend(by_room);
    Ok(HttpResponse::Ok().json(json!({"added": added, "excluded": excluded, "seq": seq})))
}

pub async fn remove_member(p: Principal, path: web::Path<(String, String)>, dispatcher: web::Data<Dispatcher>) -> Res {
    let (raw, user) = path.into_inner();
    let id = room_id(&raw)?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, None, RoomCommand::RemoveMember { user }).await?;
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

pub async fn leave(p: Principal, path: web::Path<String>, dispatcher: web::Data<Dispatcher>) -> Res {
    let id = room_id(&path)?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, None, RoomCommand::Leave).await?;
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
    sc: web::Data<std::sync::Arc<SessionContext>>,
) -> Res {
    let id = room_id(&path)?;
    let PostMessage { client_msg_id, body } = body.into_inner();
    if !is_valid_client_id(&client_msg_id) {
        return Err(ApiError::bad_request("invalid_client_msg_id", "client_msg_id must be 1-64 of [A-Za-z0-9._@-]"));
    }
    sc.limits.check_body(&body).map_err(limit_err)?;
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
    if !store.is_member(&id, &p.user_id, &p.tenant).await.map_err(store_err)? {
        return Err(not_found());
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1..=500"));
    }
    let rows = store.history(&id, q.after, q.before, limit).await.map_err(store_err)?;
    let events: Vec<_> = rows.iter().map(|r| views::event_json(&id, r)).collect();
    Ok(HttpResponse::Ok().json(json!({"events": events})))
}

pub async fn recall(p: Principal, path: web::Path<(String, String)>, dispatcher: web::Data<Dispatcher>) -> Res {
    let (raw, message_id) = path.into_inner();
    let id = room_id(&raw)?;
    let result = dispatcher.execute(&id, &p.user_id, &p.tenant, None, RoomCommand::Recall { message_id }).await?;
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadMarker {
    seq: i64,
}

pub async fn read(p: Principal, path: web::Path<String>, body: web::Json<ReadMarker>, store: web::Data<Store>) -> Res {
    let id = room_id(&path)?;
    let marker =
        store.mark_read(&id, &p.user_id, &p.tenant, body.seq).await.map_err(store_err)?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(json!({"read_seq": marker})))
}

pub async fn notifications(p: Principal, store: web::Data<Store>) -> Res {
    let rows = store.notifications(&p.user_id, &p.tenant, 100).await.map_err(store_err)?;
    let items: Vec<_> =
        rows.iter().map(|n| serde_json::to_value(views::notification_frame(n)).unwrap_or_default()).collect();
    Ok(HttpResponse::Ok().json(json!({"notifications": items})))
}
