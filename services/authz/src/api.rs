//! The authz HTTP API (API.md, authz section) and the internal decision endpoint. Each handler
//! parses the request, calls one rule of `AuthzCore` and serialises its typed answer; refusals
//! become codes and statuses in one place (`From<AuthzError> for ApiError`).

use std::sync::Arc;

use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chat_auth::Principal;
use chat_auth::Revocations;
use chat_kit::openapi::ErrorBody;
use chat_kit::{ApiError, Object};
use chat_protocol::authz::{DecideRequest, DecideResponse};
use chat_protocol::{Refusal, TenantId, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::service::{
    AuthzCore, AuthzError, Credentials, IssuedToken, Me, NewUser, Origin, Trust, UserChanges, UserSummary,
};
use crate::store::{AuditAction, AuditRow, LineMode, StoreError};

type Res = Result<HttpResponse, ApiError>;
type Core = web::Data<AuthzCore>;

/// The header other services present the service token in, on `/internal/` calls.
const INTERNAL_TOKEN_HEADER: &str = "X-Internal-Token";

/// The authz routes and the app data they need (the core, and the verifier of bearer
/// tokens), for `App::configure`. `/v1/openapi.json` is mounted by the caller (the standalone
/// serves one merged document).
pub fn configure(core: &Arc<AuthzCore>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let verifier = web::Data::new(core.verifier.clone());
    let shared_core = web::Data::from(Arc::clone(core));
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(shared_core.clone())
            .app_data(verifier.clone())
            .configure(|cfg| routes(&mut ServiceConfig::new(cfg)));
    }
}

/// Every route, each registered with its OpenAPI operation (`crate::openapi` collects them).
pub(crate) fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(jwks)
        .service(me)
        .service(people)
        .service(create_user)
        .service(list_users)
        .service(update_user)
        .service(set_line_mode)
        .service(line_mode)
        .service(set_user_line)
        .service(grant_trust)
        .service(list_trusts)
        .service(revoke_trust)
        .service(audit)
        .service(decide)
        .service(revocations);
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

/// PostgreSQL cannot hold U+0000 in text: a value with it names nothing stored and cannot be
/// stored, so it is refused here (400) rather than failing the query (500).
fn storable(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::new(Refusal::InvalidField, format!("{field} cannot contain U+0000")));
    }
    Ok(())
}

// ----- login, keys, me -----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[schema(value_type = String, max_length = 64, pattern = "^[^\\u0000]*$")]
    tenant: TenantId,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    username: String,
    #[schema(value_type = String, format = Password, max_length = 256)]
    password: SecretString,
}

#[derive(Serialize, ToSchema)]
struct TokenBody {
    access_token: String,
    #[schema(value_type = String, example = "Bearer")]
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

#[utoipa::path(
    tag = "auth",
    summary = "log in: a bearer token for a tenant's member",
    request_body = LoginBody,
    responses(
        (status = 200, description = "the token", body = TokenBody),
        (status = 400, description = "the body is not valid JSON of this shape (malformed_json, unknown_field, missing_field, invalid_field)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 401, description = "wrong tenant, username or password (invalid_credentials)", body = ErrorBody),
        (status = 429, description = "too many attempts (rate_limited)", body = ErrorBody, headers(("Retry-After" = u64, description = "seconds until a retry may succeed"))),
    ),
    security(()),
)]
#[post("/v1/auth/login")]
async fn login(req: HttpRequest, body: web::Json<Object<LoginBody>>, core: Core) -> Res {
    let LoginBody { tenant, username, password } = body.into_inner().0;
    storable("tenant", tenant.as_str())?;
    storable("username", &username)?;
    let IssuedToken { access_token, expires_in } =
        core.login(Credentials { tenant, username, password }, &origin(&req)).await?;
    Ok(HttpResponse::Ok().json(TokenBody { access_token, token_type: "Bearer", expires_in }))
}

/// The JSON Web Key Set of `GET /v1/auth/jwks` (Ed25519 keys), as `KeyRing::jwks` builds it.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: the keys are built as JSON
struct Jwks {
    keys: Vec<Jwk>,
}

/// One public key.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Jwk {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    kid: String,
    #[schema(example = "EdDSA")]
    alg: String,
    #[schema(rename = "use", example = "sig")]
    use_: String,
}

#[utoipa::path(
    tag = "auth",
    summary = "the public keys tokens are verified with",
    responses((status = 200, description = "a JSON Web Key Set", body = Jwks)),
    security(()),
)]
#[get("/v1/auth/jwks")]
async fn jwks(core: Core) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "max-age=60")).json(core.jwks())
}

#[derive(Serialize, ToSchema)]
struct MeBody<'a> {
    id: &'a UserId,
    tenant: &'a TenantId,
    username: &'a str,
    display_name: &'a str,
    roles: Vec<String>,
    permissions: PermissionsBody<'a>,
}

#[derive(Serialize, ToSchema)]
struct PermissionsBody<'a> {
    line: bool,
    external_tenants: &'a [TenantId],
}

#[utoipa::path(
    tag = "auth",
    summary = "the caller: id, tenant, names, roles, permissions",
    responses((status = 200, description = "the caller", body = MeBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))),
    security(("bearer" = [])),
)]
#[get("/v1/me")]
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PeopleQuery {
    /// Comma-separated user ids; absent: the caller's colleagues.
    #[serde(default)]
    #[param(pattern = "^[^\\u0000]*$")]
    ids: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct PeopleBody {
    users: Vec<PersonBody>,
}

#[derive(Serialize, ToSchema)]
struct PersonBody {
    id: UserId,
    display_name: String,
    tenant: TenantId,
    tenant_name: String,
}

/// `GET /v1/users`: the caller's colleagues; `?ids=a,b`: those of them the caller may know
/// (their company, or one trusted both ways), the others left out.
#[utoipa::path(
    tag = "users",
    summary = "the caller's colleagues, or those of the given ids the caller may know",
    params(PeopleQuery),
    responses(
        (status = 200, description = "the people", body = PeopleBody),
        (status = 400, description = "bad query (invalid_query, unknown_field); at most 100 ids", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/users")]
async fn people(principal: Principal, query: web::Query<PeopleQuery>, core: Core) -> Res {
    let people = match &query.ids {
        None => core.colleagues(&principal).await?,
        Some(ids) => {
            storable("ids", ids)?;
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
#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
struct UsersBody<'a> {
    users: Vec<UserBody<'a>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    username: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    password: SecretString,
    /// 1 to 100 characters, not only blanks (Unicode White_Space), no U+0000; absent: the
    /// username.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000]*$"
    )]
    display_name: Option<String>,
    #[serde(default)]
    admin: bool,
}

#[utoipa::path(
    tag = "admin",
    summary = "add a member to the caller's tenant",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "the member", body = UserBody),
        (status = 400, description = "invalid body, username (invalid_username), password (invalid_password) or display name (name_too_long)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 409, description = "the username is taken (user_exists)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/admin/users")]
async fn create_user(principal: Principal, body: web::Json<Object<NewUserBody>>, core: Core) -> Res {
    let NewUserBody { username, password, display_name, admin } = body.into_inner().0;
    storable("display_name", display_name.as_deref().unwrap_or_default())?;
    let created = core.create_user(&principal, NewUser { username, password, display_name, admin }).await?;
    Ok(HttpResponse::Created().json(UserBody::from(&created)))
}

#[utoipa::path(
    tag = "admin",
    summary = "the members of the caller's tenant",
    responses((status = 200, description = "the members", body = UsersBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/admin/users")]
async fn list_users(principal: Principal, core: Core) -> Res {
    let users = core.list_users(&principal).await?;
    Ok(HttpResponse::Ok().json(UsersBody { users: users.iter().map(UserBody::from).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserPatchBody {
    /// 1 to 100 characters, not only blanks (Unicode White_Space), no U+0000.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000]*$"
    )]
    display_name: Option<String>,
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 256)]
    password: Option<SecretString>,
    admin: Option<bool>,
    disabled: Option<bool>,
}

#[utoipa::path(
    tag = "admin",
    summary = "change a member: display name, password, admin, disabled",
    params(("id" = UserId, Path, description = "the user's id")),
    request_body = UserPatchBody,
    responses(
        (status = 200, description = "the member", body = UserBody),
        (status = 400, description = "invalid body, password (invalid_password) or display name (name_too_long)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 404, description = "no such member in the caller's tenant (user_not_found)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/admin/users/{id}")]
async fn update_user(
    principal: Principal,
    path: web::Path<UserId>,
    body: web::Json<Object<UserPatchBody>>,
    core: Core,
) -> Res {
    let UserPatchBody { display_name, password, admin, disabled } = body.into_inner().0;
    storable("id", path.as_str())?;
    storable("display_name", display_name.as_deref().unwrap_or_default())?;
    let changes = UserChanges { display_name, password, admin, disabled };
    let updated = core.update_user(&principal, &path, changes).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&updated)))
}

/// The mode is text here and parsed by the rule, so that an unknown mode is `invalid_mode`
/// (and a non-admin's request `forbidden` whatever its mode).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    #[schema(value_type = LineMode)]
    mode: String,
}

#[derive(Serialize, ToSchema)]
struct ModeSetBody {
    mode: LineMode,
}

#[utoipa::path(
    tag = "admin",
    summary = "who of the tenant may connect to LINE",
    responses((status = 200, description = "the mode", body = ModeSetBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/admin/line-access")]
async fn line_mode(principal: Principal, core: Core) -> Res {
    let mode = core.line_mode_of(&principal).await?;
    Ok(HttpResponse::Ok().json(ModeSetBody { mode }))
}

#[utoipa::path(
    tag = "admin",
    summary = "set who of the tenant may connect to LINE",
    request_body = ModeBody,
    responses(
        (status = 200, description = "the mode", body = ModeSetBody),
        (status = 400, description = "invalid body, or a mode other than all, selected, none (invalid_mode)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[put("/v1/admin/line-access")]
async fn set_line_mode(principal: Principal, body: web::Json<Object<ModeBody>>, core: Core) -> Res {
    let mode = core.set_line_mode(&principal, body.into_inner().0.mode).await?;
    Ok(HttpResponse::Ok().json(ModeSetBody { mode }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AllowedBody {
    allowed: bool,
}

#[utoipa::path(
    tag = "admin",
    summary = "allow a member LINE, when the mode is `selected`",
    params(("id" = UserId, Path, description = "the user's id")),
    request_body = AllowedBody,
    responses(
        (status = 200, description = "the member", body = UserBody),
        (status = 400, description = "the body is not valid JSON of this shape (malformed_json, unknown_field, missing_field, invalid_field)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 404, description = "no such member in the caller's tenant (user_not_found)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[put("/v1/admin/users/{id}/line-access")]
async fn set_user_line(
    principal: Principal,
    path: web::Path<UserId>,
    body: web::Json<Object<AllowedBody>>,
    core: Core,
) -> Res {
    storable("id", path.as_str())?;
    let updated = core.set_user_line(&principal, &path, body.into_inner().0.allowed).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&updated)))
}

// ----- trust -----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TrustBody {
    tenant: TenantId,
}

#[derive(Serialize, ToSchema)]
struct TrustsBody {
    trusts: Vec<Trust>,
}

#[utoipa::path(
    tag = "admin",
    summary = "grant this tenant's side of external-chat trust to another tenant",
    request_body = TrustBody,
    responses(
        (status = 200, description = "the trust as this tenant sees it", body = Trust),
        (status = 400, description = "invalid body, or the caller's own tenant (invalid_tenant)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 404, description = "no such tenant (tenant_not_found)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/admin/trusts")]
async fn grant_trust(principal: Principal, body: web::Json<Object<TrustBody>>, core: Core) -> Res {
    let tenant = body.into_inner().0.tenant;
    storable("tenant", tenant.as_str())?;
    let trust = core.grant_trust(&principal, tenant).await?;
    Ok(HttpResponse::Ok().json(trust))
}

#[utoipa::path(
    tag = "admin",
    summary = "withdraw this tenant's grant of trust",
    params(("tenant" = TenantId, Path, description = "the other tenant")),
    responses(
        (status = 204, description = "withdrawn"),
        (status = 400, description = "an impossible tenant id (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody),
        (status = 404, description = "no grant to that tenant (trust_not_found)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[delete("/v1/admin/trusts/{tenant}")]
async fn revoke_trust(principal: Principal, path: web::Path<TenantId>, core: Core) -> Res {
    storable("tenant", path.as_str())?;
    core.revoke_trust(&principal, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    tag = "admin",
    summary = "each tenant pair's trust: pending_ours, pending_theirs or active",
    responses((status = 200, description = "the trusts", body = TrustsBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/admin/trusts")]
async fn list_trusts(principal: Principal, core: Core) -> Res {
    let trusts = core.list_trusts(&principal).await?;
    Ok(HttpResponse::Ok().json(TrustsBody { trusts }))
}

// ----- audit -----

#[derive(Serialize, ToSchema)]
struct AuditEntryBody<'a> {
    id: &'a str,
    actor: &'a str,
    #[schema(value_type = AuditAction)]
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

#[derive(Serialize, ToSchema)]
struct AuditBody<'a> {
    entries: Vec<AuditEntryBody<'a>>,
}

#[utoipa::path(
    tag = "admin",
    summary = "the tenant's audit trail, newest first",
    responses((status = 200, description = "the entries", body = AuditBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token), or the caller is disabled", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 403, description = "tenant admins only (forbidden)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/admin/audit")]
async fn audit(principal: Principal, core: Core) -> Res {
    let rows = core.audit_trail(&principal).await?;
    Ok(HttpResponse::Ok().json(AuditBody { entries: rows.iter().map(AuditEntryBody::from).collect() }))
}

// ----- internal -----

fn presented_token(req: &HttpRequest) -> &[u8] {
    req.headers().get(INTERNAL_TOKEN_HEADER).map(|value| value.as_bytes()).unwrap_or_default()
}

/// May `actor` have these users in a room, now? 404 without the service token.
#[utoipa::path(
    tag = "internal",
    summary = "may the actor have these users in a room, now",
    request_body = DecideRequest,
    responses(
        (status = 200, description = "the verdicts", body = DecideResponse),
        (status = 400, description = "the body is not valid JSON of this shape (malformed_json, unknown_field, missing_field, invalid_field)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 404, description = "without the service token this endpoint does not exist (not_found)", body = ErrorBody),
    ),
    security(("internal_token" = [])),
)]
#[post("/internal/v1/decide")]
async fn decide(req: HttpRequest, body: web::Json<Object<DecideRequest>>, core: Core) -> Res {
    let request = body.into_inner().0;
    [request.tenant.as_str(), request.actor.as_str()]
        .into_iter()
        .chain(request.users.iter().map(UserId::as_str))
        .try_for_each(|id| storable("ids", id))?;
    let answer = core.decide(presented_token(&req), request).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct SinceQuery {
    /// Unix seconds; absent: every revocation kept.
    #[serde(default)]
    #[param(minimum = 0, maximum = 18446744073709551615_u64, format = "uint64")]
    since: u64,
}

/// The users disabled since `since` (their older tokens are refused). 404 without the service
/// token.
#[utoipa::path(
    tag = "internal",
    summary = "the users disabled since a time (their older tokens are refused)",
    params(SinceQuery),
    responses(
        (status = 200, description = "the revocations", body = Revocations),
        (status = 400, description = "bad query (invalid_query, unknown_field)", body = ErrorBody),
        (status = 404, description = "without the service token this endpoint does not exist (not_found)", body = ErrorBody),
    ),
    security(("internal_token" = [])),
)]
#[get("/internal/v1/revocations")]
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
