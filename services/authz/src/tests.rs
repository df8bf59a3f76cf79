//! The rules end to end inside one process: a started `AuthzCore` on a fresh SQLite file and
//! the in-process bus (no outside services), driven through its methods as the API drives it.

use std::sync::Arc;
use std::time::Duration;

use chat_auth::Principal;
use chat_bus::{BusError, SharedBus, Subscription};
use chat_protocol::authz::DecideRequest;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::frames::NotificationKind;
use chat_protocol::room::ExclusionReason;
use chat_protocol::{RoomId, TenantId, UserId};
use secrecy::SecretString;

use crate::service::{AuthzCore, AuthzError, Credentials, Origin, TrustStatus, UserChanges};
use crate::settings::{Settings, DEFAULTS};
use crate::store::{AuditAction, LineMode, Store, User};

const SERVICE_TOKEN: &str = "a-service-token-of-at-least-32-characters";

/// A started core on its own SQLite file, and a subscription to its change events.
struct Fixture {
    core: Arc<AuthzCore>,
    events: Subscription,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start() -> Fixture {
    start_with("").await
}

/// The in-process bus, whose `publish_event` fails while `down` (a broker outage).
struct FlakyBus {
    inner: SharedBus,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl chat_bus::Bus for FlakyBus {
    async fn send_command(
        &self,
        shard: u16,
        command_id: &str,
        payload: Vec<u8>,
    ) -> Result<chat_bus::Confirm, BusError> {
        self.inner.send_command(shard, command_id, payload).await
    }
    async fn publish_to_node(&self, node: &str, payload: Vec<u8>) -> Result<(), BusError> {
        self.inner.publish_to_node(node, payload).await
    }
    async fn consume_shard(&self, shard: u16, prefetch: u16) -> Result<Subscription, BusError> {
        self.inner.consume_shard(shard, prefetch).await
    }
    async fn consume_node(&self, node: &str) -> Result<Subscription, BusError> {
        self.inner.consume_node(node).await
    }
    async fn shard_depths(&self) -> Result<Vec<(u16, u64)>, BusError> {
        self.inner.shard_depths().await
    }
    async fn dead_letter_depth(&self) -> Result<u64, BusError> {
        self.inner.dead_letter_depth().await
    }
    async fn publish_event(&self, payload: Vec<u8>) -> Result<(), BusError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BusError::Broker("the broker is down".into()));
        }
        self.inner.publish_event(payload).await
    }
    async fn consume_events(&self, queue: &str, shared: bool) -> Result<Subscription, BusError> {
        self.inner.consume_events(queue, shared).await
    }
    fn is_healthy(&self) -> bool {
        !self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn shards(&self) -> u16 {
        self.inner.shards()
    }
}

/// `start`, with `extra` TOML settings.
async fn start_with(extra: &str) -> Fixture {
    start_on(extra, |bus| bus).await
}

/// `start_with`, the core publishing through `wrap(bus)`.
async fn start_on(extra: &str, wrap: impl FnOnce(SharedBus) -> SharedBus) -> Fixture {
    let dir = TempDir(std::env::temp_dir().join(format!("authz-test-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let layer = format!(
        "[database]\nurl = \"sqlite://{}?mode=rwc\"\nmax_connections = 2\n[amqp]\nurl = \"inproc\"\n[internal]\ntoken = \"{SERVICE_TOKEN}\"\n",
        dir.0.join("authz.sqlite").display()
    );
    let settings: Settings = chat_kit::parse_layers(&[DEFAULTS, &layer, extra]).unwrap();
    let store = Store::connect(&settings.database).await.unwrap();
    let bus: SharedBus = chat_bus::connect(&settings.amqp).await.unwrap();
    let events = bus.consume_events("observer", false).await.unwrap();
    let core = AuthzCore::start(settings, store, wrap(bus)).await.unwrap();
    Fixture { core, events, _dir: dir }
}

impl Fixture {
    /// Tenants and users straight into the store (a dummy hash: these never log in).
    async fn add(&self, tenant: &str, username: &str, admin: bool) -> Principal {
        let tenant_id = TenantId::new(tenant);
        let _ = self.core.store.create_tenant(&tenant_id, &tenant.to_uppercase(), 1).await;
        let user = User::new_member(&tenant_id, username, username, "not-a-hash".to_owned(), admin);
        let mut tx = self.core.store.begin().await.unwrap();
        tx.create_user(&user, 1).await.unwrap();
        tx.commit().await.unwrap();
        Principal { user_id: user.id, tenant: tenant_id, roles: vec![], expires_at_secs: u64::MAX }
    }

    async fn next_event(&mut self) -> ChangeEvent {
        self.next_envelope().await.event
    }

    /// The next change event as published: with its id.
    async fn next_envelope(&mut self) -> EventEnvelope {
        let delivery = tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the event stream is open");
        let envelope = serde_json::from_slice(&delivery.payload).unwrap();
        delivery.ack().await.unwrap();
        envelope
    }

    /// No event arrives for a moment.
    async fn quiet(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(200), self.events.recv()).await;
        assert!(next.is_err(), "unexpected event: {:?}", next.ok().flatten().map(|d| d.payload.clone()));
    }

    async fn actions(&self, admin: &Principal) -> Vec<AuditAction> {
        self.core.audit_trail(admin).await.unwrap().into_iter().map(|row| row.action).collect()
    }
}

fn credentials(tenant: &str, username: &str, password: &str) -> Credentials {
    Credentials { tenant: tenant.into(), username: username.to_owned(), password: SecretString::from(password) }
}

#[tokio::test]
async fn a_bootstrapped_admin_logs_in_and_wrong_or_unknown_credentials_are_refused_alike() {
    let fixture = start().await;
    let core = &fixture.core;
    core.bootstrap("acme", "Acme", "admin", "long-enough-pass").await.unwrap();
    let again = core.bootstrap("acme", "Acme", "admin", "another-pass").await;
    assert!(matches!(again, Err(AuthzError::UserExists(id)) if id == "admin@acme"));

    let token = core.login(credentials("acme", "admin", "long-enough-pass"), &Origin::default()).await.unwrap();
    assert_eq!(token.expires_in, 900);
    let principal = core.verifier.verify(&token.access_token).await.unwrap();
    assert_eq!((principal.user_id.as_str(), principal.tenant.as_str()), ("admin@acme", "acme"));
    assert_eq!(principal.roles, vec!["admin".to_owned()]);
    let me = core.me(&principal).await.unwrap();
    assert!(me.user.admin && !me.line && me.external_tenants.is_empty());

    for (tenant, username, password) in [("acme", "admin", "wrong-password"), ("acme", "ghost", "long-enough-pass")] {
        let refused = core.login(credentials(tenant, username, password), &Origin::default()).await;
        assert!(matches!(refused, Err(AuthzError::InvalidCredentials)), "{username}: {refused:?}");
    }
    let too_long = core.login(credentials("acme", &"a".repeat(65), "x"), &Origin::default()).await;
    assert!(matches!(too_long, Err(AuthzError::LoginFieldTooLong)));
    assert_eq!(fixture.actions(&principal).await, vec![AuditAction::TenantCreated]);
}

#[tokio::test]
async fn line_permission_changes_are_audited_published_and_told() {
    let mut fixture = start().await;
    let admin = fixture.add("acme", "admin", true).await;
    let alice = fixture.add("acme", "alice", false).await;
    let bob = fixture.add("acme", "bob", false).await;
    let globex_admin = fixture.add("globex", "admin", true).await;
    let core = Arc::clone(&fixture.core);

    assert!(matches!(core.list_users(&alice).await, Err(AuthzError::NotAdmin(_))));
    assert!(matches!(core.set_user_line(&globex_admin, &alice.user_id, true).await, Err(AuthzError::UserNotFound(_))));
    assert!(matches!(core.set_line_mode(&admin, "sometimes".into()).await, Err(AuthzError::InvalidLineMode(_))));
    assert_eq!(core.set_line_mode(&admin, "selected".into()).await.unwrap(), LineMode::Selected);
    fixture.quiet().await;

    let granted = core.set_user_line(&admin, &alice.user_id, true).await.unwrap();
    assert!(granted.line_access && granted.user.line_allowed);
    assert_eq!(
        fixture.next_event().await,
        ChangeEvent::LineAccess { tenant: "acme".into(), user: "alice@acme".into(), allowed: true }
    );
    assert!(matches!(
        fixture.next_event().await,
        ChangeEvent::Notify { user, kind: NotificationKind::LineAccessGranted, .. } if user == "alice@acme"
    ));
    assert!(core.me(&alice).await.unwrap().line);
    assert!(!core.me(&bob).await.unwrap().line);

    let changes = UserChanges { display_name: None, password: None, admin: None, disabled: Some(true) };
    let disabled = core.update_user(&admin, &bob.user_id, changes).await.unwrap();
    assert!(disabled.user.disabled && !disabled.line_access);
    assert!(matches!(fixture.next_event().await, ChangeEvent::UserDisabled { user, .. } if user == "bob@acme"));
    assert!(matches!(core.me(&bob).await, Err(AuthzError::UnknownCaller(_))));

    let users = core.list_users(&admin).await.unwrap();
    let names: Vec<(&str, bool)> = users.iter().map(|u| (u.user.username.as_str(), u.line_access)).collect();
    assert_eq!(names, vec![("admin", false), ("alice", true), ("bob", false)]);
    let mut actions = fixture.actions(&admin).await;
    actions.sort_by_key(|action| action.as_str());
    assert_eq!(actions, vec![AuditAction::LineAccessGranted, AuditAction::LineModeSet, AuditAction::UserDisabled]);

    // A mode the code does not know is an error, never a silent `none`.
    let database = sqlx::AnyPool::connect(&core.settings.database.url).await.unwrap();
    sqlx::query("UPDATE tenants SET line_mode = 'sometimes' WHERE id = 'acme'").execute(&database).await.unwrap();
    assert!(core.store.tenant(&"acme".into()).await.is_err());
    assert!(matches!(core.me(&alice).await, Err(AuthzError::Store(_))));
}

/// Services that trust a token's admin role ask authz whether the caller is an admin now: a
/// role removed, or an account disabled, after the token was issued counts at once.
#[tokio::test]
async fn decide_says_whether_the_actor_is_an_admin_now_not_when_the_token_was_issued() {
    let fixture = start().await;
    let admin = fixture.add("acme", "admin", true).await;
    let frank = fixture.add("acme", "frank", true).await;
    let alice = fixture.add("acme", "alice", false).await;
    let core = Arc::clone(&fixture.core);
    let is_admin = |actor: &Principal| {
        let core = Arc::clone(&core);
        let request = DecideRequest { tenant: actor.tenant.clone(), actor: actor.user_id.clone(), users: vec![] };
        async move { core.decide(SERVICE_TOKEN.as_bytes(), request).await.unwrap().actor_admin }
    };
    assert!(is_admin(&admin).await && is_admin(&frank).await);
    assert!(!is_admin(&alice).await, "a member");
    let demote = UserChanges { display_name: None, password: None, admin: Some(false), disabled: None };
    core.update_user(&admin, &frank.user_id, demote).await.unwrap();
    assert!(!is_admin(&frank).await, "frank's token still says admin; authz does not");
    let promote = UserChanges { display_name: None, password: None, admin: Some(true), disabled: None };
    core.update_user(&admin, &frank.user_id, promote).await.unwrap();
    assert!(is_admin(&frank).await);
    let disable = UserChanges { display_name: None, password: None, admin: None, disabled: Some(true) };
    core.update_user(&admin, &frank.user_id, disable).await.unwrap();
    assert!(!is_admin(&frank).await, "a disabled admin");
    let other = Principal { tenant: "globex".into(), ..admin.clone() };
    assert!(!is_admin(&other).await, "an admin of acme asking as globex");
}

/// Members know their colleagues by name, and the members of a company trusted both ways;
/// nobody else, and an unknown id is left out like an untrusted one.
#[tokio::test]
async fn members_know_their_colleagues_and_trusted_companies_members_by_name() {
    let fixture = start().await;
    let admin = fixture.add("acme", "admin", true).await;
    let alice = fixture.add("acme", "alice", false).await;
    let bob = fixture.add("acme", "bob", false).await;
    let globex = fixture.add("globex", "admin", true).await;
    let carol = fixture.add("globex", "carol", false).await;
    let core = Arc::clone(&fixture.core);
    let ids = |people: Vec<crate::service::Person>| people.into_iter().map(|p| p.id.to_string()).collect::<Vec<_>>();

    assert_eq!(ids(core.colleagues(&alice).await.unwrap()), ["admin@acme", "alice@acme", "bob@acme"]);
    let disable = UserChanges { display_name: None, password: None, admin: None, disabled: Some(true) };
    core.update_user(&admin, &bob.user_id, disable).await.unwrap();
    assert_eq!(ids(core.colleagues(&alice).await.unwrap()), ["admin@acme", "alice@acme"], "not a disabled one");

    let asked = [carol.user_id.clone(), admin.user_id.clone(), UserId::new("ghost@acme"), UserId::new("line:U1")];
    assert_eq!(ids(core.people(&alice, &asked).await.unwrap()), ["admin@acme"], "globex is not trusted yet");
    core.grant_trust(&admin, "globex".into()).await.unwrap();
    assert_eq!(ids(core.people(&alice, &asked).await.unwrap()), ["admin@acme"], "trusted one way only");
    core.grant_trust(&globex, "acme".into()).await.unwrap();
    let people = core.people(&alice, &asked).await.unwrap();
    assert_eq!(ids(people.clone()), ["carol@globex", "admin@acme"]);
    assert_eq!((people[0].display_name.as_str(), people[0].tenant_name.as_str()), ("carol", "GLOBEX"));
    let too_many: Vec<UserId> = (0..101).map(|i| UserId::new(format!("u{i}@acme"))).collect();
    assert!(matches!(core.people(&alice, &too_many).await, Err(AuthzError::TooManyIds(100))));
    assert!(matches!(core.colleagues(&bob).await, Err(AuthzError::UnknownCaller(_))), "a disabled caller");
}

#[tokio::test]
async fn the_trust_handshake_and_decisions_at_the_point_of_use() {
    let mut fixture = start().await;
    let acme = fixture.add("acme", "admin", true).await;
    let globex = fixture.add("globex", "admin", true).await;
    fixture.add("globex", "carol", false).await;
    let core = Arc::clone(&fixture.core);

    assert!(matches!(core.grant_trust(&acme, "acme".into()).await, Err(AuthzError::SelfTrust(_))));
    assert!(matches!(core.grant_trust(&acme, "initech".into()).await, Err(AuthzError::TenantNotFound(_))));
    assert_eq!(core.grant_trust(&acme, "globex".into()).await.unwrap().status, TrustStatus::PendingOurs);
    assert_eq!(core.list_trusts(&globex).await.unwrap()[0].status, TrustStatus::PendingTheirs);
    fixture.quiet().await;

    assert_eq!(core.grant_trust(&globex, "acme".into()).await.unwrap().status, TrustStatus::Active);
    assert!(matches!(fixture.next_event().await, ChangeEvent::Trust { active: true, .. }));
    let mut told = Vec::new();
    for _ in 0..3 {
        if let ChangeEvent::Notify { user, kind: NotificationKind::ExternalGranted, text, .. } =
            fixture.next_event().await
        {
            told.push((user.to_string(), text));
        }
    }
    told.sort();
    assert_eq!(
        told,
        vec![
            ("admin@acme".to_owned(), "You can now chat with GLOBEX.".to_owned()),
            ("admin@globex".to_owned(), "You can now chat with ACME.".to_owned()),
            ("carol@globex".to_owned(), "You can now chat with ACME.".to_owned()),
        ]
    );

    let request = || DecideRequest {
        tenant: "acme".into(),
        actor: "admin@acme".into(),
        users: vec!["carol@globex".into(), "ghost@acme".into(), "line:U1".into()],
    };
    assert!(matches!(core.decide(b"wrong", request()).await, Err(AuthzError::NotInternalCaller)));
    let answer = core.decide(SERVICE_TOKEN.as_bytes(), request()).await.unwrap();
    assert_eq!(answer.trusted_tenants, vec![TenantId::new("globex")]);
    let reasons: Vec<_> = answer.verdicts.iter().map(|v| (v.allowed, v.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (true, None),
            (false, Some(ExclusionReason::UnknownUser)),
            (false, Some(ExclusionReason::LineNotAuthorized))
        ]
    );

    core.revoke_trust(&acme, &"globex".into()).await.unwrap();
    assert!(matches!(fixture.next_event().await, ChangeEvent::Trust { active: false, .. }));
    assert!(matches!(core.revoke_trust(&acme, &"globex".into()).await, Err(AuthzError::TrustNotFound(_))));
    assert_eq!(core.list_trusts(&globex).await.unwrap()[0].status, TrustStatus::PendingOurs);

    // Rooms' exclusions reach the audit trail through the bus, once per event id.
    let excluded = EventEnvelope::new(ChangeEvent::MemberExcluded {
        tenant: "globex".into(),
        user: UserId::new("carol@globex"),
        room_id: RoomId::new("room-1"),
        reason: ExclusionReason::TrustRevoked,
    });
    for _ in 0..2 {
        core.bus.publish_event(serde_json::to_vec(&excluded).unwrap()).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let entry = loop {
        let trail = core.audit_trail(&globex).await.unwrap();
        if let Some(entry) = trail.into_iter().find(|row| row.action == AuditAction::MemberExcluded) {
            break entry;
        }
        assert!(tokio::time::Instant::now() < deadline, "the exclusion was not audited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((entry.actor.as_str(), entry.subject.as_str()), ("system", "carol@globex"));
    assert_eq!(entry.detail, "room room-1: trust_revoked");
    assert_eq!(entry.id, excluded.event_id, "the audit entry is keyed by the event id");
    // The redelivered event (the second publish) is consumed without a second entry.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Each side records its own grants and revocations, and what the other side's caused.
    let mut acme_actions = fixture.actions(&acme).await;
    acme_actions.sort_by_key(|action| action.as_str());
    assert_eq!(acme_actions, vec![AuditAction::TrustActive, AuditAction::TrustGranted, AuditAction::TrustRevoked]);
    let mut globex_actions = fixture.actions(&globex).await;
    globex_actions.sort_by_key(|action| action.as_str());
    assert_eq!(
        globex_actions,
        vec![AuditAction::MemberExcluded, AuditAction::TrustGranted, AuditAction::TrustInactive]
    );
}

/// The JSON answers as the e2e tests and clients read them: field names, codes, statuses.
#[actix_web::test]
async fn the_http_answers_keep_their_shapes() {
    use actix_web::test::{call_service, init_service, read_body_json, TestRequest};
    use actix_web::App;
    use serde_json::{json, Value};

    let fixture = start_with("[login]\nper_account_per_minute = 2\n").await;
    fixture.core.bootstrap("acme", "Acme", "admin", "long-enough-pass").await.unwrap();
    fixture.add("globex", "admin", true).await;
    let app = init_service(
        App::new()
            .app_data(chat_kit::json_config(65536))
            .app_data(chat_kit::path_config())
            .configure(crate::api::configure(&fixture.core)),
    )
    .await;
    let send = |method: &str, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut request = TestRequest::default().method(method.parse().unwrap()).uri(path);
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        if let Some(body) = body {
            request = request.set_json(body);
        }
        request.to_request()
    };

    let answer = call_service(
        &app,
        send(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"tenant": "acme", "username": "admin", "password": "long-enough-pass"})),
        ),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let login: Value = read_body_json(answer).await;
    assert_eq!((&login["token_type"], &login["expires_in"]), (&json!("Bearer"), &json!(900)));
    let token = login["access_token"].as_str().unwrap().to_owned();
    let bearer = Some(token.as_str());

    let me: Value = read_body_json(call_service(&app, send("GET", "/v1/me", bearer, None)).await).await;
    assert_eq!(
        me,
        json!({"id": "admin@acme", "tenant": "acme", "username": "admin", "display_name": "admin", "roles": ["admin"],
               "permissions": {"line": false, "external_tenants": []}})
    );

    let created = call_service(
        &app,
        send("POST", "/v1/admin/users", bearer, Some(json!({"username": "eve", "password": "long-enough-pass"}))),
    )
    .await;
    assert_eq!(created.status(), 201);
    let eve = json!({"id": "eve@acme", "tenant": "acme", "username": "eve", "display_name": "eve", "admin": false,
                     "disabled": false, "line_allowed": false, "line_access": false});
    assert_eq!(read_body_json::<Value, _>(created).await, eve);
    let users: Value = read_body_json(call_service(&app, send("GET", "/v1/admin/users", bearer, None)).await).await;
    assert_eq!(users["users"][1], eve);

    let colleagues: Value = read_body_json(call_service(&app, send("GET", "/v1/users", bearer, None)).await).await;
    assert_eq!(
        colleagues["users"][1],
        json!({"id": "eve@acme", "display_name": "eve", "tenant": "acme", "tenant_name": "Acme"})
    );
    let named = format!("/v1/users?ids={}", (0..101).map(|i| format!("u{i}@acme")).collect::<Vec<_>>().join(","));
    let too_many = call_service(&app, send("GET", &named, bearer, None)).await;
    assert_eq!(too_many.status(), 400);
    assert_eq!(read_body_json::<Value, _>(too_many).await["error"]["code"], "invalid_query");
    let read = call_service(&app, send("GET", "/v1/admin/line-access", bearer, None)).await;
    assert_eq!(read.status(), 200);
    let read: Value = read_body_json(read).await;
    assert_eq!(read, json!({"mode": "none"}), "a tenant starts with nobody on LINE");
    let mode = call_service(&app, send("PUT", "/v1/admin/line-access", bearer, Some(json!({"mode": "all"})))).await;
    assert_eq!(read_body_json::<Value, _>(mode).await, json!({"mode": "all"}));
    let line =
        call_service(&app, send("PUT", "/v1/admin/users/eve@acme/line-access", bearer, Some(json!({"allowed": true}))))
            .await;
    let line_body: Value = read_body_json(line).await;
    assert_eq!((&line_body["line_allowed"], &line_body["line_access"]), (&json!(true), &json!(true)));

    let granted = call_service(&app, send("POST", "/v1/admin/trusts", bearer, Some(json!({"tenant": "globex"})))).await;
    assert_eq!(read_body_json::<Value, _>(granted).await, json!({"tenant": "globex", "status": "pending_ours"}));
    let trusts: Value = read_body_json(call_service(&app, send("GET", "/v1/admin/trusts", bearer, None)).await).await;
    assert_eq!(trusts, json!({"trusts": [{"tenant": "globex", "status": "pending_ours"}]}));
    let revoked = call_service(&app, send("DELETE", "/v1/admin/trusts/globex", bearer, None)).await;
    assert_eq!(revoked.status(), 204);

    let audit: Value = read_body_json(call_service(&app, send("GET", "/v1/admin/audit", bearer, None)).await).await;
    let newest = &audit["entries"][0];
    assert_eq!(
        (&newest["action"], &newest["actor"], &newest["subject"]),
        (&json!("trust_revoked"), &json!("admin@acme"), &json!("globex"))
    );
    assert!(newest["at"].as_str().unwrap().ends_with('Z') && newest["id"].is_string() && newest["detail"] == "");

    for (method, path, body, status, code) in [
        ("PUT", "/v1/admin/line-access", json!({"mode": "sometimes"}), 400, "invalid_mode"),
        ("POST", "/v1/admin/trusts", json!({"tenant": "acme"}), 400, "invalid_tenant"),
        ("POST", "/v1/admin/trusts", json!({"tenants": ["globex"]}), 400, "unknown_field"),
        ("POST", "/v1/admin/trusts", json!({"tenant": "initech"}), 404, "tenant_not_found"),
        ("POST", "/v1/admin/users", json!({"username": "eve", "password": "long-enough-pass"}), 409, "user_exists"),
        ("PATCH", "/v1/admin/users/carol@globex", json!({"disabled": true}), 404, "user_not_found"),
        ("PATCH", "/v1/admin/users/eve@acme", json!({"disabled": "yes"}), 400, "invalid_field"),
        (
            "POST",
            "/internal/v1/decide",
            json!({"tenant": "acme", "actor": "admin@acme", "users": []}),
            404,
            "not_found",
        ),
    ] {
        let answer = call_service(&app, send(method, path, bearer, Some(body))).await;
        assert_eq!(answer.status(), status, "{method} {path}");
        let error: Value = read_body_json(answer).await;
        assert_eq!(error["error"]["code"], code, "{method} {path}: {error}");
    }
    let decide = TestRequest::post()
        .uri("/internal/v1/decide")
        .insert_header(("X-Internal-Token", SERVICE_TOKEN))
        .set_json(json!({"tenant": "acme", "actor": "eve@acme", "users": ["line:U1", "ghost@acme"]}))
        .to_request();
    let decided: Value = read_body_json(call_service(&app, decide).await).await;
    assert_eq!(
        decided,
        json!({"actor_line": true, "actor_admin": false, "trusted_tenants": [], "verdicts": [
            {"user": "line:U1", "tenant": "line", "allowed": true, "line": true},
            {"user": "ghost@acme", "tenant": null, "allowed": false, "reason": "unknown_user", "line": false},
        ]})
    );

    // The account's second attempt in the minute was the right one above; the third waits.
    let wrong = json!({"tenant": "acme", "username": "admin", "password": "wrong-password"});
    let first = call_service(&app, send("POST", "/v1/auth/login", None, Some(wrong.clone()))).await;
    assert_eq!(first.status(), 401);
    let limited = call_service(&app, send("POST", "/v1/auth/login", None, Some(wrong))).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers().get("Retry-After").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let refusal: Value = read_body_json(limited).await;
    assert_eq!(refusal["error"]["code"], "rate_limited");
    let unauthenticated = call_service(&app, send("GET", "/v1/me", None, None)).await;
    assert_eq!(unauthenticated.status(), 401);
}

/// Behind an ingress every request comes from the ingress's address: with the ingress as a
/// trusted proxy, the client's own address (from `X-Forwarded-For`) has the bucket, so one
/// client spending its attempts does not lock out another; an untrusted peer's header is
/// ignored, so it cannot pick a fresh address for each attempt.
#[actix_web::test]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_login_bucket() {
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;
    use serde_json::json;

    let fixture = start_with(
        "[login]\nper_address_per_minute = 2\nper_account_per_minute = 100\ntrusted_proxies = [\"127.0.0.1/32\", \"10.1.0.0/16\"]\n",
    )
    .await;
    fixture.core.bootstrap("acme", "Acme", "admin", "long-enough-pass").await.unwrap();
    let app =
        init_service(App::new().app_data(chat_kit::json_config(65536)).configure(crate::api::configure(&fixture.core)))
            .await;
    let login = |peer: &str, forwarded_for: Option<&str>, username: &str, password: &str| {
        let mut request = TestRequest::post().uri("/v1/auth/login").peer_addr(peer.parse().unwrap());
        if let Some(chain) = forwarded_for {
            request = request.insert_header(("X-Forwarded-For", chain.to_owned()));
        }
        request.set_json(json!({"tenant": "acme", "username": username, "password": password})).to_request()
    };
    let status = |request| {
        let app = &app;
        async move { call_service(app, request).await.status().as_u16() }
    };

    // An attacker behind the ingress (127.0.0.1) spends his address's attempts.
    for _ in 0..2 {
        assert_eq!(status(login("127.0.0.1:40001", Some("198.51.100.7"), "ghost", "guess-guess")).await, 401);
    }
    assert_eq!(status(login("127.0.0.1:40001", Some("198.51.100.7"), "ghost", "guess-guess")).await, 429);
    // Another user behind the same ingress is not locked out.
    assert_eq!(
        status(login("127.0.0.1:40002", Some("203.0.113.9"), "admin", "long-enough-pass")).await,
        200,
        "a client behind the ingress shares the attacker's bucket"
    );
    // Addresses the attacker writes on the left of the chain do not count: the right-most
    // address the trusted hops did not add is his, through two trusted hops.
    let spoofed = Some("203.0.113.50, 198.51.100.7, 10.1.2.3");
    assert_eq!(status(login("127.0.0.1:40003", spoofed, "ghost", "guess-guess")).await, 429);

    // A peer that is not a trusted proxy: its header is ignored, its own address counts.
    for i in 0..2 {
        let forged = format!("192.0.2.{i}");
        assert_eq!(status(login("198.18.0.1:5000", Some(&forged), "ghost", "guess-guess")).await, 401);
    }
    assert_eq!(status(login("198.18.0.1:5000", Some("192.0.2.77"), "ghost", "guess-guess")).await, 429);
}

/// A change made while the broker is down is stored with its events; they are published, in
/// order and each once, when the broker is back. A change that fails leaves no event.
#[tokio::test]
async fn changes_made_while_the_broker_is_down_are_published_in_order_once_it_is_back() {
    let flaky = Arc::new(std::sync::Mutex::new(None::<Arc<FlakyBus>>));
    let keep = Arc::clone(&flaky);
    let mut fixture = start_on("", move |inner| {
        let bus = Arc::new(FlakyBus { inner, down: std::sync::atomic::AtomicBool::new(false) });
        *keep.lock().unwrap() = Some(Arc::clone(&bus));
        bus
    })
    .await;
    let bus = flaky.lock().unwrap().clone().unwrap();
    let acme = fixture.add("acme", "admin", true).await;
    let globex = fixture.add("globex", "admin", true).await;
    let core = Arc::clone(&fixture.core);
    core.grant_trust(&acme, "globex".into()).await.unwrap();
    core.grant_trust(&globex, "acme".into()).await.unwrap();
    let granted = fixture.next_envelope().await;
    assert!(matches!(granted.event, ChangeEvent::Trust { active: true, .. }));
    for _ in 0..2 {
        assert!(matches!(fixture.next_event().await, ChangeEvent::Notify { .. }));
    }
    fixture.quiet().await;

    bus.down.store(true, std::sync::atomic::Ordering::SeqCst);
    core.revoke_trust(&acme, &"globex".into()).await.unwrap();
    // Failing changes leave nothing behind.
    assert!(matches!(core.revoke_trust(&acme, &"globex".into()).await, Err(AuthzError::TrustNotFound(_))));
    assert_eq!(core.list_trusts(&globex).await.unwrap()[0].status, TrustStatus::PendingOurs);
    fixture.quiet().await;
    assert_eq!(core.store.unsent_count().await.unwrap(), 3, "the revocation and its two notices wait");

    bus.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let revoked = fixture.next_envelope().await;
    assert!(matches!(revoked.event, ChangeEvent::Trust { active: false, .. }), "{revoked:?}");
    assert!(revoked.event_id > granted.event_id, "event ids are time-ordered");
    let mut told = Vec::new();
    for _ in 0..2 {
        let notice = fixture.next_envelope().await;
        assert!(notice.event_id > revoked.event_id, "the notices follow the revocation");
        if let ChangeEvent::Notify { user, kind: NotificationKind::ExternalRevoked, .. } = notice.event {
            told.push(user.to_string());
        }
    }
    told.sort();
    assert_eq!(told, vec!["admin@acme".to_owned(), "admin@globex".to_owned()]);
    fixture.quiet().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while core.store.unsent_count().await.unwrap() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the outbox was not marked sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A disabled user is listed as a revocation for callers with the service token, with the time
/// they were disabled; enabling them again keeps it (their older tokens stay refused).
#[tokio::test]
async fn disabled_users_are_served_as_revocations_to_internal_callers() {
    let fixture = start().await;
    let admin = fixture.add("acme", "admin", true).await;
    let bob = fixture.add("acme", "bob", false).await;
    let core = Arc::clone(&fixture.core);
    assert!(matches!(core.revocations(b"wrong", 0).await, Err(AuthzError::NotInternalCaller)));
    assert!(core.revocations(SERVICE_TOKEN.as_bytes(), 0).await.unwrap().revocations.is_empty());

    let before = chat_protocol::now_ms() / 1000;
    let disable = |disabled| UserChanges { display_name: None, password: None, admin: None, disabled: Some(disabled) };
    core.update_user(&admin, &bob.user_id, disable(true)).await.unwrap();
    core.update_user(&admin, &bob.user_id, disable(false)).await.unwrap();
    let listed = core.revocations(SERVICE_TOKEN.as_bytes(), 0).await.unwrap().revocations;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].user, bob.user_id);
    let at = i64::try_from(listed[0].at_secs).unwrap();
    assert!((before..=before + 5).contains(&at), "disabled at {at}, test began at {before}");
    let later = u64::try_from(at + 1).unwrap();
    assert!(core.revocations(SERVICE_TOKEN.as_bytes(), later).await.unwrap().revocations.is_empty());
}
