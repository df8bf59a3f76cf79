//! Demo data: two tenants (`acme`, `globex`) with their members, a group room and a 1:1 room
//! in `acme` with a few messages, tokens for every demo user, and alice allowed to use LINE with
//! a demo LINE Official Account, so that her LINE invite can be seen. Seeding goes through the
//! services' real paths and is idempotent (fixed ids), so a restart seeds nothing twice.

use std::path::Path;

use chat_protocol::bus::{MemberKind, MemberSpec, RoomCommand, RoomKind};
use chat_protocol::room::RoomInfo;
use chat_protocol::{Body, RoomId, TenantId, UserId};

pub struct Seeded {
    pub general_room: RoomId,
    pub direct_room: RoomId,
    /// (env var name, token)
    pub tokens: Vec<(String, String)>,
}

fn fixed_id(name: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5a1d_7e0e_47a4_4e36_b3a8_1f6f_2a9c_0b11);
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

fn acme(user: &str) -> MemberSpec {
    MemberSpec { user: user.into(), tenant: "acme".into(), kind: MemberKind::Member }
}

pub async fn seed(core: &rooms::RoomsCore, authz: &authz::AuthzCore) -> anyhow::Result<Seeded> {
    let d = core.dispatcher();
    let (admin, alice, tenant) = (UserId::new("admin@acme"), UserId::new("alice@acme"), TenantId::new("acme"));
    let general = RoomId::new(fixed_id("room:acme:general"));
    let create = RoomCommand::Create {
        kind: RoomKind::Group,
        members: vec![acme("admin@acme"), acme("alice@acme"), acme("bob@acme")],
        info: RoomInfo { name: Some("General".into()), description: Some("Everyone at Acme".into()), photo_url: None },
    };
    d.execute(&general, &admin, &tenant, Some(fixed_id("cmd:create-general")), create).await?;
    let welcome = RoomCommand::Post {
        client_msg_id: Some("welcome".into()),
        body: Body::Text { text: "Welcome to Acme! Say hi to your colleagues.".into() },
    };
    d.execute(&general, &admin, &tenant, Some(fixed_id("cmd:welcome")), welcome).await?;

    let direct = RoomId::new(fixed_id("room:acme:alice-bob"));
    let create_direct = RoomCommand::Create {
        kind: RoomKind::Direct,
        members: vec![acme("alice@acme"), acme("bob@acme")],
        info: RoomInfo::default(),
    };
    let direct = match d.execute(&direct, &alice, &tenant, Some(fixed_id("cmd:create-direct")), create_direct).await? {
        chat_protocol::bus::CommandResult::Created { room_id, .. } => room_id,
        _ => direct,
    };
    // Tokens as authz's login would issue them (12 hours, for the demo's convenience).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut tokens = Vec::new();
    for (tenant, _, username, _, admin) in authz::DEMO_USERS {
        let claims = chat_auth::Claims {
            sub: format!("{username}@{tenant}"),
            tid: (*tenant).to_owned(),
            iss: authz.settings.tokens.issuer.clone(),
            aud: authz.settings.tokens.audience.clone(),
            exp: now + 12 * 3600,
            iat: now,
            nbf: Some(now),
            roles: if *admin { vec!["admin".into()] } else { vec![] },
        };
        let token = authz.keys.sign(&claims).map_err(|e| anyhow::anyhow!("signing a demo token failed: {e}"))?;
        tokens.push((format!("{}_{}_TOKEN", tenant.to_uppercase(), username.to_uppercase()), token));
    }
    Ok(Seeded { general_room: general, direct_room: direct, tokens })
}

/// alice's demo LINE Official Account (a LINE "channel"), bound to her in the LINE gateway like an
/// admin would bind a real one. Demo credentials only: `make run` registers the same channel in
/// the LINE platform simulator, which stands in for LINE here.
pub struct DemoChannel;

impl DemoChannel {
    pub const ID: &'static str = "1660000000";
    pub const SECRET: &'static str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    pub const ACCESS_TOKEN: &'static str = "demo-line-channel-access-token-acme-alice";
    pub const BASIC_ID: &'static str = "@acmealice";
    /// The bot's LINE user id (the webhooks' `destination`).
    pub const BOT_USER_ID: &'static str = "U0de0de0de0de0de0de0de0de0de0de00";
    /// The demo LINE user who follows alice.
    pub const LINE_USER: &'static str = "U7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";
    /// The demo LINE user's LINE display name (which `tests/scripts/run.sh` gives the simulator).
    pub const LINE_USER_NAME: &'static str = "Taro Yamada";
    /// The demo LINE group the LINE user can invite alice's account into, and its name (which
    /// `tests/scripts/run.sh` gives the simulator).
    pub const LINE_GROUP: &'static str = "C9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c";
    pub const LINE_GROUP_NAME: &'static str = "Tokyo shop";
}

/// `seed_line`, tried again for a minute while the engine's own HTTP server (authz's decisions)
/// is not answering yet.
pub async fn seed_line_when_serving(
    authz: std::sync::Arc<authz::AuthzCore>,
    line: std::sync::Arc<line_gateway::LineCore>,
) {
    for attempt in 1..=60 {
        match seed_line(&authz, &line).await {
            Ok(()) => return,
            Err(err) if attempt == 60 => tracing::warn!(error = %err, "the demo's LINE channel is not bound"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
}

/// alice may connect to LINE (acme's admin allows selected members: alice), and the LINE gateway
/// binds her to the demo channel (it tells contacts, which serves her invite). Changes nothing
/// that is so already.
pub async fn seed_line(authz: &authz::AuthzCore, line: &line_gateway::LineCore) -> anyhow::Result<()> {
    let tenant = TenantId::new("acme");
    let admin = chat_auth::Principal {
        user_id: UserId::new("admin@acme"),
        tenant: tenant.clone(),
        roles: vec!["admin".into()],
        expires_at_secs: u64::MAX,
    };
    let mode = authz.store.tenant(&tenant).await?.map(|t| t.line_mode);
    if mode == Some(authz::store::LineMode::None) {
        authz.set_line_mode(&admin, "selected".into()).await?;
        authz.set_user_line(&admin, &UserId::new("alice@acme"), true).await?;
    }
    let channel = line_gateway::service::NewChannel {
        channel_id: DemoChannel::ID.into(),
        channel_secret: DemoChannel::SECRET.into(),
        access_token: DemoChannel::ACCESS_TOKEN.into(),
        basic_id: DemoChannel::BASIC_ID.into(),
    };
    line.bind_channel(&admin, "alice@acme", channel)
        .await
        .map_err(|e| anyhow::anyhow!("binding alice's demo channel: {e}"))?;
    Ok(())
}

/// The LINE gateway's secrets key of this run directory: made once (32 random bytes, base64,
/// readable by this user only) and read at every start, so bound channels stay readable.
pub fn line_secrets_key(path: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    if let Ok(key) = std::fs::read_to_string(path) {
        return Ok(key.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, key.as_bytes())?;
    Ok(key)
}

/// `.run/endpoints.env` (every service on the one port) and `.run/demo.env` (tokens, rooms).
pub fn write_run_files(run_dir: &Path, base: &str, seeded: &Seeded) -> anyhow::Result<()> {
    let endpoints = ["ROOMS_URL", "CONTACTS_URL", "LINE_GATEWAY_URL", "AUTHZ_URL"]
        .iter()
        .map(|k| format!("{k}={base}\n"))
        .collect::<String>();
    std::fs::write(run_dir.join("endpoints.env"), endpoints)?;
    let mut demo = format!(
        "# Demo data of the standalone engine; tokens are valid for 12 hours.\nGENERAL_ROOM={}\nDIRECT_ROOM={}\n",
        seeded.general_room, seeded.direct_room
    );
    for (var, token) in &seeded.tokens {
        demo.push_str(&format!("{var}={token}\n"));
    }
    // alice's demo LINE channel, for the LINE platform simulator `make run` starts (demo values).
    for (var, value) in [
        ("LINE_CHANNEL_ID", DemoChannel::ID),
        ("LINE_CHANNEL_SECRET", DemoChannel::SECRET),
        ("LINE_CHANNEL_ACCESS_TOKEN", DemoChannel::ACCESS_TOKEN),
        ("LINE_BASIC_ID", DemoChannel::BASIC_ID),
        ("LINE_BOT_USER_ID", DemoChannel::BOT_USER_ID),
        ("LINE_DEMO_USER", DemoChannel::LINE_USER),
        ("LINE_DEMO_GROUP", DemoChannel::LINE_GROUP),
    ] {
        demo.push_str(&format!("{var}={value}\n"));
    }
    std::fs::write(run_dir.join("demo.env"), demo)?;
    Ok(())
}

pub fn print_first_steps(base: &str, run_dir: &Path, seeded: &Seeded, line_sim: Option<&str>) {
    let ws = base.replacen("http://", "ws://", 1);
    let run = run_dir.display();
    println!(
        "\nchat engine (standalone) on {base}\n\
         endpoints: {run}/endpoints.env   demo users, rooms and tokens: {run}/demo.env\n\n\
         Open {base} in a browser and log in (acme / alice / alice-demo-pass), or try it from a\n\
         second terminal:\n\
         \x20 source {run}/demo.env\n\
         \x20 cargo run -q -p chat-tools --bin chatcli -- listen {ws}/v1/ws \"$ACME_BOB_TOKEN\"    # bob's WebSocket\n\
         and in a third:\n\
         \x20 source {run}/demo.env\n\
         \x20 curl -s -X POST {base}/v1/rooms/$GENERAL_ROOM/messages \\\n\
         \x20   -H \"Authorization: Bearer $ACME_ALICE_TOKEN\" -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"client_msg_id\":\"hello-1\",\"body\":{{\"type\":\"text\",\"text\":\"Hi Bob!\"}}}}'\n\
         Bob's terminal prints the message. Log in as anyone (passwords: <username>-demo-pass):\n\
         \x20 curl -s -X POST {base}/v1/auth/login -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"tenant\":\"acme\",\"username\":\"alice\",\"password\":\"alice-demo-pass\"}}'\n\
         General room: {}\n\n\
         alice may chat with LINE users: her LINE invite (My ID, add-friend URL), QR code and profile card:\n\
         \x20 curl -s {base}/v1/me/line-invite -H \"Authorization: Bearer $ACME_ALICE_TOKEN\"\n\
         \x20 curl -s {base}/v1/me/line-invite/qr.png -H \"Authorization: Bearer $ACME_ALICE_TOKEN\" -o alice-qr.png\n\
         \x20 curl -s {base}/v1/me/line-invite/card.png -H \"Authorization: Bearer $ACME_ALICE_TOKEN\" -o alice-card.png\n",
        seeded.general_room
    );
    if let Some(sim) = line_sim {
        println!("\nPlay the demo LINE user in a browser: {base}/#line-user (alice's LINE room answers there).");
        print_line_user_steps(base, sim);
    }
}

/// How to act as a LINE user through the LINE platform simulator (`make run` starts it).
fn print_line_user_steps(base: &str, sim: &str) {
    let (channel, user) = (DemoChannel::ID, DemoChannel::LINE_USER);
    let webhook = |events: &str| {
        format!(
            "curl -s -X POST {sim}/_sim/webhook -H 'Content-Type: application/json' \\\n\
             \x20   -d '{{\"channel_id\":\"{channel}\",\"target_url\":\"{base}/line/webhook/{channel}\",\"events\":[{events}]}}'"
        )
    };
    let source = format!("\"source\":{{\"type\":\"user\",\"userId\":\"{user}\"}}");
    let follow = webhook(&format!(
        "{{\"type\":\"follow\",{source},\"replyToken\":\"r1\",\"follow\":{{\"isUnblocked\":false}}}}"
    ));
    let text = webhook(&format!(
        "{{\"type\":\"message\",{source},\"replyToken\":\"r2\",\"message\":{{\"id\":\"1001\",\"type\":\"text\",\"text\":\"Hello Alice!\",\"quoteToken\":\"q1\"}}}}"
    ));
    let sticker = webhook(&format!(
        "{{\"type\":\"message\",{source},\"replyToken\":\"r3\",\"message\":{{\"id\":\"1002\",\"type\":\"sticker\",\"packageId\":\"446\",\"stickerId\":\"1988\",\"stickerResourceType\":\"STATIC\",\"quoteToken\":\"q2\"}}}}"
    ));
    let group = DemoChannel::LINE_GROUP;
    let in_group = format!("\"source\":{{\"type\":\"group\",\"groupId\":\"{group}\",\"userId\":\"{user}\"}}");
    let the_group = format!("\"source\":{{\"type\":\"group\",\"groupId\":\"{group}\"}}");
    let join = webhook(&format!("{{\"type\":\"join\",{the_group},\"replyToken\":\"r4\"}}"));
    let in_group_text = webhook(&format!(
        "{{\"type\":\"message\",{in_group},\"replyToken\":\"r5\",\"message\":{{\"id\":\"1003\",\"type\":\"text\",\"text\":\"Hello from the shop!\",\"quoteToken\":\"q3\"}}}}"
    ));
    println!(
        "\nAct as a LINE user (the LINE platform simulator on {sim} plays LINE; it signs the webhooks):\n\
         follow alice's LINE Official Account (a LINE room appears in alice's room list):\n\x20 {follow}\n\
         send her a text and a sticker:\n\x20 {text}\n\x20 {sticker}\n\
         answer as alice in that room (POST /v1/rooms/<room id>/messages), then see what reached LINE:\n\
         \x20 curl -s '{sim}/_sim/requests?path=/v2/bot/message/push'\n\
         invite alice's account into the LINE group \"{}\" (a room connected to it appears, and alice\n\
         is notified), then write in the group:\n\x20 {join}\n\x20 {in_group_text}\n",
        DemoChannel::LINE_GROUP_NAME
    );
}
