//! The authz HTTP API (API.md, authz section) and the internal decision endpoint. Each handler
//! parses the request, calls one rule of `AuthzCore` and serialises its typed answer; refusals
//! become codes and statuses in one place (`From<AuthzError> for ApiError`).

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chat_auth::Principal;
use chat_kit::ApiError;
use chat_protocol::authz::DecideRequest;
use chat_protocol::{Refusal, TenantId, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::service::{
    AuthzCore, AuthzError, Credentials, IssuedToken, Me, NewUser, Origin, Trust, UserChanges, UserSummary,
};
use crate::store::{AuditRow, LineMode, StoreError};

type Res = Result<HttpResponse, ApiError>;
type Core = web::Data<AuthzCore>;

/// The header other services present the service token in, on `/internal/` calls.
const INTERNAL_TOKEN_HEADER: &str = "X-Internal-Token";

/// The authz routes and the app data they need (the core, and the verifier of bearer
/// tokens), for `App::configure`.
pub fn configure(core: &Arc<AuthzCore>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let verifier = web::Data::new(core.verifier.clone());
    let shared_core = web::Data::from(Arc::clone(core));
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(shared_core.clone()).app_data(verifier.clone()).configure(routes);
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/auth/login", web::post().to(login))
        .route("/v1/auth/jwks", web::get().to(jwks))
        .route("/v1/me", web::get().to(me))
        .route("/v1/users", web::get().to(people))
        .route("/v1/admin/users", web::post().to(create_user))
        .route("/v1/admin/users", web::get().to(list_users))
        .route("/v1/admin/users/{id}", web::patch().to(update_user))
        .route("/v1/admin/line-access", web::put().to(set_line_mode))
        .route("/v1/admin/line-access", web::get().to(line_mode))
        .route("/v1/admin/users/{id}/line-access", web::put().to(set_user_line))
        .route("/v1/admin/trusts", web::post().to(grant_trust))
        .route("/v1/admin/trusts", web::get().to(list_trusts))
        .route("/v1/admin/trusts/{tenant}", web::delete().to(revoke_trust))
        .route("/v1/admin/audit", web::get().to(audit))
        .route("/internal/v1/decide", web::post().to(decide))
        .route(chat_auth::REVOCATIONS_PATH, web::get().to(revocations));
}

// ----- errors -----

/// A store failure is a 500 whose body says nothing; the cause goes to the log.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(&err)
    }
}

/// The one mapping of refusals to codes (the code fixes the status) and messages.
impl From<AuthzError> for ApiError {
    fn from(err: AuthzError) -> Self {
        let (code, message) = match err {
            AuthzError::LoginFieldTooLong => (Refusal::InvalidField, "tenant, username or password too long"),
            AuthzError::RateLimited(wait) => return ApiError::rate_limited(wait),
            AuthzError::InvalidCredentials => (Refusal::InvalidCredentials, "wrong tenant, username or password"),
            AuthzError::UnknownCaller(_) => return ApiError::unauthorized("unknown or disabled user"),
            AuthzError::NotAdmin(_) => (Refusal::Forbidden, "tenant admins only"),
            AuthzError::UserNotFound(_) => (Refusal::UserNotFound, "user not found"),
            AuthzError::UserExists(_) => (Refusal::UserExists, "username taken"),
            AuthzError::InvalidUsername(_) => (Refusal::InvalidUsername, "usernames are 1-64 of [a-z0-9._-]"),
            AuthzError::InvalidPassword => (Refusal::InvalidPassword, "passwords are 8 to 256 characters"),
            AuthzError::InvalidDisplayName => (Refusal::NameTooLong, "display names are 1 to 100 characters"),
            AuthzError::InvalidLineMode(_) => (Refusal::InvalidMode, "mode is all, selected or none"),
            AuthzError::TooManyIds(_) => (Refusal::InvalidQuery, "at most 100 ids at a time"),
            AuthzError::SelfTrust(_) => (Refusal::InvalidTenant, "a tenant cannot trust itself"),
            AuthzError::TenantNotFound(_) => (Refusal::TenantNotFound, "tenant not found"),
            AuthzError::TrustNotFound(_) => (Refusal::TrustNotFound, "no trust granted to that tenant"),
            // The internal endpoints do not exist for anyone else.
            AuthzError::NotInternalCaller => (Refusal::NotFound, "not found"),
            AuthzError::Store(store) => return store.into(),
            internal @ (AuthzError::Hashing(_) | AuthzError::HashingTask(_) | AuthzError::Key(_)) => {
                return ApiError::internal(&internal)
            }
        };
        ApiError::new(code, message)
    }
}

// ----- login, keys, me -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    tenant: TenantId,
    username: String,
    password: SecretString,
}

#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// Where a request came from: the TCP peer and what `X-Forwarded-For` says (believed only when
/// the peer is a trusted proxy; the rule decides).
fn origin(req: &HttpRequest) -> Origin {
    let forwarded_for =
        req.headers().get_all("X-Forwarded-For").filter_map(|value| value.to_str().ok()).map(str::to_owned).collect();
    Origin { peer: req.peer_addr().map(|address| address.ip()), forwarded_for }
}

async fn login(req: HttpRequest, body: web::Json<LoginBody>, core: Core) -> Res {
    let LoginBody { tenant, username, password } = body.into_inner();
    let IssuedToken { access_token, expires_in } =
        core.login(Credentials { tenant, username, password }, &origin(&req)).await?;
    Ok(HttpResponse::Ok().json(TokenBody { access_token, token_type: "Bearer", expires_in }))
}

async fn jwks(core: Core) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "max-age=60")).json(core.jwks())
}

#[derive(Serialize)]
struct MeBody<'a> {
    id: &'a UserId,
    tenant: &'a TenantId,
    username: &'a str,
    display_name: &'a str,
    roles: Vec<String>,
    permissions: PermissionsBody<'a>,
}

#[derive(Serialize)]
struct PermissionsBody<'a> {
    line: bool,
    external_tenants: &'a [TenantId],
}

async fn me(principal: Principal, core: Core) -> Res {
    let Me { user, line, external_tenants } = core.me(&principal).await?;
    Ok(HttpResponse::Ok().json(MeBody {
        id: &user.id,
        tenant: &user.tenant,
        username: &user.username,
        display_name: &user.display_name,
        roles: user.roles(),
        permissions: PermissionsBody { line, external_tenants: &external_tenants },
    }))
}

// ----- who members may know by name -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeopleQuery {
    /// Comma-separated user ids; absent: the caller's colleagues.
    #[serde(default)]
    ids: Option<String>,
}

#[derive(Serialize)]
struct PeopleBody {
    users: Vec<PersonBody>,
}

#[derive(Serialize)]
struct PersonBody {
    id: UserId,
    display_name: String,
    tenant: TenantId,
    tenant_name: String,
}

/// `GET /v1/users`: the caller's colleagues; `?ids=a,b`: those of them the caller may know
/// (their company, or one trusted both ways), the others left out.
async fn people(principal: Principal, query: web::Query<PeopleQuery>, core: Core) -> Res {
    let people = match &query.ids {
        None => core.colleagues(&principal).await?,
        Some(ids) => {
            let ids: Vec<UserId> = ids.split(',').map(str::trim).filter(|id| !id.is_empty()).map(UserId::new).collect();
            core.people(&principal, &ids).await?
        }
    };
    let users = people
        .into_iter()
        .map(|p| PersonBody { id: p.id, display_name: p.display_name, tenant: p.tenant, tenant_name: p.tenant_name })
        .collect();
    Ok(HttpResponse::Ok().json(PeopleBody { users }))
}

// ----- users and LINE permission -----

/// A user as admins see them (never the password hash).
#[derive(Serialize)]
struct UserBody<'a> {
    id: &'a UserId,
    tenant: &'a TenantId,
    username: &'a str,
    display_name: &'a str,
    admin: bool,
    disabled: bool,
    line_allowed: bool,
    /// The effective LINE permission (tenant mode and member grant).
    line_access: bool,
}

impl<'a> From<&'a UserSummary> for UserBody<'a> {
    fn from(summary: &'a UserSummary) -> Self {
        let user = &summary.user;
        Self {
            id: &user.id,
            tenant: &user.tenant,
            username: &user.username,
            display_name: &user.display_name,
            admin: user.admin,
            disabled: user.disabled,
            line_allowed: user.line_allowed,
            line_access: summary.line_access,
        }
    }
}

#[derive(Serialize)]
struct UsersBody<'a> {
    users: Vec<UserBody<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    password: SecretString,
    display_name: Option<String>,
    #[serde(default)]
    admin: bool,
}

async fn create_user(principal: Principal, body: web::Json<NewUserBody>, core: Core) -> Res {
    let NewUserBody { username, password, display_name, admin } = body.into_inner();
    let created = core.create_user(&principal, NewUser { username, password, display_name, admin }).await?;
    Ok(HttpResponse::Created().json(UserBody::from(&created)))
}

async fn list_users(principal: Principal, core: Core) -> Res {
    let users = core.list_users(&principal).await?;
    Ok(HttpResponse::Ok().json(UsersBody { users: users.iter().map(UserBody::from).collect() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatchBody {
    display_name: Option<String>,
    password: Option<SecretString>,
    admin: Option<bool>,
    disabled: Option<bool>,
}

async fn update_user(principal: Principal, path: web::Path<UserId>, body: web::Json<UserPatchBody>, core: Core) -> Res {
    let UserPatchBody { display_name, password, admin, disabled } = body.into_inner();
    let changes = UserChanges { display_name, password, admin, disabled };
    let updated = core.update_user(&principal, &path, changes).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&updated)))
}

/// The mode is text here and parsed by the rule, so that an unknown mode is `invalid_mode`
/// (and a non-admin's request `forbidden` whatever its mode).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

#[derive(Serialize)]
struct ModeSetBody {
    mode: LineMode,
}

async fn line_mode(principal: Principal, core: Core) -> Res {
    let mode = core.line_mode_of(&principal).await?;
    Ok(HttpResponse::Ok().json(ModeSetBody { mode }))
}

async fn set_line_mode(principal: Principal, body: web::Json<ModeBody>, core: Core) -> Res {
    let mode = core.set_line_mode(&principal, body.into_inner().mode).await?;
    Ok(HttpResponse::Ok().json(ModeSetBody { mode }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowedBody {
    allowed: bool,
}

async fn set_user_line(principal: Principal, path: web::Path<UserId>, body: web::Json<AllowedBody>, core: Core) -> Res {
    let updated = core.set_user_line(&principal, &path, body.allowed).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&updated)))
}

// ----- trust -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustBody {
    tenant: TenantId,
}

#[derive(Serialize)]
struct TrustsBody {
    trusts: Vec<Trust>,
}

async fn grant_trust(principal: Principal, body: web::Json<TrustBody>, core: Core) -> Res {
    let trust = core.grant_trust(&principal, body.into_inner().tenant).await?;
    Ok(HttpResponse::Ok().json(trust))
}

async fn revoke_trust(principal: Principal, path: web::Path<TenantId>, core: Core) -> Res {
    core.revoke_trust(&principal, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_trusts(principal: Principal, core: Core) -> Res {
    let trusts = core.list_trusts(&principal).await?;
    Ok(HttpResponse::Ok().json(TrustsBody { trusts }))
}

// ----- audit -----

#[derive(Serialize)]
struct AuditEntryBody<'a> {
    id: &'a str,
    actor: &'a str,
    action: &'static str,
    subject: &'a str,
    detail: &'a str,
    /// RFC 3339, milliseconds.
    at: String,
}

impl<'a> From<&'a AuditRow> for AuditEntryBody<'a> {
    fn from(row: &'a AuditRow) -> Self {
        Self {
            id: &row.id,
            actor: &row.actor,
            action: row.action.as_str(),
            subject: &row.subject,
            detail: &row.detail,
            at: chat_protocol::frames::format_time_ms(row.at_ms),
        }
    }
}

#[derive(Serialize)]
struct AuditBody<'a> {
    entries: Vec<AuditEntryBody<'a>>,
}

async fn audit(principal: Principal, core: Core) -> Res {
    let rows = core.audit_trail(&principal).await?;
    Ok(HttpResponse::Ok().json(AuditBody { entries: rows.iter().map(AuditEntryBody::from).collect() }))
}

// ----- internal -----

fn presented_token(req: &HttpRequest) -> &[u8] {
    req.headers().get(INTERNAL_TOKEN_HEADER).map(|value| value.as_bytes()).unwrap_or_default()
}

/// May `actor` have these users in a room, now? 404 without the service token.
async fn decide(req: HttpRequest, body: web::Json<DecideRequest>, core: Core) -> Res {
    let answer = core.decide(presented_token(&req), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinceQuery {
    /// Unix seconds; absent: every revocation kept.
    #[serde(default)]
    since: u64,
}

/// The users disabled since `since` (their older tokens are refused). 404 without the service
/// token.
async fn revocations(req: HttpRequest, query: web::Query<SinceQuery>, core: Core) -> Res {
    let answer = core.revocations(presented_token(&req), query.since).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::http::StatusCode;
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn refusals_keep_their_codes_and_statuses() {
        let cases = [
            (AuthzError::LoginFieldTooLong, "invalid_field", 400),
            (AuthzError::InvalidCredentials, "invalid_credentials", 401),
            (AuthzError::UnknownCaller("bob@acme".into()), "unauthorized", 401),
            (AuthzError::NotAdmin("alice@acme".into()), "forbidden", 403),
            (AuthzError::UserNotFound("alice@acme".into()), "user_not_found", 404),
            (AuthzError::UserExists("eve@acme".into()), "user_exists", 409),
            (AuthzError::InvalidUsername("Eve!".into()), "invalid_username", 400),
            (AuthzError::InvalidPassword, "invalid_password", 400),
            (AuthzError::InvalidDisplayName, "name_too_long", 400),
            (AuthzError::InvalidLineMode(LineMode::try_from("sometimes".to_owned()).unwrap_err()), "invalid_mode", 400),
            (AuthzError::SelfTrust("acme".into()), "invalid_tenant", 400),
            (AuthzError::TenantNotFound("initech".into()), "tenant_not_found", 404),
            (AuthzError::TrustNotFound("globex".into()), "trust_not_found", 404),
            (AuthzError::NotInternalCaller, "not_found", 404),
            (AuthzError::Store(StoreError::Conflict), "internal", 500),
        ];
        for (err, code, status) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.code.as_str(), api.status().as_u16()), (code, status), "{api}");
        }
    }

    #[test]
    fn a_rate_limited_login_answers_429_with_retry_after() {
        let response = ApiError::from(AuthzError::RateLimited(Duration::from_millis(1500))).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get("Retry-After").map(|v| v.to_str().unwrap_or("")), Some("1"));
    }

    #[test]
    fn internal_failures_say_nothing_of_their_cause() {
        let api = ApiError::from(AuthzError::Key(crate::keys::KeyError::NoKey));
        assert_eq!((api.code, api.message.as_str()), (Refusal::Internal, "internal error"));
    }
}
