//! The contacts HTTP API. Each handler parses the request, calls one rule of `ContactsCore` and
//! serialises its typed answer; refusals become codes and statuses in one place
//! (`From<ContactsError> for ApiError`).

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chat_auth::Principal;
use chat_kit::openapi::ErrorBody;
use chat_kit::{ApiError, Object};
use chat_protocol::{Refusal, RoomId, TenantId, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::service::{
    ContactsCore, ContactsError, Invite, ListRequest, NewContact, NotesPatch, Page, ProfilePatch, ProfileView,
};
use crate::store::{Contact, ContactKind, StoreError};

type Res = Result<HttpResponse, ApiError>;
type Core = web::Data<ContactsCore>;

/// Where the invite images are served.
const QR_PNG_PATH: &str = "/v1/me/line-invite/qr.png";
const CARD_PNG_PATH: &str = "/v1/me/line-invite/card.png";

/// The LINE profile fields a member edits.
const EDITABLE_PROFILE_FIELDS: [&str; 3] = ["about", "phone", "website"];

/// How long a client may keep an invite image.
const IMAGE_CACHE_CONTROL: &str = "private, max-age=300";

/// Mount the routes (`/v1/openapi.json` is mounted by the caller: the standalone serves one
/// merged document).
pub fn routes(cfg: &mut web::ServiceConfig) {
    register(&mut ServiceConfig::new(cfg));
}

/// Every route, each registered with its OpenAPI operation (`crate::openapi` collects them).
pub fn register(cfg: &mut ServiceConfig) {
    cfg.service(list_contacts)
        .service(add_contact)
        .service(line_friends)
        .service(get_contact)
        .service(update_contact)
        .service(remove_contact)
        .service(block)
        .service(unblock)
        .service(line_profile)
        .service(update_line_profile)
        .service(line_invite)
        .service(invite_qr)
        .service(invite_card);
}

// ----- errors -----

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(&err)
    }
}

/// The one mapping of refusals to codes (the code fixes the status) and messages.
impl From<ContactsError> for ApiError {
    fn from(err: ContactsError) -> Self {
        let message = err.to_string();
        let code = match err {
            ContactsError::InvalidQuery(_) => Refusal::InvalidQuery,
            ContactsError::InvalidField(_) => Refusal::InvalidField,
            ContactsError::FieldTooLong { .. } => Refusal::FieldTooLong,
            ContactsError::InvalidPhone => Refusal::InvalidPhone,
            ContactsError::InvalidEmail => Refusal::InvalidEmail,
            ContactsError::InvalidUrl(_) => Refusal::InvalidUrl,
            ContactsError::InvalidTenant(_) | ContactsError::OwnTenant => Refusal::InvalidTenant,
            ContactsError::InvalidUsername(_) => Refusal::InvalidUsername,
            ContactsError::WorkspaceField(_) => Refusal::UnknownField,
            ContactsError::StatusMessageNotEditable => Refusal::StatusMessageNotEditable,
            ContactsError::ContactNotFound => Refusal::ContactNotFound,
            ContactsError::UserNotFound(_) => Refusal::UserNotFound,
            ContactsError::ExternalNotAuthorized(_) => Refusal::ExternalNotAuthorized,
            ContactsError::LineNotAuthorized => Refusal::LineNotAuthorized,
            ContactsError::LineAccountNotSetUp => Refusal::LineAccountNotSetUp,
            ContactsError::AuthzUnavailable(cause) => {
                tracing::warn!(error = %cause, "authz unavailable");
                return ApiError::new(Refusal::AuthzUnavailable, "authorization is temporarily unavailable");
            }
            ContactsError::RoomRefused(refusal) => return refusal.into(),
            ContactsError::RoomTimeout => {
                return ApiError::new(Refusal::CommandTimeout, "the room did not answer in time; retrying is safe")
            }
            ContactsError::BusUnavailable(cause) => {
                tracing::warn!(error = %cause, "bus unavailable");
                return ApiError::new(Refusal::Unavailable, "the service is temporarily unavailable; retrying is safe");
            }
            ContactsError::Store(store) => return store.into(),
            internal @ (ContactsError::Image(_) | ContactsError::Task(_) | ContactsError::Encode(_)) => {
                return ApiError::internal(&internal)
            }
        };
        ApiError::new(code, message)
    }
}

/// PostgreSQL cannot hold U+0000 in text: a value with it can be neither stored nor matched,
/// so it is refused here rather than failing the query (a 500 before).
fn storable(value: &str, refusal: impl FnOnce() -> ContactsError) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(refusal().into());
    }
    Ok(())
}

/// A contact id with U+0000 names no contact.
fn contact_id(id: &str) -> Result<&str, ApiError> {
    storable(id, || ContactsError::ContactNotFound)?;
    Ok(id)
}

fn query_text(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    storable(value.unwrap_or_default(), || ContactsError::InvalidQuery(format!("{field} cannot contain U+0000")))
}

// ----- contacts -----

/// `Some(value)` for a field that is present (even `null`), so that `Option<Option<T>>`
/// tells absent (`None`) from `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A contact as the API shows it.
#[derive(Serialize, ToSchema)]
struct ContactBody<'a> {
    id: &'a str,
    #[schema(value_type = ContactKind)]
    kind: &'static str,
    user: &'a UserId,
    tenant: Option<&'a TenantId>,
    display_name: &'a str,
    company: Option<&'a str>,
    picture_url: Option<&'a str>,
    room_id: Option<&'a RoomId>,
    saved: bool,
    blocked: bool,
    /// LINE friends only.
    #[serde(skip_serializing_if = "Option::is_none")]
    following: Option<bool>,
    name: Option<&'a str>,
    phone: Option<&'a str>,
    email: Option<&'a str>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl<'a> From<&'a Contact> for ContactBody<'a> {
    fn from(c: &'a Contact) -> Self {
        Self {
            id: &c.id,
            kind: c.kind.as_str(),
            user: &c.peer,
            tenant: c.peer_tenant.as_ref(),
            display_name: &c.display_name,
            company: c.company.as_deref(),
            picture_url: c.picture_url.as_deref(),
            room_id: c.room_id.as_ref(),
            saved: c.saved,
            blocked: c.blocked,
            following: c.following,
            name: c.name.as_deref(),
            phone: c.phone.as_deref(),
            email: c.email.as_deref(),
            created_at_ms: c.created_at_ms,
            updated_at_ms: c.updated_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ContactsPage<'a> {
    contacts: Vec<ContactBody<'a>>,
    next: Option<&'a str>,
}

#[derive(Serialize, ToSchema)]
struct LineFriendsPage<'a> {
    line_friends: Vec<ContactBody<'a>>,
    next: Option<&'a str>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[param(value_type = Option<ContactKind>)]
    kind: Option<String>,
    /// Search text, at most 100 characters.
    #[param(max_length = 100, pattern = "^[^\\u0000]*$")]
    q: Option<String>,
    /// 1 to `contacts.page_max` (200 by default); 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(pattern = "^[^\\u0000]*$")]
    after: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// 1 to `contacts.page_max` (200 by default); 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(pattern = "^[^\\u0000]*$")]
    after: Option<String>,
}

#[utoipa::path(
    tag = "contacts",
    summary = "the caller's external contacts (Clients and Partners), a page at a time",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of contacts", body = ContactsPage),
        (status = 400, description = "bad query (invalid_query, unknown_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/contacts")]
async fn list_contacts(principal: Principal, query: web::Query<ListQuery>, core: Core) -> Res {
    let ListQuery { kind, q, limit, after } = query.into_inner();
    query_text("q", q.as_deref())?;
    query_text("after", after.as_deref())?;
    let Page { contacts, next } = core.list_contacts(&principal, ListRequest { kind, q, limit, after }).await?;
    Ok(HttpResponse::Ok()
        .json(ContactsPage { contacts: contacts.iter().map(ContactBody::from).collect(), next: next.as_deref() }))
}

#[utoipa::path(
    tag = "contacts",
    summary = "LINE users who added the caller as a friend",
    params(PageQuery),
    responses(
        (status = 200, description = "a page of LINE friends", body = LineFriendsPage),
        (status = 400, description = "bad query (invalid_query, unknown_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/contacts/line-friends")]
async fn line_friends(principal: Principal, query: web::Query<PageQuery>, core: Core) -> Res {
    let PageQuery { limit, after } = query.into_inner();
    query_text("after", after.as_deref())?;
    let Page { contacts, next } = core.line_friends(&principal, limit, after).await?;
    Ok(HttpResponse::Ok().json(LineFriendsPage {
        line_friends: contacts.iter().map(ContactBody::from).collect(),
        next: next.as_deref(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewContactBody {
    tenant: Option<String>,
    username: Option<String>,
    line_user: Option<String>,
}

/// Either `tenant` and `username` (1-64 of `[A-Za-z0-9._-]` each), or `line_user`.
impl utoipa::PartialSchema for NewContactBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let schema = serde_json::json!({
            "description": "either a workspace user (tenant and username) or a LINE user",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["tenant", "username"],
                    "properties": {
                        "tenant": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                        "username": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                        "line_user": {"type": "null"}
                    },
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "required": ["line_user"],
                    "properties": {
                        "line_user": {"type": "string", "pattern": "^[^\\u0000]*$"},
                        "tenant": {"type": "null"},
                        "username": {"type": "null"}
                    },
                    "additionalProperties": false
                }
            ]
        });
        serde_json::from_value(schema).unwrap_or_default()
    }
}

impl ToSchema for NewContactBody {}

#[utoipa::path(
    tag = "contacts",
    summary = "add an external workspace user (needs an active trust) or a LINE friend; creates the 1:1 room",
    request_body = NewContactBody,
    responses(
        (status = 201, description = "added", body = ContactBody),
        (status = 200, description = "a contact already", body = ContactBody),
        (status = 400, description = "invalid body, tenant (invalid_tenant: also the caller's own), username (invalid_username) or fields (invalid_field)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "no active trust with that tenant (external_not_authorized), or no LINE permission (line_not_authorized)", body = ErrorBody),
        (status = 404, description = "no such user (user_not_found)", body = ErrorBody),
        (status = 409, description = "no LINE Official Account bound to the caller (line_account_not_set_up)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 503, description = "authz, a room or the bus did not answer (authz_unavailable, command_timeout, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[post("/v1/contacts")]
async fn add_contact(principal: Principal, body: web::Json<Object<NewContactBody>>, core: Core) -> Res {
    let NewContactBody { tenant, username, line_user } = body.into_inner().0;
    let new = NewContact::from_fields(tenant, username, line_user)?;
    let (contact, created) = core.add_contact(&principal, new).await?;
    let body = ContactBody::from(&contact);
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}

#[utoipa::path(
    tag = "contacts",
    summary = "one contact",
    params(("id" = String, Path, description = "the contact")),
    responses((status = 200, description = "the contact", body = ContactBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 404, description = "no such contact of the caller (contact_not_found)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/contacts/{id}")]
async fn get_contact(principal: Principal, path: web::Path<String>, core: Core) -> Res {
    let contact = core.contact(&principal, contact_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(ContactBody::from(&contact)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NotesBody {
    /// At most 100 characters, no control characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    name: Option<Option<String>>,
    /// At most 32 of digits, spaces and `+-()`, with a digit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 32, pattern = "^[0-9 +()-]*[0-9][0-9 +()-]*$")]
    phone: Option<Option<String>>,
    /// At most 254 characters: a local part, `@`, a domain with a dot inside.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 254, pattern = "^[^@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\u0000-\\u001F\\u007F-\\u009F]+@[^@.\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\u0000-\\u001F\\u007F-\\u009F][^@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\u0000-\\u001F\\u007F-\\u009F]*\\.[^@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\u0000-\\u001F\\u007F-\\u009F]*[^@.\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\u0000-\\u001F\\u007F-\\u009F]$")]
    email: Option<Option<String>>,
}

#[utoipa::path(
    tag = "contacts",
    summary = "edit the additional information (absent: unchanged; null: cleared)",
    params(("id" = String, Path, description = "the contact")),
    request_body = NotesBody,
    responses(
        (status = 200, description = "the contact", body = ContactBody),
        (status = 400, description = "invalid body or field (field_too_long, invalid_phone, invalid_email)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "no such contact of the caller (contact_not_found)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/contacts/{id}")]
async fn update_contact(
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<Object<NotesBody>>,
    core: Core,
) -> Res {
    let NotesBody { name, phone, email } = body.into_inner().0;
    let contact = core.update_notes(&principal, contact_id(&path)?, NotesPatch { name, phone, email }).await?;
    Ok(HttpResponse::Ok().json(ContactBody::from(&contact)))
}

#[utoipa::path(
    tag = "contacts",
    summary = "remove from contacts (the room history stays)",
    params(("id" = String, Path, description = "the contact")),
    responses((status = 204, description = "removed"), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 404, description = "no such contact of the caller (contact_not_found)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[delete("/v1/contacts/{id}")]
async fn remove_contact(principal: Principal, path: web::Path<String>, core: Core) -> Res {
    core.remove_contact(&principal, contact_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    tag = "contacts",
    summary = "block messages from this contact",
    params(("id" = String, Path, description = "the contact")),
    responses((status = 200, description = "the contact", body = ContactBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 404, description = "no such contact of the caller (contact_not_found)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[put("/v1/contacts/{id}/block")]
async fn block(principal: Principal, path: web::Path<String>, core: Core) -> Res {
    let contact = core.block(&principal, contact_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(ContactBody::from(&contact)))
}

#[utoipa::path(
    tag = "contacts",
    summary = "unblock this contact",
    params(("id" = String, Path, description = "the contact")),
    responses((status = 200, description = "the contact", body = ContactBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 404, description = "no such contact of the caller (contact_not_found)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[delete("/v1/contacts/{id}/block")]
async fn unblock(principal: Principal, path: web::Path<String>, core: Core) -> Res {
    let contact = core.unblock(&principal, contact_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(ContactBody::from(&contact)))
}

// ----- LINE profile -----

#[derive(Serialize, ToSchema)]
#[schema(as = LineProfile)]
struct ProfileBody<'a> {
    user: &'a UserId,
    name: &'a str,
    company: &'a str,
    photo_url: Option<&'a str>,
    /// The company name: LINE users see it as the status message.
    status_message: &'a str,
    about: Option<&'a str>,
    phone: Option<&'a str>,
    website: Option<&'a str>,
    /// The fields `PATCH /v1/me/line-profile` takes.
    #[schema(value_type = Vec<String>)]
    editable: [&'static str; 3],
}

impl<'a> From<&'a ProfileView> for ProfileBody<'a> {
    fn from(view: &'a ProfileView) -> Self {
        Self {
            user: &view.user,
            name: &view.name,
            company: &view.company,
            photo_url: None,
            status_message: &view.company,
            about: view.profile.about.as_deref(),
            phone: view.profile.phone.as_deref(),
            website: view.profile.website.as_deref(),
            editable: EDITABLE_PROFILE_FIELDS,
        }
    }
}

/// The editable fields, and the shown ones that are not editable (refused with their reason).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProfilePatchBody {
    /// At most 500 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^[^\\u0000]*$")]
    about: Option<Option<String>>,
    /// At most 32 of digits, spaces and `+-()`, with a digit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 32, pattern = "^[0-9 +()-]*[0-9][0-9 +()-]*$")]
    phone: Option<Option<String>>,
    /// An absolute http(s) URL with a host, at most 2048 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https?://[A-Za-z]+(\\.[A-Za-z]+)*(:[0-9]{1,4})?([/?#][!-~]*)?$")]
    website: Option<Option<String>>,
    /// Not editable here: left out of the document, refused with its reason.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    status_message: Option<serde_json::Value>,
    /// Not editable here: left out of the document, refused with its reason.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    name: Option<serde_json::Value>,
    /// Not editable here: left out of the document, refused with its reason.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    company: Option<serde_json::Value>,
    /// Not editable here: left out of the document, refused with its reason.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    photo_url: Option<serde_json::Value>,
}

impl ProfilePatchBody {
    /// The editable fields, or the refusal of the first non-editable one given.
    fn into_patch(self) -> Result<ProfilePatch, ContactsError> {
        if self.status_message.is_some() {
            return Err(ContactsError::StatusMessageNotEditable);
        }
        let workspace = [("name", &self.name), ("company", &self.company), ("photo_url", &self.photo_url)];
        if let Some((field, _)) = workspace.iter().find(|(_, value)| value.is_some()) {
            return Err(ContactsError::WorkspaceField(field));
        }
        Ok(ProfilePatch { about: self.about, phone: self.phone, website: self.website })
    }
}

#[utoipa::path(
    tag = "line profile",
    summary = "what LINE users see of the caller",
    responses((status = 200, description = "the profile", body = ProfileBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 503, description = "authz, a room or the bus did not answer (authz_unavailable, command_timeout, unavailable): retrying is safe", body = ErrorBody), (status = 403, description = "the caller may not use LINE (line_not_authorized)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/me/line-profile")]
async fn line_profile(principal: Principal, core: Core) -> Res {
    let view = core.line_profile(&principal).await?;
    Ok(HttpResponse::Ok().json(ProfileBody::from(&view)))
}

#[utoipa::path(
    tag = "line profile",
    summary = "edit about, phone, website (photo, name and the company status line are not editable here)",
    request_body = ProfilePatchBody,
    responses(
        (status = 200, description = "the profile", body = ProfileBody),
        (status = 400, description = "invalid body or field (field_too_long, invalid_phone, invalid_url), a workspace field (unknown_field) or the status message (status_message_not_editable)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "the caller may not use LINE (line_not_authorized)", body = ErrorBody),
        (status = 413, description = "the body is over the size limit (payload_too_large)", body = ErrorBody),
        (status = 415, description = "the body is not application/json (unsupported_media_type)", body = ErrorBody),
        (status = 503, description = "authz, a room or the bus did not answer (authz_unavailable, command_timeout, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/me/line-profile")]
async fn update_line_profile(principal: Principal, body: web::Json<Object<ProfilePatchBody>>, core: Core) -> Res {
    let patch = body.into_inner().0.into_patch()?;
    for text in [&patch.about, &patch.phone, &patch.website].into_iter().flatten().flatten() {
        storable(text, || ContactsError::InvalidField("text cannot contain U+0000".into()))?;
    }
    let view = core.update_line_profile(&principal, patch).await?;
    Ok(HttpResponse::Ok().json(ProfileBody::from(&view)))
}

// ----- LINE invite -----

#[derive(Serialize, ToSchema)]
struct InviteBody<'a> {
    /// The caller's user id: the same as their workspace id.
    my_id: &'a UserId,
    /// `ready`, or `line_account_not_set_up` while no LINE Official Account is bound.
    #[schema(value_type = String, pattern = "^(ready|line_account_not_set_up)$")]
    status: &'static str,
    add_friend_url: Option<&'a str>,
    qr_png: &'static str,
    card_png: &'static str,
}

impl<'a> From<&'a Invite> for InviteBody<'a> {
    fn from(invite: &'a Invite) -> Self {
        let status = if invite.add_friend_url.is_some() { "ready" } else { Refusal::LineAccountNotSetUp.as_str() };
        Self {
            my_id: &invite.my_id,
            status,
            add_friend_url: invite.add_friend_url.as_deref(),
            qr_png: QR_PNG_PATH,
            card_png: CARD_PNG_PATH,
        }
    }
}

#[utoipa::path(
    tag = "line profile",
    summary = "the caller's id and add-friend URL, and where the invite images are",
    responses((status = 200, description = "the invite", body = InviteBody), (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))), (status = 503, description = "authz, a room or the bus did not answer (authz_unavailable, command_timeout, unavailable): retrying is safe", body = ErrorBody), (status = 403, description = "the caller may not use LINE (line_not_authorized)", body = ErrorBody)),
    security(("bearer" = [])),
)]
#[get("/v1/me/line-invite")]
async fn line_invite(principal: Principal, core: Core) -> Res {
    let invite = core.line_invite(&principal).await?;
    Ok(HttpResponse::Ok().json(InviteBody::from(&invite)))
}

fn png(bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type("image/png").insert_header(("Cache-Control", IMAGE_CACHE_CONTROL)).body(bytes)
}

#[utoipa::path(
    tag = "line profile",
    summary = "the add-friend QR code (PNG)",
    responses(
        (status = 200, description = "the image", content_type = "image/png", body = Vec<u8>, headers(("Cache-Control" = String))),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "the caller may not use LINE (line_not_authorized)", body = ErrorBody),
        (status = 409, description = "no LINE Official Account bound to the caller yet (line_account_not_set_up)", body = ErrorBody),
        (status = 503, description = "authz, a room or the bus did not answer (authz_unavailable, command_timeout, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/me/line-invite/qr.png")]
async fn invite_qr(principal: Principal, core: Core) -> Res {
    Ok(png(core.invite_qr_png(&principal).await?))
}

#[utoipa::path(
    tag = "line profile",
    summary = "the profile card (PNG)",
    responses(
        (status = 200, description = "the image", content_type = "image/png", body = Vec<u8>, headers(("Cache-Control" = String))),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "the caller may not use LINE (line_not_authorized)", body = ErrorBody),
        (status = 409, description = "no LINE Official Account bound to the caller yet (line_account_not_set_up)", body = ErrorBody),
        (status = 503, description = "authz, a room or the bus did not answer (authz_unavailable, command_timeout, unavailable): retrying is safe", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/me/line-invite/card.png")]
async fn invite_card(principal: Principal, core: Core) -> Res {
    Ok(png(core.invite_card_png(&principal).await?))
}

#[cfg(test)]
mod tests {
    use chat_protocol::bus::CommandError;

    use super::*;

    #[test]
    fn refusals_keep_their_codes_and_statuses() {
        let cases = [
            (ContactsError::InvalidQuery("x".into()), "invalid_query", 400),
            (ContactsError::InvalidField("x".into()), "invalid_field", 400),
            (ContactsError::FieldTooLong { field: "name", max: 100 }, "field_too_long", 400),
            (ContactsError::InvalidPhone, "invalid_phone", 400),
            (ContactsError::InvalidEmail, "invalid_email", 400),
            (ContactsError::InvalidUrl("x".into()), "invalid_url", 400),
            (ContactsError::InvalidTenant("x".into()), "invalid_tenant", 400),
            (ContactsError::OwnTenant, "invalid_tenant", 400),
            (ContactsError::InvalidUsername("x".into()), "invalid_username", 400),
            (ContactsError::WorkspaceField("name"), "unknown_field", 400),
            (ContactsError::StatusMessageNotEditable, "status_message_not_editable", 400),
            (ContactsError::ContactNotFound, "contact_not_found", 404),
            (ContactsError::UserNotFound("carol@globex".into()), "user_not_found", 404),
            (ContactsError::ExternalNotAuthorized("carol@globex".into()), "external_not_authorized", 403),
            (ContactsError::LineNotAuthorized, "line_not_authorized", 403),
            (ContactsError::LineAccountNotSetUp, "line_account_not_set_up", 409),
            (ContactsError::AuthzUnavailable("down".into()), "authz_unavailable", 503),
            (ContactsError::RoomRefused(CommandError::new(Refusal::NotAuthorized, "no")), "not_authorized", 403),
            (ContactsError::RoomTimeout, "command_timeout", 503),
            (ContactsError::BusUnavailable("down".into()), "unavailable", 503),
        ];
        for (err, code, status) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.code.as_str(), api.status().as_u16()), (code, status), "{api}");
        }
    }

    #[test]
    fn failures_inside_say_nothing_of_their_cause() {
        let api = ApiError::from(ContactsError::AuthzUnavailable("connection refused at 10.0.0.7".into()));
        assert!(!api.message.contains("10.0.0.7"), "{}", api.message);
        let api = ApiError::from(ContactsError::BusUnavailable("amqp://secret@host".into()));
        assert!(!api.message.contains("secret"), "{}", api.message);
    }

    #[test]
    fn the_workspace_profile_fields_and_the_status_message_are_refused_with_their_reason() {
        let parse = |json: &str| serde_json::from_str::<ProfilePatchBody>(json).unwrap().into_patch();
        assert!(matches!(parse(r#"{"status_message": "hi"}"#), Err(ContactsError::StatusMessageNotEditable)));
        assert!(matches!(
            parse(r#"{"status_message": null, "name": "x"}"#),
            Err(ContactsError::StatusMessageNotEditable)
        ));
        assert!(matches!(parse(r#"{"name": "x"}"#), Err(ContactsError::WorkspaceField("name"))));
        assert!(matches!(parse(r#"{"company": null}"#), Err(ContactsError::WorkspaceField("company"))));
        assert!(matches!(
            parse(r#"{"photo_url": "https://x.example/a.png"}"#),
            Err(ContactsError::WorkspaceField("photo_url"))
        ));
        let patch = parse(r#"{"about": null, "website": "https://a.example"}"#).unwrap();
        assert_eq!(patch.about, Some(None));
        assert_eq!(patch.phone, None);
        assert_eq!(patch.website, Some(Some("https://a.example".into())));
        assert!(serde_json::from_str::<ProfilePatchBody>(r#"{"nickname": "x"}"#).is_err());
    }

    #[test]
    fn a_notes_body_tells_absent_fields_from_null_ones() {
        let body: NotesBody = serde_json::from_str(r#"{"name": null, "phone": "+81 3"}"#).unwrap();
        assert_eq!(body.name, Some(None));
        assert_eq!(body.phone, Some(Some("+81 3".into())));
        assert_eq!(body.email, None);
        let unknown = serde_json::from_str::<NotesBody>(r#"{"nickname": "x"}"#).err().unwrap();
        assert_eq!(chat_kit::serde_code(&unknown), Refusal::UnknownField);
    }

    #[test]
    fn an_invite_without_a_bound_account_says_so() {
        let invite = Invite { my_id: "alice@acme".into(), add_friend_url: None };
        let json = serde_json::to_value(InviteBody::from(&invite)).unwrap();
        assert_eq!(json["status"], "line_account_not_set_up");
        assert_eq!(json["add_friend_url"], serde_json::Value::Null);
        assert_eq!(json["my_id"], "alice@acme");
        assert_eq!(json["qr_png"], QR_PNG_PATH);
        let ready = Invite { my_id: "alice@acme".into(), add_friend_url: Some("https://line.me/R/ti/p/@a".into()) };
        assert_eq!(serde_json::to_value(InviteBody::from(&ready)).unwrap()["status"], "ready");
    }
}
