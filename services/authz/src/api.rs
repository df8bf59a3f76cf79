//! The authz HTTP API (API.md, authz section) and the internal decision endpoint.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chat_auth::{Claims, Principal};
use chat_kit::ApiError;
use chat_protocol::authz::{AuthzEvent, DecideRequest, DecideResponse, Verdict};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::app::AuthzCore;
use crate::password;
use crate::store::{LineMode, StoreError, User};

type Res = Result<HttpResponse, ApiError>;
type Core = web::Data<AuthzCore>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/auth/login", web::post().to(login))
        .route("/v1/auth/jwks", web::get().to(jwks))
        .route("/v1/me", web::get().to(me))
        .route("/v1/admin/users", web::post().to(create_user))
        .route("/v1/admin/users", web::get().to(list_users))
        .route("/v1/admin/users/{id}", web::patch().to(update_user))
        .route("/v1/admin/line-access", web::put().to(set_line_mode))
        .route("/v1/admin/users/{id}/line-access", web::put().to(set_user_line))
        .route("/v1/admin/trusts", web::post().to(grant_trust))
        .route("/v1/admin/trusts", web::get().to(list_trusts))
        .route("/v1/admin/trusts/{tenant}", web::delete().to(revoke_trust))
        .route("/v1/admin/audit", web::get().to(audit))
        .route("/internal/v1/decide", web::post().to(decide));
}

fn db(e: StoreError) -> ApiError {
    ApiError::internal(&e)
}

fn now() -> i64 {
    chat_protocol::now_ms()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

fn user_json(u: &User, mode: LineMode) -> serde_json::Value {
    json!({
        "id": u.id, "tenant": u.tenant, "username": u.username, "display_name": u.display_name,
        "admin": u.admin, "disabled": u.disabled, "line_allowed": u.line_allowed,
        "line_access": u.may_use_line(mode),
    })
}

// ----- login, keys, me -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    tenant: String,
    username: String,
    password: String,
}

fn too_many(wait: std::time::Duration) -> HttpResponse {
    let secs = wait.as_secs().max(1);
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", secs.to_string()))
        .json(json!({"error": {"code": "rate_limited", "message": format!("too many attempts; retry in {secs} s")}}))
}

async fn login(req: HttpRequest, body: web::Json<Login>, core: Core) -> Res {
    let Login { tenant, username, password: pass } = body.into_inner();
    if tenant.len() > 64 || username.len() > 64 || pass.len() > 256 {
        return Err(ApiError::bad_request("invalid_field", "tenant, username or password too long"));
    }
    let clock = governor::clock::DefaultClock::default();
    use governor::clock::Clock;
    if let Some(ip) = req.peer_addr().map(|a| a.ip()) {
        if let Err(not_until) = core.limiters.per_address.check_key(&ip) {
            return Ok(too_many(not_until.wait_time_from(clock.now())));
        }
    }
    if let Err(not_until) = core.limiters.per_account.check_key(&format!("{tenant}/{username}")) {
        return Ok(too_many(not_until.wait_time_from(clock.now())));
    }
    let user = core.store.user_by_name(&tenant, &username).await.map_err(db)?;
    let hash = user.as_ref().map_or(password::decoy(), |u| u.password_hash.as_str()).to_owned();
    let ok = web::block(move || password::verify(&pass, &hash)).await.unwrap_or(false);
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong tenant, username or password",
            ))
        }
    };
    let issued = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let t = &core.settings.tokens;
    let claims = Claims {
        sub: user.id.clone(),
        tid: user.tenant.clone(),
        iss: t.issuer.clone(),
        aud: t.audience.clone(),
        exp: issued + t.ttl_secs,
        iat: issued,
        nbf: Some(issued),
        roles: if user.admin { vec!["admin".into()] } else { vec![] },
    };
    let token = core.keys.sign(&claims).ok_or_else(|| ApiError::internal(&"signing failed"))?;
    Ok(HttpResponse::Ok().json(json!({"access_token": token, "token_type": "Bearer", "expires_in": t.ttl_secs})))
}

async fn jwks(core: Core) -> HttpResponse {
    use chat_auth::KeyProvider;
    HttpResponse::Ok().insert_header(("Cache-Control", "max-age=60")).json(core.keys.jwks())
}

/// The caller as the store knows them now (a disabled or deleted user is refused).
async fn current(core: &AuthzCore, p: &Principal) -> Result<(User, LineMode), ApiError> {
    let user = core.store.user(&p.user_id).await.map_err(db)?;
    let user = user
        .filter(|u| u.tenant == p.tenant && !u.disabled)
        .ok_or_else(|| ApiError::unauthorized("unknown or disabled user"))?;
    let mode = core.store.tenant(&user.tenant).await.map_err(db)?.map_or(LineMode::None, |t| t.line_mode);
    Ok((user, mode))
}

async fn active_trusts(core: &AuthzCore, tenant: &str) -> Result<Vec<String>, ApiError> {
    let (ours, theirs) = core.store.trusts(tenant).await.map_err(db)?;
    let theirs: BTreeSet<String> = theirs.into_iter().collect();
    Ok(ours.into_iter().filter(|o| theirs.contains(o)).collect())
}

async fn me(p: Principal, core: Core) -> Res {
    let (user, mode) = current(&core, &p).await?;
    let trusted = active_trusts(&core, &user.tenant).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": user.id, "tenant": user.tenant, "username": user.username, "display_name": user.display_name,
        "roles": if user.admin { vec!["admin"] } else { vec![] },
        "permissions": {"line": user.may_use_line(mode), "external_tenants": trusted},
    })))
}

// ----- admin -----

/// The caller must be an admin of their tenant now (not only when the token was issued).
async fn admin(core: &AuthzCore, p: &Principal) -> Result<(User, LineMode), ApiError> {
    let (user, mode) = current(core, p).await?;
    if !user.admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "tenant admins only"));
    }
    Ok((user, mode))
}

/// A user of the admin's own tenant; anyone else is answered as if absent.
async fn own_user(core: &AuthzCore, tenant: &str, id: &str) -> Result<User, ApiError> {
    core.store
        .user(id)
        .await
        .map_err(db)?
        .filter(|u| u.tenant == tenant)
        .ok_or_else(|| ApiError::not_found("user_not_found", "user not found"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    display_name: Option<String>,
    #[serde(default)]
    admin: bool,
}

fn check_password(pass: &str) -> Result<(), ApiError> {
    if pass.chars().count() < 8 || pass.len() > 256 {
        return Err(ApiError::bad_request("invalid_password", "passwords are 8 to 256 characters"));
    }
    Ok(())
}

fn check_display(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("name_too_long", "display names are 1 to 100 characters"));
    }
    Ok(())
}

async fn create_user(p: Principal, body: web::Json<NewUser>, core: Core) -> Res {
    let (me, mode) = admin(&core, &p).await?;
    let NewUser { username, password: pass, display_name, admin: is_admin } = body.into_inner();
    if !valid_name(&username) {
        return Err(ApiError::bad_request("invalid_username", "usernames are 1-64 of [a-z0-9._-]"));
    }
    check_password(&pass)?;
    let display_name = display_name.unwrap_or_else(|| username.clone());
    check_display(&display_name)?;
    let hash =
        web::block(move || password::hash(&pass)).await.ok().flatten().ok_or_else(|| ApiError::internal(&"hashing"))?;
    let user = User {
        id: format!("{username}@{}", me.tenant),
        tenant: me.tenant.clone(),
        username,
        display_name,
        password_hash: hash,
        admin: is_admin,
        disabled: false,
        line_allowed: false,
    };
    match core.store.create_user(&user, now()).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ApiError::new(StatusCode::CONFLICT, "user_exists", "username taken")),
        Err(e) => return Err(db(e)),
    }
    core.store.audit(&me.tenant, &me.id, "user_created", &user.id, "", now()).await.map_err(db)?;
    Ok(HttpResponse::Created().json(user_json(&user, mode)))
}

async fn list_users(p: Principal, core: Core) -> Res {
    let (me, mode) = admin(&core, &p).await?;
    let users = core.store.users(&me.tenant).await.map_err(db)?;
    Ok(HttpResponse::Ok().json(json!({"users": users.iter().map(|u| user_json(u, mode)).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    display_name: Option<String>,
    password: Option<String>,
    admin: Option<bool>,
    disabled: Option<bool>,
}

async fn update_user(p: Principal, path: web::Path<String>, body: web::Json<UserPatch>, core: Core) -> Res {
    let (me, mode) = admin(&core, &p).await?;
    let mut user = own_user(&core, &me.tenant, &path).await?;
    let patch = body.into_inner();
    if let Some(name) = &patch.display_name {
        check_display(name)?;
    }
    if let Some(pass) = &patch.password {
        check_password(pass)?;
    }
    let could_use_line = user.may_use_line(mode);
    let was_disabled = user.disabled;
    if let Some(name) = patch.display_name {
        user.display_name = name;
    }
    if let Some(pass) = patch.password {
        user.password_hash = web::block(move || password::hash(&pass))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| ApiError::internal(&"hashing"))?;
    }
    if let Some(a) = patch.admin {
        user.admin = a;
    }
    if let Some(d) = patch.disabled {
        user.disabled = d;
    }
    core.store.update_user(&user, now()).await.map_err(db)?;
    if user.disabled && !was_disabled {
        core.store.audit(&me.tenant, &me.id, "user_disabled", &user.id, "", now()).await.map_err(db)?;
        let at_secs = u64::try_from(now() / 1000).unwrap_or(0);
        core.emit(AuthzEvent::UserDisabled { tenant: me.tenant.clone(), user: user.id.clone(), at_secs }).await;
    }
    line_changed(&core, &me, &user, could_use_line, user.may_use_line(mode)).await?;
    Ok(HttpResponse::Ok().json(user_json(&user, mode)))
}

/// Audit, notify and publish a change of a member's effective LINE permission.
async fn line_changed(core: &AuthzCore, actor: &User, user: &User, before: bool, after: bool) -> Result<(), ApiError> {
    if before == after {
        return Ok(());
    }
    let action = if after { "line_access_granted" } else { "line_access_revoked" };
    core.store.audit(&user.tenant, &actor.id, action, &user.id, "", now()).await.map_err(db)?;
    core.emit(AuthzEvent::LineAccess { tenant: user.tenant.clone(), user: user.id.clone(), allowed: after }).await;
    let text = if after { "You can now chat with LINE users." } else { "You can no longer chat with LINE users." };
    let kind = if after { "line_access_granted" } else { "line_access_revoked" };
    core.emit(AuthzEvent::Notify {
        tenant: user.tenant.clone(),
        user: user.id.clone(),
        kind: kind.into(),
        text: text.into(),
    })
    .await;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    mode: String,
}

async fn set_line_mode(p: Principal, body: web::Json<ModeBody>, core: Core) -> Res {
    let (me, old) = admin(&core, &p).await?;
    let new = LineMode::parse(&body.mode)
        .ok_or_else(|| ApiError::bad_request("invalid_mode", "mode is all, selected or none"))?;
    let users = core.store.users(&me.tenant).await.map_err(db)?;
    core.store.set_line_mode(&me.tenant, new).await.map_err(db)?;
    core.store.audit(&me.tenant, &me.id, "line_mode_set", &me.tenant, new.as_str(), now()).await.map_err(db)?;
    for u in &users {
        line_changed(&core, &me, u, u.may_use_line(old), u.may_use_line(new)).await?;
    }
    Ok(HttpResponse::Ok().json(json!({"mode": new.as_str()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedBody {
    allowed: bool,
}

async fn set_user_line(p: Principal, path: web::Path<String>, body: web::Json<AllowedBody>, core: Core) -> Res {
    let (me, mode) = admin(&core, &p).await?;
    let mut user = own_user(&core, &me.tenant, &path).await?;
    let before = user.may_use_line(mode);
    user.line_allowed = body.allowed;
    core.store.update_user(&user, now()).await.map_err(db)?;
    line_changed(&core, &me, &user, before, user.may_use_line(mode)).await?;
    Ok(HttpResponse::Ok().json(user_json(&user, mode)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustBody {
    tenant: String,
}

/// Tell every member of both tenants that they can now (or can no longer) chat.
async fn notify_trust(core: &AuthzCore, a: &str, b: &str, active: bool) -> Result<(), ApiError> {
    for (tenant, other) in [(a, b), (b, a)] {
        let other_name = core.store.tenant(other).await.map_err(db)?.map_or_else(|| other.to_owned(), |t| t.name);
        let (kind, text) = if active {
            ("external_granted", format!("You can now chat with {other_name}."))
        } else {
            ("external_revoked", format!("You can no longer chat with {other_name}."))
        };
        for u in core.store.users(tenant).await.map_err(db)?.iter().filter(|u| !u.disabled) {
            core.emit(AuthzEvent::Notify {
                tenant: tenant.into(),
                user: u.id.clone(),
                kind: kind.into(),
                text: text.clone(),
            })
            .await;
        }
    }
    Ok(())
}

async fn grant_trust(p: Principal, body: web::Json<TrustBody>, core: Core) -> Res {
    let (me, _) = admin(&core, &p).await?;
    let other = body.into_inner().tenant;
    if other == me.tenant {
        return Err(ApiError::bad_request("invalid_tenant", "a tenant cannot trust itself"));
    }
    if core.store.tenant(&other).await.map_err(db)?.is_none() {
        return Err(ApiError::not_found("tenant_not_found", "tenant not found"));
    }
    let was_active = core.store.trust_active(&me.tenant, &other).await.map_err(db)?;
    if core.store.grant_trust(&me.tenant, &other, now()).await.map_err(db)? {
        core.store.audit(&me.tenant, &me.id, "trust_granted", &other, "", now()).await.map_err(db)?;
    }
    let active = core.store.trust_active(&me.tenant, &other).await.map_err(db)?;
    if active && !was_active {
        core.store.audit(&other, "system", "trust_active", &me.tenant, "", now()).await.map_err(db)?;
        core.emit(AuthzEvent::Trust { tenant_a: me.tenant.clone(), tenant_b: other.clone(), active: true }).await;
        notify_trust(&core, &me.tenant, &other, true).await?;
    }
    Ok(HttpResponse::Ok().json(json!({"tenant": other, "status": if active { "active" } else { "pending_ours" }})))
}

async fn revoke_trust(p: Principal, path: web::Path<String>, core: Core) -> Res {
    let (me, _) = admin(&core, &p).await?;
    let other = path.into_inner();
    let was_active = core.store.trust_active(&me.tenant, &other).await.map_err(db)?;
    if !core.store.revoke_trust(&me.tenant, &other).await.map_err(db)? {
        return Err(ApiError::not_found("trust_not_found", "no trust granted to that tenant"));
    }
    core.store.audit(&me.tenant, &me.id, "trust_revoked", &other, "", now()).await.map_err(db)?;
    if was_active {
        core.store
            .audit(&other, "system", "trust_inactive", &me.tenant, "revoked by the other side", now())
            .await
            .map_err(db)?;
        core.emit(AuthzEvent::Trust { tenant_a: me.tenant.clone(), tenant_b: other.clone(), active: false }).await;
        notify_trust(&core, &me.tenant, &other, false).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn list_trusts(p: Principal, core: Core) -> Res {
    let (me, _) = admin(&core, &p).await?;
    let (ours, theirs) = core.store.trusts(&me.tenant).await.map_err(db)?;
    let ours: BTreeSet<String> = ours.into_iter().collect();
    let theirs: BTreeSet<String> = theirs.into_iter().collect();
    let trusts: Vec<_> = ours
        .union(&theirs)
        .map(|t| {
            // pending_ours: our grant waits for theirs; pending_theirs: theirs waits for ours.
            let status = match (ours.contains(t), theirs.contains(t)) {
                (true, true) => "active",
                (true, false) => "pending_ours",
                _ => "pending_theirs",
            };
            json!({"tenant": t, "status": status})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"trusts": trusts})))
}

async fn audit(p: Principal, core: Core) -> Res {
    let (me, _) = admin(&core, &p).await?;
    let rows = core.store.audit_trail(&me.tenant, 500).await.map_err(db)?;
    let entries: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"id": r.id, "actor": r.actor, "action": r.action, "subject": r.subject, "detail": r.detail,
                        "at": chat_protocol::frames::format_time_ms(r.at_ms)})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"entries": entries})))
}

// ----- internal -----

fn internal_caller(req: &HttpRequest, core: &AuthzCore) -> Result<(), ApiError> {
    let given = req.headers().get("X-Internal-Token").map(|v| v.as_bytes()).unwrap_or_default();
    let expected = core.settings.internal.token.expose_secret().as_bytes();
    // Constant time in the length of the expected token.
    let same = given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::not_found("not_found", "not found"))
    }
}

/// May `actor` have these users in a room, now? LINE users are `line:<id>`.
async fn decide(req: HttpRequest, body: web::Json<DecideRequest>, core: Core) -> Res {
    internal_caller(&req, &core)?;
    let DecideRequest { tenant, actor, users } = body.into_inner();
    let mode = core.store.tenant(&tenant).await.map_err(db)?.map_or(LineMode::None, |t| t.line_mode);
    let actor_line =
        core.store.user(&actor).await.map_err(db)?.filter(|u| u.tenant == tenant).is_some_and(|u| u.may_use_line(mode));
    let trusted = active_trusts(&core, &tenant).await?;
    let mut verdicts = Vec::new();
    for user in users {
        let verdict = if user.starts_with("line:") {
            Verdict {
                tenant: Some("line".into()),
                allowed: actor_line,
                reason: (!actor_line).then(|| "line_not_authorized".into()),
                user,
            }
        } else {
            match core.store.user(&user).await.map_err(db)?.filter(|u| !u.disabled) {
                None => Verdict { user, tenant: None, allowed: false, reason: Some("unknown_user".into()) },
                Some(u) if u.tenant == tenant => Verdict { user, tenant: Some(u.tenant), allowed: true, reason: None },
                Some(u) => {
                    let ok = trusted.contains(&u.tenant);
                    Verdict {
                        user,
                        tenant: Some(u.tenant),
                        allowed: ok,
                        reason: (!ok).then(|| "external_not_authorized".into()),
                    }
                }
            }
        };
        verdicts.push(verdict);
    }
    Ok(HttpResponse::Ok().json(DecideResponse { actor_line, trusted_tenants: trusted, verdicts }))
}
