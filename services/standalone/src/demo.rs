//! Demo data: two tenants (`acme`, `globex`) with their members, a group room and a 1:1 room
//! in `acme` with a few messages, tokens for every demo user, and alice allowed to use LINE with
//! a demo LINE Official Account, so that her LINE invite can be seen. Seeding goes through the
//! services' real paths and is idempotent (fixed ids), so a restart seeds nothing twice.

use std::path::Path;

use chat_protocol::bus::{MemberKind, MemberSpec, RoomCommand, RoomKind};
use chat_protocol::events::{ChangeEvent, EventEnvelope};
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

/// The demo LINE Official Account of alice (`@` + basic id). The LINE gateway binds real
/// accounts; until it runs here, the demo tells contacts about this one, as the gateway would.
pub const DEMO_LINE_BASIC_ID: &str = "@acmealice";

/// alice may connect to LINE (acme's admin allows selected members: alice), and her account is
/// bound to the demo LINE Official Account. Changes nothing when it is so already.
pub async fn seed_line(authz: &authz::AuthzCore, bus: &chat_bus::SharedBus) -> anyhow::Result<()> {
    let tenant = TenantId::new("acme");
    let mode = authz.store.tenant(&tenant).await?.map(|t| t.line_mode);
    if mode == Some(authz::store::LineMode::None) {
        let admin = chat_auth::Principal {
            user_id: UserId::new("admin@acme"),
            tenant: tenant.clone(),
            roles: vec!["admin".into()],
            expires_at_secs: u64::MAX,
        };
        authz.set_line_mode(&admin, "selected".into()).await?;
        authz.set_user_line(&admin, &UserId::new("alice@acme"), true).await?;
    }
    let bound =
        ChangeEvent::LineChannelBound { tenant, user: UserId::new("alice@acme"), basic_id: DEMO_LINE_BASIC_ID.into() };
    let envelope = EventEnvelope::keyed("demo:line-binding:alice@acme", bound);
    bus.publish_event(serde_json::to_vec(&envelope)?).await?;
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
    std::fs::write(run_dir.join("demo.env"), demo)?;
    Ok(())
}

pub fn print_first_steps(base: &str, run_dir: &Path, seeded: &Seeded) {
    let ws = base.replacen("http://", "ws://", 1);
    let run = run_dir.display();
    println!(
        "\nchat engine (standalone) on {base}\n\
         endpoints: {run}/endpoints.env   demo users, rooms and tokens: {run}/demo.env\n\n\
         Try it, in a second terminal:\n\
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
}
