//! The rules over a real store (PostgreSQL, a schema per test) and the in-process bus: tenant
//! isolation of reading, changing, removing and blocking contacts, the block events published,
//! and the change events consumed.

use std::sync::Arc;
use std::time::Duration;

use chat_auth::{Principal, Verifier};
use chat_bus::{InProcBus, SharedBus, Subscription};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::room::RoomKind;
use chat_protocol::{TenantId, UserId};

use crate::authz::AuthzClient;
use crate::invite::Fonts;
use crate::rooms::RoomsClient;
use crate::service::{ContactsCore, ContactsError, NewContact, NotesPatch};
use crate::settings::{Settings, DEFAULTS};
use crate::store::tests::{save_carol, TestDb};

/// The HS256 secret of the tokens of the HTTP tests.
const TOKEN_SECRET: &str = "contacts-test-secret-contacts-test-secret";

fn principal(user: &str, tenant: &str) -> Principal {
    Principal { user_id: UserId::new(user), tenant: TenantId::new(tenant), roles: vec![], expires_at_secs: u64::MAX }
}

/// A core over the test store and an in-process bus (authz unreachable), and a subscription
/// that sees every event the core publishes.
async fn core(db: &TestDb) -> (Arc<ContactsCore>, SharedBus, Subscription) {
    let mut settings: Settings = chat_kit::parse_layers(&[DEFAULTS]).unwrap();
    settings.authz.url = String::new();
    settings.auth.jwt_secret = secrecy::SecretString::from(TOKEN_SECRET);
    let bus: SharedBus = Arc::new(InProcBus::new(4));
    let published = bus.consume_events("published", true).await.unwrap();
    let rooms = RoomsClient::start(bus.clone(), "test-node".into(), Duration::from_millis(200)).await.unwrap();
    let core = Arc::new(ContactsCore {
        store: db.store.clone(),
        bus: bus.clone(),
        verifier: Verifier::new(&settings.auth),
        authz: AuthzClient::new(settings.authz.clone()),
        settings,
        rooms,
        fonts: Arc::new(Fonts::shipped()),
    });
    (core, bus, published)
}

async fn next_event(published: &mut Subscription) -> ChangeEvent {
    let delivery = tokio::time::timeout(Duration::from_secs(2), published.recv()).await.unwrap().unwrap();
    let envelope: EventEnvelope = serde_json::from_slice(&delivery.payload).unwrap();
    delivery.ack().await.unwrap();
    envelope.event
}

fn not_found<T: std::fmt::Debug>(result: Result<T, ContactsError>) -> bool {
    matches!(result, Err(ContactsError::ContactNotFound))
}

#[tokio::test]
async fn another_members_or_tenants_contact_cannot_be_read_changed_removed_or_blocked() {
    let db = TestDb::new().await;
    let (core, _bus, _published) = core(&db).await;
    let contact = save_carol(&db.store).await;
    let id = contact.id.as_str();
    let alice = principal("alice@acme", "acme");
    for stranger in
        [principal("bob@acme", "acme"), principal("alice@acme", "globex"), principal("carol@globex", "globex")]
    {
        assert!(not_found(core.contact(&stranger, id).await));
        let patch = NotesPatch { name: Some(Some("x".into())), ..NotesPatch::default() };
        assert!(not_found(core.update_notes(&stranger, id, patch).await));
        assert!(not_found(core.remove_contact(&stranger, id).await));
        assert!(not_found(core.block(&stranger, id).await));
        assert!(not_found(core.unblock(&stranger, id).await));
    }
    for bad_id in ["not-a-uuid", "", "' OR 1=1 --", &uuid::Uuid::now_v7().to_string()] {
        assert!(not_found(core.contact(&alice, bad_id).await), "{bad_id:?}");
        assert!(not_found(core.remove_contact(&alice, bad_id).await), "{bad_id:?}");
    }
    assert_eq!(core.contact(&alice, id).await.unwrap(), contact, "nothing of Alice's changed");
    db.drop().await;
}

#[tokio::test]
async fn notes_are_refused_whole_and_removed_contacts_are_gone_but_line_friends_stay_visible() {
    let db = TestDb::new().await;
    let (core, _bus, _published) = core(&db).await;
    let contact = save_carol(&db.store).await;
    let alice = principal("alice@acme", "acme");
    let bad =
        NotesPatch { name: Some(Some("Carol".into())), email: Some(Some("nope".into())), ..NotesPatch::default() };
    assert!(matches!(core.update_notes(&alice, &contact.id, bad).await, Err(ContactsError::InvalidEmail)));
    assert_eq!(core.contact(&alice, &contact.id).await.unwrap().name, None, "a refused patch changes nothing");
    let good = NotesPatch { name: Some(Some("Carol".into())), ..NotesPatch::default() };
    assert_eq!(core.update_notes(&alice, &contact.id, good).await.unwrap().name.as_deref(), Some("Carol"));
    core.remove_contact(&alice, &contact.id).await.unwrap();
    assert!(not_found(core.contact(&alice, &contact.id).await));
    assert!(not_found(core.remove_contact(&alice, &contact.id).await));
    assert!(not_found(core.block(&alice, &contact.id).await), "removed external contacts are not blockable");

    let friend = UserId::new("line:U1");
    db.store.line_follow(&alice.user_id, &alice.tenant, &friend, "Taro", None, 1, 1).await.unwrap();
    let entry = db.store.contact_by_peer(&alice.user_id, &alice.tenant, &friend).await.unwrap().unwrap();
    assert!(!core.contact(&alice, &entry.id).await.unwrap().saved, "a LINE friend entry is visible unsaved");
    let patch = NotesPatch { name: Some(Some("x".into())), ..NotesPatch::default() };
    assert!(not_found(core.update_notes(&alice, &entry.id, patch).await), "notes need a saved contact");
    assert!(not_found(core.add_contact(&alice, NewContact::Line { line_user: "line:U9".into() }).await));
    assert!(not_found(core.add_contact(&alice, NewContact::Line { line_user: "carol@globex".into() }).await));
    let (saved, created) = core.add_contact(&alice, NewContact::Line { line_user: "line:U1".into() }).await.unwrap();
    assert!(saved.saved && created);
    assert!(!core.add_contact(&alice, NewContact::Line { line_user: "line:U1".into() }).await.unwrap().1);
    db.drop().await;
}

#[tokio::test]
async fn blocking_publishes_the_period_and_a_repeat_publishes_it_again() {
    let db = TestDb::new().await;
    let (core, _bus, mut published) = core(&db).await;
    let contact = save_carol(&db.store).await;
    let alice = principal("alice@acme", "acme");
    let (user, peer, tenant) = (alice.user_id.clone(), contact.peer.clone(), alice.tenant.clone());

    assert!(core.block(&alice, &contact.id).await.unwrap().blocked);
    let ChangeEvent::ContactBlocked { since_ms, .. } = next_event(&mut published).await else { panic!("not blocked") };
    assert!(core.block(&alice, &contact.id).await.unwrap().blocked);
    assert_eq!(
        next_event(&mut published).await,
        ChangeEvent::ContactBlocked { tenant: tenant.clone(), user: user.clone(), peer: peer.clone(), since_ms }
    );
    assert!(core.contact(&alice, &contact.id).await.unwrap().blocked);

    assert!(!core.unblock(&alice, &contact.id).await.unwrap().blocked);
    let ChangeEvent::ContactUnblocked { since_ms: closed_since, until_ms, .. } = next_event(&mut published).await
    else {
        panic!("not unblocked")
    };
    assert_eq!(closed_since, since_ms);
    assert!(until_ms >= since_ms);
    core.unblock(&alice, &contact.id).await.unwrap();
    assert_eq!(
        next_event(&mut published).await,
        ChangeEvent::ContactUnblocked { tenant, user, peer, since_ms, until_ms }
    );
    assert!(!core.contact(&alice, &contact.id).await.unwrap().blocked);
    db.drop().await;
}

#[tokio::test]
async fn change_events_make_line_friends_bindings_and_rooms_and_bad_ones_are_rejected() {
    let db = TestDb::new().await;
    let (core, bus, _published) = core(&db).await;
    let mut queue = bus.consume_events("contacts", true).await.unwrap();
    let (alice, acme, friend) = (UserId::new("alice@acme"), TenantId::new("acme"), UserId::new("line:U1"));
    let events = [
        ChangeEvent::LineFollow {
            tenant: acme.clone(),
            user: alice.clone(),
            line_user: friend.clone(),
            display_name: "Taro".into(),
            picture_url: None,
            at_ms: 10,
        },
        ChangeEvent::LineUnfollow { tenant: acme.clone(), user: alice.clone(), line_user: friend.clone(), at_ms: 5 },
        ChangeEvent::LineChannelBound { tenant: acme.clone(), user: alice.clone(), basic_id: "@abc1234x".into() },
        ChangeEvent::LineChannelBound {
            tenant: acme.clone(),
            user: UserId::new("bob@acme"),
            basic_id: "bad id".into(),
        },
        ChangeEvent::DirectRoomOpened {
            room_id: "room-l1".into(),
            kind: RoomKind::LineDirect,
            actor: friend.clone(),
            actor_tenant: TenantId::line(),
            peer: alice.clone(),
            peer_tenant: acme.clone(),
        },
        ChangeEvent::Trust { tenant_a: acme.clone(), tenant_b: "globex".into(), active: true },
    ];
    for event in events {
        bus.publish_event(serde_json::to_vec(&EventEnvelope::new(event)).unwrap()).await.unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(2), queue.recv()).await.unwrap().unwrap();
        crate::events::handle(&core, delivery).await;
    }
    let row = db.store.contact_by_peer(&alice, &acme, &friend).await.unwrap().unwrap();
    assert_eq!(row.following, Some(true), "the older unfollow was not applied");
    assert_eq!(row.room_id.as_ref().map(|r| r.as_str()), Some("room-l1"));
    assert_eq!(db.store.line_binding(&alice, &acme).await.unwrap().as_deref(), Some("@abc1234x"));
    assert_eq!(db.store.line_binding(&UserId::new("bob@acme"), &acme).await.unwrap(), None);

    // An undecodable event is rejected, not requeued: nothing comes back.
    bus.publish_event(b"{not json".to_vec()).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(2), queue.recv()).await.unwrap().unwrap();
    crate::events::handle(&core, delivery).await;
    assert!(tokio::time::timeout(Duration::from_millis(200), queue.recv()).await.is_err());

    // An external room's contact needs authz's names: unreachable, the event is requeued.
    let opened = ChangeEvent::DirectRoomOpened {
        room_id: "room-ac".into(),
        kind: RoomKind::ExternalDirect,
        actor: alice.clone(),
        actor_tenant: acme.clone(),
        peer: "carol@globex".into(),
        peer_tenant: "globex".into(),
    };
    bus.publish_event(serde_json::to_vec(&EventEnvelope::new(opened)).unwrap()).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(2), queue.recv()).await.unwrap().unwrap();
    crate::events::handle(&core, delivery).await;
    let again = tokio::time::timeout(Duration::from_secs(2), queue.recv()).await.unwrap().unwrap();
    assert!(again.payload.windows(7).any(|w| w == b"room-ac"), "the event came back");
    again.ack().await.unwrap();
    assert!(db.store.contact_by_peer(&alice, &acme, &"carol@globex".into()).await.unwrap().is_none());
    db.drop().await;
}

/// The HTTP edge: authentication, the error shape of bad bodies and queries, routes.
mod http {
    use actix_web::{test, App};
    use secrecy::SecretString;
    use serde_json::{json, Value};

    use super::*;

    async fn call(db: &TestDb, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let (core, _bus, _published) = core(db).await;
        let app = test::init_service(
            App::new()
                .app_data(chat_kit::json_config(65536))
                .app_data(chat_kit::path_config())
                .app_data(chat_kit::query_config())
                .configure(crate::configure(&core)),
        )
        .await;
        let mut req = match method {
            "GET" => test::TestRequest::get(),
            "POST" => test::TestRequest::post(),
            "PATCH" => test::TestRequest::patch(),
            "PUT" => test::TestRequest::put(),
            _ => test::TestRequest::delete(),
        }
        .uri(path);
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        if let Some(body) = body {
            req = req.set_json(body);
        }
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status().as_u16();
        let bytes = test::read_body(res).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A request (method, path, token, body) and the status and code it gets.
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<Value>, u16, &'a str);

    fn token(user: &str, tenant: &str) -> String {
        let settings: Settings = chat_kit::parse_layers(&[DEFAULTS]).unwrap();
        let mut auth = settings.auth;
        auth.jwt_secret = SecretString::from(TOKEN_SECRET);
        chat_auth::mint(&auth, user, tenant, &[], 600)
    }

    #[actix_web::test]
    async fn requests_are_authenticated_and_refused_in_the_error_shape() {
        let db = TestDb::new().await;
        let alice = token("alice@acme", "acme");
        let t = Some(alice.as_str());
        let cases: Vec<Case> = vec![
            ("GET", "/v1/contacts", None, None, 401, "unauthorized"),
            ("GET", "/v1/me/line-invite", None, None, 401, "unauthorized"),
            ("GET", "/v1/contacts?kind=group", t, None, 400, "invalid_query"),
            ("GET", "/v1/contacts?limit=0", t, None, 400, "invalid_query"),
            ("GET", "/v1/contacts?limit=201", t, None, 400, "invalid_query"),
            ("GET", "/v1/contacts?limit=x", t, None, 400, "invalid_query"),
            ("GET", "/v1/contacts?colour=red", t, None, 400, "unknown_field"),
            ("GET", "/v1/contacts/not-a-uuid", t, None, 404, "contact_not_found"),
            ("DELETE", "/v1/contacts/not-a-uuid", t, None, 404, "contact_not_found"),
            ("PUT", "/v1/contacts/not-a-uuid/block", t, None, 404, "contact_not_found"),
            ("POST", "/v1/contacts", t, Some(json!({})), 400, "invalid_field"),
            (
                "POST",
                "/v1/contacts",
                t,
                Some(json!({"tenant": "globex", "username": "carol", "line_user": "line:U1"})),
                400,
                "invalid_field",
            ),
            (
                "POST",
                "/v1/contacts",
                t,
                Some(json!({"tenant": "globex", "username": "carol", "x": 1})),
                400,
                "unknown_field",
            ),
            ("POST", "/v1/contacts", t, Some(json!({"tenant": "acme", "username": "bob"})), 400, "invalid_tenant"),
            ("POST", "/v1/contacts", t, Some(json!({"tenant": "glo bex", "username": "carol"})), 400, "invalid_tenant"),
            (
                "POST",
                "/v1/contacts",
                t,
                Some(json!({"tenant": "globex", "username": "carol!"})),
                400,
                "invalid_username",
            ),
            (
                "POST",
                "/v1/contacts",
                t,
                Some(json!({"tenant": "globex", "username": "carol"})),
                503,
                "authz_unavailable",
            ),
            ("POST", "/v1/contacts", t, Some(json!({"line_user": "line:U404"})), 404, "contact_not_found"),
            (
                "PATCH",
                "/v1/me/line-profile",
                t,
                Some(json!({"status_message": "hi"})),
                400,
                "status_message_not_editable",
            ),
            ("PATCH", "/v1/me/line-profile", t, Some(json!({"name": "x"})), 400, "unknown_field"),
            ("PATCH", "/v1/me/line-profile", t, Some(json!({"nickname": "x"})), 400, "unknown_field"),
            ("GET", "/v1/me/line-profile", t, None, 503, "authz_unavailable"),
        ];
        for (method, path, token, body, status, code) in cases {
            let (got_status, got) = call(&db, method, path, token, body).await;
            assert_eq!((got_status, got["error"]["code"].as_str().unwrap_or("")), (status, code), "{method} {path}");
        }
        let (status, page) = call(&db, "GET", "/v1/contacts/line-friends", t, None).await;
        assert_eq!((status, page), (200, json!({"line_friends": [], "next": null})));
        let (status, page) = call(&db, "GET", "/v1/contacts?kind=line&q=ta%25", t, None).await;
        assert_eq!((status, page), (200, json!({"contacts": [], "next": null})));
        db.drop().await;
    }

    #[actix_web::test]
    async fn a_contact_is_shown_with_its_fields_and_notes_change_it() {
        let db = TestDb::new().await;
        let contact = save_carol(&db.store).await;
        let alice = token("alice@acme", "acme");
        let path = format!("/v1/contacts/{}", contact.id);
        let (status, body) = call(&db, "GET", &path, Some(&alice), None).await;
        assert_eq!(status, 200);
        assert_eq!(body["user"], "carol@globex");
        assert_eq!(body["tenant"], "globex");
        assert_eq!(body["kind"], "external");
        assert_eq!(body["company"], "Globex");
        assert_eq!(body["saved"], true);
        assert_eq!(body["blocked"], false);
        assert!(body.get("following").is_none(), "external contacts have no following");
        let (status, body) =
            call(&db, "PATCH", &path, Some(&alice), Some(json!({"name": "C", "phone": "+81 3-1234"}))).await;
        assert_eq!((status, &body["name"], &body["phone"]), (200, &json!("C"), &json!("+81 3-1234")));
        let (status, body) = call(&db, "PATCH", &path, Some(&alice), Some(json!({"email": "bad"}))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_email")));
        let (status, body) = call(&db, "PATCH", &path, Some(&alice), Some(json!({"name": null}))).await;
        assert_eq!((status, &body["name"], &body["phone"]), (200, &Value::Null, &json!("+81 3-1234")));
        let bob = token("bob@acme", "acme");
        let (status, body) = call(&db, "GET", &path, Some(&bob), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("contact_not_found")));
        let (status, _) = call(&db, "DELETE", &path, Some(&alice), None).await;
        assert_eq!(status, 204);
        let (status, _) = call(&db, "DELETE", &path, Some(&alice), None).await;
        assert_eq!(status, 404);
        db.drop().await;
    }
}
