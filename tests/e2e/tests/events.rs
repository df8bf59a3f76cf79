//! Change events from authz as rooms applies them (issue 8): every revocation takes effect,
//! even the second identical one, and a room that cannot answer holds up no other room while
//! the event that keeps failing ends in the dead-letter queue instead of looping.

use std::process::{Command, Stdio};

use e2e::*;
use serde_json::{json, Value};

async fn get(url: &str, token: &str) -> Answer {
    call("GET", url, Some(token), None).await
}

async fn members(c: &Cluster, room: &str, token: &str) -> Vec<String> {
    get(&format!("{}/v1/rooms/{room}", c.rooms.base()), token).await.body["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["user"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn set_line(c: &Cluster, admin: &str, user: &str, allowed: bool) {
    let body = json!({ "allowed": allowed }).to_string();
    let url = format!("{}/v1/admin/users/{user}/line-access", c.authz.base());
    let answer = call("PUT", &url, Some(admin), Some(&body)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[actix_rt::test]
async fn a_second_revocation_of_the_same_permission_excludes_again() {
    let c = Cluster::start("revoke2", &[]).await;
    let admin = c.login("acme", "admin").await;
    let alice = c.login("acme", "alice").await;
    let rooms = c.rooms.base();
    let mode =
        call("PUT", &format!("{}/v1/admin/line-access", c.authz.base()), Some(&admin), Some(r#"{"mode":"selected"}"#))
            .await;
    assert_eq!(mode.status, 200, "{}", mode.body);
    set_line(&c, &admin, "alice@acme", true).await;
    set_line(&c, &admin, "bob@acme", true).await;

    // A LINE group room of alice, bob and a LINE user.
    let room: Value = eventually(10, "the LINE room", || async {
        let body = r#"{"members":["bob@acme","line:U1"],"name":"shop"}"#;
        let a = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(body)).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    let room_id = room["id"].as_str().expect("id").to_owned();
    assert!(members(&c, &room_id, &alice).await.contains(&"bob@acme".to_owned()));

    // Revoked: bob is excluded.
    set_line(&c, &admin, "bob@acme", false).await;
    eventually(15, "bob's first exclusion", || async {
        (!members(&c, &room_id, &alice).await.contains(&"bob@acme".to_owned())).then_some(())
    })
    .await;

    // Granted again, bob is added back to the room.
    set_line(&c, &admin, "bob@acme", true).await;
    let added = eventually(10, "bob is added back", || async {
        let a = call(
            "POST",
            &format!("{rooms}/v1/rooms/{room_id}/members"),
            Some(&alice),
            Some(r#"{"users":["bob@acme"]}"#),
        )
        .await;
        (a.status == 200 && a.body["added"] == json!(["bob@acme"])).then_some(a)
    })
    .await;
    assert_eq!(added.status, 200);

    // Revoked again, with an identical event: bob is excluded again.
    set_line(&c, &admin, "bob@acme", false).await;
    eventually(15, "bob's second exclusion", || async {
        (!members(&c, &room_id, &alice).await.contains(&"bob@acme".to_owned())).then_some(())
    })
    .await;
    let bob = c.login("acme", "bob").await;
    assert_eq!(get(&format!("{rooms}/v1/rooms/{room_id}"), &bob).await.status, 404, "bob no longer sees the room");
}

/// Messages waiting in one queue of the vhost.
fn queue_depth(vhost: &str, queue: &str) -> u64 {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "-p", vhost, "name", "messages"])
        .stderr(Stdio::null())
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next()? == queue).then(|| parts.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

#[actix_rt::test]
async fn a_room_that_cannot_answer_holds_up_no_other_and_its_event_is_dead_lettered() {
    // Every service declares the topology: they agree on the delivery limit.
    let limit = [("CHAT__AMQP__DELIVERY_LIMIT", "2")];
    let rooms_env = [limit[0], ("CHAT__ROOMS__COMMAND_TIMEOUT_MS", "1500")];
    let mut c = Cluster::start_with("poison", &limit, &rooms_env).await;
    let name = c.rooms.opts.name.clone();
    let (acme, globex) = (c.login("acme", "admin").await, c.login("globex", "admin").await);
    let alice = c.login("acme", "alice").await;
    let authz = c.authz.base();
    for (admin, other) in [(&acme, "globex"), (&globex, "acme")] {
        let body = json!({ "tenant": other }).to_string();
        call("POST", &format!("{authz}/v1/admin/trusts"), Some(admin), Some(&body)).await;
    }
    // Rooms with carol of globex: the first ten will be broken, the last one is fine. One after
    // the other, the broken rooms would hold the fine one's exclusion up for 10 x 1.5 s.
    let mut room_ids = Vec::new();
    for i in 0..11 {
        let body = json!({"members": ["carol@globex"], "name": format!("deal {i}")}).to_string();
        let room: Value = eventually(10, "an external room", || {
            let (rooms, alice, body) = (c.rooms.base(), alice.clone(), body.clone());
            async move {
                let a = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(&body)).await;
                (a.status == 201).then_some(a.body)
            }
        })
        .await;
        room_ids.push(room["id"].as_str().expect("id").to_owned());
    }
    let (broken, fine) = room_ids.split_at(10);
    let fine = fine[0].clone();
    // The broken rooms' rows say something no room can be: they can no longer be loaded.
    let ids: Vec<String> = broken.iter().map(|r| format!("'{r}'")).collect();
    let database =
        std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
    let statement = format!("UPDATE \"{name}\".rooms SET kind = 'bogus' WHERE id IN ({})", ids.join(","));
    let updated = Command::new("psql").args([database.as_str(), "-qAtc", &statement]).output().expect("psql runs");
    assert!(updated.status.success(), "{}", String::from_utf8_lossy(&updated.stderr));
    c.rooms.restart().await; // the room actors load their rooms afresh

    // The trust ends: carol leaves every room. The fine room does not wait for the broken ones.
    let revoked = call("DELETE", &format!("{authz}/v1/admin/trusts/globex"), Some(&acme), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    eventually(8, "carol's exclusion from the room that answers", || async {
        (!members(&c, &fine, &alice).await.contains(&"carol@globex".to_owned())).then_some(())
    })
    .await;

    // The event keeps failing for the broken rooms: after the delivery limit it is dead-lettered
    // rather than retried forever.
    let dead_queue = format!("{name}.rooms.cmd.dead");
    eventually(30, "the failing event in the dead-letter queue", || {
        let (name, dead_queue) = (name.clone(), dead_queue.clone());
        async move { (queue_depth(&name, &dead_queue) >= 1).then_some(()) }
    })
    .await;
    let events_queue = format!("{name}.events.rooms");
    eventually(10, "the shared event queue is empty", || {
        let (name, events_queue) = (name.clone(), events_queue.clone());
        async move { (queue_depth(&name, &events_queue) == 0).then_some(()) }
    })
    .await;
}
