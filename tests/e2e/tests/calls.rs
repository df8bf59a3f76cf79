//! Voice and video calls over the WebSocket, through the real authz and rooms binaries, the
//! real RabbitMQ, Redis and PostgreSQL: the call's states, ringing on every device and the
//! first device to answer winning, signaling relayed only between the participants' devices,
//! no calls with LINE users, a withdrawn trust ending a call at once, the ringing timing out,
//! and a call surviving the rooms node's restart (its state is in the store).

use e2e::*;
use serde_json::{json, Value};

fn room_call(f: &Value, room: &str) -> bool {
    f["type"] == "call" && f["room_id"] == room
}

fn status_is<'a>(status: &'static str, room: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |f| room_call(f, room) && f["call"]["status"] == status
}

fn error(code: &'static str) -> impl Fn(&Value) -> bool {
    move |f| f["type"] == "error" && f["code"] == code
}

/// A `call` frame of `room` whose participants are `users` (in any order).
fn with_participants<'a>(room: &'a str, users: &'a [&'a str]) -> impl Fn(&Value) -> bool + 'a {
    move |f| {
        let mut got: Vec<&str> = f["call"]["participants"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["user"].as_str()).collect())
            .unwrap_or_default();
        got.sort_unstable();
        let mut want = users.to_vec();
        want.sort_unstable();
        room_call(f, room) && got == want
    }
}

fn signal(room: &str, call: &str, to: &str, sig: Value) -> Value {
    json!({"type": "call_signal", "room_id": room, "call_id": call, "to": to, "signal": sig})
}

/// A room made by the member of `token` with these members (their ids), through the API.
async fn open_room(c: &Cluster, token: &str, members: &[&str], name: Option<&str>) -> String {
    let body = json!({"members": members, "name": name}).to_string();
    let a = call("POST", &format!("{}/v1/rooms", c.rooms.base()), Some(token), Some(&body)).await;
    assert!(a.status == 201 || a.status == 200, "create room: {} {}", a.status, a.body);
    a.body["id"].as_str().expect("room id").to_owned()
}

async fn trust_acme_and_globex(c: &Cluster) {
    for (tenant, other) in [("acme", "globex"), ("globex", "acme")] {
        let admin = c.login(tenant, "admin").await;
        let body = json!({ "tenant": other }).to_string();
        let granted = call("POST", &format!("{}/v1/admin/trusts", c.authz.base()), Some(&admin), Some(&body)).await;
        assert!(granted.status == 200 || granted.status == 201, "{}", granted.body);
    }
}

async fn events_of(c: &Cluster, room: &str, token: &str) -> Vec<Value> {
    let a = call("GET", &format!("{}/v1/rooms/{room}/messages?limit=100", c.rooms.base()), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["events"].as_array().or_else(|| a.body["messages"].as_array()).cloned().unwrap_or_default()
}

fn call_events<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"]["type"] == kind || e["type"] == kind).collect()
}

/// The event itself, wherever the history puts it.
fn event_body(e: &Value) -> &Value {
    if e["event"].is_object() {
        &e["event"]
    } else {
        e
    }
}

#[actix_rt::test]
async fn a_call_rings_on_every_device_the_first_answer_wins_and_signals_reach_only_participants() {
    let c = Cluster::start("calls", &[]).await;
    let (alice, bob, admin) =
        (c.login("acme", "alice").await, c.login("acme", "bob").await, c.login("acme", "admin").await);
    let room = open_room(&c, &alice, &["bob@acme", "admin@acme"], Some("standup")).await;
    let ws = c.rooms.ws_url();
    let mut a = Ws::connect(&ws, &alice).await;
    let mut b1 = Ws::connect(&ws, &bob).await;
    let mut b2 = Ws::connect(&ws, &bob).await;
    let mut m = Ws::connect(&ws, &admin).await;
    for s in [&mut a, &mut b1, &mut b2, &mut m] {
        s.send(json!({"type": "ping"})).await;
        s.expect(10, "pong", |f| f["type"] == "pong").await;
    }

    // alice starts a video call: her device is in it, every device of bob and admin rings.
    a.send(json!({"type": "call_start", "room_id": room, "media": "video"})).await;
    let joined = a.expect(15, "alice's call_joined", |f| f["type"] == "call_joined").await;
    let call_id = joined["call_id"].as_str().expect("call id").to_owned();
    let alice_device = joined["device"].as_str().expect("device").to_owned();
    assert!(joined["ice_servers"].is_array(), "{joined}");
    for (who, s) in [("bob's first device", &mut b1), ("bob's second device", &mut b2), ("admin", &mut m)] {
        let ringing = s.expect(10, who, status_is("ringing", &room)).await;
        let mut rings: Vec<&str> =
            ringing["call"]["ringing"].as_array().expect("ringing").iter().filter_map(Value::as_str).collect();
        rings.sort_unstable();
        assert_eq!(rings, ["admin@acme", "bob@acme"], "{who}: {ringing}");
        assert_eq!(ringing["call"]["media"], "video");
        assert_eq!(ringing["call"]["call_id"], call_id.as_str());
    }
    // A device that connects now learns of the call ringing for it.
    let mut b3 = Ws::connect(&ws, &bob).await;
    let shown = b3.expect(10, "the call going on, at connect", status_is("ringing", &room)).await;
    assert_eq!(shown["call"]["call_id"], call_id.as_str());
    drop(b3);
    // One call per room. A refusal names the call frame's room.
    m.send(json!({"type": "call_start", "room_id": room, "media": "audio"})).await;
    let busy = m.expect(10, "call_in_progress", error("call_in_progress")).await;
    assert_eq!(busy["room_id"], room.as_str(), "{busy}");

    // bob answers on his second device: it wins, the first stops ringing (bob is in, on another
    // device), and the first cannot answer any more.
    b2.send(json!({"type": "call_accept", "room_id": room, "call_id": call_id})).await;
    let bob_joined = b2.expect(15, "bob's call_joined", |f| f["type"] == "call_joined").await;
    let bob_device = bob_joined["device"].as_str().expect("device").to_owned();
    assert_ne!(bob_device, alice_device);
    let active = b1.expect(10, "the call active on bob's first device", status_is("active", &room)).await;
    let bob_in =
        active["call"]["participants"].as_array().expect("participants").iter().find(|p| p["user"] == "bob@acme");
    assert_eq!(bob_in.map(|p| p["device"].clone()), Some(json!(bob_device)), "{active}");
    assert_eq!(active["call"]["ringing"], json!(["admin@acme"]), "{active}");
    b1.send(json!({"type": "call_accept", "room_id": room, "call_id": call_id})).await;
    b1.expect(10, "answered elsewhere", error("call_answered_elsewhere")).await;
    a.expect(10, "the call active for alice", status_is("active", &room)).await;

    // Signaling: from a participant's device to another's, and to nobody else.
    b2.send(signal(&room, &call_id, "alice@acme", json!({"kind": "offer", "sdp": "v=0 offer from bob"}))).await;
    let offer = a.expect(10, "bob's offer", |f| f["type"] == "call_signal").await;
    assert_eq!(
        (offer["from"].as_str(), offer["signal"]["sdp"].as_str()),
        (Some("bob@acme"), Some("v=0 offer from bob"))
    );
    a.send(signal(&room, &call_id, "bob@acme", json!({"kind": "answer", "sdp": "v=0 answer from alice"}))).await;
    a.send(signal(
        &room,
        &call_id,
        "bob@acme",
        json!({"kind": "ice", "candidate": "candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host", "sdp_mid": "0", "sdp_m_line_index": 0}),
    ))
    .await;
    let answer = b2.expect(10, "alice's answer", |f| f["type"] == "call_signal").await;
    assert_eq!(answer["signal"]["kind"], "answer");
    let ice = b2.expect(10, "alice's candidate", |f| f["type"] == "call_signal").await;
    assert_eq!((ice["signal"]["kind"].as_str(), ice["from"].as_str()), (Some("ice"), Some("alice@acme")));
    // Nothing of it reached bob's other device, nor admin (a member, not in the call).
    let leaked = |frames: &[Value]| frames.iter().filter(|f| f["type"] == "call_signal").count();
    let (b1_frames, m_frames) = (b1.drain(1).await, m.drain(1).await);
    assert_eq!(leaked(&b1_frames), 0, "bob's other device got signals: {b1_frames:?}");
    assert_eq!(leaked(&m_frames), 0, "admin got signals: {m_frames:?}");
    // Refused: from a member not in the call, to a member not in the call, from bob's device
    // that is not in the call, and over the size bound.
    m.send(signal(&room, &call_id, "alice@acme", json!({"kind": "offer", "sdp": "v=0 from admin"}))).await;
    let refused = m.expect(10, "admin is not in the call", error("not_in_call")).await;
    assert_eq!(
        (refused["room_id"].as_str(), refused["call_id"].as_str()),
        (Some(room.as_str()), Some(call_id.as_str()))
    );
    a.send(signal(&room, &call_id, "admin@acme", json!({"kind": "offer", "sdp": "v=0 to admin"}))).await;
    a.expect(10, "admin is not a participant", error("not_in_call")).await;
    b1.send(signal(&room, &call_id, "alice@acme", json!({"kind": "offer", "sdp": "v=0 from bob's other device"})))
        .await;
    b1.expect(10, "bob's first device is not in the call", error("not_in_call")).await;
    a.send(signal(&room, &call_id, "bob@acme", json!({"kind": "offer", "sdp": "a".repeat(40 * 1024)}))).await;
    a.expect(10, "too large", error("payload_too_large")).await;
    a.send(signal(&room, "00000000-0000-0000-0000-000000000000", "bob@acme", json!({"kind": "answer", "sdp": "v=0"})))
        .await;
    a.expect(10, "no such call", error("call_not_found")).await;

    // admin declines: the ringing stops; the call goes on.
    m.send(json!({"type": "call_decline", "room_id": room, "call_id": call_id})).await;
    let declined = m.expect(10, "admin's decline", |f| room_call(f, &room) && f["call"]["ringing"] == json!([])).await;
    assert_eq!(declined["call"]["status"], "active");
    // admin joins after all (a group call), then leaves: the call goes on with alice and bob.
    m.send(json!({"type": "call_join", "room_id": room, "call_id": call_id})).await;
    m.expect(10, "admin's call_joined", |f| f["type"] == "call_joined").await;
    a.expect(10, "three in the call", with_participants(&room, &["admin@acme", "alice@acme", "bob@acme"])).await;
    m.send(json!({"type": "call_hangup", "room_id": room, "call_id": call_id})).await;
    a.expect(10, "admin left", with_participants(&room, &["alice@acme", "bob@acme"])).await;

    // Nothing of the signaling since reached a device that was not its target.
    let b1_frames = b1.drain(2).await;
    let m_frames = m.drain(1).await;
    assert_eq!(leaked(&b1_frames), 0, "bob's other device got signals: {b1_frames:?}");
    assert_eq!(leaked(&m_frames), 0, "admin got signals: {m_frames:?}");

    // bob hangs up: two became one, the call ends, completed, with its duration.
    b2.send(json!({"type": "call_hangup", "room_id": room, "call_id": call_id})).await;
    for (who, s) in [("alice", &mut a), ("bob", &mut b2)] {
        let ended = s.expect(10, who, status_is("ended", &room)).await;
        assert_eq!(ended["call"]["end"]["reason"], "completed", "{who}: {ended}");
        assert!(ended["call"]["end"]["duration_ms"].as_i64().is_some_and(|d| d >= 0), "{ended}");
    }
    // Leaving a call that ended: call_not_found.
    a.send(json!({"type": "call_hangup", "room_id": room, "call_id": call_id})).await;
    a.expect(10, "the call is over", error("call_not_found")).await;

    // The history: the call started, then ended with its duration.
    let events = events_of(&c, &room, &alice).await;
    let started = call_events(&events, "call_started");
    let ended = call_events(&events, "call_ended");
    assert_eq!((started.len(), ended.len()), (1, 1), "{events:?}");
    let ended = event_body(ended[0]);
    assert_eq!((ended["reason"].as_str(), ended["media"].as_str()), (Some("completed"), Some("video")), "{ended}");
    assert!(ended["duration_ms"].as_i64().is_some(), "{ended}");
    // A new call may start now. bob answers; then his connection drops: his session leaves the
    // call for him, and a call of two ends.
    a.send(json!({"type": "call_start", "room_id": room, "media": "audio"})).await;
    let second = a.expect(15, "a second call", |f| f["type"] == "call_joined").await["call_id"].clone();
    b2.send(json!({"type": "call_accept", "room_id": room, "call_id": second})).await;
    b2.expect(15, "bob in the second call", |f| f["type"] == "call_joined").await;
    a.expect(10, "the second call active", status_is("active", &room)).await;
    drop(b2);
    let ended = a.expect(15, "the call ends with bob's connection", status_is("ended", &room)).await;
    assert_eq!(ended["call"]["end"]["reason"], "completed", "{ended}");

    let text = reqwest_metrics(&c).await;
    for (name, at_least) in [
        ("rooms_calls_started_total", 2.0),
        ("rooms_calls_answered_total", 1.0),
        ("rooms_calls_ended_total", 1.0),
        ("rooms_call_duration_seconds_count", 1.0),
        ("rooms_call_signals_total", 3.0),
    ] {
        let value = e2e::cluster::metric_sum(&text, name).unwrap_or(0.0);
        assert!(value >= at_least, "{name} = {value}");
    }
}

async fn reqwest_metrics(c: &Cluster) -> String {
    let mut answer = http().get(format!("{}/metrics", c.rooms.base())).send().await.expect("metrics");
    String::from_utf8_lossy(&answer.body().await.expect("body")).into_owned()
}

#[actix_rt::test]
async fn an_unanswered_call_rings_out_as_missed_and_a_call_survives_the_node_restarting() {
    let mut c = Cluster::start_with("callsmissed", &[], &[("CHAT__CALLS__RING_TIMEOUT_SECS", "2")]).await;
    let (alice, bob) = (c.login("acme", "alice").await, c.login("acme", "bob").await);
    let room = open_room(&c, &alice, &["bob@acme"], None).await;
    let mut a = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let mut b = Ws::connect(&c.rooms.ws_url(), &bob).await;

    // Nobody answers: after the ring timeout the call ends as missed, for bob.
    a.send(json!({"type": "call_start", "room_id": room, "media": "audio"})).await;
    let call_id = a.expect(15, "call_joined", |f| f["type"] == "call_joined").await["call_id"].clone();
    b.expect(10, "ringing", status_is("ringing", &room)).await;
    // The history entry (the room's event) comes first, then the call's last state.
    let history =
        b.expect(15, "the history entry", |f| f["type"] == "room_event" && f["event"]["type"] == "call_ended").await;
    assert_eq!(history["event"]["missed"], json!(["bob@acme"]), "{history}");
    assert_eq!(history["event"]["reason"], "missed");
    let missed = b.expect(5, "the missed call", status_is("ended", &room)).await;
    assert_eq!(missed["call"]["end"], json!({"reason": "missed"}), "{missed}");
    assert_eq!(missed["call"]["call_id"], call_id);

    // alice cancels before bob answers: cancelled, missed by bob.
    a.send(json!({"type": "call_start", "room_id": room, "media": "audio"})).await;
    let call_id = a.expect(15, "call_joined", |f| f["type"] == "call_joined").await["call_id"].clone();
    a.send(json!({"type": "call_cancel", "room_id": room, "call_id": call_id})).await;
    let cancelled = b.expect(10, "cancelled", status_is("ended", &room)).await;
    assert_eq!(cancelled["call"]["end"]["reason"], "cancelled", "{cancelled}");

    // bob declines a call of two: declined.
    a.send(json!({"type": "call_start", "room_id": room, "media": "video"})).await;
    let call_id = a.expect(15, "call_joined", |f| f["type"] == "call_joined").await["call_id"].clone();
    b.send(json!({"type": "call_decline", "room_id": room, "call_id": call_id})).await;
    let declined = a.expect(10, "declined", status_is("ended", &room)).await;
    assert_eq!(declined["call"]["end"]["reason"], "declined", "{declined}");

    // A call going on; bob moves it to another device of his (`call_join` from there): his first
    // device sees his place move, and may not answer any more.
    a.send(json!({"type": "call_start", "room_id": room, "media": "video"})).await;
    let call_id = a.expect(15, "call_joined", |f| f["type"] == "call_joined").await["call_id"].clone();
    b.send(json!({"type": "call_accept", "room_id": room, "call_id": call_id})).await;
    let first_device = b.expect(15, "bob in", |f| f["type"] == "call_joined").await["device"].clone();
    a.expect(10, "active", status_is("active", &room)).await;
    let mut b2 = Ws::connect(&c.rooms.ws_url(), &bob).await;
    b2.send(json!({"type": "call_accept", "room_id": room, "call_id": call_id})).await;
    b2.expect(10, "answered elsewhere", error("call_answered_elsewhere")).await;
    b2.send(json!({"type": "call_join", "room_id": room, "call_id": call_id})).await;
    let second_device =
        b2.expect(10, "bob's second device in the call", |f| f["type"] == "call_joined").await["device"].clone();
    assert_ne!(first_device, second_device);
    let moved = b
        .expect(10, "bob's place moved", |f| {
            room_call(f, &room)
                && f["call"]["participants"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["device"] == second_device))
        })
        .await;
    assert_eq!(moved["call"]["participants"].as_array().map(Vec::len), Some(2), "{moved}");

    // And, in a second room, a call still ringing.
    let admin = c.login("acme", "admin").await;
    let other = open_room(&c, &alice, &["admin@acme"], None).await;
    a.send(json!({"type": "call_start", "room_id": other, "media": "audio"})).await;
    a.expect(15, "the second room's call", |f| f["type"] == "call_joined" && f["room_id"] == other.as_str()).await;

    // The rooms node dies (its sessions cannot hang up) and comes back as a new node. The calls
    // are in the store; the node's sweep finds the devices of a node that is no longer a cluster
    // member, and rings past their deadline: the ringing call ends (its caller's device gone, or
    // its ring out, whichever the sweep sees first), missed by admin; the call of two ends,
    // completed, with its duration. No command was sent to either room.
    drop((a, b, b2));
    c.rooms.kill();
    c.rooms.restart().await;
    let rang_out = eventually(30, "the ring that outlived its actor ended", || async {
        let events = events_of(&c, &other, &admin).await;
        call_events(&events, "call_ended").first().map(|e| event_body(e).clone())
    })
    .await;
    assert!(["missed", "cancelled"].contains(&rang_out["reason"].as_str().unwrap_or("")), "{rang_out}");
    assert_eq!(rang_out["missed"], json!(["admin@acme"]), "{rang_out}");
    let ended = eventually(30, "the call of the dead node's devices ended", || async {
        let events = events_of(&c, &room, &alice).await;
        let ended = call_events(&events, "call_ended");
        (ended.len() == 4).then(|| event_body(ended[3]).clone())
    })
    .await;
    assert_eq!(ended["reason"], "completed", "{ended}");
    assert!(ended["duration_ms"].as_i64().is_some_and(|d| d > 0), "{ended}");
    // The room is free for a new call, and a device that connects is told of no call.
    let mut a = Ws::connect(&c.rooms.ws_url(), &alice).await;
    a.send(json!({"type": "call_start", "room_id": room, "media": "audio"})).await;
    let fresh = a.expect(15, "a new call", |f| f["type"] == "call_joined" || f["type"] == "call").await;
    assert!(fresh["type"] == "call_joined" || fresh["call"]["call_id"] != call_id, "{fresh}");
}

#[actix_rt::test]
async fn calls_are_refused_in_rooms_with_line_users() {
    let c = Cluster::start("callsline", &[]).await;
    let admin = c.login("acme", "admin").await;
    let alice = c.login("acme", "alice").await;
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
    assert_eq!(granted.status, 200, "{}", granted.body);
    let room: Value = eventually(10, "the LINE room", || async {
        let body = r#"{"members":["bob@acme","line:U1"],"name":"shop"}"#;
        let a = call("POST", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), Some(body)).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    let room_id = room["id"].as_str().expect("id").to_owned();
    let mut a = Ws::connect(&c.rooms.ws_url(), &alice).await;
    a.send(json!({"type": "call_start", "room_id": room_id, "media": "video"})).await;
    let refused = a.expect(15, "the refusal", |f| f["type"] == "error").await;
    assert_eq!(refused["code"], "calls_unavailable_with_line", "{refused}");
    // Nothing was written: no call event in the room.
    let events = events_of(&c, &room_id, &alice).await;
    assert!(call_events(&events, "call_started").is_empty(), "{events:?}");
}

#[actix_rt::test]
async fn a_withdrawn_trust_ends_a_running_call_at_once() {
    let c = Cluster::start("callstrust", &[]).await;
    trust_acme_and_globex(&c).await;
    let (acme, alice, carol) =
        (c.login("acme", "admin").await, c.login("acme", "alice").await, c.login("globex", "carol").await);
    let created =
        call("POST", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), Some(r#"{"members":["carol@globex"]}"#))
            .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["kind"], "external_direct");
    let room = created.body["id"].as_str().expect("id").to_owned();
    let mut a = Ws::connect(&c.rooms.ws_url(), &alice).await;
    let mut k = Ws::connect(&c.rooms.ws_url(), &carol).await;

    // While both companies trust each other, they call.
    a.send(json!({"type": "call_start", "room_id": room, "media": "video"})).await;
    let call_id = a.expect(15, "call_joined", |f| f["type"] == "call_joined").await["call_id"].clone();
    k.expect(10, "ringing for carol", status_is("ringing", &room)).await;
    k.send(json!({"type": "call_accept", "room_id": room, "call_id": call_id})).await;
    k.expect(15, "carol in", |f| f["type"] == "call_joined").await;
    a.expect(10, "active", status_is("active", &room)).await;

    // acme's admin withdraws the trust: carol is excluded and the call ends at once, revoked.
    let revoked = call("DELETE", &format!("{}/v1/admin/trusts/globex", c.authz.base()), Some(&acme), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    for (who, s) in [("alice", &mut a), ("carol", &mut k)] {
        let ended = s.expect(15, who, status_is("ended", &room)).await;
        assert_eq!(ended["call"]["end"]["reason"], "revoked", "{who}: {ended}");
    }
    // No new call: carol is no longer in the room, and alice alone has nobody to call.
    a.send(json!({"type": "call_start", "room_id": room, "media": "audio"})).await;
    let refused = a.expect(15, "no call without the trust", |f| f["type"] == "error").await;
    assert!(
        ["external_not_authorized", "not_allowed_for_kind"].contains(&refused["code"].as_str().unwrap_or("")),
        "{refused}"
    );
    let events = events_of(&c, &room, &alice).await;
    let ended = call_events(&events, "call_ended");
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(event_body(ended[0])["reason"], "revoked");
}
