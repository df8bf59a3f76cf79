//! LINE groups (and multi-person chats) the channel's account is in. Each is connected to one
//! room of the member's (`line_group`), in which the group itself is a participant
//! (`line:<groupId>`): members' messages there are pushed to the group, once, whoever reads
//! them on LINE. LINE users join the room as they appear (`memberJoined`, or their first
//! message) and leave it with `memberLeft`.
//!
//! - `join`: the group's name is asked of LINE (`GET /v2/bot/group/{id}/summary`; a
//!   multi-person chat has none), the room is created on behalf of the member, or the group
//!   brought back into it when the account is invited again, and the member is notified
//!   (`line_group_joined`);
//! - `leave`: the group and the LINE users the gateway added leave the room, which stays with
//!   its history and is closed for sending (rooms refuses a member's message in a LINE room
//!   without a LINE participant), and the member is notified (`line_group_left`);
//! - a message from a group the gateway has no room for (the join came before the channel was
//!   bound) makes the room as a join does, without the notification.

use chat_protocol::events::ChangeEvent;
use chat_protocol::frames::NotificationKind;
use chat_protocol::now_ms;
use tracing::debug;

use super::steps::{line_user, observe_room_answer, publish_keyed, Outcome, Place, MAX_ATTEMPTS};
use crate::line_api::ProfileOutcome;
use crate::rooms::line_group_room_id;
use crate::service::LineCore;
use crate::store::{Channel, InboxRow, LineGroup};

/// The room name of a group LINE gives no name for.
const UNNAMED_GROUP: &str = "LINE group";

/// The longest room name taken from LINE (rooms' limit is larger).
const MAX_NAME_CHARS: usize = 100;

pub(super) async fn join(core: &LineCore, row: &InboxRow, channel: &Channel, group_id: &str) -> Outcome {
    let name = match open(core, row, channel, group_id).await {
        Ok(name) => name,
        Err(outcome) => return outcome,
    };
    observe_room_answer(row);
    let text = format!("Your LINE account was added to the LINE group \"{name}\": its messages are in a new room");
    notify(core, row, channel, NotificationKind::LineGroupJoined, text).await
}

pub(super) async fn leave(core: &LineCore, row: &InboxRow, channel: &Channel, group_id: &str) -> Outcome {
    let group = match core.store.group(&channel.channel_id, group_id).await {
        Ok(Some(group)) => group,
        Ok(None) => return Outcome::Done("unknown_group"),
        Err(err) => return err.into(),
    };
    let key = row.key.webhook_event_id.as_str();
    let members = match core.store.group_members(&channel.channel_id, group_id).await {
        Ok(members) => members,
        Err(err) => return err.into(),
    };
    for member in &members {
        if let Err(err) = core.rooms.leave_as_line_user(&group.room_id, &line_user(member), key).await {
            return err.into();
        }
    }
    if let Err(err) = core.rooms.leave_as_line_user(&group.room_id, &line_user(group_id), key).await {
        return err.into();
    }
    for member in &members {
        if let Err(err) = core.store.remove_group_member(&channel.channel_id, group_id, member).await {
            return err.into();
        }
    }
    if let Err(err) = core.store.remember_group(&channel.channel_id, group_id, &group.room_id, false, now_ms()).await {
        return err.into();
    }
    let text = "Your LINE account was removed from a LINE group: its room is closed".to_owned();
    notify(core, row, channel, NotificationKind::LineGroupLeft, text).await
}

pub(super) async fn members_joined(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    group_id: &str,
    line_user_ids: &[String],
) -> Outcome {
    let group = match active_group(core, row, channel, group_id).await {
        Ok(group) => group,
        Err(outcome) => return outcome,
    };
    match add(core, row, channel, &group, line_user_ids).await {
        Ok(()) => Outcome::Done("applied"),
        Err(outcome) => outcome,
    }
}

pub(super) async fn members_left(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    group_id: &str,
    line_user_ids: &[String],
) -> Outcome {
    let group = match core.store.group(&channel.channel_id, group_id).await {
        Ok(Some(group)) => group,
        Ok(None) => return Outcome::Done("unknown_group"),
        Err(err) => return err.into(),
    };
    let key = row.key.webhook_event_id.as_str();
    for member in line_user_ids {
        if let Err(err) = core.rooms.leave_as_line_user(&group.room_id, &line_user(member), key).await {
            return err.into();
        }
        if let Err(err) = core.store.remove_group_member(&channel.channel_id, group_id, member).await {
            return err.into();
        }
    }
    Outcome::Done("applied")
}

/// The place of a message written in a group: its room, with the writer added to it, or the
/// group itself as the writer when LINE does not name them.
pub(super) async fn place(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    group_id: &str,
    line_user_id: Option<&str>,
) -> Result<Place, Outcome> {
    let group = active_group(core, row, channel, group_id).await?;
    let Some(line_user_id) = line_user_id else {
        return Ok(Place { room: group.room_id, speaker: line_user(group_id), direct: None, routed: None });
    };
    add(core, row, channel, &group, &[line_user_id.to_owned()]).await?;
    Ok(Place { room: group.room_id, speaker: line_user(line_user_id), direct: None, routed: None })
}

/// The group's room while the account is in it; one never seen is made as by a join.
async fn active_group(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    group_id: &str,
) -> Result<LineGroup, Outcome> {
    match core.store.group(&channel.channel_id, group_id).await? {
        Some(group) if group.active => Ok(group),
        Some(_) => Err(Outcome::Done("group_left")),
        None => {
            open(core, row, channel, group_id).await?;
            let room_id = line_group_room_id(&channel.channel_id, group_id);
            Ok(LineGroup {
                channel_id: channel.channel_id.clone(),
                group_id: group_id.to_owned(),
                room_id,
                active: true,
            })
        }
    }
}

/// Make (or reopen) the group's room, remember it, and return the group's name.
async fn open(core: &LineCore, row: &InboxRow, channel: &Channel, group_id: &str) -> Result<String, Outcome> {
    let name = group_name(core, row, channel, group_id).await?;
    let room_id = line_group_room_id(&channel.channel_id, group_id);
    let key = row.key.webhook_event_id.as_str();
    let group = line_user(group_id);
    core.rooms.open_line_group(&room_id, &channel.user_id, &channel.tenant, &group, &name, key).await?;
    core.store.remember_group(&channel.channel_id, group_id, &room_id, true, now_ms()).await?;
    Ok(name)
}

/// Add LINE users the room does not have yet (on behalf of the group).
async fn add(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    group: &LineGroup,
    line_user_ids: &[String],
) -> Result<(), Outcome> {
    let mut new = Vec::new();
    for id in line_user_ids {
        if !core.store.is_group_member(&channel.channel_id, &group.group_id, id).await? {
            new.push(id);
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let users: Vec<_> = new.iter().map(|id| line_user(id)).collect();
    let key = row.key.webhook_event_id.as_str();
    core.rooms.add_line_users(&group.room_id, &line_user(&group.group_id), &users, key).await?;
    for id in new {
        remember_member_profile(core, channel, &group.group_id, id).await?;
        core.store.add_group_member(&channel.channel_id, &group.group_id, id).await?;
    }
    Ok(())
}

/// Keep the name and picture of a group member the channel has no profile of (one who is not
/// the account's friend): the room shows them. LINE not giving it is no failure.
async fn remember_member_profile(core: &LineCore, channel: &Channel, group_id: &str, id: &str) -> Result<(), Outcome> {
    if core.store.has_profile(&channel.channel_id, id).await? {
        return Ok(());
    }
    let Ok(token) = core.secrets.decrypt(&channel.token_enc) else { return Ok(()) };
    let client = core.line_api.client();
    match core.line_api.group_member_profile(&client, &token, group_id, id).await {
        ProfileOutcome::Found(profile) => {
            let picture = profile.picture_url.as_deref();
            core.store.remember_profile(&channel.channel_id, id, &profile.display_name, picture, now_ms()).await?;
        }
        ProfileOutcome::Unavailable(cause) | ProfileOutcome::Retry(cause) => {
            debug!(group_id, line_user_id = id, %cause, "no profile of a group member; the room shows their id");
        }
    }
    Ok(())
}

/// The group's name from LINE, or a stand-in (a multi-person chat, or no answer on the
/// event's last attempt).
async fn group_name(core: &LineCore, row: &InboxRow, channel: &Channel, group_id: &str) -> Result<String, Outcome> {
    let Ok(token) = core.secrets.decrypt(&channel.token_enc) else { return Ok(UNNAMED_GROUP.to_owned()) };
    let client = core.line_api.client();
    match core.line_api.group_name(&client, &token, group_id).await {
        ProfileOutcome::Found(summary) if !summary.group_name.trim().is_empty() => {
            Ok(summary.group_name.trim().chars().take(MAX_NAME_CHARS).collect())
        }
        ProfileOutcome::Found(_) => Ok(UNNAMED_GROUP.to_owned()),
        ProfileOutcome::Unavailable(cause) => {
            debug!(group_id, %cause, "no LINE group name; a stand-in is used");
            Ok(UNNAMED_GROUP.to_owned())
        }
        ProfileOutcome::Retry(cause) if row.attempts < MAX_ATTEMPTS => Err(Outcome::Retry(cause)),
        ProfileOutcome::Retry(_) => Ok(UNNAMED_GROUP.to_owned()),
    }
}

async fn notify(core: &LineCore, row: &InboxRow, channel: &Channel, kind: NotificationKind, text: String) -> Outcome {
    let event = ChangeEvent::Notify { tenant: channel.tenant.clone(), user: channel.user_id.clone(), kind, text };
    publish_keyed(core, row, event).await
}
