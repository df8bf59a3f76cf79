//! The authz OpenAPI document (`GET /v1/openapi.json`): the shared base (error shape, security
//! schemes, health, metrics) and the operations of the handlers `api::routes` registers.

use utoipa::openapi::OpenApi;

/// The document, built from the same registration that mounts the routes.
pub fn document() -> OpenApi {
    let base = chat_kit::openapi::base(
        "authz",
        "Tenants, members, login and tokens, LINE permission, trust between tenants, decisions.",
        vec![],
    );
    chat_kit::openapi::collect(base, crate::api::routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_document_is_sound_routed_and_served_as_generated() {
        let problems = chat_kit::openapi::verify(document, crate::api::routes, 17).await;
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn the_documented_revocations_path_is_the_one_verifiers_call() {
        assert!(chat_kit::openapi::operations(&document()).contains(&format!("GET {}", chat_auth::REVOCATIONS_PATH)));
    }
}
