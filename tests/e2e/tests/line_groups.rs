//! LINE groups and the closing of LINE rooms, through the real binaries and the LINE platform
//! simulator: the member's account is invited into a LINE group (a connected room named after
//! the group, and a notification), LINE users join, write and leave, a member's message goes
//! to the group once with `sender.name`, the account leaves (the room keeps its history and
//! refuses messages: `line_room_closed`, and a notification); a LINE user who unfollows leaves
//! their 1:1 room, closed for sending until they follow again. Every request to LINE matches
//! `messaging-api.yml`.

use e2e::line::{allow_line_and_bind, history_of, line_profile, member_ids, rooms_of_kind, send_events};
use e2e::*;
use line_sim::events::{self, Source};
use line_sim::{Channel, Group, RecordedRequest};
use serde_json::{json, Value};

const PUSH: &str = "/v2/bot/message/push";
const GROUP: &str = "Ca56f94637cc4347f90a25382909b24b9";
const RIKO: &str = "U1111111111111111111111111111111a";
const KENJI: &str = "U2222222222222222222222222222222b";
const TARO: &str = "U3333333333333333333333333333333c";

async fn post(c: &Cluster, room: &str, token: &str, id: &str, text: &str) -> Answer {
    let body = json!({"client_msg_id": id, "body": {"type": "text", "text": text}}).to_string();
    call("POST", &format!("{}/v1/rooms/{room}/messages", c.rooms.base()), Some(token), Some(&body)).await
}

async fn notification(c: &Cluster, token: &str, kind: &str) -> Value {
    eventually(15, kind, || async {
        let a = call("GET", &format!("{}/v1/notifications", c.rooms.base()), Some(token), None).await;
        a.body["notifications"].as_array().and_then(|l| l.iter().find(|n| n["kind"] == kind).cloned())
    })
    .await
}

async fn pushes(sim: &line_sim::Client, channel: &str, needle: &str) -> Vec<RecordedRequest> {
    let all = sim.requests(Some(PUSH), Some(channel)).await.expect("the simulator's records");
    all.into_iter().filter(|r| r.body["messages"].to_string().contains(needle)).collect()
}

#[actix_rt::test]
async fn a_line_group_gets_a_connected_room_and_closed_line_rooms_refuse_messages() {
    let running = line_sim::start("127.0.0.1:0").expect("the simulator starts");
    let sim = running.client();
    let mut c = Cluster::start("line_groups", &[]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[
        ("CHAT__LINE__API_BASE_URL", &running.base_url),
        ("CHAT__LINE__DATA_API_BASE_URL", &running.base_url),
    ])
    .await;
    let channel = Channel::random("1660000077");
    sim.register_channel(&channel).await.expect("channel");
    let group = Group {
        channel_id: channel.channel_id.clone(),
        group_id: GROUP.into(),
        group_name: "Tokyo shop".into(),
        picture_url: None,
    };
    sim.add_group(&group).await.expect("group");
    // Group members who are not the account's friends: LINE gives their profile in the group.
    for (id, name) in [(RIKO, "Riko Mori"), (KENJI, "Kenji Sato")] {
        let picture = Some(format!("https://profile.line-scdn.net/{id}"));
        sim.add_profile(&line_profile(&channel, id, name, picture)).await.expect("profile");
    }
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    allow_line_and_bind(&c, &admin, "alice@acme", &channel).await;
    let send = |events: Vec<Value>| send_events(&sim, &c, &channel, events);

    // The account joins the group: a room named after it, with the group in it; alice is told.
    let in_group = Source::group(GROUP, None);
    send(vec![events::join(&in_group)]).await;
    let room = eventually(15, "the group's room", || async {
        let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), None).await;
        a.body["rooms"].as_array().and_then(|rooms| {
            rooms
                .iter()
                .find(|r| r["kind"] == "line_group")
                .map(|r| (r["id"].as_str().unwrap_or("").to_owned(), r.clone()))
        })
    })
    .await;
    let (room, listed) = room;
    assert_eq!(listed["name"], "Tokyo shop", "{listed}");
    let joined = notification(&c, &alice, "line_group_joined").await;
    assert!(joined["text"].as_str().unwrap_or("").contains("Tokyo shop"), "{joined}");
    assert_eq!(member_ids(&c, &room, &alice).await.len(), 2, "alice and the group");

    // Riko joins; Kenji, in the group before, writes: both are in the room, his message too.
    send(vec![events::member_joined(&in_group, &[RIKO])]).await;
    let kenji_says = events::text(&Source::group(GROUP, Some(KENJI)), "700000000000001", "hello from the shop");
    send(vec![kenji_says]).await;
    let seen = eventually(15, "Kenji's message", || async {
        let h = history_of(&c, &room, &alice).await;
        h.iter().any(|e| e["body"]["text"] == "hello from the shop").then_some(h)
    })
    .await;
    let said = seen.iter().find(|e| e["body"]["text"] == "hello from the shop").expect("the message");
    assert_eq!(said["sender"], format!("line:{KENJI}"));
    let now = member_ids(&c, &room, &alice).await;
    for who in [format!("line:{RIKO}"), format!("line:{KENJI}"), format!("line:{GROUP}"), "alice@acme".into()] {
        assert!(now.contains(&who), "{who} in {now:?}");
    }

    // The room shows them by their LINE names, to members of alice's company only.
    let ask = format!("{}/v1/line/profiles?users=line:{RIKO},line:{KENJI},line:U9999", c.line_gateway());
    let known = call("GET", &ask, Some(&alice), None).await;
    assert_eq!(known.status, 200, "{}", known.body);
    let mut names: Vec<(String, String)> = known.body["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| (p["user"].as_str().unwrap_or("").to_owned(), p["display_name"].as_str().unwrap_or("").to_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [(format!("line:{RIKO}"), "Riko Mori".to_owned()), (format!("line:{KENJI}"), "Kenji Sato".to_owned())]
    );
    let carol = c.login("globex", "carol").await;
    let foreign = call("GET", &ask, Some(&carol), None).await;
    assert_eq!(foreign.body["profiles"], json!([]), "another company knows none of them");

    // Alice answers: one push, to the group, saying who speaks.
    let answer = post(&c, &room, &alice, "g1", "Welcome, everyone").await;
    assert!(answer.status == 200 || answer.status == 201, "{}", answer.body);
    let pushed = eventually(15, "the push to the group", || async {
        let p = pushes(&sim, &channel.channel_id, "Welcome, everyone").await;
        (p.len() == 1 && p[0].status == 200).then_some(p)
    })
    .await;
    assert_eq!(pushed[0].body["to"], GROUP, "once, to the group");
    assert!(pushed[0].body["messages"][0]["sender"]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty() && n.chars().count() <= 20));

    // Alice brings Bob into the room; a photo from the group is his to open too, as a member of
    // the room (rooms says so), not the admin's, who is not in it, nor another company's.
    let invite = json!({"users": ["bob@acme"]}).to_string();
    let added = call("POST", &format!("{}/v1/rooms/{room}/members", c.rooms.base()), Some(&alice), Some(&invite)).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let photo: Vec<u8> = (0..5_000u32).map(|i| (i % 253) as u8).collect();
    sim.put_content("700000000000009", "image/png", photo.clone()).await.expect("content");
    send(vec![events::image(&Source::group(GROUP, Some(KENJI)), "700000000000009")]).await;
    let shown = eventually(15, "the group's photo", || async {
        history_of(&c, &room, &alice).await.into_iter().find(|e| e["body"]["type"] == "image")
    })
    .await;
    let url = shown["body"]["url"].as_str().expect("an engine URL");
    let media = format!("{}{}", c.line_gateway(), &url[url.find("/v1/line/media/").expect("the media path")..]);
    let (bob, admin_token) = (c.login("acme", "bob").await, admin.clone());
    for (who, token, status) in
        [("alice", &alice, 200), ("bob", &bob, 200), ("acme's admin", &admin_token, 404), ("carol", &carol, 404)]
    {
        let mut res =
            http().get(&media).insert_header(("Authorization", format!("Bearer {token}"))).send().await.expect("media");
        assert_eq!(res.status().as_u16(), status, "{who}");
        if status == 200 {
            assert_eq!(res.body().limit(1 << 20).await.expect("bytes").to_vec(), photo, "{who}");
        }
    }

    // Riko leaves the group, then the account is removed from it: the room stays, closed.
    send(vec![events::member_left(&in_group, &[RIKO])]).await;
    eventually(15, "Riko gone", || async {
        (!member_ids(&c, &room, &alice).await.contains(&format!("line:{RIKO}"))).then_some(())
    })
    .await;
    send(vec![events::leave(&in_group)]).await;
    let left = notification(&c, &alice, "line_group_left").await;
    assert!(left["text"].as_str().unwrap_or("").contains("removed"), "{left}");
    // Once the group and its LINE users left the room (each post has its own id: a retried
    // post would be answered from the record of the first), it refuses messages.
    let left_in = eventually(15, "the LINE participants gone", || async {
        let now = member_ids(&c, &room, &alice).await;
        now.iter().all(|m| !m.starts_with("line:")).then_some(now)
    })
    .await;
    assert!(left_in.contains(&"alice@acme".to_owned()), "{left_in:?}");
    let closed = post(&c, &room, &alice, "g2", "anyone there?").await;
    assert_eq!(closed.status, 409, "{}", closed.body);
    assert_eq!(closed.body["error"]["code"], "line_room_closed", "{}", closed.body);
    let kept = history_of(&c, &room, &alice).await;
    assert!(kept.iter().any(|e| e["body"]["text"] == "hello from the shop"), "the history stays");

    // A LINE user who unfollows leaves the 1:1 room: closed until he follows again.
    sim.add_profile(&line_profile(&channel, TARO, "Taro", None)).await.expect("profile");
    let taro = Source::user(TARO);
    send(vec![events::follow(&taro, false)]).await;
    let direct =
        eventually(15, "Taro's room", || async { rooms_of_kind(&c, &alice, "line_direct").await.into_iter().next() })
            .await;
    let open = post(&c, &direct, &alice, "d1", "Hi Taro").await;
    assert!(open.status == 200 || open.status == 201, "{}", open.body);
    send(vec![events::unfollow(&taro)]).await;
    eventually(15, "Taro gone from the 1:1 room", || async {
        (!member_ids(&c, &direct, &alice).await.contains(&format!("line:{TARO}"))).then_some(())
    })
    .await;
    let refused = post(&c, &direct, &alice, "d2", "are you there?").await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "line_room_closed");
    send(vec![events::follow(&taro, true)]).await;
    eventually(15, "Taro back in the 1:1 room", || async {
        member_ids(&c, &direct, &alice).await.contains(&format!("line:{TARO}")).then_some(())
    })
    .await;
    let back = post(&c, &direct, &alice, "d3", "welcome back").await;
    assert!(back.status == 200 || back.status == 201, "{}", back.body);
    eventually(15, "the push after the follow", || async {
        (pushes(&sim, &channel.channel_id, "welcome back").await.len() == 1).then_some(())
    })
    .await;
    assert!(pushes(&sim, &channel.channel_id, "are you there?").await.is_empty(), "nothing went out while closed");

    let invalid = sim.invalid().await.expect("records");
    assert!(invalid.is_empty(), "every request to LINE matches messaging-api.yml: {invalid:?}");
}

/// A room alice makes with two LINE users: on LINE each sees a 1:1 chat with her account.
/// Her messages reach both, named; an answer goes to the room that wrote to its writer last
/// and reaches the other LINE user named after its writer; once her 1:1 room with one of them
/// writes, that one's answers go back there, unless they quote a message of another room.
#[actix_rt::test]
async fn a_members_room_with_several_line_users_routes_answers_and_relays_them() {
    let running = line_sim::start("127.0.0.1:0").expect("the simulator starts");
    let sim = running.client();
    let mut c = Cluster::start("line_multi", &[]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[
        ("CHAT__LINE__API_BASE_URL", &running.base_url),
        ("CHAT__LINE__DATA_API_BASE_URL", &running.base_url),
    ])
    .await;
    let channel = Channel::random("1660000078");
    sim.register_channel(&channel).await.expect("channel");
    for (id, name) in [(RIKO, "Riko"), (KENJI, "Kenji")] {
        sim.add_profile(&line_profile(&channel, id, name, None)).await.expect("profile");
    }
    let (admin, alice) = (c.login("acme", "admin").await, c.login("acme", "alice").await);
    allow_line_and_bind(&c, &admin, "alice@acme", &channel).await;
    let send = |events: Vec<Value>| send_events(&sim, &c, &channel, events);
    let (riko, kenji) = (Source::user(RIKO), Source::user(KENJI));
    send(vec![events::follow(&riko, false), events::follow(&kenji, false)]).await;
    let directs = eventually(15, "both 1:1 rooms", || async {
        let rooms = rooms_of_kind(&c, &alice, "line_direct").await;
        (rooms.len() == 2).then_some(rooms)
    })
    .await;

    let create = json!({"members": [format!("line:{RIKO}"), format!("line:{KENJI}")], "name": "Trip"}).to_string();
    let made = call("POST", &format!("{}/v1/rooms", c.rooms.base()), Some(&alice), Some(&create)).await;
    assert!(made.status == 200 || made.status == 201, "{}", made.body);
    let trip = made.body["id"].as_str().or(made.body["room_id"].as_str()).expect("the room's id").to_owned();

    // Alice's message reaches both, each in their 1:1 chat with her account, named.
    let plan = post(&c, &trip, &alice, "t1", "Plan for Friday").await;
    assert!(plan.status == 200 || plan.status == 201, "{}", plan.body);
    let both = eventually(15, "the pushes to both", || async {
        let p = pushes(&sim, &channel.channel_id, "Plan for Friday").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let mut to: Vec<&str> = both.iter().filter_map(|p| p.body["to"].as_str()).collect();
    to.sort();
    assert_eq!(to, [RIKO, KENJI]);
    assert!(both.iter().all(|p| p.body["messages"][0]["sender"]["name"].as_str().is_some()));

    // Riko answers in her chat with alice: into Trip, and on to Kenji under her LINE name.
    send(vec![events::text(&riko, "710000000000001", "Sounds good")]).await;
    eventually(15, "Riko's answer in Trip", || async {
        history_of(&c, &trip, &alice).await.iter().any(|e| e["body"]["text"] == "Sounds good").then_some(())
    })
    .await;
    for direct in &directs {
        let h = history_of(&c, direct, &alice).await;
        assert!(!h.iter().any(|e| e["body"]["text"] == "Sounds good"), "not in a 1:1 room");
    }
    let relayed = eventually(15, "the relay to Kenji", || async {
        let p = pushes(&sim, &channel.channel_id, "Sounds good").await;
        (p.len() == 1).then_some(p)
    })
    .await;
    assert_eq!(relayed[0].body["to"], KENJI, "not back to Riko");
    assert_eq!(relayed[0].body["messages"][0]["sender"]["name"], "Riko");

    // Alice writes to Riko alone: Riko's next answer goes to their 1:1 room.
    let riko_room = eventually(15, "Riko's 1:1 room", || async {
        for direct in &directs {
            let members = member_ids(&c, direct, &alice).await;
            if members.contains(&format!("line:{RIKO}")) {
                return Some(direct.clone());
            }
        }
        None
    })
    .await;
    let alone = post(&c, &riko_room, &alice, "r1", "Just us").await;
    assert!(alone.status == 200 || alone.status == 201, "{}", alone.body);
    eventually(15, "the 1:1 push", || async {
        (pushes(&sim, &channel.channel_id, "Just us").await.len() == 1).then_some(())
    })
    .await;
    send(vec![events::text(&riko, "710000000000002", "ok, just us")]).await;
    eventually(15, "Riko's answer in her 1:1 room", || async {
        history_of(&c, &riko_room, &alice).await.iter().any(|e| e["body"]["text"] == "ok, just us").then_some(())
    })
    .await;
    assert!(pushes(&sim, &channel.channel_id, "ok, just us").await.is_empty(), "a 1:1 answer is relayed to nobody");

    // Riko quotes alice's message from Trip: her answer goes to Trip, whatever wrote to her last.
    let to_riko = both.iter().find(|p| p.body["to"] == RIKO).expect("the push to Riko");
    let quoted = to_riko.sent_message_ids.first().cloned().expect("LINE's id of the message sent");
    let extras = events::TextExtras { quoted_message_id: Some(quoted), ..Default::default() };
    send(vec![events::text_with(&riko, "710000000000003", "Friday works", &extras)]).await;
    eventually(15, "the quoting answer in Trip", || async {
        history_of(&c, &trip, &alice).await.iter().any(|e| e["body"]["text"] == "Friday works").then_some(())
    })
    .await;
    let in_direct = history_of(&c, &riko_room, &alice).await;
    assert!(!in_direct.iter().any(|e| e["body"]["text"] == "Friday works"), "not in the 1:1 room");

    let invalid = sim.invalid().await.expect("records");
    assert!(invalid.is_empty(), "every request to LINE matches messaging-api.yml: {invalid:?}");
}
