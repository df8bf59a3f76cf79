//! LINE users' media and unsends, against the LINE simulator (`line_sim`, in-process): content
//! kept at once and served to the member after LINE deleted it, refused to another tenant;
//! content too large, still being prepared (202), already gone (404), held elsewhere
//! (`external`); an unsent message recalled in its room.

use super::*;
use crate::inbox::CONTENT_GONE;
use crate::media::media_id;
use line_sim::ScriptedResponse;

/// The simulator, with `CHANNEL` registered under the core's token.
fn simulator() -> line_sim::Running {
    let sim = line_sim::start("127.0.0.1:0").unwrap();
    let channel = line_sim::Channel {
        channel_id: CHANNEL.into(),
        channel_secret: SECRET.into(),
        access_token: "access-token".into(),
        basic_id: "@alice".into(),
        bot_user_id: DESTINATION.into(),
        display_name: None,
    };
    sim.sim.register_channel(channel).unwrap();
    sim
}

/// Store `events` in the inbox.
async fn receive(db: &TestDb, events: Vec<String>) {
    let (_, events) = crate::webhook::parse_envelope(envelope(&events).as_bytes()).unwrap();
    db.store.insert_events(DESTINATION, CHANNEL, &events, chat_protocol::now_ms()).await.unwrap();
}

/// The bodies posted so far, in order.
fn posted_bodies(commands: &Commands) -> Vec<Body> {
    let seen = commands.lock().unwrap().clone();
    seen.into_iter()
        .filter_map(|c| match c.command {
            RoomCommand::Post { body, .. } => Some(body),
            _ => None,
        })
        .collect()
}

fn token(core: &LineCore, user: &str, tenant: &str) -> String {
    chat_auth::mint(&core.settings.auth, user, tenant, &[], 600)
}

fn media_event(id: &str, message: &str) -> String {
    event(id, "message", &format!(r#","message":{message}"#))
}

#[actix_web::test]
async fn line_media_is_kept_at_once_and_served_to_the_member_after_line_deleted_it() {
    let db = TestDb::new().await;
    let sim = simulator();
    let (core, _published, commands) = core_at(&db, &sim.base_url, 1024).await;
    let png: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    sim.sim.put_content("100", "image/png", png.clone());
    sim.sim.put_content("200", "video/mp4", vec![7; 2000]);
    sim.sim.put_content("300", "audio/x-m4a", vec![3; 30]);
    sim.sim.script("/v2/bot/message/300/content", vec![ScriptedResponse::status(202)]);
    receive(
        &db,
        vec![
            media_event(
                "01HMEDIAIMAGE000000000000A",
                r#"{"id":"100","type":"image","contentProvider":{"type":"line"}}"#,
            ),
            media_event(
                "01HMEDIABIG00000000000000A",
                r#"{"id":"200","type":"video","duration":1,"contentProvider":{"type":"line"}}"#,
            ),
            media_event(
                "01HMEDIAAUDIO000000000000A",
                r#"{"id":"300","type":"audio","duration":1,"contentProvider":{"type":"line"}}"#,
            ),
        ],
    )
    .await;
    assert_eq!(drain_inbox(&core).await, 3);

    let image_id = media_id(CHANNEL, "100");
    let bodies = posted_bodies(&commands);
    assert_eq!(bodies.len(), 2, "the audio waits for LINE: {bodies:?}");
    assert_eq!(
        bodies[0],
        Body::Image { url: format!("http://engine.test/v1/line/media/{image_id}"), name: None, size: Some(700) }
    );
    let Body::Text { text } = &bodies[1] else { panic!("a text says the video was not kept: {:?}", bodies[1]) };
    assert!(text.contains("not kept"), "{text}");
    assert!(db.store.media_of_message(CHANNEL, "200").await.unwrap().is_none());

    // 202: retried, then kept as a file with its default name.
    let (processed, failed, last_error) =
        db.store.inbox_state(DESTINATION, "01HMEDIAAUDIO000000000000A").await.unwrap();
    assert!(!processed && !failed, "{last_error:?}");
    while let Some(row) = db.store.claim(chat_protocol::now_ms() + 600_000, 60_000).await.unwrap() {
        crate::inbox::process(&core, row).await;
    }
    let audio_id = media_id(CHANNEL, "300");
    assert_eq!(
        posted_bodies(&commands)[2],
        Body::File {
            url: format!("http://engine.test/v1/line/media/{audio_id}"),
            name: Some("audio.m4a".into()),
            size: Some(30)
        }
    );

    // LINE deletes the content; the member still gets it, with its type; another tenant not.
    assert!(sim.sim.delete_content("100"));
    let app = test::init_service(App::new().configure(crate::configure(&core))).await;
    let get = |token: Option<String>, id: &str| {
        let mut req = test::TestRequest::get().uri(&format!("/v1/line/media/{id}"));
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        req.to_request()
    };
    let res = test::call_service(&app, get(Some(token(&core, "alice@acme", "acme")), &image_id)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-type").unwrap(), "image/png");
    assert_eq!(res.headers().get("cache-control").unwrap(), "private, max-age=3600");
    assert_eq!(test::read_body(res).await.to_vec(), png);
    let res = test::call_service(&app, get(Some(token(&core, "alice@acme", "acme")), &audio_id)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-disposition").unwrap().to_str().unwrap().starts_with("attachment"));
    let res = test::call_service(&app, get(Some(token(&core, "bob@acme", "acme")), &image_id)).await;
    assert_eq!(res.status(), 404, "another member of the same company: not theirs");
    let res = test::call_service(&app, get(Some(token(&core, "mallory@globex", "globex")), &image_id)).await;
    assert_eq!(res.status(), 404);
    let res = test::call_service(&app, get(Some(token(&core, "alice@acme", "acme")), "no-such-media")).await;
    assert_eq!(res.status(), 404);
    let res = test::call_service(&app, get(None, &image_id)).await;
    assert_eq!(res.status(), 401);

    // Processed again (a worker died before settling it): found in the store, posted alike.
    receive(
        &db,
        vec![media_event(
            "01HMEDIAIMAGE000000000000B",
            r#"{"id":"100","type":"image","contentProvider":{"type":"line"}}"#,
        )],
    )
    .await;
    assert_eq!(drain_inbox(&core).await, 1);
    assert_eq!(posted_bodies(&commands)[3], bodies[0]);
    assert!(sim.sim.invalid().is_empty(), "every request to LINE was valid: {:?}", sim.sim.invalid());
    sim.handle.stop();
    db.drop().await;
}

#[actix_web::test]
async fn gone_external_and_oversized_files_are_not_downloaded_or_fail() {
    let db = TestDb::new().await;
    let sim = simulator();
    let (core, _published, commands) = core_at(&db, &sim.base_url, 1024).await;
    receive(
        &db,
        vec![
            media_event("01HMEDIAGONE0000000000000A", r#"{"id":"400","type":"image","contentProvider":{"type":"line"}}"#),
            media_event(
                "01HMEDIAEXTERNAL000000000A",
                r#"{"id":"401","type":"image","contentProvider":{"type":"external","originalContentUrl":"https://cdn.example/a.jpg","previewImageUrl":"https://cdn.example/p.jpg"}}"#,
            ),
            media_event("01HMEDIAFILE0000000000000A", r#"{"id":"402","type":"file","fileName":"big.zip","fileSize":999999}"#),
        ],
    )
    .await;
    assert_eq!(drain_inbox(&core).await, 3);
    let (processed, failed, last_error) =
        db.store.inbox_state(DESTINATION, "01HMEDIAGONE0000000000000A").await.unwrap();
    assert!(processed && failed);
    assert_eq!(last_error.as_deref(), Some(CONTENT_GONE));
    let bodies = posted_bodies(&commands);
    assert_eq!(bodies.len(), 2, "nothing for the gone image: {bodies:?}");
    assert_eq!(bodies[0], Body::Image { url: "https://cdn.example/a.jpg".into(), name: None, size: None });
    let Body::Text { text } = &bodies[1] else { panic!("{:?}", bodies[1]) };
    assert!(text.contains("big.zip") && text.contains("not kept"), "{text}");
    let downloads = sim.sim.requests(Some("/v2/bot/message/402/content"), None);
    assert!(downloads.is_empty(), "a file LINE says is too large is not downloaded");
    sim.handle.stop();
    db.drop().await;
}

#[actix_web::test]
async fn an_unsent_message_is_recalled_as_the_line_user_and_an_unknown_one_ignored() {
    let db = TestDb::new().await;
    let sim = simulator();
    let (core, _published, commands) = core_at(&db, &sim.base_url, 1024).await;
    let text = event("01HUNSENDTEXT000000000000A", "message", r#","message":{"id":"500","type":"text","text":"oops"}"#);
    receive(&db, vec![text]).await;
    assert_eq!(drain_inbox(&core).await, 1);
    let posted = db.store.posted(CHANNEL, "500").await.unwrap().unwrap();

    let unsend = event("01HUNSEND0000000000000000A", "unsend", r#","unsend":{"messageId":"500"}"#);
    let unknown = event("01HUNSEND0000000000000000B", "unsend", r#","unsend":{"messageId":"999"}"#);
    receive(&db, vec![unsend, unknown]).await;
    assert_eq!(drain_inbox(&core).await, 2);
    let seen = commands.lock().unwrap().clone();
    let recalls: Vec<_> = seen.iter().filter(|c| matches!(c.command, RoomCommand::Recall { .. })).collect();
    assert_eq!(recalls.len(), 1, "the unknown message is ignored");
    let RoomCommand::Recall { message_id } = &recalls[0].command else { unreachable!() };
    assert_eq!(message_id, &posted.message_id);
    assert_eq!(recalls[0].room_id, posted.room_id);
    let taro = UserId::new(format!("line:{TARO}"));
    assert_eq!((recalls[0].actor.clone(), recalls[0].tenant.clone()), (taro, TenantId::line()));
    for id in ["01HUNSEND0000000000000000A", "01HUNSEND0000000000000000B"] {
        let (processed, failed, _) = db.store.inbox_state(DESTINATION, id).await.unwrap();
        assert!(processed && !failed, "{id}");
    }
    sim.handle.stop();
    db.drop().await;
}

#[actix_web::test]
async fn content_line_keeps_preparing_is_waited_for_ten_minutes_then_the_room_says_so() {
    let db = TestDb::new().await;
    let sim = simulator();
    let (core, _published, commands) = core_at(&db, &sim.base_url, 1024).await;
    sim.sim.put_content("400", "video/mp4", vec![1; 10]);
    sim.sim.script("/v2/bot/message/400/content", vec![ScriptedResponse::status(202), ScriptedResponse::status(202)]);
    let video = media_event(
        "01HMEDIASLOWVIDEO00000000A",
        r#"{"id":"400","type":"video","duration":1,"contentProvider":{"type":"line"}}"#,
    );
    let (_, events) = crate::webhook::parse_envelope(envelope(&[video]).as_bytes()).unwrap();
    // Received eleven minutes ago: LINE's 202 is waited for no longer.
    let long_ago = chat_protocol::now_ms() - 11 * 60 * 1000;
    db.store.insert_events(DESTINATION, CHANNEL, &events, long_ago).await.unwrap();
    assert_eq!(drain_inbox(&core).await, 1);
    let bodies = posted_bodies(&commands);
    assert_eq!(bodies, [Body::Text { text: "[video: not kept: LINE was still preparing it]".into() }]);
    assert!(db.store.media_of_message(CHANNEL, "400").await.unwrap().is_none());
    let (processed, failed, _) = db.store.inbox_state(DESTINATION, "01HMEDIASLOWVIDEO00000000A").await.unwrap();
    assert!(processed && !failed, "done: the channel's later events are not held");
    db.drop().await;
}
