//! A session's call frames: checked at the edge, stamped with the session's device, sent to the
//! room as commands; and the calls this device is in, left when the session ends.

use chat_auth::Principal;
use chat_protocol::bus::{CommandError, CommandResult, RoomCommand};
use chat_protocol::call::{CallId, DeviceId};
use chat_protocol::frames::{ClientFrame, ServerFrame};
use chat_protocol::{new_id, now_ms, Refusal, RoomId};

use super::context::SessionContext;
use crate::access;

/// A call frame, as the room command it becomes.
pub struct CallFrame {
    pub room_id: RoomId,
    /// The call it is about (none for a `call_start`), named in its refusal.
    call_id: Option<CallId>,
    pub command: RoomCommand,
}

/// The error frame refusing a call frame: it names the frame's room and call.
fn refusal(err: CommandError, room_id: RoomId, call_id: Option<CallId>) -> Box<ServerFrame> {
    let frame = ServerFrame::Error {
        code: err.code,
        message: err.message,
        client_msg_id: None,
        room_id: Some(room_id),
        call_id,
    };
    Box::new(frame)
}

impl CallFrame {
    /// The command a call frame of this device asks for, or the error frame refusing it (a
    /// frame that is no call frame is not for here: `invalid_frame`). The checks that need
    /// nothing but the frame are made here (a room id that can name a room, a signal's size).
    pub fn of(frame: ClientFrame, device: &DeviceId) -> Result<CallFrame, Box<ServerFrame>> {
        let device = device.clone();
        let (room_id, command) = match frame {
            ClientFrame::CallStart { room_id, media } => (room_id, RoomCommand::CallStart { media, device }),
            ClientFrame::CallAccept { room_id, call_id } => {
                (room_id, RoomCommand::CallAnswer { call_id, device, move_here: false })
            }
            ClientFrame::CallJoin { room_id, call_id } => {
                (room_id, RoomCommand::CallAnswer { call_id, device, move_here: true })
            }
            ClientFrame::CallDecline { room_id, call_id } => (room_id, RoomCommand::CallDecline { call_id }),
            ClientFrame::CallCancel { room_id, call_id } => (room_id, RoomCommand::CallCancel { call_id, device }),
            ClientFrame::CallHangup { room_id, call_id } => (room_id, RoomCommand::CallHangup { call_id, device }),
            ClientFrame::CallSignal { room_id, call_id, to, signal } => {
                if let Err((code, message)) = signal.check() {
                    return Err(refusal(CommandError::new(code, message), room_id, Some(call_id)));
                }
                (room_id, RoomCommand::CallSignal { call_id, device, to, signal })
            }
            ClientFrame::Send { .. } | ClientFrame::Sync { .. } | ClientFrame::Read { .. } | ClientFrame::Ping {} => {
                let err = CommandError::new(Refusal::InvalidFrame, "not a call frame");
                return Err(Box::new(ServerFrame::Error {
                    code: err.code,
                    message: err.message,
                    client_msg_id: None,
                    room_id: None,
                    call_id: None,
                }));
            }
        };
        let call_id = call_of(&command);
        if uuid::Uuid::parse_str(room_id.as_str()).is_err() {
            return Err(refusal(CommandError::room_not_found(), room_id, call_id));
        }
        Ok(CallFrame { room_id, call_id, command })
    }

    /// Whether this frame starts a call.
    pub fn starts(&self) -> bool {
        matches!(self.command, RoomCommand::CallStart { .. })
    }

    /// The error frame refusing this frame.
    pub fn refused(&self, err: CommandError) -> ServerFrame {
        *refusal(err, self.room_id.clone(), self.call_id.clone())
    }

    /// Whether this frame puts the device into a call (it needs the right to talk there now).
    fn joins(&self) -> bool {
        matches!(self.command, RoomCommand::CallStart { .. } | RoomCommand::CallAnswer { .. })
    }
}

/// The call a call command is about.
fn call_of(command: &RoomCommand) -> Option<CallId> {
    match command {
        RoomCommand::CallAnswer { call_id, .. }
        | RoomCommand::CallDecline { call_id }
        | RoomCommand::CallCancel { call_id, .. }
        | RoomCommand::CallHangup { call_id, .. }
        | RoomCommand::CallSignal { call_id, .. }
        | RoomCommand::CallRingTimeout { call_id }
        | RoomCommand::CallDeviceGone { call_id, .. } => Some(call_id.clone()),
        _ => None,
    }
}

/// What became of a call frame.
pub struct CallDone {
    pub room_id: RoomId,
    /// The call this device is in now (it joined), or left.
    pub membership: Option<(CallId, bool)>,
    /// What the client is told: `call_joined`, or an error; nothing for a signal relayed or
    /// a call left.
    pub answer: Option<Box<ServerFrame>>,
}

/// Send a call frame's command to its room and wait for the answer. Joining a call takes the
/// same right as posting (an active trust in an external room); the room checks the rest.
pub async fn run(sc: &SessionContext, p: &Principal, device: DeviceId, frame: CallFrame) -> CallDone {
    let joins = frame.joins();
    let leaves = matches!(frame.command, RoomCommand::CallHangup { .. } | RoomCommand::CallCancel { .. });
    let CallFrame { room_id, call_id, command } = frame;
    let answer = async {
        if joins {
            access::may_post(p, &room_id, &sc.store, &sc.kinds, &sc.authz).await?;
        }
        let submitted = sc.dispatcher.submit(&room_id, &p.user_id, &p.tenant, Some(new_id()), command).await?;
        submitted.answer().await.map_err(CommandError::from)
    }
    .await;
    match answer {
        Ok(CommandResult::CallJoined { call_id }) => {
            let ice_servers = sc.turn.ice_servers(&p.user_id, u64::try_from(now_ms() / 1000).unwrap_or(0));
            let joined =
                ServerFrame::CallJoined { room_id: room_id.clone(), call_id: call_id.clone(), device, ice_servers };
            CallDone { room_id, membership: Some((call_id, true)), answer: Some(Box::new(joined)) }
        }
        Ok(_) => CallDone { room_id, membership: call_id.filter(|_| leaves).map(|c| (c, false)), answer: None },
        Err(err) => {
            let err = match err.code {
                Refusal::CommandTimeout => {
                    CommandError::new(Refusal::CommandTimeout, "the room did not answer in time")
                }
                _ => err,
            };
            CallDone { room_id: room_id.clone(), membership: None, answer: Some(refusal(err, room_id, call_id)) }
        }
    }
}

/// The calls going on in the user's rooms, as `call` frames: a device that connects learns of
/// a call ringing for it, or going on (later changes are pushed; a client keeps the view of
/// the highest `rev`). Without the store, none.
pub async fn going_on(sc: &SessionContext, p: &Principal) -> Vec<ServerFrame> {
    match sc.store.calls_of(&p.user_id, &p.tenant).await {
        Ok(calls) => {
            calls.into_iter().map(|(room_id, call)| ServerFrame::Call { room_id, call: call.view() }).collect()
        }
        Err(err) => {
            tracing::warn!(error = %err, "the calls going on are not readable");
            Vec::new()
        }
    }
}

/// The session ended: leave the calls its device is in (the room ends a call left with fewer
/// than two). Best effort: a call whose command is lost stays until its participants hang up.
pub async fn leave_all(sc: &SessionContext, p: &Principal, device: DeviceId, calls: Vec<(RoomId, CallId)>) {
    for (room_id, call_id) in calls {
        let command = RoomCommand::CallHangup { call_id, device: device.clone() };
        match sc.dispatcher.submit(&room_id, &p.user_id, &p.tenant, Some(new_id()), command).await {
            Ok(submitted) => {
                let _ = submitted.answer().await;
            }
            Err(err) => tracing::warn!(room_id = %room_id, error = %err, "a closed session's call was not left"),
        }
    }
}
