//! Who may join an existing room, through the real authz and rooms binaries: the Group Master
//! of an external group adds the other company's members, members allowed to use LINE invite
//! LINE users into a LINE group, and a member who left a 1:1 room comes back by creating it
//! again.

use e2e::*;
use serde_json::{json, Value};

async fn post_json(url: &str, token: &str, body: &Value) -> Answer {
    call("POST", url, Some(token), Some(&body.to_string())).await
}

async fn member_ids(c: &Cluster, room: &str, token: &str) -> Vec<String> {
    let a = call("GET", &format!("{}/v1/rooms/{room}", c.rooms.base()), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["members"].as_array().expect("members").iter().map(|m| m["user"].as_str().unwrap_or("").to_owned()).collect()
}

async fn add(c: &Cluster, room: &str, token: &str, users: &[&str]) -> Answer {
    post_json(&format!("{}/v1/rooms/{room}/members", c.rooms.base()), token, &json!({ "users": users })).await
}

/// Both admins grant: the trust between acme and globex becomes active.
async fn trust_acme_and_globex(c: &Cluster) {
    for (tenant, other) in [("acme", "globex"), ("globex", "acme")] {
        let admin = c.login(tenant, "admin").await;
        let granted =
            post_json(&format!("{}/v1/admin/trusts", c.authz.base()), &admin, &json!({ "tenant": other })).await;
        assert!(granted.status == 200 || granted.status == 201, "{}", granted.body);
    }
}

fn excluded(a: &Answer) -> Vec<(String, String)> {
    a.body["excluded"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| (e["user"].as_str().unwrap_or("").to_owned(), e["reason"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn the_group_master_adds_members_of_a_trusted_company_to_an_external_group_and_others_may_not() {
    let c = Cluster::start("master", &[]).await;
    trust_acme_and_globex(&c).await;
    let (alice, bob) = (c.login("acme", "alice").await, c.login("acme", "bob").await);
    let rooms = c.rooms.base();
    let group = eventually(10, "the external group", || async {
        let body = json!({"members": ["bob@acme", "dave@globex"], "name": "deal"});
        let a = post_json(&format!("{rooms}/v1/rooms"), &alice, &body).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    assert_eq!(group["kind"], "external_group", "{group}");
    let room = group["id"].as_str().expect("id").to_owned();

    // Not the Group Master: refused, nothing changes.
    let by_bob = add(&c, &room, &bob, &["carol@globex"]).await;
    assert_eq!(by_bob.status, 403, "{}", by_bob.body);
    assert_eq!(by_bob.body["error"]["code"], "not_group_master");

    // The Group Master adds carol of the trusted company: she is in, and can read the room.
    let by_master = add(&c, &room, &alice, &["carol@globex"]).await;
    assert_eq!(by_master.status, 200, "{}", by_master.body);
    assert_eq!(by_master.body["added"], json!(["carol@globex"]), "{}", by_master.body);
    assert_eq!(excluded(&by_master), vec![]);
    let carol = c.login("globex", "carol").await;
    let mut members = member_ids(&c, &room, &carol).await;
    members.sort();
    assert_eq!(members, ["alice@acme", "bob@acme", "carol@globex", "dave@globex"]);

    // The Group Master removes her again; bob may not.
    let by_bob = call("DELETE", &format!("{rooms}/v1/rooms/{room}/members/dave@globex"), Some(&bob), None).await;
    assert_eq!(by_bob.body["error"]["code"], "not_group_master");
    let removed = call("DELETE", &format!("{rooms}/v1/rooms/{room}/members/carol@globex"), Some(&alice), None).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(!member_ids(&c, &room, &alice).await.contains(&"carol@globex".to_owned()));

    // A plain group of acme stays within acme: the other company's member is excluded, with
    // the reason, and the room keeps its kind.
    let team = create_room_as(&c, &alice, &["bob@acme"], Some("team")).await;
    assert_eq!(team["kind"], "group");
    let team_id = team["id"].as_str().expect("id");
    let widened = add(&c, team_id, &alice, &["carol@globex"]).await;
    assert_eq!(widened.status, 200, "{}", widened.body);
    assert_eq!(widened.body["added"], json!([]));
    assert_eq!(excluded(&widened), vec![("carol@globex".to_owned(), "not_authorized".to_owned())]);
}

async fn create_room_as(c: &Cluster, token: &str, members: &[&str], name: Option<&str>) -> Value {
    let a = post_json(&format!("{}/v1/rooms", c.rooms.base()), token, &json!({"members": members, "name": name})).await;
    assert!(a.status == 201 || a.status == 200, "{}", a.body);
    a.body
}

#[actix_rt::test]
async fn members_allowed_to_use_line_invite_line_users_into_a_line_group_and_others_are_excluded() {
    let c = Cluster::start("lineinvite", &[]).await;
    let admin = c.login("acme", "admin").await;
    let (alice, bob) = (c.login("acme", "alice").await, c.login("acme", "bob").await);
    let authz = c.authz.base();
    let mode =
        call("PUT", &format!("{authz}/v1/admin/line-access"), Some(&admin), Some(r#"{"mode":"selected"}"#)).await;
    assert_eq!(mode.status, 200, "{}", mode.body);
    let granted = call(
        "PUT",
        &format!("{authz}/v1/admin/users/alice@acme/line-access"),
        Some(&admin),
        Some(r#"{"allowed":true}"#),
    )
    .await;
    assert_eq!(granted.body["line_access"], true, "{}", granted.body);

    let group = eventually(10, "alice's LINE group", || async {
        let body = json!({"members": ["line:U1", "bob@acme"], "name": "shop"});
        let a = post_json(&format!("{}/v1/rooms", c.rooms.base()), &alice, &body).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    assert_eq!(group["kind"], "line_group", "{group}");
    let room = group["id"].as_str().expect("id").to_owned();
    // bob may not connect to LINE: invited along, he is kept out of the LINE room.
    assert_eq!(
        excluded(&Answer { status: 201, body: group.clone(), retry_after: None }),
        vec![("bob@acme".to_owned(), "line_not_authorized".to_owned())]
    );
    assert!(!member_ids(&c, &room, &alice).await.contains(&"bob@acme".to_owned()));

    // alice may use LINE: the LINE user joins.
    let by_alice = add(&c, &room, &alice, &["line:U123"]).await;
    assert_eq!(by_alice.status, 200, "{}", by_alice.body);
    assert_eq!(by_alice.body["added"], json!(["line:U123"]), "{}", by_alice.body);
    assert!(member_ids(&c, &room, &alice).await.contains(&"line:U123".to_owned()));

    // Invited again later, bob is still kept out.
    let bob_again = add(&c, &room, &alice, &["bob@acme"]).await;
    assert_eq!(bob_again.body["added"], json!([]), "{}", bob_again.body);
    assert_eq!(excluded(&bob_again), vec![("bob@acme".to_owned(), "line_not_authorized".to_owned())]);

    // A plain group does not become a LINE room: the LINE user is excluded, even by alice.
    let team = create_room_as(&c, &alice, &["bob@acme"], Some("team")).await;
    let team_id = team["id"].as_str().expect("id");
    let into_group = add(&c, team_id, &alice, &["line:U123"]).await;
    assert_eq!(into_group.body["added"], json!([]), "{}", into_group.body);
    assert_eq!(excluded(&into_group), vec![("line:U123".to_owned(), "not_authorized".to_owned())]);

    // bob may not invite LINE users at all: excluded with the reason, nobody added.
    let by_bob = add(&c, team_id, &bob, &["line:U456"]).await;
    assert_eq!(by_bob.status, 200, "{}", by_bob.body);
    assert_eq!(by_bob.body["added"], json!([]));
    assert_eq!(excluded(&by_bob), vec![("line:U456".to_owned(), "line_not_authorized".to_owned())]);
}

#[actix_rt::test]
async fn a_member_who_left_a_one_to_one_room_comes_back_to_it_by_creating_it_again() {
    let c = Cluster::start("rejoin", &[]).await;
    let (alice, bob) = (c.login("acme", "alice").await, c.login("acme", "bob").await);
    let rooms = c.rooms.base();
    let first = create_room_as(&c, &alice, &["bob@acme"], None).await;
    assert_eq!(first["kind"], "direct");
    let room = first["id"].as_str().expect("id").to_owned();
    let hello = post_json(
        &format!("{rooms}/v1/rooms/{room}/messages"),
        &bob,
        &json!({"client_msg_id": "b1", "body": {"type": "text", "text": "hello alice"}}),
    )
    .await;
    assert_eq!(hello.status, 201, "{}", hello.body);

    let left = call("POST", &format!("{rooms}/v1/rooms/{room}/leave"), Some(&alice), None).await;
    assert_eq!(left.status, 200, "{}", left.body);
    assert_eq!(call("GET", &format!("{rooms}/v1/rooms/{room}"), Some(&alice), None).await.status, 404);

    // Created again by alice: the same room, alice in it again, the history intact.
    let again = post_json(&format!("{rooms}/v1/rooms"), &alice, &json!({"members": ["bob@acme"]})).await;
    assert!(again.status == 200 || again.status == 201, "{} {}", again.status, again.body);
    assert_eq!(again.body["id"], room.as_str(), "{}", again.body);
    let mut members = member_ids(&c, &room, &alice).await;
    members.sort();
    assert_eq!(members, ["alice@acme", "bob@acme"]);
    let events = call("GET", &format!("{rooms}/v1/rooms/{room}/messages"), Some(&alice), None).await;
    let events = events.body["events"].as_array().cloned().expect("events");
    let texts: Vec<_> = events.iter().filter(|e| e["type"] == "message").map(|e| e["body"]["text"].clone()).collect();
    assert_eq!(texts, vec![json!("hello alice")]);
    let kinds: Vec<_> = events.iter().map(|e| e["event"]["type"].as_str().unwrap_or("message")).collect();
    assert_eq!(kinds, ["room_created", "members_joined", "message", "member_left", "members_joined"]);

    // She can post again, and bob receives it in the same room; creating it once more changes
    // nothing.
    let back = post_json(
        &format!("{rooms}/v1/rooms/{room}/messages"),
        &alice,
        &json!({"client_msg_id": "a1", "body": {"type": "text", "text": "I am back"}}),
    )
    .await;
    assert_eq!(back.status, 201, "{}", back.body);
    let once_more = post_json(&format!("{rooms}/v1/rooms"), &bob, &json!({"members": ["alice@acme"]})).await;
    assert_eq!(once_more.status, 200, "{}", once_more.body);
    assert_eq!(once_more.body["id"], room.as_str());
    assert_eq!(once_more.body["last_seq"], back.body["seq"], "no event was added");
}
