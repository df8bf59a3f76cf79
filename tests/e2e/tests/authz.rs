//! Authorization end to end: authz and rooms as separate processes on the real RabbitMQ,
//! PostgreSQL and Redis; change events drive exclusions in rooms.

use e2e::*;
use serde_json::{json, Value};

async fn get(url: &str, token: &str) -> Answer {
    call("GET", url, Some(token), None).await
}

async fn notifications(c: &Cluster, token: &str) -> Vec<Value> {
    get(&format!("{}/v1/notifications", c.rooms.base()), token).await.body["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn trust_status(c: &Cluster, admin: &str, other: &str) -> Option<String> {
    let a = get(&format!("{}/v1/admin/trusts", c.authz.base()), admin).await;
    a.body["trusts"]
        .as_array()?
        .iter()
        .find(|t| t["tenant"] == other)
        .map(|t| t["status"].as_str().unwrap_or("").to_owned())
}

#[actix_rt::test]
async fn the_trust_handshake_opens_a_cross_company_room_and_revocation_excludes_the_other_side() {
    let c = Cluster::start("trust", &[]).await;
    let (acme, globex) = (c.login("acme", "admin").await, c.login("globex", "admin").await);
    let (alice, carol) = (c.login("acme", "alice").await, c.login("globex", "carol").await);
    let rooms = c.rooms.base();

    // A grants: B sees pending_theirs (A's grant awaits B), A sees pending_ours; no cross-company room yet.
    let granted =
        call("POST", &format!("{}/v1/admin/trusts", c.authz.base()), Some(&acme), Some(r#"{"tenant":"globex"}"#)).await;
    assert_eq!(granted.body["status"], "pending_ours", "{}", granted.body);
    assert_eq!(trust_status(&c, &acme, "globex").await.as_deref(), Some("pending_ours"));
    assert_eq!(trust_status(&c, &globex, "acme").await.as_deref(), Some("pending_theirs"));
    let refused =
        call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["carol@globex"]}"#)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap_or("").contains("external_not_authorized"));

    // B grants: active on both sides, members are told.
    call("POST", &format!("{}/v1/admin/trusts", c.authz.base()), Some(&globex), Some(r#"{"tenant":"acme"}"#)).await;
    assert_eq!(trust_status(&c, &acme, "globex").await.as_deref(), Some("active"));
    assert_eq!(trust_status(&c, &globex, "acme").await.as_deref(), Some("active"));
    let told = eventually(10, "carol's notification", || async {
        notifications(&c, &carol).await.into_iter().find(|n| n["kind"] == "external_granted")
    })
    .await;
    assert!(told["text"].as_str().unwrap_or("").contains("Acme"), "{told}");

    // A cross-company room works, with its marker, both ways.
    let room = eventually(10, "the external room", || async {
        let a = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["carol@globex"]}"#)).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    assert_eq!(room["kind"], "external_direct");
    assert_eq!(room["markers"], json!(["external"]));
    let room_id = room["id"].as_str().expect("id").to_owned();
    let group = call(
        "POST",
        &format!("{rooms}/v1/rooms"),
        Some(&alice),
        Some(r#"{"members":["carol@globex","dave@globex","bob@acme"],"name":"deal"}"#),
    )
    .await;
    assert_eq!(group.body["kind"], "external_group", "{}", group.body);
    let master = group.body["members"].as_array().expect("members").iter().find(|m| m["role"] == "master").cloned();
    assert_eq!(master.map(|m| m["user"].clone()), Some(json!("alice@acme")), "the creator is the Group Master");
    let group_id = group.body["id"].as_str().expect("id").to_owned();

    let mut carol_ws = Ws::connect(&c.rooms.ws_url(), &carol).await;
    let hello = json!({"client_msg_id": "x1", "body": {"type": "text", "text": "hello globex"}}).to_string();
    assert_eq!(
        call("POST", &format!("{rooms}/v1/rooms/{room_id}/messages"), Some(&alice), Some(&hello)).await.status,
        201
    );
    carol_ws.expect(10, "alice's message", |f| f["type"] == "message" && f["room_id"] == room_id.as_str()).await;
    let back = json!({"client_msg_id": "c1", "body": {"type": "text", "text": "hi acme"}}).to_string();
    assert_eq!(
        call("POST", &format!("{rooms}/v1/rooms/{room_id}/messages"), Some(&carol), Some(&back)).await.status,
        201
    );

    // A revokes: globex members leave acme's rooms, their sockets get nothing more from them.
    let revoked = call("DELETE", &format!("{}/v1/admin/trusts/globex", c.authz.base()), Some(&acme), None).await;
    assert_eq!(revoked.status, 204);
    // Globex's own grant stands and waits for acme again.
    assert_eq!(trust_status(&c, &globex, "acme").await.as_deref(), Some("pending_ours"));
    assert_eq!(trust_status(&c, &acme, "globex").await.as_deref(), Some("pending_theirs"));
    let mut excluded_from = std::collections::BTreeSet::new();
    while excluded_from.len() < 2 {
        let f = carol_ws
            .expect(15, "carol's exclusions", |f| f["type"] == "room_event" && f["event"]["type"] == "member_excluded")
            .await;
        assert_eq!(f["event"]["user"], "carol@globex");
        assert_eq!(f["event"]["reason"], "trust_revoked");
        excluded_from.insert(f["room_id"].as_str().unwrap_or("").to_owned());
    }
    assert_eq!(excluded_from, [room_id.clone(), group_id.clone()].into_iter().collect());
    let after = json!({"client_msg_id": "x2", "body": {"type": "text", "text": "still there?"}}).to_string();
    call("POST", &format!("{rooms}/v1/rooms/{group_id}/messages"), Some(&alice), Some(&after)).await;
    let rest = carol_ws.drain(2).await;
    assert!(rest.iter().all(|f| f["type"] == "notification"), "carol still receives: {rest:?}");
    assert_eq!(get(&format!("{rooms}/v1/rooms/{room_id}"), &carol).await.status, 404);
    let members = get(&format!("{rooms}/v1/rooms/{group_id}"), &alice).await.body["members"].clone();
    let left: Vec<_> = members.as_array().expect("members").iter().map(|m| m["user"].clone()).collect();
    assert_eq!(left, vec![json!("alice@acme"), json!("bob@acme")]);

    // The audit trail shows the grants, the revocation and the automatic exclusions.
    let trail = eventually(10, "globex's audit of the exclusions", || async {
        let a = get(&format!("{}/v1/admin/audit", c.authz.base()), &globex).await;
        let entries = a.body["entries"].as_array().cloned().unwrap_or_default();
        (entries.iter().filter(|e| e["action"] == "member_excluded").count() >= 3).then_some(entries)
    })
    .await;
    assert!(trail.iter().any(|e| e["action"] == "trust_granted" && e["subject"] == "acme"));
    let acme_trail = get(&format!("{}/v1/admin/audit", c.authz.base()), &acme).await.body["entries"].clone();
    let actions: Vec<_> =
        acme_trail.as_array().expect("entries").iter().map(|e| e["action"].as_str().unwrap_or("").to_owned()).collect();
    assert!(
        actions.contains(&"trust_revoked".to_owned()) && actions.contains(&"trust_granted".to_owned()),
        "{actions:?}"
    );
}

#[actix_rt::test]
async fn line_access_is_granted_and_withdrawn_per_member() {
    let c = Cluster::start("line", &[]).await;
    let acme = c.login("acme", "admin").await;
    let (alice, bob) = (c.login("acme", "alice").await, c.login("acme", "bob").await);
    let (authz, rooms) = (c.authz.base(), c.rooms.base());

    // Nobody may connect to LINE by default.
    let no = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["line:U1234"]}"#)).await;
    assert_eq!(no.status, 403, "{}", no.body);

    // Selected members only: alice is granted, and told so.
    call("PUT", &format!("{authz}/v1/admin/line-access"), Some(&acme), Some(r#"{"mode":"selected"}"#)).await;
    let granted = call(
        "PUT",
        &format!("{authz}/v1/admin/users/alice@acme/line-access"),
        Some(&acme),
        Some(r#"{"allowed":true}"#),
    )
    .await;
    assert_eq!(granted.body["line_access"], true, "{}", granted.body);
    assert_eq!(get(&format!("{authz}/v1/me"), &alice).await.body["permissions"]["line"], true);
    assert_eq!(get(&format!("{authz}/v1/me"), &bob).await.body["permissions"]["line"], false);
    eventually(10, "alice's notification", || async {
        notifications(&c, &alice).await.into_iter().find(|n| n["kind"] == "line_access_granted")
    })
    .await;

    let room = eventually(10, "alice's LINE room", || async {
        let a = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["line:U1234"]}"#)).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    assert_eq!(room["kind"], "line_direct");
    assert_eq!(room["markers"], json!(["line"]));
    let room_id = room["id"].as_str().expect("id").to_owned();
    let bobs = call("POST", &format!("{rooms}/v1/rooms"), Some(&bob), Some(r#"{"members":["line:U1234"]}"#)).await;
    assert_eq!(bobs.status, 403);
    assert!(bobs.body["error"]["message"].as_str().unwrap_or("").contains("line_not_authorized"));
    // Recall is refused in rooms with LINE members.
    let sent = call(
        "POST",
        &format!("{rooms}/v1/rooms/{room_id}/messages"),
        Some(&alice),
        Some(r#"{"client_msg_id":"l1","body":{"type":"text","text":"hi"}}"#),
    )
    .await;
    let mid = sent.body["message_id"].as_str().expect("message id");
    let recall = call("DELETE", &format!("{rooms}/v1/rooms/{room_id}/messages/{mid}"), Some(&alice), None).await;
    assert_eq!(recall.body["error"]["code"], "recall_not_allowed");

    // Withdrawn: alice leaves her LINE rooms, her socket is told and then hears nothing more.
    let mut ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    call("PUT", &format!("{authz}/v1/admin/users/alice@acme/line-access"), Some(&acme), Some(r#"{"allowed":false}"#))
        .await;
    let ex = ws
        .expect(15, "alice's exclusion", |f| f["type"] == "room_event" && f["event"]["type"] == "member_excluded")
        .await;
    assert_eq!(ex["room_id"], room_id.as_str());
    assert_eq!(ex["event"]["reason"], "line_access_revoked");
    assert_eq!(get(&format!("{rooms}/v1/rooms/{room_id}"), &alice).await.status, 404);
    eventually(10, "alice's revocation notice", || async {
        notifications(&c, &alice).await.into_iter().find(|n| n["kind"] == "line_access_revoked")
    })
    .await;

    // Mode "all": bob is granted too, and told so.
    call("PUT", &format!("{authz}/v1/admin/line-access"), Some(&acme), Some(r#"{"mode":"all"}"#)).await;
    eventually(10, "bob's notification", || async {
        notifications(&c, &bob).await.into_iter().find(|n| n["kind"] == "line_access_granted")
    })
    .await;
}

#[actix_rt::test]
async fn invitations_of_users_who_are_not_allowed_are_excluded_with_a_reason() {
    let c = Cluster::start("invite", &[]).await;
    let alice = c.login("acme", "alice").await;
    let rooms = c.rooms.base();
    let created = call(
        "POST",
        &format!("{rooms}/v1/rooms"),
        Some(&alice),
        Some(r#"{"members":["bob@acme","carol@globex","ghost@acme"],"name":"team"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["kind"], "group");
    let mut excluded: Vec<(String, String)> = created.body["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .map(|e| (e["user"].as_str().unwrap_or("").to_owned(), e["reason"].as_str().unwrap_or("").to_owned()))
        .collect();
    excluded.sort();
    assert_eq!(
        excluded,
        vec![("carol@globex".into(), "external_not_authorized".into()), ("ghost@acme".into(), "unknown_user".into())]
    );
    let id = created.body["id"].as_str().expect("id");
    let invited = call(
        "POST",
        &format!("{rooms}/v1/rooms/{id}/members"),
        Some(&alice),
        Some(r#"{"users":["dave@globex","line:U9","bob@acme"]}"#),
    )
    .await;
    assert_eq!(invited.body["added"], json!([]), "{}", invited.body);
    let reasons: Vec<_> =
        invited.body["excluded"].as_array().expect("excluded").iter().map(|e| e["reason"].clone()).collect();
    assert_eq!(reasons, vec![json!("external_not_authorized"), json!("line_not_authorized")]);
}
