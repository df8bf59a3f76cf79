//! Token revocation and where tokens are taken from: a disabled user's tokens are refused by
//! a rooms node that started after the user was disabled (it never saw the event), and the
//! `access_token` query parameter is accepted by the WebSocket handshake only.

use e2e::*;
use serde_json::json;

#[actix_rt::test]
async fn a_rooms_node_started_after_a_user_was_disabled_refuses_their_old_token() {
    let mut c = Cluster::start("revoked", &[]).await;
    let (acme, bob) = (c.login("acme", "admin").await, c.login("acme", "bob").await);
    assert_eq!(call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&bob), None).await.status, 200);

    let disabled = call(
        "PATCH",
        &format!("{}/v1/admin/users/bob@acme", c.authz.base()),
        Some(&acme),
        Some(r#"{"disabled":true}"#),
    )
    .await;
    assert_eq!(disabled.body["disabled"], true, "{}", disabled.body);
    // The running node hears of it.
    eventually(10, "the running node to refuse bob's token", || async {
        let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&bob), None).await;
        (a.status == 401).then_some(())
    })
    .await;

    // A node started afterwards never saw the event; it asks authz at start.
    c.rooms.restart().await;
    let rooms = c.rooms.base();
    let refused = call("GET", &format!("{rooms}/v1/rooms"), Some(&bob), None).await;
    assert_eq!(refused.status, 401, "the new node accepted a disabled user's token: {}", refused.body);
    assert!(Ws::try_connect(&c.rooms.ws_url(), Some(&bob)).await.is_err(), "the new node opened bob's socket");
    // Others are not affected, and bob is back once enabled and logged in again.
    let alice = c.login("acme", "alice").await;
    assert_eq!(call("GET", &format!("{rooms}/v1/rooms"), Some(&alice), None).await.status, 200);
    let enabled = call(
        "PATCH",
        &format!("{}/v1/admin/users/bob@acme", c.authz.base()),
        Some(&acme),
        Some(r#"{"disabled":false}"#),
    )
    .await;
    assert_eq!(enabled.body["disabled"], false, "{}", enabled.body);
    // A token issued in the same second as the revocation counts as revoked: wait for the next.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = c.login("acme", "bob").await;
    assert_eq!(call("GET", &format!("{rooms}/v1/rooms"), Some(&fresh), None).await.status, 200);
    assert_eq!(call("GET", &format!("{rooms}/v1/rooms"), Some(&bob), None).await.status, 401);

    // The revocations are an internal endpoint: 404 without the service token.
    let internal = format!("{}/internal/v1/revocations", c.authz.base());
    assert_eq!(call("GET", &internal, Some(&acme), None).await.status, 404);
}

#[actix_rt::test]
async fn the_access_token_query_parameter_is_taken_by_the_websocket_handshake_only() {
    let c = Cluster::start("querytoken", &[]).await;
    let alice = c.login("acme", "alice").await;
    for url in [format!("{}/v1/notifications", c.rooms.base()), format!("{}/v1/me", c.authz.base())] {
        let header = call("GET", &url, Some(&alice), None).await;
        assert_eq!(header.status, 200, "a bearer header at {url}: {}", header.body);
        let query = call("GET", &format!("{url}?access_token={alice}"), None, None).await;
        assert_eq!(query.status, 401, "a query token at {url}: {}", query.body);
    }
    // Browsers cannot set headers on a WebSocket: the handshake takes the query parameter.
    let mut ws = Ws::try_connect(&format!("{}?access_token={alice}", c.rooms.ws_url()), None)
        .await
        .unwrap_or_else(|e| panic!("a query token on /v1/ws was refused: {e}"));
    ws.send(json!({"type": "ping"})).await;
    ws.expect(10, "pong", |f| f["type"] == "pong").await;
    assert!(Ws::try_connect(&format!("{}?access_token=not-a-token", c.rooms.ws_url()), None).await.is_err());
}
