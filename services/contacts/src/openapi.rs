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
    use utoipa_actix_web::service_config::ServiceConfig;

    use super::*;

    #[test]
    fn the_document_is_sound() {
        assert_eq!(chat_kit::openapi::problems(&document()), Vec::<String>::new());
    }

    #[actix_web::test]
    async fn every_documented_operation_is_routed() {
        let doc = document();
        assert!(chat_kit::openapi::operations(&doc).len() > 12);
        let missing = chat_kit::openapi::unrouted(&doc, |cfg| {
            crate::api::register(&mut ServiceConfig::new(cfg));
            chat_kit::openapi::serve(cfg, document);
        })
        .await;
        assert_eq!(missing, Vec::<String>::new());
    }

    #[actix_web::test]
    async fn the_served_document_is_the_generated_one() {
        let app = actix_web::test::init_service(
            actix_web::App::new().configure(|cfg| chat_kit::openapi::serve(cfg, document)),
        )
        .await;
        let served: serde_json::Value = actix_web::test::call_and_read_body_json(
            &app,
            actix_web::test::TestRequest::get().uri("/v1/openapi.json").to_request(),
        )
        .await;
        assert_eq!(served, serde_json::to_value(document()).unwrap());
    }
}
