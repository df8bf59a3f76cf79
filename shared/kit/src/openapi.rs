//! What every service's OpenAPI document shares: the error shape, the security schemes, the
//! endpoints `HttpService` serves itself (health, metrics) and `GET /v1/openapi.json`, and the
//! checks a service's unit test runs on its document (it serialises, every `$ref` resolves,
//! every operation names its security scheme and answers).
//!
//! A service's routes are declared once, as handlers annotated with `#[utoipa::path]` and an
//! actix route macro and registered through `utoipa_actix_web`'s `ServiceConfig`: the same
//! registration mounts the route and adds its operation, so the document lists what is routed.

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use chat_protocol::Refusal;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi};
use utoipa::{PartialSchema, ToSchema};

/// Where each service serves its document.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The security scheme of the bearer token authz issues (`Authorization: Bearer <jwt>`).
pub const BEARER: &str = "bearer";
/// The scheme of `/internal/` calls between services: the shared service token.
pub const INTERNAL_TOKEN: &str = "internal_token";

/// Every error body: `{"error": {"code": "room_not_found", "message": "..."}}`.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The stable code (it fixes the status) and a message safe to show.
#[derive(ToSchema)]
pub struct ErrorDetail {
    pub code: Refusal,
    pub message: String,
}

/// Start a service's document: title, version, the error schema and the security schemes
/// (bearer JWT, and the internal token header; `extra` adds a service's own, e.g. the LINE
/// signature).
pub fn base(title: &str, description: &str, extra: Vec<(&str, SecurityScheme)>) -> OpenApi {
    let mut components = ComponentsBuilder::new()
        .schema(ErrorBody::name(), ErrorBody::schema())
        .schema(ErrorDetail::name(), ErrorDetail::schema())
        .schema(Refusal::name(), Refusal::schema())
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("an access token from authz's POST /v1/auth/login"))
                    .build(),
            ),
        )
        .security_scheme(
            INTERNAL_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Internal-Token",
                "the service token other services present on /internal/ calls",
            ))),
        );
    for (name, scheme) in extra {
        components = components.security_scheme(name, scheme);
    }
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description))
                .build(),
        )
        .components(Some(components.build()))
        .build();
    let ops: OpenApi = serde_json::from_value(ops_paths()).unwrap_or_default();
    doc.paths.merge(ops.paths);
    doc
}

/// `/health/live`, `/health/ready`, `/metrics` (served by `HttpService` for every service) and
/// `/v1/openapi.json`: unauthenticated.
fn ops_paths() -> serde_json::Value {
    let status = serde_json::json!({
        "type": "object",
        "required": ["status", "service"],
        "properties": {
            "status": {"type": "string", "enum": ["live", "ready", "not_ready"]},
            "service": {"type": "string"},
            "failing": {"type": "array", "items": {
                "type": "object",
                "required": ["check", "error"],
                "properties": {"check": {"type": "string"}, "error": {"type": "string"}}
            }}
        }
    });
    let json = |schema: &serde_json::Value| serde_json::json!({"application/json": {"schema": schema}});
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "ops", "version": "0"},
        "paths": {
            "/health/live": {"get": {
                "tags": ["ops"], "operationId": "health_live", "summary": "the process runs",
                "responses": {"200": {"description": "live", "content": json(&status)}}
            }},
            "/health/ready": {"get": {
                "tags": ["ops"], "operationId": "health_ready", "summary": "the service takes traffic",
                "responses": {
                    "200": {"description": "ready", "content": json(&status)},
                    "503": {"description": "starting, draining, or a dependency is failing", "content": json(&status)}
                }
            }},
            "/metrics": {"get": {
                "tags": ["ops"], "operationId": "metrics", "summary": "Prometheus metrics",
                "responses": {"200": {"description": "the text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            OPENAPI_PATH: {"get": {
                "tags": ["ops"], "operationId": "openapi", "summary": "this document",
                "responses": {"200": {"description": "the OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}
        }
    })
}

/// `base` with the operations of the handlers `routes` registers (the same registration that
/// mounts them, run on a throwaway app).
pub fn collect(base: OpenApi, routes: impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig)) -> OpenApi {
    use utoipa_actix_web::AppExt;
    let (_app, doc) = actix_web::App::new().into_utoipa_app().openapi(base).configure(routes).split_for_parts();
    close_variants(doc, &["Body"])
}

/// The variants of these internally tagged enums (`deny_unknown_fields`, which utoipa does not
/// carry into an enum's variants) with `additionalProperties: false`.
fn close_variants(doc: OpenApi, names: &[&str]) -> OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else { return doc };
    for name in names {
        let variants = value.pointer_mut(&format!("/components/schemas/{name}/oneOf")).and_then(|v| v.as_array_mut());
        for variant in variants.into_iter().flatten() {
            if let Some(object) = variant.as_object_mut() {
                object.insert("additionalProperties".to_owned(), serde_json::Value::Bool(false));
            }
        }
    }
    serde_json::from_value(value).unwrap_or(doc)
}

/// Mount `GET /v1/openapi.json`, answering `document`, and after it, for each documented path,
/// a 405 with `Allow` (the documented methods) for the methods it does not document. Mount it
/// after every documented route: the routes are resources guarded by their method, so without
/// it an undocumented method would fall through to a 404.
pub fn serve(cfg: &mut web::ServiceConfig, document: fn() -> OpenApi) {
    let doc = document();
    let body = doc.to_json().unwrap_or_default();
    cfg.route(
        OPENAPI_PATH,
        web::get().to(move || {
            let body = body.clone();
            async move { HttpResponse::Ok().content_type("application/json").body(body) }
        }),
    );
    let mut allowed: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for operation in operations(&doc) {
        if let Some((method, path)) = operation.split_once(' ') {
            allowed.entry(path.to_owned()).or_default().push(method.to_owned());
        }
    }
    for (path, methods) in allowed {
        let allow = methods.join(", ");
        cfg.service(web::resource(path).route(web::route().to(move || {
            let allow = allow.clone();
            async move { HttpResponse::MethodNotAllowed().insert_header(("Allow", allow)).finish() }
        })));
    }
}

/// The method and path of each operation in `doc` (`"GET /v1/rooms/{room_id}"`).
pub fn operations(doc: &OpenApi) -> BTreeSet<String> {
    let value = serde_json::to_value(doc).unwrap_or_default();
    let mut out = BTreeSet::new();
    for (path, item) in value["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            if METHODS.contains(&method.as_str()) {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// What is wrong with `doc`, for a unit test to assert empty: it must serialise to JSON and back,
/// every `$ref` must resolve, every operation must have an id (unique), responses, and a
/// security requirement naming a declared scheme (or none, for the public ops endpoints and
/// login). An empty list is not a full validation: the schemathesis script also runs
/// openapi-spec-validator on the served documents.
pub fn problems(doc: &OpenApi) -> Vec<String> {
    let mut problems = Vec::new();
    let text = match doc.to_json() {
        Ok(text) => text,
        Err(err) => return vec![format!("does not serialise: {err}")],
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(err) => return vec![format!("not JSON: {err}")],
    };
    if !value["openapi"].as_str().is_some_and(|v| v.starts_with("3.")) {
        problems.push(format!("openapi version {}", value["openapi"]));
    }
    let mut refs = Vec::new();
    collect_refs(&value, &mut refs);
    for reference in refs {
        let resolved = reference
            .strip_prefix("#/")
            .map(|pointer| value.pointer(&format!("/{pointer}")).is_some())
            .unwrap_or(false);
        if !resolved {
            problems.push(format!("unresolved $ref {reference}"));
        }
    }
    let schemes: BTreeSet<&str> = value["components"]["securitySchemes"]
        .as_object()
        .map(|schemes| schemes.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut ids = BTreeSet::new();
    for (path, item) in value["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let at = format!("{} {path}", method.to_uppercase());
            match operation["operationId"].as_str() {
                Some(id) if ids.insert(id.to_owned()) => {}
                Some(id) => problems.push(format!("{at}: operationId {id} used twice")),
                None => problems.push(format!("{at}: no operationId")),
            }
            if operation["responses"].as_object().is_none_or(|r| r.is_empty()) {
                problems.push(format!("{at}: no responses"));
            }
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().into_iter().flatten().map(|(name, _)| name) {
                    if !schemes.contains(name.as_str()) {
                        problems.push(format!("{at}: unknown security scheme {name}"));
                    }
                }
            }
        }
    }
    problems
}

/// The operations of `doc` that `configure` does not route, for a unit test to assert empty:
/// each is requested (path parameters filled with a UUID) from an app with the service's routes,
/// health, metrics and the document, but no app data, so a routed handler fails on its missing
/// data (500) and an unrouted request gets actix's empty 404 or a 405.
pub async fn unrouted(doc: &OpenApi, configure: impl FnOnce(&mut web::ServiceConfig) + 'static) -> Vec<String> {
    use actix_web::test;
    let app = test::init_service(
        actix_web::App::new()
            .app_data(crate::json_config(1024))
            .app_data(crate::path_config())
            .app_data(crate::query_config())
            .configure(crate::Health::new("test", crate::Readiness::default()).configure())
            .configure(configure),
    )
    .await;
    let mut missing = Vec::new();
    for operation in operations(doc) {
        let Some((method, path)) = operation.split_once(' ') else { continue };
        let uri = fill_path(path);
        let Ok(method) = actix_web::http::Method::from_bytes(method.as_bytes()) else { continue };
        let response =
            test::call_service(&app, test::TestRequest::default().method(method).uri(&uri).to_request()).await;
        let status = response.status().as_u16();
        let body = test::read_body(response).await;
        if status == 405 || (status == 404 && body.is_empty()) {
            missing.push(operation);
        }
    }
    missing
}

/// Everything wrong with a service's document, for its unit test to assert empty: what
/// `problems` finds, fewer than `at_least` operations, the operations `register` does not route
/// (see `unrouted`), and a served document (`serve`) that is not the generated one.
pub async fn verify(
    document: fn() -> OpenApi,
    register: impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig) + 'static,
    at_least: usize,
) -> Vec<String> {
    use actix_web::test;
    let doc = document();
    let mut found = problems(&doc);
    let count = operations(&doc).len();
    if count < at_least {
        found.push(format!("{count} operations documented, expected at least {at_least}"));
    }
    let configure = move |cfg: &mut web::ServiceConfig| {
        register(&mut utoipa_actix_web::service_config::ServiceConfig::new(cfg));
        serve(cfg, document);
    };
    found.extend(unrouted(&doc, configure).await.into_iter().map(|op| format!("{op}: not routed")));
    let app = test::init_service(actix_web::App::new().configure(|cfg| serve(cfg, document))).await;
    let request = test::TestRequest::get().uri(OPENAPI_PATH).to_request();
    let served: serde_json::Value = test::call_and_read_body_json(&app, request).await;
    if serde_json::to_value(&doc).ok() != Some(served) {
        found.push(format!("{OPENAPI_PATH} serves another document than the generated one"));
    }
    found
}

/// `path` with each `{param}` replaced by a UUID (a valid room id, and a plain string).
fn fill_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push_str("0192f0c4-3b1e-7c3a-9d2e-5a6b7c8d9e0f");
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", serde_json::Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(inner, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|inner| collect_refs(inner, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_document_is_sound_and_lists_the_ops_endpoints() {
        let doc = base("test", "a test", vec![]);
        assert_eq!(problems(&doc), Vec::<String>::new());
        let ops = operations(&doc);
        for op in ["GET /health/live", "GET /health/ready", "GET /metrics", "GET /v1/openapi.json"] {
            assert!(ops.contains(op), "{op} missing from {ops:?}");
        }
    }

    #[test]
    fn an_unresolved_reference_is_a_problem() {
        let mut doc = base("test", "a test", vec![]);
        let broken: OpenApi = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0", "info": {"title": "t", "version": "0"},
            "paths": {"/x": {"get": {"operationId": "x", "responses": {"200": {
                "description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}
            }}}}}
        }))
        .unwrap();
        doc.paths.merge(broken.paths);
        assert_eq!(problems(&doc), vec!["unresolved $ref #/components/schemas/Nope".to_owned()]);
    }
}
