//! What the LINE end-to-end tests share: a LINE user's profile for the simulator, an admin
//! allowing LINE and binding a member to a channel, the channel's webhook URL, signed webhooks
//! sent through the simulator, and the rooms and history a member sees.

use line_sim::{Channel, Profile, WebhookRequest};
use serde_json::{json, Value};

use crate::{call, Cluster};

/// A LINE user's profile as `channel` sees it (no picture unless given).
pub fn line_profile(channel: &Channel, user_id: &str, name: &str, picture_url: Option<String>) -> Profile {
    Profile {
        channel_id: channel.channel_id.clone(),
        user_id: user_id.into(),
        display_name: name.into(),
        picture_url,
        status_message: None,
        language: None,
    }
}

/// The tenant's admin (token `admin`) allows every member LINE and binds `member` to `channel`.
pub async fn allow_line_and_bind(c: &Cluster, admin: &str, member: &str, channel: &Channel) {
    let access = format!("{}/v1/admin/line-access", c.authz.base());
    let mode = call("PUT", &access, Some(admin), Some(r#"{"mode":"all"}"#)).await;
    assert_eq!(mode.status, 200, "{}", mode.body);
    let binding = json!({
        "channel_id": channel.channel_id, "channel_secret": channel.channel_secret,
        "access_token": channel.access_token, "basic_id": channel.basic_id,
    });
    let url = format!("{}/v1/admin/line/channels/{member}", c.line_gateway());
    let bound = call("PUT", &url, Some(admin), Some(&binding.to_string())).await;
    assert_eq!(bound.status, 200, "{}", bound.body);
}

/// The gateway's webhook URL of `channel`.
pub fn webhook_url(c: &Cluster, channel: &Channel) -> String {
    format!("{}/line/webhook/{}", c.line_gateway(), channel.channel_id)
}

/// Have the simulator sign `events` for `channel` and POST them to the gateway; the gateway
/// answers 200 and the body is shaped like `webhook.yml`.
pub async fn send_events(sim: &line_sim::Client, c: &Cluster, channel: &Channel, events: Vec<Value>) {
    let request = WebhookRequest::new(&channel.channel_id, &webhook_url(c, channel), events);
    let sent = sim.send_webhook(&request).await.expect("webhook sent");
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.violations.is_empty(), "shaped like webhook.yml: {:?}", sent.violations);
}

/// The ids of `token`'s holder's rooms of `kind` (`line_direct`, `line_group`, ...).
pub async fn rooms_of_kind(c: &Cluster, token: &str, kind: &str) -> Vec<String> {
    let a = call("GET", &format!("{}/v1/rooms", c.rooms.base()), Some(token), None).await;
    a.body["rooms"]
        .as_array()
        .map(|rooms| {
            rooms.iter().filter(|r| r["kind"] == kind).filter_map(|r| r["id"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default()
}

/// The room's first 500 events, as `token`'s holder reads them.
pub async fn history_of(c: &Cluster, room: &str, token: &str) -> Vec<Value> {
    let url = format!("{}/v1/rooms/{room}/messages?after=0&limit=500", c.rooms.base());
    let a = call("GET", &url, Some(token), None).await;
    assert_eq!(a.status, 200, "history: {}", a.body);
    a.body["events"].as_array().cloned().unwrap_or_default()
}

/// The texts of the room's first 500 messages, oldest first, as `token`'s holder reads them.
pub async fn history_texts(c: &Cluster, room: &str, token: &str) -> Vec<String> {
    history_of(c, room, token)
        .await
        .iter()
        .filter(|e| e["type"] == "message")
        .filter_map(|e| e["body"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// The user ids of the room's members, as `token`'s holder sees them.
pub async fn member_ids(c: &Cluster, room: &str, token: &str) -> Vec<String> {
    call("GET", &format!("{}/v1/rooms/{room}", c.rooms.base()), Some(token), None).await.body["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["user"].as_str().unwrap_or_default().to_owned())
        .collect()
}
