//! authz's change events survive a broker outage: authz reaches RabbitMQ through a TCP proxy
//! the test controls; a trust revoked while the proxy is cut is stored with its event (the
//! outbox) and published once the connection is back, and rooms then excludes the other side.

use std::net::SocketAddr;
use std::time::Duration;

use e2e::proxy::Proxy;
use e2e::*;
use serde_json::json;

/// The `host:port` of an AMQP URL (`amqp://user:pass@host:port/vhost`).
fn broker_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host_port.parse().unwrap_or_else(|e| panic!("broker address {host_port:?} of {url}: {e}"))
}

/// The same URL with the broker's address replaced by the proxy's.
fn through(url: &str, broker: SocketAddr, proxy: &Proxy) -> String {
    url.replacen(&broker.to_string(), &proxy.addr.to_string(), 1)
}

/// authz (whose broker connection goes through `proxy`) and rooms (connected directly).
async fn cluster_behind(tag: &str) -> (Cluster, Proxy) {
    let mut proxy = None;
    let shape = |vhost: &Vhost, env: &mut Vec<(String, String)>| {
        let broker = broker_addr(&vhost.url());
        let started = Proxy::start(broker);
        env.push(("CHAT__AMQP__URL".into(), through(&vhost.url(), broker, &started)));
        proxy = Some(started);
    };
    let cluster = Cluster::start_shaped(tag, shape, &[]).await;
    (cluster, proxy.expect("the proxy started"))
}

/// A metric of authz (0 when absent).
async fn authz_metric(c: &Cluster, name: &str) -> f64 {
    let mut res = http().get(format!("{}/metrics", c.authz.base())).send().await.expect("authz metrics");
    let text = String::from_utf8_lossy(&res.body().await.expect("metrics body")).into_owned();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[actix_rt::test]
async fn a_trust_revoked_while_authz_is_cut_off_the_broker_still_excludes_the_other_side() {
    let (c, proxy) = cluster_behind("outbox").await;
    let authz = c.authz.base();
    let rooms = c.rooms.base();
    let (acme, globex) = (c.login("acme", "admin").await, c.login("globex", "admin").await);
    let (alice, carol) = (c.login("acme", "alice").await, c.login("globex", "carol").await);

    for (admin, other) in [(&acme, "globex"), (&globex, "acme")] {
        let body = json!({ "tenant": other }).to_string();
        let granted = call("POST", &format!("{authz}/v1/admin/trusts"), Some(admin), Some(&body)).await;
        assert_eq!(granted.status, 200, "{}", granted.body);
    }
    let room = eventually(15, "the cross-company room", || async {
        let a = call("POST", &format!("{rooms}/v1/rooms"), Some(&alice), Some(r#"{"members":["carol@globex"]}"#)).await;
        (a.status == 201).then_some(a.body)
    })
    .await;
    let room_id = room["id"].as_str().expect("room id").to_owned();
    assert_eq!(call("GET", &format!("{rooms}/v1/rooms/{room_id}"), Some(&carol), None).await.status, 200);
    let mut carol_ws = Ws::connect(&c.rooms.ws_url(), &carol).await;

    // authz loses the broker; the revocation is still answered and stored.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let revoke_url = format!("{authz}/v1/admin/trusts/globex");
    let revoke = call("DELETE", &revoke_url, Some(&acme), None);
    tokio::pin!(revoke);
    let answered_while_cut = tokio::time::timeout(Duration::from_secs(10), &mut revoke).await.ok();
    // The broker stays away two seconds more; meanwhile the event waits in the outbox.
    let mut backlog_while_cut: f64 = 0.0;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        backlog_while_cut = backlog_while_cut.max(authz_metric(&c, "authz_outbox_backlog").await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    let was_answered_while_cut = answered_while_cut.is_some();
    let revoked = match answered_while_cut {
        Some(answer) => answer,
        None => revoke.await,
    };
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let trusts = call("GET", &format!("{authz}/v1/admin/trusts"), Some(&acme), None).await;
    assert_eq!(trusts.body["trusts"], json!([{"tenant": "globex", "status": "pending_theirs"}]));

    // Once authz is back on the broker, the change reaches rooms: carol leaves the room.
    let excluded = carol_ws
        .expect(30, "carol's exclusion after the broker came back", |f| {
            f["type"] == "room_event" && f["event"]["type"] == "member_excluded"
        })
        .await;
    assert_eq!((&excluded["room_id"], &excluded["event"]["user"]), (&json!(room_id), &json!("carol@globex")));
    assert_eq!(excluded["event"]["reason"], "trust_revoked");
    assert_eq!(call("GET", &format!("{rooms}/v1/rooms/{room_id}"), Some(&carol), None).await.status, 404);

    // The revocation did not wait for the broker, and its event waited in the outbox.
    assert!(was_answered_while_cut, "the revocation was answered only after the broker came back");
    assert!(backlog_while_cut >= 1.0, "outbox backlog while cut: {backlog_while_cut}");
    eventually(15, "an empty outbox", || async {
        (authz_metric(&c, "authz_outbox_backlog").await == 0.0).then_some(())
    })
    .await;
}
