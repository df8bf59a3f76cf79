//! How stored events and room rows look on the wire.

use chat_protocol::frames::{format_time_ms, ServerFrame};
use chat_protocol::{Body, RoomEvent};
use serde_json::{json, Value};

use crate::domain::PlannedEvent;
use crate::store::{EventRow, NotificationRow, RoomView};

/// The frame of a stored event. A row that does not decode is shown as an empty event rather
/// than breaking a whole history page (and logged).
pub fn event_frame(room_id: &str, row: &EventRow) -> ServerFrame {
    let sent_at = format_time_ms(row.sent_at_ms);
    if row.kind == "message" {
        let body = match (&row.body, row.recalled) {
            (Some(text), false) => serde_json::from_str::<Body>(text).ok(),
            _ => None,
        };
        return ServerFrame::Message {
            room_id: room_id.to_owned(),
            seq: row.seq,
            message_id: row.message_id.clone().unwrap_or_default(),
            sender: row.sender.clone().unwrap_or_default(),
            body,
            sent_at,
            recalled: row.recalled,
        };
    }
    let event = row.body.as_deref().and_then(|b| serde_json::from_str::<RoomEvent>(b).ok()).unwrap_or_else(|| {
        tracing::warn!(room_id, seq = row.seq, "undecodable room event");
        RoomEvent::MemberLeft { user: String::new() }
    });
    ServerFrame::RoomEvent { room_id: room_id.to_owned(), seq: row.seq, event, sent_at }
}

/// The frame of an event just committed by a room actor.
pub fn planned_frame(room_id: &str, seq: i64, event: &PlannedEvent, now_ms: i64) -> ServerFrame {
    let sent_at = format_time_ms(now_ms);
    match event {
        PlannedEvent::Message { message_id, sender, body } => ServerFrame::Message {
            room_id: room_id.to_owned(),
            seq,
            message_id: message_id.clone(),
            sender: sender.clone(),
            body: Some(body.clone()),
            sent_at,
            recalled: false,
        },
        PlannedEvent::System(e) => {
            ServerFrame::RoomEvent { room_id: room_id.to_owned(), seq, event: e.clone(), sent_at }
        }
    }
}

pub fn notification_frame(n: &NotificationRow) -> ServerFrame {
    ServerFrame::Notification {
        id: n.id.clone(),
        kind: n.kind.clone(),
        room_id: n.room_id.clone(),
        text: n.text.clone(),
        created_at: format_time_ms(n.created_at_ms),
    }
}

pub fn event_json(room_id: &str, row: &EventRow) -> Value {
    serde_json::to_value(event_frame(room_id, row)).unwrap_or(Value::Null)
}

/// A room in lists and details, with its markers.
pub fn room_json(view: &RoomView) -> Value {
    let markers = chat_protocol::bus::RoomKind::parse(&view.kind).map(|k| k.markers()).unwrap_or_default();
    json!({
        "id": view.id,
        "kind": view.kind,
        "markers": markers,
        "name": view.name,
        "description": view.description,
        "photo_url": view.photo_url,
        "last_seq": view.last_seq,
        "read_seq": view.read_seq,
        "unread": view.unread,
        "updated_at": format_time_ms(view.updated_at_ms),
        "last_message": view.last_message.as_ref().map(|m| event_json(&view.id, m)),
    })
}
