//! Authorization at the edge, before a command is sent: who may join a room with the caller,
//! and whether the caller may still post into an external or LINE room.

use std::collections::HashMap;
use std::sync::RwLock;

use actix_web::http::StatusCode;
use chat_auth::Principal;
use chat_kit::ApiError;
use chat_protocol::bus::{Excluded, MemberKind, MemberSpec};

use crate::authz::AuthzClient;
use crate::store::Store;

/// Resolve requested member ids into authorized participants and the excluded with a reason.
/// Without authz, plain ids are members of the caller's tenant and anything else is excluded.
pub async fn resolve_members(
    p: &Principal,
    ids: &[String],
    authz: &AuthzClient,
) -> Result<(Vec<MemberSpec>, Vec<Excluded>), ApiError> {
    let others: Vec<String> = ids.iter().filter(|u| **u != p.user_id).cloned().collect();
    let mut allowed = Vec::new();
    let mut excluded = Vec::new();
    if !authz.enabled() {
        for user in others {
            if user.starts_with("line:") || user.rsplit_once('@').is_some_and(|(_, t)| t != p.tenant) {
                excluded.push(Excluded { user, reason: "not_authorized".into() });
            } else {
                allowed.push(MemberSpec { user, tenant: p.tenant.clone(), kind: MemberKind::Member });
            }
        }
        return Ok((allowed, excluded));
    }
    let verdicts = authz.decide(&p.tenant, &p.user_id, &others).await.map_err(|e| {
        tracing::warn!(error = %e, "authorization decision unavailable");
        ApiError::unavailable("authz_unavailable", "authorization is temporarily unavailable")
    })?;
    for v in verdicts {
        match (v.allowed, v.tenant) {
            (true, Some(tenant)) => {
                let kind = if v.user.starts_with("line:") { MemberKind::LineUser } else { MemberKind::Member };
                allowed.push(MemberSpec { user: v.user, tenant, kind });
            }
            _ => excluded.push(Excluded { user: v.user, reason: v.reason.unwrap_or_else(|| "not_authorized".into()) }),
        }
    }
    Ok((allowed, excluded))
}

/// Room kinds and tenants never change: cache them (bounded) to keep the post path cheap.
#[derive(Default)]
pub struct RoomKinds(RwLock<HashMap<String, (String, String)>>);

const KIND_CACHE_MAX: usize = 100_000;

impl RoomKinds {
    async fn get(&self, store: &Store, room_id: &str) -> Result<Option<(String, String)>, ApiError> {
        if let Some(k) = self.0.read().ok().and_then(|m| m.get(room_id).cloned()) {
            return Ok(Some(k));
        }
        let found = store.room_kind(room_id).await.map_err(|e| ApiError::internal(&e))?;
        if let (Some(k), Ok(mut map)) = (&found, self.0.write()) {
            if map.len() >= KIND_CACHE_MAX {
                map.clear();
            }
            map.insert(room_id.to_owned(), k.clone());
        }
        Ok(found)
    }
}

/// Posting into an external room needs an active trust with every other tenant in it; into a
/// LINE room, the caller's LINE permission. Other rooms pass. Non-members are left to the room,
/// which answers 404, so this says nothing about rooms the caller is not in.
pub async fn may_post(
    p: &Principal,
    room_id: &str,
    store: &Store,
    kinds: &RoomKinds,
    authz: &AuthzClient,
) -> Result<(), ApiError> {
    let Some((kind, _room_tenant)) = kinds.get(store, room_id).await? else { return Ok(()) };
    let external = kind.starts_with("external");
    let line = kind.starts_with("line");
    if !external && !line {
        return Ok(());
    }
    if !store.is_member(room_id, &p.user_id, &p.tenant).await.map_err(|e| ApiError::internal(&e))? {
        return Ok(());
    }
    let (actor_line, trusted) = authz
        .actor(&p.tenant, &p.user_id)
        .await
        .map_err(|_| ApiError::unavailable("authz_unavailable", "authorization is temporarily unavailable"))?;
    if line && !actor_line {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "line_not_authorized", "you may not chat with LINE users"));
    }
    if external {
        let tenants = store.member_tenants(room_id).await.map_err(|e| ApiError::internal(&e))?;
        if tenants.iter().any(|t| *t != p.tenant && !trusted.contains(t)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "external_not_authorized",
                "your company and another company in this room no longer trust each other",
            ));
        }
    }
    Ok(())
}
