//! Authorization at the edge, before a command is sent to its room: who may join a room with
//! the caller, and whether the caller may still post into an external or LINE room. Used by the
//! HTTP API and the WebSocket session alike; both map the `CommandError` it returns.

use std::collections::HashMap;
use std::sync::RwLock;

use chat_auth::Principal;
use chat_protocol::bus::{CommandError, Excluded, MemberKind, MemberSpec, RoomKind};
use chat_protocol::room::ExclusionReason;
use chat_protocol::{Refusal, RoomId, TenantId, UserId};

use crate::authz::AuthzClient;
use crate::store::{Store, StoreError};

fn authz_unavailable() -> CommandError {
    CommandError::new(Refusal::AuthzUnavailable, "authorization is temporarily unavailable")
}

fn internal(err: StoreError) -> CommandError {
    tracing::error!(error = %err, "store failure at the edge");
    CommandError::internal()
}

/// Who may join: the authorized participants, and the others with the reason.
pub struct Resolved {
    pub allowed: Vec<MemberSpec>,
    pub excluded: Vec<Excluded>,
    /// Allowed members who may not connect to LINE (kept out of rooms with LINE users).
    without_line: Vec<UserId>,
}

impl Resolved {
    /// For a room with LINE users: members the admin does not allow to connect to LINE are
    /// excluded even when invited (`line_not_authorized`), as the product pages say.
    pub fn keep_out_of_line(&mut self) {
        let (keep, out): (Vec<MemberSpec>, Vec<MemberSpec>) = std::mem::take(&mut self.allowed)
            .into_iter()
            .partition(|m| m.kind == MemberKind::LineUser || !self.without_line.contains(&m.user));
        self.allowed = keep;
        self.excluded
            .extend(out.into_iter().map(|m| Excluded { user: m.user, reason: ExclusionReason::LineNotAuthorized }));
    }

    /// True when LINE users are among the allowed (the room is, or becomes, a LINE room).
    pub fn has_line_users(&self) -> bool {
        self.allowed.iter().any(|m| m.kind == MemberKind::LineUser)
    }
}

/// Resolve requested member ids into authorized participants and the excluded with a reason.
/// Without authz, plain ids are members of the caller's tenant and anything else is excluded.
pub async fn resolve_members(p: &Principal, ids: &[UserId], authz: &AuthzClient) -> Result<Resolved, CommandError> {
    let others: Vec<UserId> = ids.iter().filter(|u| **u != p.user_id).cloned().collect();
    let mut resolved = Resolved { allowed: Vec::new(), excluded: Vec::new(), without_line: Vec::new() };
    if !authz.enabled() {
        for user in others {
            let other_tenant = user.tenant_part().is_some_and(|t| t != p.tenant.as_str());
            if user.is_line_user() || other_tenant {
                resolved.excluded.push(Excluded { user, reason: ExclusionReason::NotAuthorized });
            } else {
                resolved.allowed.push(MemberSpec { user, tenant: p.tenant.clone(), kind: MemberKind::Member });
            }
        }
        return Ok(resolved);
    }
    let verdicts = authz.decide(&p.tenant, &p.user_id, &others).await.map_err(|e| {
        tracing::warn!(error = %e, "authorization decision unavailable");
        authz_unavailable()
    })?;
    for v in verdicts {
        match (v.allowed, v.tenant) {
            (true, Some(tenant)) => {
                let kind = if v.user.is_line_user() { MemberKind::LineUser } else { MemberKind::Member };
                if !v.line {
                    resolved.without_line.push(v.user.clone());
                }
                resolved.allowed.push(MemberSpec { user: v.user, tenant, kind });
            }
            _ => resolved
                .excluded
                .push(Excluded { user: v.user, reason: v.reason.unwrap_or(ExclusionReason::NotAuthorized) }),
        }
    }
    Ok(resolved)
}

/// Room kinds never change: cache them (bounded) to keep the post path cheap.
#[derive(Default)]
pub struct RoomKinds(RwLock<HashMap<RoomId, RoomKind>>);

/// Entries the kind cache holds at most; when full it starts over.
const KIND_CACHE_MAX: usize = 100_000;

impl RoomKinds {
    /// The room's kind (`None` when there is no such room).
    pub async fn get(&self, store: &Store, room_id: &RoomId) -> Result<Option<RoomKind>, StoreError> {
        if let Some(kind) = self.0.read().ok().and_then(|m| m.get(room_id).copied()) {
            return Ok(Some(kind));
        }
        let found = store.room_kind(room_id).await?;
        if let (Some(kind), Ok(mut map)) = (found, self.0.write()) {
            if map.len() >= KIND_CACHE_MAX {
                map.clear();
            }
            map.insert(room_id.clone(), kind);
        }
        Ok(found)
    }
}

/// Posting into an external room needs an active trust with every other tenant in it; into a
/// LINE room, the caller's LINE permission. Other rooms pass. Non-members are left to the room,
/// which answers `room_not_found`, so this says nothing about rooms the caller is not in.
pub async fn may_post(
    p: &Principal,
    room_id: &RoomId,
    store: &Store,
    kinds: &RoomKinds,
    authz: &AuthzClient,
) -> Result<(), CommandError> {
    let Some(kind) = kinds.get(store, room_id).await.map_err(internal)? else { return Ok(()) };
    if !kind.is_external() && !kind.is_line() {
        return Ok(());
    }
    if !store.is_member(room_id, &p.user_id, &p.tenant).await.map_err(internal)? {
        return Ok(());
    }
    let actor = authz.actor(&p.tenant, &p.user_id).await.map_err(|_| authz_unavailable())?;
    if kind.is_line() && !actor.line {
        return Err(CommandError::new(Refusal::LineNotAuthorized, "you may not chat with LINE users"));
    }
    if kind.is_external() {
        let tenants = store.member_tenants(room_id).await.map_err(internal)?;
        let untrusted = |t: &TenantId| *t != p.tenant && !actor.trusted.contains(t);
        if tenants.iter().any(untrusted) {
            return Err(CommandError::new(
                Refusal::ExternalNotAuthorized,
                "your company and another company in this room no longer trust each other",
            ));
        }
    }
    Ok(())
}
