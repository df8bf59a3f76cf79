//! The OpenAPI documents the services serve, and what schemathesis found against them: each
//! case here was a server error (or a refusal of a valid request) before it was fixed.

use e2e::*;
use serde_json::json;

#[actix_rt::test]
async fn every_service_serves_its_openapi_document_and_answers_405_to_an_undocumented_method() {
    let mut c = Cluster::start("openapidoc", &[]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[]).await;
    let bases = [
        ("authz", c.authz.base()),
        ("rooms", c.rooms.base()),
        ("contacts", c.contacts.as_ref().expect("contacts").base()),
        ("line-gateway", c.line_gateway()),
    ];
    for (service, base) in &bases {
        let doc = call("GET", &format!("{base}/v1/openapi.json"), None, None).await;
        assert_eq!(doc.status, 200, "{service}: {}", doc.body);
        assert!(doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{service}: {}", doc.body);
        assert_eq!(doc.body["info"]["title"], *service);
        assert!(doc.body["paths"]["/health/ready"]["get"].is_object(), "{service}");
    }
    let alice = c.login("acme", "alice").await;
    let put = call("PUT", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), Some("{}")).await;
    assert_eq!(put.status, 405, "{}", put.body);
}

#[actix_rt::test]
async fn text_holding_u0000_is_refused_with_400_where_it_was_a_server_error() {
    let c = Cluster::start("nulinput", &[]).await;
    let admin = c.login("acme", "admin").await;
    let authz = c.authz.base();
    let refused = |a: &Answer| {
        assert_eq!(a.status, 400, "{}", a.body);
        assert_eq!(a.body["error"]["code"], "invalid_field", "{}", a.body);
    };
    // Each reached PostgreSQL, which refuses U+0000 in text: 500 before.
    refused(
        &call("POST", &format!("{authz}/v1/admin/trusts"), Some(&admin), Some(r#"{"tenant":"glo\u0000bex"}"#)).await,
    );
    refused(
        &call(
            "POST",
            &format!("{authz}/v1/auth/login"),
            None,
            Some(r#"{"tenant":"ac\u0000me","username":"alice","password":"alice-demo-pass"}"#),
        )
        .await,
    );
    refused(
        &call_with(
            "POST",
            &format!("{authz}/internal/v1/decide"),
            None,
            Some(r#"{"tenant":"acme","actor":"alice@acme","users":["bob\u0000@acme"]}"#),
            &[("X-Internal-Token", INTERNAL_TOKEN)],
        )
        .await,
    );
    // Nothing changed: still no trust.
    let trusts = call("GET", &format!("{authz}/v1/admin/trusts"), Some(&admin), None).await;
    assert_eq!(trusts.body["trusts"], json!([]), "{}", trusts.body);
}

#[actix_rt::test]
async fn a_line_upload_for_a_room_id_that_is_no_uuid_is_404_not_503() {
    let mut c = Cluster::start("uploadroom", &[]).await;
    c.start_line_gateway(&[]).await;
    let alice = c.login("acme", "alice").await;
    // The id went into a URL to rooms and failed there: 503 `unavailable` before.
    let upload =
        call("POST", &format!("{}/v1/line/media?room_id=%00x%20y", c.line_gateway()), Some(&alice), Some("[0]")).await;
    assert_eq!(upload.status, 404, "{}", upload.body);
    assert_eq!(upload.body["error"]["code"], "room_not_found", "{}", upload.body);
}

#[actix_rt::test]
async fn a_whole_float_is_an_integer_in_a_json_body() {
    let c = Cluster::start("wholefloat", &[]).await;
    let alice = c.login("acme", "alice").await;
    let rooms = c.rooms.base();
    let created = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["bob@acme"]}"#)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room = created.body["id"].as_str().expect("a room id").to_owned();
    // JSON Schema's `integer` admits 1.0; it was 400 invalid_field before.
    let read = call("POST", &format!("{rooms}/v1/rooms/{room}/read"), Some(&alice), Some(r#"{"seq": 1.0}"#)).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let fraction = call("POST", &format!("{rooms}/v1/rooms/{room}/read"), Some(&alice), Some(r#"{"seq": 1.5}"#)).await;
    assert_eq!(fraction.status, 400, "{}", fraction.body);
    assert_eq!(fraction.body["error"]["code"], "invalid_field", "{}", fraction.body);
}

#[actix_rt::test]
async fn contacts_refuse_u0000_in_queries_and_ids_where_it_was_a_server_error() {
    let mut c = Cluster::start("contactsnul", &[]).await;
    c.start_contacts().await;
    let alice = c.login("acme", "alice").await;
    let contacts = c.contacts.as_ref().expect("contacts").base();
    for url in [format!("{contacts}/v1/contacts/line-friends?after=c%00d"), format!("{contacts}/v1/contacts?q=a%00")] {
        let a = call("GET", &url, Some(&alice), None).await;
        assert_eq!(a.status, 400, "{url}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "invalid_query", "{}", a.body);
    }
    let a = call("GET", &format!("{contacts}/v1/contacts/x%00y"), Some(&alice), None).await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "contact_not_found", "{}", a.body);
}
