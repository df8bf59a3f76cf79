//! Security: tenant isolation of the admin API, roles, tokens refused by every service, login
//! rate limits, disabled users, key rotation, and bad input to authz.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use e2e::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// authz's current signing key, read from this test's own schema.
fn signing_key(c: &Cluster) -> (String, EncodingKey) {
    let url = std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
    let sql = format!(
        "select kid || ' ' || private_der from \"{}_authz\".signing_keys where retired_at is null order by created_at desc limit 1",
        c.authz.name
    );
    let out = std::process::Command::new("psql").args([url.as_str(), "-Atc", &sql]).output().expect("psql");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (kid, der) = text.split_once(' ').unwrap_or_else(|| panic!("no signing key: {text}"));
    (kid.to_owned(), EncodingKey::from_ed_der(&STANDARD.decode(der).expect("base64")))
}

fn claims(exp: u64, nbf: u64, aud: &str) -> serde_json::Value {
    json!({"sub": "alice@acme", "tid": "acme", "iss": "chat", "aud": aud, "exp": exp, "iat": now(), "nbf": nbf})
}

fn sign(kid: &str, key: &EncodingKey, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

#[actix_rt::test]
async fn every_service_refuses_expired_early_misaddressed_unsigned_tampered_and_foreign_tokens() {
    let c = Cluster::start("tokens", &[]).await;
    let jwks = format!("{}/v1/auth/jwks", c.authz.base());
    let mut others = Vec::new();
    for (bin, schema) in [("contacts", "contacts"), ("line-gateway", "line")] {
        let mut env = Service::base_env(&c.authz.name, &format!("{}_{schema}", c.authz.name), &c.authz.vhost);
        env.push(("CHAT__AUTH__JWT_SECRET".into(), SECRET.into()));
        env.push(("CHAT__AUTH__JWKS_URL".into(), jwks.clone()));
        if bin == "line-gateway" {
            env.push(("CHAT__REDIS__URL".into(), "redis://127.0.0.1:6379".into()));
            env.push(("CHAT__LINE__SECRETS_KEY".into(), LINE_SECRETS_KEY.into()));
            env.push(("CHAT__AUTHZ__INTERNAL_TOKEN".into(), INTERNAL_TOKEN.into()));
        }
        others.push(Service::start(bin, &c.authz.name, c.authz.vhost.clone(), env).await);
    }
    let endpoints = [
        (format!("{}/v1/me", c.authz.base()), 200),
        (format!("{}/v1/rooms", c.rooms.base()), 200),
        (format!("{}/v1/contacts", others[0].base()), 200),
        // alice is no admin: authenticated, then refused.
        (format!("{}/v1/admin/line/channels", others[1].base()), 403),
    ];
    let valid = c.login("acme", "alice").await;
    for (url, ok) in &endpoints {
        assert_eq!(call("GET", url, Some(&valid), None).await.status, *ok, "a valid token at {url}");
    }

    let (kid, key) = signing_key(&c);
    let t = now();
    let foreign_key = EncodingKey::from_ed_der(&{
        // Another Ed25519 key (the RFC 8032 test vector's seed), same kid.
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let mut der = hex("302e020100300506032b657004220420");
        der.extend(seed);
        der
    });
    // A valid token whose payload was edited (another tenant) after signing.
    let tampered = {
        let parts: Vec<&str> = valid.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["tid"] = json!("globex");
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2])
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(t + 600, t, "chat-api").to_string())
    );
    let bad = [
        ("expired", sign(&kid, &key, &claims(t - 600, t - 1200, "chat-api"))),
        ("not yet valid", sign(&kid, &key, &claims(t + 3600, t + 1800, "chat-api"))),
        ("wrong audience", sign(&kid, &key, &claims(t + 600, t, "another-api"))),
        ("alg none", alg_none),
        ("tampered", tampered),
        ("wrong key", sign(&kid, &foreign_key, &claims(t + 600, t, "chat-api"))),
        ("hs256 with the old shared secret", token("alice@acme", "acme")),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, tok) in &bad {
        for (url, _) in &endpoints {
            let a = call("GET", url, Some(tok), None).await;
            assert_eq!(a.status, 401, "{what} token at {url}: {}", a.body);
        }
    }
    for (url, _) in &endpoints {
        assert_eq!(call("GET", url, None, None).await.status, 401, "no token at {url}");
    }
    // The WebSocket refuses them before the upgrade too.
    for (what, tok) in &bad {
        assert!(Ws::try_connect(&c.rooms.ws_url(), Some(tok)).await.is_err(), "{what} token opened a socket");
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[actix_rt::test]
async fn an_admin_of_another_tenant_gets_404_and_members_get_403_and_nothing_changes() {
    let c = Cluster::start("admin", &[]).await;
    let authz = c.authz.base();
    let (acme, globex, alice) =
        (c.login("acme", "admin").await, c.login("globex", "admin").await, c.login("acme", "alice").await);
    let before = call("GET", &format!("{authz}/v1/admin/users"), Some(&acme), None).await.body;

    for (method, path, body) in [
        ("PATCH", "/v1/admin/users/alice@acme", Some(r#"{"disabled":true}"#)),
        ("PUT", "/v1/admin/users/alice@acme/line-access", Some(r#"{"allowed":true}"#)),
    ] {
        let a = call(method, &format!("{authz}{path}"), Some(&globex), body).await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "user_not_found");
    }
    let theirs = call("GET", &format!("{authz}/v1/admin/users"), Some(&globex), None).await;
    assert!(theirs.body["users"].as_array().expect("users").iter().all(|u| u["tenant"] == "globex"), "{}", theirs.body);

    for (method, path, body) in [
        ("GET", "/v1/admin/users", None),
        ("POST", "/v1/admin/users", Some(r#"{"username":"eve","password":"long-enough-pass"}"#)),
        ("PATCH", "/v1/admin/users/bob@acme", Some(r#"{"disabled":true}"#)),
        ("PUT", "/v1/admin/line-access", Some(r#"{"mode":"all"}"#)),
        ("PUT", "/v1/admin/users/alice@acme/line-access", Some(r#"{"allowed":true}"#)),
        ("POST", "/v1/admin/trusts", Some(r#"{"tenant":"globex"}"#)),
        ("GET", "/v1/admin/trusts", None),
        ("DELETE", "/v1/admin/trusts/globex", None),
        ("GET", "/v1/admin/audit", None),
    ] {
        let a = call(method, &format!("{authz}{path}"), Some(&alice), body).await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "forbidden");
    }
    let after = call("GET", &format!("{authz}/v1/admin/users"), Some(&acme), None).await.body;
    assert_eq!(before, after, "nothing changed");
    assert_eq!(call("GET", &format!("{authz}/v1/admin/trusts"), Some(&acme), None).await.body["trusts"], json!([]));
    // The internal decision endpoint is not for callers without the service token.
    let d = call(
        "POST",
        &format!("{authz}/internal/v1/decide"),
        Some(&acme),
        Some(r#"{"tenant":"acme","actor":"admin@acme","users":[]}"#),
    )
    .await;
    assert_eq!(d.status, 404);
}

#[actix_rt::test]
async fn login_is_rate_limited_with_retry_after() {
    let c = Cluster::start("ratelimit", &[("CHAT__LOGIN__PER_ACCOUNT_PER_MINUTE", "3")]).await;
    let url = format!("{}/v1/auth/login", c.authz.base());
    let wrong = r#"{"tenant":"acme","username":"bob","password":"guess-guess"}"#;
    for _ in 0..3 {
        let a = call("POST", &url, None, Some(wrong)).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.body["error"]["code"], "invalid_credentials");
    }
    let limited = call("POST", &url, None, Some(wrong)).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let retry: u64 = limited.retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Even the right password waits; another account is not affected.
    let right = r#"{"tenant":"acme","username":"bob","password":"bob-demo-pass"}"#;
    assert_eq!(call("POST", &url, None, Some(right)).await.status, 429);
    c.login("acme", "alice").await;
}

#[actix_rt::test]
async fn a_disabled_users_sessions_are_closed_and_their_tokens_refused() {
    let c = Cluster::start("disable", &[]).await;
    let (acme, bob) = (c.login("acme", "admin").await, c.login("acme", "bob").await);
    let mut ws = Ws::connect(&c.rooms.ws_url(), &bob).await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect(10, "pong", |f| f["type"] == "pong").await;

    let a = call(
        "PATCH",
        &format!("{}/v1/admin/users/bob@acme", c.authz.base()),
        Some(&acme),
        Some(r#"{"disabled":true}"#),
    )
    .await;
    assert_eq!(a.body["disabled"], true, "{}", a.body);
    let closed = loop {
        match ws.next(10).await {
            Got::Closed(code) => break code,
            Got::Frame(_) => continue,
            Got::Timeout => panic!("bob's session stayed open"),
        }
    };
    assert_eq!(closed, Some(1008));
    assert_eq!(call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(&bob), None).await.status, 401);
    assert_eq!(call("GET", &format!("{}/v1/me", c.authz.base()), Some(&bob), None).await.status, 401);
    let login = json!({"tenant": "acme", "username": "bob", "password": "bob-demo-pass"}).to_string();
    assert_eq!(call("POST", &format!("{}/v1/auth/login", c.authz.base()), None, Some(&login)).await.status, 401);
    assert!(Ws::try_connect(&c.rooms.ws_url(), Some(&bob)).await.is_err());
}

#[actix_rt::test]
async fn signing_keys_rotate_without_downtime() {
    let c = Cluster::start("rotate", &[]).await;
    let old = c.login("acme", "alice").await;
    let rooms = format!("{}/v1/rooms", c.rooms.base());
    assert_eq!(call("GET", &rooms, Some(&old), None).await.status, 200);
    let kid = |t: &str| {
        let header = URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap_or("")).unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&header).unwrap_or_default()["kid"].clone()
    };
    let rotated = Service::run_command("authz", &c.authz.env, &["rotate-key"]);
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    // The running authz picks the new key up; tokens signed with it are accepted at once by
    // rooms (unknown kid -> JWKS refresh), and the old token keeps working until it expires.
    let jwks_url = format!("{}/v1/auth/jwks", c.authz.base());
    eventually(20, "the new key in the running authz", || async {
        let keys = call("GET", &jwks_url, None, None).await.body["keys"].as_array().map(Vec::len);
        (keys == Some(2)).then_some(())
    })
    .await;
    // The new key is published first and signs once every verifier can know it (10 s).
    let new = eventually(30, "a token signed with the new key", || async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let t = c.login("acme", "alice").await;
        (kid(&t) != kid(&old)).then_some(t)
    })
    .await;
    assert_eq!(call("GET", &rooms, Some(&new), None).await.status, 200);
    assert_eq!(call("GET", &rooms, Some(&old), None).await.status, 200);
    let jwks = call("GET", &format!("{}/v1/auth/jwks", c.authz.base()), None, None).await;
    assert_eq!(jwks.body["keys"].as_array().map(Vec::len), Some(2), "{}", jwks.body);
}

#[actix_rt::test]
async fn bad_input_to_authz_gets_400_with_a_code_and_changes_nothing() {
    let c = Cluster::start("authzinput", &[]).await;
    let authz = c.authz.base();
    let acme = c.login("acme", "admin").await;
    let before = call("GET", &format!("{authz}/v1/admin/users"), Some(&acme), None).await.body;
    let long = "x".repeat(101);
    for (method, path, body, code) in [
        (
            "POST",
            "/v1/auth/login",
            r#"{"tenant":"acme","username":"bob","password":"bob-demo-pass","remember":true}"#.to_owned(),
            "unknown_field",
        ),
        ("POST", "/v1/auth/login", r#"{"tenant":"acme","username":"#.to_owned(), "malformed_json"),
        (
            "POST",
            "/v1/admin/users",
            r#"{"username":"eve","password":"long-enough-pass","role":"god"}"#.to_owned(),
            "unknown_field",
        ),
        (
            "POST",
            "/v1/admin/users",
            json!({"username": "eve", "password": "long-enough-pass", "display_name": long}).to_string(),
            "name_too_long",
        ),
        (
            "POST",
            "/v1/admin/users",
            r#"{"username":"Eve Smith!","password":"long-enough-pass"}"#.to_owned(),
            "invalid_username",
        ),
        ("POST", "/v1/admin/users", r#"{"username":"eve","password":"short"}"#.to_owned(), "invalid_password"),
        ("PATCH", "/v1/admin/users/bob@acme", json!({"display_name": long}).to_string(), "name_too_long"),
        ("PATCH", "/v1/admin/users/bob@acme", r#"{"disabled":"yes"}"#.to_owned(), "invalid_field"),
        ("PUT", "/v1/admin/line-access", r#"{"mode":"sometimes"}"#.to_owned(), "invalid_mode"),
        ("POST", "/v1/admin/trusts", r#"{"tenant":"acme"}"#.to_owned(), "invalid_tenant"),
        ("POST", "/v1/admin/trusts", r#"{"tenants":["globex"]}"#.to_owned(), "unknown_field"),
    ] {
        let a = call(method, &format!("{authz}{path}"), Some(&acme), Some(&body)).await;
        assert_eq!(a.status, 400, "{method} {path} {body}: {}", a.body);
        assert_eq!(a.body["error"]["code"], code, "{method} {path}: {}", a.body);
    }
    assert_eq!(call("GET", &format!("{authz}/v1/admin/users"), Some(&acme), None).await.body, before);
    assert_eq!(call("GET", &format!("{authz}/v1/admin/trusts"), Some(&acme), None).await.body["trusts"], json!([]));
}
