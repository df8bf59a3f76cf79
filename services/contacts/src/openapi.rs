//! The contacts OpenAPI document (`GET /v1/openapi.json`): the shared base (error shape, security
//! schemes, health, metrics) and the operations of the handlers `api::routes` registers.

use utoipa::openapi::OpenApi;

/// The document, built from the same registration that mounts the routes.
pub fn document() -> OpenApi {
    let base = chat_kit::openapi::base("contacts", "External contacts, blocks, the LINE profile and invite.", vec![]);
    chat_kit::openapi::collect(base, crate::api::register)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_document_is_sound_routed_and_served_as_generated() {
        let problems = chat_kit::openapi::verify(document, crate::api::register, 13).await;
        assert_eq!(problems, Vec::<String>::new());
    }
}
