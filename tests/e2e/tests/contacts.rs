//! The contacts service through the real binaries (authz, rooms, contacts; the bus on
//! RabbitMQ): external contacts and their 1:1 rooms, LINE friends from the LINE gateway's
//! events (published here on the bus, as the gateway will), editing and deleting, blocking and
//! unblocking across a group room, the LINE invite (QR code and profile card) and profile, tenant
//! isolation and refused input.

use chat_protocol::events::ChangeEvent;
use e2e::*;
use serde_json::{json, Value};

async fn send(method: &str, url: &str, token: &str, body: Option<Value>) -> Answer {
    call(method, url, Some(token), body.map(|b| b.to_string()).as_deref()).await
}

/// Both admins grant: the trust between acme and globex becomes active.
async fn trust_acme_and_globex(c: &Cluster) {
    for (tenant, other) in [("acme", "globex"), ("globex", "acme")] {
        let admin = c.login(tenant, "admin").await;
        let granted =
            send("POST", &format!("{}/v1/admin/trusts", c.authz.base()), &admin, Some(json!({ "tenant": other })))
                .await;
        assert!(granted.status == 200 || granted.status == 201, "{}", granted.body);
    }
}

async fn cluster(tag: &str) -> Cluster {
    let mut c = Cluster::start(tag, &[]).await;
    c.start_contacts().await;
    c
}

async fn contacts_of(c: &Cluster, token: &str, query: &str) -> Vec<Value> {
    let a = send("GET", &format!("{}/v1/contacts{query}", c.contacts()), token, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["contacts"].as_array().expect("contacts").clone()
}

/// alice adds carol (globex) as an external contact: the contact and the 1:1 room. The first
/// add may outlast the client's timeout on a loaded machine (a fresh rooms process); a retry
/// answers 200 with the contact the first one saved.
async fn add_carol(c: &Cluster, alice: &str) -> Value {
    eventually(10, "carol added", || async {
        let a = send(
            "POST",
            &format!("{}/v1/contacts", c.contacts()),
            alice,
            Some(json!({"tenant": "globex", "username": "carol"})),
        )
        .await;
        (a.status == 201 || a.status == 200).then_some(a.body)
    })
    .await
}

fn history_texts(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "message")
        .filter_map(|e| e["body"]["text"].as_str().map(str::to_owned))
        .collect()
}

async fn history_of(c: &Cluster, room: &str, token: &str) -> Vec<String> {
    let a = send("GET", &format!("{}/v1/rooms/{room}/messages?after=0&limit=500", c.rooms.base()), token, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    history_texts(&a.body)
}

async fn post(c: &Cluster, room: &str, token: &str, id: &str, text: &str) {
    let body = json!({"client_msg_id": id, "body": {"type": "text", "text": text}});
    let a = send("POST", &format!("{}/v1/rooms/{room}/messages", c.rooms.base()), token, Some(body)).await;
    assert!(a.status == 200 || a.status == 201, "post {id}: {}", a.body);
}

#[actix_rt::test]
async fn adding_an_external_member_saves_the_contact_and_opens_the_1to1_room_only_with_active_trust() {
    let c = cluster("ct_add").await;
    let alice = c.login("acme", "alice").await;

    // No trust yet: refused with a code, nothing stored, no room.
    let refused = send(
        "POST",
        &format!("{}/v1/contacts", c.contacts()),
        &alice,
        Some(json!({"tenant": "globex", "username": "carol"})),
    )
    .await;
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (403, Some("external_not_authorized")));
    assert!(contacts_of(&c, &alice, "").await.is_empty());
    let rooms = send("GET", &format!("{}/v1/rooms", c.rooms.base()), &alice, None).await;
    assert!(!rooms.body.to_string().contains("carol@globex"), "no room was created: {}", rooms.body);
    // Nor does it tell whether someone exists at a company without trust.
    let add_nobody = || async {
        let body = json!({"tenant": "globex", "username": "nobody"});
        send("POST", &format!("{}/v1/contacts", c.contacts()), &alice, Some(body)).await
    };
    let unknown = add_nobody().await;
    assert_eq!((unknown.status, unknown.body["error"]["code"].as_str()), (403, Some("external_not_authorized")));

    trust_acme_and_globex(&c).await;
    let unknown = eventually(10, "the unknown user, once trusted", || async {
        let a = add_nobody().await;
        (a.status == 404).then_some(a)
    })
    .await;
    assert_eq!(unknown.body["error"]["code"], "user_not_found");
    let contact = add_carol(&c, &alice).await;
    assert_eq!(contact["kind"], "external");
    assert_eq!(contact["user"], "carol@globex");
    assert_eq!(contact["display_name"], "Carol Chen");
    assert_eq!(contact["company"], "Globex");
    let room = contact["room_id"].as_str().expect("the 1:1 room").to_owned();
    let details = send("GET", &format!("{}/v1/rooms/{room}", c.rooms.base()), &alice, None).await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert_eq!(details.body["kind"], "external_direct");
    let carol = c.login("globex", "carol").await;
    assert_eq!(send("GET", &format!("{}/v1/rooms/{room}", c.rooms.base()), &carol, None).await.status, 200);

    // Adding again is the same contact and the same room.
    let again = send(
        "POST",
        &format!("{}/v1/contacts", c.contacts()),
        &alice,
        Some(json!({"tenant": "globex", "username": "carol"})),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        (again.body["id"].clone(), again.body["room_id"].clone()),
        (contact["id"].clone(), contact["room_id"].clone())
    );
    let listed = contacts_of(&c, &alice, "?kind=external").await;
    assert_eq!(listed.len(), 1);
    assert!(contacts_of(&c, &alice, "?kind=line").await.is_empty());

    // Starting from rooms instead: carol opens the 1:1 room with dave? No: with alice; carol
    // gets alice as a contact (one rule, whichever way the member starts).
    let opened =
        send("POST", &format!("{}/v1/rooms", c.rooms.base()), &carol, Some(json!({"members": ["alice@acme"]}))).await;
    assert!(opened.status == 200 || opened.status == 201, "{}", opened.body);
    assert_eq!(opened.body["id"], room.as_str(), "the pair's one 1:1 room");
    let saved = eventually(10, "alice in carol's contacts", || async {
        let list = contacts_of(&c, &carol, "?kind=external").await;
        list.into_iter().find(|x| x["user"] == "alice@acme")
    })
    .await;
    assert_eq!(saved["room_id"], room.as_str());
    assert_eq!(saved["company"], "Acme");
}

#[actix_rt::test]
async fn a_line_follow_makes_a_line_friend_that_one_call_saves_and_contacts_are_edited_and_deleted() {
    let c = cluster("ct_line").await;
    let alice = c.login("acme", "alice").await;
    let bus = c.bus().await;
    let follow = |line_user: &str, name: &str, at_ms: i64| ChangeEvent::LineFollow {
        tenant: "acme".into(),
        user: "alice@acme".into(),
        line_user: line_user.into(),
        display_name: name.to_owned(),
        picture_url: Some("https://profile.line-scdn.net/taro".into()),
        at_ms,
    };
    c.publish(&bus, follow("line:U1111", "Taro", 1_000)).await;
    let friends_url = format!("{}/v1/contacts/line-friends", c.contacts());
    let friend = eventually(10, "the LINE friend", || async {
        let a = send("GET", &friends_url, &alice, None).await;
        a.body["line_friends"].as_array().and_then(|l| l.first().cloned())
    })
    .await;
    assert_eq!(friend["user"], "line:U1111");
    assert_eq!(friend["display_name"], "Taro");
    assert_eq!(friend["following"], true);
    assert_eq!(friend["saved"], false);
    assert!(contacts_of(&c, &alice, "").await.is_empty(), "not in Clients/Partners until saved");

    // Saved to Clients/Partners with one call.
    let saved =
        send("POST", &format!("{}/v1/contacts", c.contacts()), &alice, Some(json!({"line_user": "line:U1111"}))).await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let id = saved.body["id"].as_str().expect("id").to_owned();
    let lines = contacts_of(&c, &alice, "?kind=line").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], id.as_str());

    // Edit the additional information, find it by name.
    let url = format!("{}/v1/contacts/{id}", c.contacts());
    let edited = send(
        "PATCH",
        &url,
        &alice,
        Some(json!({"name": "Taro Yamada (Shop)", "phone": "+81 (3) 1234-5678", "email": "taro@example.jp"})),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["phone"], "+81 (3) 1234-5678");
    assert_eq!(contacts_of(&c, &alice, "?q=yamada").await.len(), 1);
    assert!(contacts_of(&c, &alice, "?q=nothing-like-it").await.is_empty());

    // An unfollow marks the entry, nothing is deleted; a late follow (older) changes nothing.
    c.publish(
        &bus,
        ChangeEvent::LineUnfollow {
            tenant: "acme".into(),
            user: "alice@acme".into(),
            line_user: "line:U1111".into(),
            at_ms: 3_000,
        },
    )
    .await;
    c.publish(&bus, follow("line:U1111", "Taro (stale)", 2_000)).await;
    let unfollowed = eventually(10, "the unfollow", || async {
        let a = send("GET", &url, &alice, None).await;
        (a.body["following"] == false).then_some(a.body)
    })
    .await;
    assert_eq!(unfollowed["name"], "Taro Yamada (Shop)", "nothing deleted");

    // Delete: out of Clients/Partners, still a LINE friend entry.
    assert_eq!(send("DELETE", &url, &alice, None).await.status, 204);
    assert!(contacts_of(&c, &alice, "").await.is_empty());
    let a = send("GET", &friends_url, &alice, None).await;
    assert_eq!(a.body["line_friends"].as_array().map(Vec::len), Some(1), "{}", a.body);
    assert_eq!(send("DELETE", &url, &alice, None).await.status, 404, "not saved any more");
}

#[actix_rt::test]
async fn a_blocked_contacts_messages_reach_neither_the_blockers_socket_nor_history_nor_sync_while_others_get_them() {
    let c = cluster("ct_block").await;
    trust_acme_and_globex(&c).await;
    let (alice, bob, carol) =
        (c.login("acme", "alice").await, c.login("acme", "bob").await, c.login("globex", "carol").await);
    let contact = add_carol(&c, &alice).await;
    let id = contact["id"].as_str().expect("id").to_owned();
    let direct = contact["room_id"].as_str().expect("room").to_owned();
    // An external group: alice (its Group Master), bob and carol.
    let group = send(
        "POST",
        &format!("{}/v1/rooms", c.rooms.base()),
        &alice,
        Some(json!({"members": ["bob@acme", "carol@globex"], "name": "deal"})),
    )
    .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group = group.body["id"].as_str().expect("id").to_owned();
    let (mut alice_ws, mut bob_ws) =
        (Ws::connect(&c.rooms.ws_url(), &alice).await, Ws::connect(&c.rooms.ws_url(), &bob).await);

    let blocks = || c.rooms.metric("rooms_block_changes_total{change=\"block\"}");
    let before = blocks().await;
    let blocked = send("PUT", &format!("{}/v1/contacts/{id}/block", c.contacts()), &alice, None).await;
    assert_eq!((blocked.status, blocked.body["blocked"].as_bool()), (200, Some(true)), "{}", blocked.body);
    // Rooms learns blocks from the event; once it applied this one, carol's messages are held.
    eventually(10, "rooms applied the block", || async { (blocks().await > before).then_some(()) }).await;

    post(&c, &group, &carol, "g1", "while blocked, in the group").await;
    post(&c, &direct, &carol, "d1", "while blocked, 1:1").await;
    post(&c, &group, &bob, "g2", "bob after carol").await;
    bob_ws.expect(10, "bob gets carol's message", |f| f["body"]["text"] == "while blocked, in the group").await;
    // Everything alice's socket gets until bob's later message, and for a second after it.
    let mut seen = Vec::new();
    loop {
        match alice_ws.next(10).await {
            Got::Frame(f) => {
                let last = f["body"]["text"] == "bob after carol";
                seen.push(f);
                if last {
                    break;
                }
            }
            other => panic!("alice's socket: {other:?} before bob's message; got {seen:?}"),
        }
    }
    seen.extend(alice_ws.drain(1).await);
    assert!(!seen.iter().any(|f| f.to_string().contains("while blocked")), "alice's socket got: {seen:?}");
    // Not in alice's history; in bob's.
    let alice_group = history_of(&c, &group, &alice).await;
    assert!(
        alice_group.contains(&"bob after carol".to_owned()) && !alice_group.iter().any(|t| t.contains("while blocked"))
    );
    assert!(!history_of(&c, &direct, &alice).await.iter().any(|t| t.contains("while blocked")));
    assert!(history_of(&c, &group, &bob).await.contains(&"while blocked, in the group".to_owned()));
    // The sender is not told: carol sees her messages as sent.
    assert!(history_of(&c, &direct, &carol).await.contains(&"while blocked, 1:1".to_owned()));
    // Not in alice's sync either.
    let mut sync_ws = Ws::connect(&c.rooms.ws_url(), &alice).await;
    sync_ws.send(json!({"type": "sync", "rooms": {group.as_str(): 0, direct.as_str(): 0}})).await;
    let mut synced = Vec::new();
    loop {
        let f = sync_ws.expect(10, "the sync", |_| true).await;
        if f["type"] == "synced" {
            break;
        }
        synced.push(f);
    }
    assert!(synced.iter().any(|f| f["body"]["text"] == "bob after carol"), "{synced:?}");
    assert!(!synced.iter().any(|f| f.to_string().contains("while blocked")), "{synced:?}");

    // Unblock: new messages arrive again; those sent while blocked stay hidden.
    let unblocks = || c.rooms.metric("rooms_block_changes_total{change=\"unblock\"}");
    let before = unblocks().await;
    let unblocked = send("DELETE", &format!("{}/v1/contacts/{id}/block", c.contacts()), &alice, None).await;
    assert_eq!((unblocked.status, unblocked.body["blocked"].as_bool()), (200, Some(false)), "{}", unblocked.body);
    eventually(10, "rooms applied the unblock", || async { (unblocks().await > before).then_some(()) }).await;
    post(&c, &direct, &carol, "d2", "after the unblock").await;
    alice_ws.expect(10, "alice gets carol's new message", |f| f["body"]["text"] == "after the unblock").await;
    let alice_direct = history_of(&c, &direct, &alice).await;
    assert!(alice_direct.contains(&"after the unblock".to_owned()));
    assert!(!alice_direct.iter().any(|t| t.contains("while blocked")), "hidden for good: {alice_direct:?}");
}

#[actix_rt::test]
async fn the_line_invite_has_my_id_the_add_friend_url_a_decodable_qr_code_and_a_profile_card() {
    let c = cluster("ct_invite").await;
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    let invite = format!("{}/v1/me/line-invite", c.contacts());

    // Not allowed to use LINE: 403 with a code, for the invite, the images and the profile.
    for url in [
        invite.clone(),
        format!("{invite}/qr.png"),
        format!("{invite}/card.png"),
        format!("{}/v1/me/line-profile", c.contacts()),
    ] {
        let a = send("GET", &url, &alice, None).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (403, Some("line_not_authorized")), "{url}");
    }
    let mode =
        send("PUT", &format!("{}/v1/admin/line-access", c.authz.base()), &admin, Some(json!({"mode": "all"}))).await;
    assert_eq!(mode.status, 200, "{}", mode.body);

    // Allowed, no LINE Official Account bound yet: my ID and a clear code.
    let pending = eventually(10, "the invite without an account", || async {
        let a = send("GET", &invite, &alice, None).await;
        (a.status == 200).then_some(a.body)
    })
    .await;
    assert_eq!(pending["my_id"], "alice@acme");
    assert_eq!(pending["status"], "line_account_not_set_up");
    assert!(pending["add_friend_url"].is_null());
    let qr = send("GET", &format!("{invite}/qr.png"), &alice, None).await;
    assert_eq!((qr.status, qr.body["error"]["code"].as_str()), (409, Some("line_account_not_set_up")));

    // The LINE gateway binds alice to an Official Account.
    let bus = c.bus().await;
    c.publish(
        &bus,
        ChangeEvent::LineChannelBound {
            tenant: "acme".into(),
            user: "alice@acme".into(),
            basic_id: "@acme1234x".into(),
        },
    )
    .await;
    let ready = eventually(10, "the invite", || async {
        let a = send("GET", &invite, &alice, None).await;
        (a.body["status"] == "ready").then_some(a.body)
    })
    .await;
    let url = "https://line.me/R/ti/p/@acme1234x";
    assert_eq!(ready["add_friend_url"], url);

    for (path, width, height) in [("qr.png", None, None), ("card.png", Some(600), Some(360))] {
        let mut res = http()
            .get(format!("{invite}/{path}"))
            .insert_header(("Authorization", format!("Bearer {alice}")))
            .send()
            .await
            .expect("image");
        assert_eq!(res.status().as_u16(), 200, "{path}");
        assert_eq!(res.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));
        let bytes = res.body().limit(4 << 20).await.expect("png");
        let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).expect("a valid PNG");
        if let (Some(w), Some(h)) = (width, height) {
            assert_eq!((image.width(), image.height()), (w, h), "the documented card size");
        }
        let luma = image.to_luma8();
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(luma.width() as usize, luma.height() as usize, |x, y| {
                luma.get_pixel(x as u32, y as u32).0[0]
            });
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in {path}");
        let (_, content) = grids[0].decode().expect("the QR code decodes");
        assert_eq!(content, url, "{path} encodes the add-friend URL");
    }

    // The profile LINE users see: photo, name and company from the workspace; About, Phone and
    // Website editable; the status line is not.
    let profile_url = format!("{}/v1/me/line-profile", c.contacts());
    let profile = send("GET", &profile_url, &alice, None).await;
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert_eq!((profile.body["name"].as_str(), profile.body["company"].as_str()), (Some("Alice Anders"), Some("Acme")));
    let edit = json!({"about": "Sales at Acme", "phone": "+81 3-0000-0000", "website": "https://acme.example/alice"});
    let edited = send("PATCH", &profile_url, &alice, Some(edit)).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["website"], "https://acme.example/alice");
    let status = send("PATCH", &profile_url, &alice, Some(json!({"status_message": "Not Acme"}))).await;
    assert_eq!((status.status, status.body["error"]["code"].as_str()), (400, Some("status_message_not_editable")));
    let bad = [
        (json!({"about": "x".repeat(501)}), "field_too_long"),
        (json!({"phone": "call me maybe"}), "invalid_phone"),
        (json!({"website": "ftp://acme.example"}), "invalid_url"),
        (json!({"website": "javascript:alert(1)"}), "invalid_url"),
        (json!({"name": "Someone Else"}), "unknown_field"),
    ];
    for (body, code) in bad {
        let a = send("PATCH", &profile_url, &alice, Some(body.clone())).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some(code)), "{body}");
    }
    let after = send("GET", &profile_url, &alice, None).await;
    assert_eq!(after.body["about"], "Sales at Acme", "refused edits changed nothing");
    assert_eq!(after.body["status_message"], "Acme");
}

#[actix_rt::test]
async fn no_call_reads_or_changes_another_members_or_another_tenants_contacts_and_bad_input_changes_nothing() {
    let c = cluster("ct_iso").await;
    trust_acme_and_globex(&c).await;
    let (alice, bob, dave) =
        (c.login("acme", "alice").await, c.login("acme", "bob").await, c.login("globex", "dave").await);
    let contact = add_carol(&c, &alice).await;
    let id = contact["id"].as_str().expect("id").to_owned();
    let url = format!("{}/v1/contacts/{id}", c.contacts());

    for token in [&bob, &dave] {
        for (method, path, body) in [
            ("GET", url.clone(), None),
            ("PATCH", url.clone(), Some(json!({"name": "mine now"}))),
            ("DELETE", url.clone(), None),
            ("PUT", format!("{url}/block"), None),
            ("DELETE", format!("{url}/block"), None),
        ] {
            let a = send(method, &path, token, body).await;
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (404, Some("contact_not_found")),
                "{method} {path}"
            );
        }
        assert!(contacts_of(&c, token, "").await.is_empty());
    }
    for path in ["not-a-uuid", "0190a0a0-0000-7000-8000-000000000000"] {
        let a = send("GET", &format!("{}/v1/contacts/{path}", c.contacts()), &alice, None).await;
        assert_eq!(a.status, 404, "{path}");
    }

    let bad = [
        (json!({"email": "not an email"}), "invalid_email"),
        (json!({"email": "a@b"}), "invalid_email"),
        (json!({"phone": "12ab34"}), "invalid_phone"),
        (json!({"phone": "1".repeat(33)}), "invalid_phone"),
        (json!({"name": "n".repeat(101)}), "field_too_long"),
        (json!({"nickname": "x"}), "unknown_field"),
    ];
    for (body, code) in bad {
        let a = send("PATCH", &url, &alice, Some(body.clone())).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some(code)), "{body}");
    }
    let malformed = call("PATCH", &url, Some(&alice), Some("{not json")).await;
    assert_eq!((malformed.status, malformed.body["error"]["code"].as_str()), (400, Some("malformed_json")));
    let unchanged = send("GET", &url, &alice, None).await;
    assert_eq!(unchanged.status, 200);
    assert!(unchanged.body["name"].is_null() && unchanged.body["phone"].is_null() && unchanged.body["email"].is_null());

    let add = format!("{}/v1/contacts", c.contacts());
    for (body, code) in [
        (json!({"tenant": "acme", "username": "bob"}), "invalid_tenant"),
        (json!({"tenant": "glo bex", "username": "carol"}), "invalid_tenant"),
        (json!({"tenant": "globex", "username": ""}), "invalid_username"),
        (json!({"tenant": "globex"}), "invalid_field"),
        (json!({"tenant": "globex", "username": "carol", "line_user": "line:U1"}), "invalid_field"),
        (json!({"tenant": "globex", "username": "carol", "role": "admin"}), "unknown_field"),
    ] {
        let a = send("POST", &add, &alice, Some(body.clone())).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some(code)), "{body}");
    }
    for query in ["?kind=friends", "?limit=0", "?limit=100000"] {
        let a = send("GET", &format!("{add}{query}"), &alice, None).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_query")), "{query}");
    }
    assert_eq!(contacts_of(&c, &alice, "").await.len(), 1, "still only carol");
    let anonymous = call("GET", &add, None, None).await;
    assert_eq!(anonymous.status, 401);
}
