//! How stored events, rooms and notifications look on the wire.

use chat_protocol::frames::{format_time_ms, ServerFrame};
use chat_protocol::{Body, RoomEvent, RoomId};
use serde::Serialize;

use crate::domain::PlannedEvent;
use crate::store::{EventKind, EventRow, MemberRow, NotificationRow, RoomView};

/// The frame of a stored event. A row that does not decode is shown as an empty event rather
/// than breaking a whole history page (and logged).
pub fn event_frame(room_id: &RoomId, row: &EventRow) -> ServerFrame {
    let sent_at = format_time_ms(row.sent_at_ms);
    if row.kind == EventKind::Message {
        let body = match (&row.body, row.is_recalled()) {
            (Some(text), false) => serde_json::from_str::<Body>(text).ok(),
            _ => None,
        };
        return ServerFrame::Message {
            room_id: room_id.clone(),
            seq: row.seq,
            message_id: row.message_id(),
            sender: row.sender(),
            body,
            sent_at,
            recalled: row.is_recalled(),
        };
    }
    let event = row.body.as_deref().and_then(|b| serde_json::from_str::<RoomEvent>(b).ok()).unwrap_or_else(|| {
        tracing::warn!(room_id = %room_id, seq = row.seq, "undecodable room event");
        RoomEvent::MemberLeft { user: Default::default() }
    });
    ServerFrame::RoomEvent { room_id: room_id.clone(), seq: row.seq, event, sent_at }
}

/// The frame of an event just committed by a room actor.
pub fn planned_frame(room_id: &RoomId, seq: i64, event: &PlannedEvent, now_ms: i64) -> ServerFrame {
    let sent_at = format_time_ms(now_ms);
    match event {
        PlannedEvent::Message { message_id, sender, body } => ServerFrame::Message {
            room_id: room_id.clone(),
            seq,
            message_id: message_id.clone(),
            sender: sender.clone(),
            body: Some(body.clone()),
            sent_at,
            recalled: false,
        },
        PlannedEvent::System(e) => ServerFrame::RoomEvent { room_id: room_id.clone(), seq, event: e.clone(), sent_at },
    }
}

pub fn notification_frame(n: &NotificationRow) -> ServerFrame {
    ServerFrame::Notification {
        id: n.id.clone(),
        kind: n.kind,
        room_id: n.room_id.clone().map(RoomId::from),
        text: n.text.clone(),
        created_at: format_time_ms(n.created_at_ms),
    }
}

/// A room in lists and details, with its markers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomJson {
    pub id: RoomId,
    pub kind: chat_protocol::bus::RoomKind,
    /// `line`, `external`: what the kind shows in the room list.
    #[schema(value_type = Vec<String>)]
    pub markers: Vec<&'static str>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo_url: Option<String>,
    pub last_seq: i64,
    pub read_seq: i64,
    pub unread: i64,
    pub updated_at: String,
    pub last_message: Option<ServerFrame>,
}

pub fn room_json(view: &RoomView) -> RoomJson {
    let meta = &view.meta;
    RoomJson {
        id: meta.id.clone(),
        kind: meta.kind,
        markers: meta.kind.markers(),
        name: meta.info.name.clone(),
        description: meta.info.description.clone(),
        photo_url: meta.info.photo_url.clone(),
        last_seq: view.last_seq,
        read_seq: view.read_seq,
        unread: view.unread,
        updated_at: format_time_ms(view.updated_at_ms),
        last_message: view.last_message.as_ref().map(|m| event_frame(&meta.id, m)),
    }
}

/// A member in a room's details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberJson {
    pub user: chat_protocol::UserId,
    pub tenant: chat_protocol::TenantId,
    pub kind: chat_protocol::bus::MemberKind,
    #[schema(value_type = crate::domain::Role)]
    pub role: &'static str,
    pub read_seq: i64,
}

pub fn member_json(m: &MemberRow) -> MemberJson {
    MemberJson {
        user: m.user_id.clone(),
        tenant: m.tenant.clone(),
        kind: m.kind,
        role: m.role.as_str(),
        read_seq: m.read_seq,
    }
}
