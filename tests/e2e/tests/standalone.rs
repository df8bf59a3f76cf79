//! The standalone binary (`make run`): one port, demo data, the README's first step works.

use std::process::Command;

use e2e::*;
use serde_json::json;

struct Standalone {
    child: std::process::Child,
    port: u16,
    run_dir: std::path::PathBuf,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// The standalone on HTTP port 0, the port read from its `listening` line (JSON logs at level
/// info for that; its own default is text for people).
async fn start() -> Standalone {
    let run_dir = std::env::temp_dir().join(unique("standalone"));
    std::fs::create_dir_all(&run_dir).expect("run dir");
    let log = run_dir.join("standalone.log");
    let child = spawn_logged(
        Command::new(bin("standalone"))
            .env("CHAT__DATABASE__URL", format!("sqlite://{}/rooms.sqlite?mode=rwc", run_dir.display()))
            .env("CHAT__TELEMETRY__LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("CHAT_RUN_DIR", &run_dir),
        &log,
    );
    // Built before the waits: a panic in them drops it, which kills the child.
    let mut sa = Standalone { child, port: 0, run_dir };
    sa.port = wait_port(&mut sa.child, &log).await;
    wait_ready(sa.port, &log).await;
    sa
}

fn read_env(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

#[actix_rt::test]
async fn the_standalone_serves_every_service_on_one_port_and_the_first_step_works() {
    let sa = start().await;
    let base = format!("http://127.0.0.1:{}", sa.port);
    let endpoints = read_env(&sa.run_dir.join("endpoints.env"));
    for key in ["ROOMS_URL", "CONTACTS_URL", "LINE_GATEWAY_URL", "AUTHZ_URL"] {
        assert_eq!(endpoints.get(key), Some(&base), "{key}");
    }
    let demo = read_env(&sa.run_dir.join("demo.env"));
    let room = &demo["GENERAL_ROOM"];

    // The README's first step: bob listens, alice posts with curl's request, bob receives.
    let mut bob = Ws::connect(&format!("ws://127.0.0.1:{}/v1/ws", sa.port), &demo["ACME_BOB_TOKEN"]).await;
    let body = json!({"client_msg_id": "hello-1", "body": {"type": "text", "text": "Hi Bob!"}}).to_string();
    let posted =
        call("POST", &format!("{base}/v1/rooms/{room}/messages"), Some(&demo["ACME_ALICE_TOKEN"]), Some(&body)).await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let got = bob.expect(10, "alice's hello", |f| f["type"] == "message").await;
    assert_eq!(got["body"]["text"], "Hi Bob!");
    assert_eq!(got["sender"], "alice@acme");

    // The seeded rooms are there; globex members do not see acme's rooms.
    let listed = call("GET", &format!("{base}/v1/rooms"), Some(&demo["ACME_BOB_TOKEN"]), None).await;
    let names: Vec<_> = listed.body["rooms"].as_array().expect("rooms").iter().map(|r| r["kind"].clone()).collect();
    assert!(names.contains(&json!("group")) && names.contains(&json!("direct")), "{}", listed.body);
    let foreign = call("GET", &format!("{base}/v1/rooms/{room}"), Some(&demo["GLOBEX_CAROL_TOKEN"]), None).await;
    assert_eq!(foreign.status, 404);
    // contacts on the same port: lists, and alice's LINE invite as `make run` prints it (the
    // demo allows her LINE and binds a demo LINE Official Account); bob may not use LINE.
    let alice = &demo["ACME_ALICE_TOKEN"];
    let listed = call("GET", &format!("{base}/v1/contacts"), Some(alice), None).await;
    assert_eq!((listed.status, listed.body["contacts"].as_array().map(Vec::len)), (200, Some(0)), "{}", listed.body);
    let invite = eventually(10, "alice's invite", || async {
        let a = call("GET", &format!("{base}/v1/me/line-invite"), Some(alice), None).await;
        (a.body["status"] == "ready").then_some(a.body)
    })
    .await;
    assert_eq!(invite["my_id"], "alice@acme");
    assert_eq!(invite["add_friend_url"], "https://line.me/R/ti/p/@acmealice");
    for image in ["qr.png", "card.png"] {
        let res = http()
            .get(format!("{base}/v1/me/line-invite/{image}"))
            .insert_header(("Authorization", format!("Bearer {alice}")))
            .send()
            .await
            .expect("image");
        assert_eq!(res.status().as_u16(), 200, "{image}");
    }
    let bobs = call("GET", &format!("{base}/v1/me/line-invite"), Some(&demo["ACME_BOB_TOKEN"]), None).await;
    assert_eq!((bobs.status, bobs.body["error"]["code"].as_str()), (403, Some("line_not_authorized")));
    // Every service's health and the metrics answer on the same port.
    assert_eq!(call("GET", &format!("{base}/health/live"), None, None).await.status, 200);
    assert_eq!(call("GET", &format!("{base}/health/ready"), None, None).await.status, 200);
}
