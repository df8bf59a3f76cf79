//! The rooms OpenAPI document (`GET /v1/openapi.json`): the shared base (error shape, security
//! schemes, health, metrics), the cluster admin's bearer scheme, and the operations of the
//! handlers `api::register` mounts.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;

/// The document, built from the same registration that mounts the routes.
pub fn document() -> OpenApi {
    let cluster_admin = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("the cluster admin token (`cluster.admin_token`), not a user's JWT"))
            .build(),
    );
    let base = chat_kit::openapi::base(
        "rooms",
        "Rooms, members, messages, read markers, notifications, the WebSocket, and the cluster ops view.",
        vec![("cluster_admin", cluster_admin)],
    );
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
        assert!(chat_kit::openapi::operations(&doc).len() > 16);
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
        let request = actix_web::test::TestRequest::get().uri("/v1/openapi.json").to_request();
        let served: serde_json::Value = actix_web::test::call_and_read_body_json(&app, request).await;
        assert_eq!(served, serde_json::to_value(document()).unwrap());
    }
}
