//! The demo's LINE user, for the web client's LINE-user panel: when the standalone runs beside
//! the LINE platform simulator (`make run`), `/demo/line-user` lets a person play the demo LINE
//! user (follow alice's LINE Official Account, write to her, send stickers, invite her account
//! into the demo LINE group and write there) and see what alice sent back. Each action is a
//! webhook the simulator signs and delivers to this engine exactly as LINE would; what alice
//! sent is what the simulator received from the LINE gateway. Demo only: the routes exist only
//! when a simulator is configured, and act as one fixed LINE user of one demo channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::demo::DemoChannel;

/// The simulator and this engine's webhook URL for the demo channel.
pub struct Panel {
    sim: String,
    webhook_url: String,
    /// A LINE message id per message the panel sends (unique within a run).
    next_message_id: AtomicU64,
}

impl Panel {
    pub fn new(sim: &str, base: &str) -> Arc<Self> {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Arc::new(Self {
            sim: sim.trim_end_matches('/').to_owned(),
            webhook_url: format!("{base}/line/webhook/{}", DemoChannel::ID),
            next_message_id: AtomicU64::new(start * 1000),
        })
    }

    fn message_id(&self) -> String {
        self.next_message_id.fetch_add(1, Ordering::Relaxed).to_string()
    }
}

/// Mount `/demo/line-user` (who the panel plays), `/demo/line-user/actions` and
/// `/demo/line-user/received`.
pub fn configure(panel: Arc<Panel>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(panel.clone()))
            .route("/demo/line-user", web::get().to(who))
            .route("/demo/line-user/actions", web::post().to(act))
            .route("/demo/line-user/received", web::get().to(received));
    }
}

async fn who() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "line_user": DemoChannel::LINE_USER,
        "display_name": DemoChannel::LINE_USER_NAME,
        "account": { "basic_id": DemoChannel::BASIC_ID, "member": "alice@acme", "display_name": "Alice (Acme)" },
        "group": { "id": DemoChannel::LINE_GROUP, "name": DemoChannel::LINE_GROUP_NAME },
    }))
}

/// What the person did on the panel.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Follow,
    Unfollow,
    Text {
        text: String,
        #[serde(default)]
        in_group: bool,
    },
    Sticker {
        package_id: String,
        sticker_id: String,
        #[serde(default)]
        in_group: bool,
    },
    /// Invite alice's account into the demo group (LINE's `join`, then the user is a member).
    InviteToGroup,
    /// Remove alice's account from the group (LINE's `leave`).
    RemoveFromGroup,
}

/// The webhook events LINE would send for `action`.
fn events_of(action: Action, message_id: impl FnOnce() -> String) -> Vec<Value> {
    let user = json!({ "type": "user", "userId": DemoChannel::LINE_USER });
    let in_group = json!({ "type": "group", "groupId": DemoChannel::LINE_GROUP, "userId": DemoChannel::LINE_USER });
    let group = json!({ "type": "group", "groupId": DemoChannel::LINE_GROUP });
    let reply = || format!("r{}", uuid::Uuid::new_v4().simple());
    let source = |grouped: bool| if grouped { in_group.clone() } else { user.clone() };
    match action {
        Action::Follow => {
            vec![json!({ "type": "follow", "source": user, "replyToken": reply(), "follow": { "isUnblocked": false } })]
        }
        Action::Unfollow => vec![json!({ "type": "unfollow", "source": user })],
        Action::Text { text, in_group } => {
            let id = message_id();
            vec![json!({ "type": "message", "source": source(in_group), "replyToken": reply(),
                "message": { "id": id, "type": "text", "text": text, "quoteToken": format!("q{id}") } })]
        }
        Action::Sticker { package_id, sticker_id, in_group } => {
            let id = message_id();
            vec![json!({ "type": "message", "source": source(in_group), "replyToken": reply(),
                "message": { "id": id, "type": "sticker", "packageId": package_id, "stickerId": sticker_id,
                    "stickerResourceType": "STATIC", "quoteToken": format!("q{id}") } })]
        }
        Action::InviteToGroup => vec![
            json!({ "type": "join", "source": group, "replyToken": reply() }),
            json!({ "type": "memberJoined", "source": group, "replyToken": reply(),
                "joined": { "members": [{ "type": "user", "userId": DemoChannel::LINE_USER }] } }),
        ],
        Action::RemoveFromGroup => vec![json!({ "type": "leave", "source": group })],
    }
}

/// Have the simulator sign and deliver the action's webhook; the engine's answer.
async fn act(panel: web::Data<Panel>, action: web::Json<Action>) -> HttpResponse {
    if let Action::Text { text, .. } = &*action {
        if text.trim().is_empty() || text.chars().count() > 5000 {
            return refusal(400, "invalid_body", "a LINE text message has 1 to 5000 characters");
        }
    }
    let events = events_of(action.into_inner(), || panel.message_id());
    let request = json!({ "channel_id": DemoChannel::ID, "target_url": panel.webhook_url, "events": events });
    let answer = awc::Client::default().post(format!("{}/_sim/webhook", panel.sim)).send_json(&request).await;
    match answer {
        Ok(mut res) if res.status().is_success() => {
            let delivered: Value = res.json().await.unwrap_or(Value::Null);
            // The simulator answers with the engine's answer to the webhook.
            let status = delivered.get("status").and_then(Value::as_u64).unwrap_or(0);
            if status == 200 {
                HttpResponse::Accepted().json(json!({ "delivered": true }))
            } else {
                refusal(502, "webhook_refused", &format!("the engine answered the webhook with {status}"))
            }
        }
        Ok(res) => refusal(502, "simulator_error", &format!("the LINE platform simulator answered {}", res.status())),
        Err(err) => {
            refusal(502, "simulator_unreachable", &format!("the LINE platform simulator is not reachable: {err}"))
        }
    }
}

/// What the demo LINE user and the demo group received from alice's account: the pushes the
/// LINE gateway made to them, oldest first (`to`, then LINE's message objects).
async fn received(panel: web::Data<Panel>) -> HttpResponse {
    let url = format!("{}/_sim/requests?path=/v2/bot/message/push", panel.sim);
    let mut res = match awc::Client::default().get(url).send().await {
        Ok(res) if res.status().is_success() => res,
        Ok(res) => {
            return refusal(502, "simulator_error", &format!("the LINE platform simulator answered {}", res.status()))
        }
        Err(err) => {
            return refusal(
                502,
                "simulator_unreachable",
                &format!("the LINE platform simulator is not reachable: {err}"),
            )
        }
    };
    let requests: Vec<Value> = res.json().limit(16 << 20).await.unwrap_or_default();
    let pushes = requests
        .iter()
        .filter(|r| r.get("status").and_then(Value::as_u64) == Some(200))
        .filter_map(|r| r.get("body"))
        .filter(|body| {
            let to = body.get("to").and_then(Value::as_str);
            to == Some(DemoChannel::LINE_USER) || to == Some(DemoChannel::LINE_GROUP)
        })
        .map(|body| json!({ "to": body["to"], "messages": body["messages"] }))
        .collect::<Vec<_>>();
    HttpResponse::Ok().json(json!({ "received": pushes }))
}

fn refusal(status: u16, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    HttpResponse::build(status).json(json!({ "error": { "code": code, "message": message } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_is_the_webhook_line_would_send() {
        let ids = || "42".to_owned();
        let follow = events_of(Action::Follow, ids);
        assert_eq!(follow[0]["type"], "follow");
        assert_eq!(follow[0]["source"]["userId"], DemoChannel::LINE_USER);
        let text = events_of(Action::Text { text: "hi".into(), in_group: true }, ids);
        assert_eq!(text[0]["message"]["text"], "hi");
        assert_eq!(text[0]["message"]["id"], "42");
        assert_eq!(text[0]["source"]["groupId"], DemoChannel::LINE_GROUP, "written in the group");
        let invite = events_of(Action::InviteToGroup, ids);
        let kinds: Vec<_> = invite.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect();
        assert_eq!(kinds, ["join", "memberJoined"]);
    }

    #[test]
    fn actions_are_read_from_the_panels_json() {
        let action: Action =
            serde_json::from_str(r#"{"action":"sticker","package_id":"446","sticker_id":"1988"}"#).unwrap();
        assert!(matches!(action, Action::Sticker { in_group: false, .. }));
        assert!(serde_json::from_str::<Action>(r#"{"action":"delete_everything"}"#).is_err());
    }
}
