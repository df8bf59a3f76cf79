//! The rules of a room's call, as pure functions (no I/O, like `domain`): one call per room at
//! a time; who rings, who is in it, how it ends, and what history it leaves.
//!
//! A call starts ringing on every device of every other member (LINE users have no calls, and
//! a room with LINE users has none). The first device of an invited member to answer is that
//! member's device in the call; the member's other devices stop ringing (they see the member
//! among the participants, with another device). The ringing stops at the deadline: a call
//! nobody answered ends as missed. A call with two participants or more is active; it ends when
//! fewer than two are left. Members who lose the right to be in the room (an exclusion: a
//! withdrawn trust or LINE permission) leave the call with their membership; if that leaves
//! fewer than two, the call ends at once as revoked.
//!
//! Signals (SDP, ICE) go only from a participant's device in the call to another participant's
//! device in the same call (`relay_target`); they are never written.

use chat_protocol::bus::{CommandError, CommandResult, RoomCommand};
use chat_protocol::call::{
    Call, CallEnd, CallEndReason, CallId, CallParticipant, CallStatus, CallView, DeviceId, MAX_CALL_PARTICIPANTS,
};
use chat_protocol::{Refusal, RoomEvent, UserId};

/// The command id of a call's ring timeout: whoever sends it (the room's actor, a node's sweep),
/// it is applied once.
pub fn ring_timeout_command_id(call_id: &CallId) -> String {
    format!("ring-timeout:{call_id}")
}

/// The command id of taking a gone device out of a call: applied once, whichever node's sweep
/// sends it.
pub fn device_gone_command_id(call_id: &CallId, device: &DeviceId) -> String {
    format!("device-gone:{call_id}:{device}")
}

/// What the call rules see of a room.
pub struct CallRoom<'a> {
    /// Whether the room has (or is made for) LINE users: no calls there.
    pub line: bool,
    /// The members whose devices a call reaches (not LINE users).
    pub members: &'a [UserId],
    pub call: Option<&'a Call>,
    pub ring_timeout_ms: i64,
}

/// A change of the room's call, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct CallChange {
    /// The call after the command; `None` once it ended.
    pub after: Option<Call>,
    /// How clients see the call now (the `call` frame); `ended` with how, once it ended.
    pub view: CallView,
    /// A second participant came with this change (the call was answered).
    pub answered: bool,
}

/// What a call command does.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub result: CommandResult,
    /// `None`: nothing changes (a repeat, a timeout that came late).
    pub change: Option<CallChange>,
    /// History: the call started, or how it ended.
    pub events: Vec<RoomEvent>,
}

fn refuse(code: Refusal, message: &str) -> CommandError {
    CommandError::new(code, message)
}

fn unchanged(result: CommandResult) -> CallPlan {
    CallPlan { result, change: None, events: Vec::new() }
}

/// The room's call of this id, or `call_not_found`.
fn current<'a>(room: &CallRoom<'a>, call_id: &CallId) -> Result<&'a Call, CommandError> {
    room.call.filter(|c| c.id == *call_id).ok_or_else(|| refuse(Refusal::CallNotFound, "no such call in this room"))
}

/// The call goes on, changed.
fn changed(mut call: Call, result: CommandResult, answered: bool) -> CallPlan {
    call.rev += 1;
    let view = call.view();
    CallPlan { result, change: Some(CallChange { after: Some(call), view, answered }), events: Vec::new() }
}

/// The call ends: its history entry, and its last view for the clients.
fn ended(call: &Call, reason: CallEndReason, now_ms: i64, result: CommandResult) -> CallPlan {
    let duration_ms = call.answered_at_ms.map(|at| (now_ms - at).max(0));
    // Who never answered: those it still rang for, and those it stopped ringing for while it
    // went on (and who did not join later).
    let mut missed = call.missed.clone();
    missed.extend(call.ringing.iter().cloned());
    let mut view = call.view();
    view.rev = call.rev + 1;
    view.status = CallStatus::Ended;
    view.ringing = Vec::new();
    view.participants = Vec::new();
    view.end = Some(CallEnd { reason, duration_ms });
    let event = RoomEvent::CallEnded {
        call_id: call.id.clone(),
        by: call.started_by.clone(),
        media: call.media,
        reason,
        duration_ms,
        missed,
    };
    CallPlan { result, change: Some(CallChange { after: None, view, answered: false }), events: vec![event] }
}

/// Decide a call command of `actor` (a member, or the system for a timeout). `new_id` names a
/// new call.
pub fn decide(
    room: &CallRoom<'_>,
    actor: &UserId,
    command: &RoomCommand,
    now_ms: i64,
    new_id: impl FnOnce() -> CallId,
) -> Result<CallPlan, CommandError> {
    let done = CommandResult::Done { seq: 0 };
    match command {
        RoomCommand::CallStart { media, device } => {
            if room.line {
                return Err(refuse(
                    Refusal::CallsUnavailableWithLine,
                    "calls are not available in rooms with LINE users",
                ));
            }
            if room.call.is_some() {
                return Err(refuse(Refusal::CallInProgress, "a call is going on in this room: join it"));
            }
            let ringing: Vec<UserId> = room.members.iter().filter(|m| *m != actor).cloned().collect();
            if ringing.is_empty() {
                return Err(refuse(Refusal::NotAllowedForKind, "nobody else in this room to call"));
            }
            let call = Call {
                id: new_id(),
                media: *media,
                started_by: actor.clone(),
                started_at_ms: now_ms,
                ringing,
                participants: vec![CallParticipant {
                    user: actor.clone(),
                    device: device.clone(),
                    joined_at_ms: now_ms,
                }],
                declined: Vec::new(),
                ring_deadline_ms: now_ms + room.ring_timeout_ms,
                answered_at_ms: None,
                missed: Vec::new(),
                rev: 0,
            };
            let event = RoomEvent::CallStarted { call_id: call.id.clone(), by: actor.clone(), media: *media };
            let mut plan = changed(call.clone(), CommandResult::CallJoined { call_id: call.id }, false);
            plan.events.push(event);
            Ok(plan)
        }
        RoomCommand::CallAnswer { call_id, device, move_here } => {
            let call = current(room, call_id)?;
            let joined = CommandResult::CallJoined { call_id: call_id.clone() };
            if let Some(p) = call.participant(actor) {
                if p.device == *device {
                    return Ok(unchanged(joined));
                }
                if !move_here {
                    return Err(refuse(Refusal::CallAnsweredElsewhere, "you are in this call on another device"));
                }
                // A join from another device moves the actor's place in the call here (the
                // other device hung up, or is gone: a closed laptop, a crashed node).
                let mut call = call.clone();
                if let Some(p) = call.participants.iter_mut().find(|p| p.user == *actor) {
                    p.device = device.clone();
                    p.joined_at_ms = now_ms;
                }
                return Ok(changed(call, joined, false));
            }
            if call.participants.len() >= MAX_CALL_PARTICIPANTS {
                return Err(refuse(Refusal::CallFull, "this call has as many participants as it may"));
            }
            let mut call = call.clone();
            call.ringing.retain(|u| u != actor);
            call.declined.retain(|u| u != actor);
            call.missed.retain(|u| u != actor);
            call.participants.push(CallParticipant {
                user: actor.clone(),
                device: device.clone(),
                joined_at_ms: now_ms,
            });
            let answered = call.answered_at_ms.is_none();
            call.answered_at_ms.get_or_insert(now_ms);
            Ok(changed(call, joined, answered))
        }
        RoomCommand::CallDecline { call_id } => {
            let call = current(room, call_id)?;
            if call.declined.contains(actor) {
                return Ok(unchanged(done));
            }
            if !call.ringing.contains(actor) {
                return Err(refuse(Refusal::NotInCall, "this call is not ringing for you"));
            }
            let mut call = call.clone();
            call.ringing.retain(|u| u != actor);
            call.declined.push(actor.clone());
            if call.status() == CallStatus::Ringing && call.ringing.is_empty() {
                return Ok(ended(&call, CallEndReason::Declined, now_ms, done));
            }
            Ok(changed(call, done, false))
        }
        RoomCommand::CallCancel { call_id, device } | RoomCommand::CallHangup { call_id, device } => {
            let call = current(room, call_id)?;
            if call.participant(actor).is_none_or(|p| p.device != *device) {
                return Err(refuse(Refusal::NotInCall, "this device is not in the call"));
            }
            Ok(leave(call, actor, CallEndReason::Completed, now_ms, done))
        }
        RoomCommand::CallDeviceGone { call_id, device } => {
            let Some(call) = room.call.filter(|c| c.id == *call_id) else { return Ok(unchanged(done)) };
            let Some(gone) = call.participants.iter().find(|p| p.device == *device) else {
                return Ok(unchanged(done)); // it hung up, or moved to another device
            };
            let user = gone.user.clone();
            Ok(leave(call, &user, CallEndReason::Completed, now_ms, done))
        }
        RoomCommand::CallRingTimeout { call_id } => {
            let Some(call) = room.call.filter(|c| c.id == *call_id) else { return Ok(unchanged(done)) };
            if now_ms < call.ring_deadline_ms || call.ringing.is_empty() {
                return Ok(unchanged(done));
            }
            if call.status() == CallStatus::Ringing {
                return Ok(ended(call, CallEndReason::Missed, now_ms, done));
            }
            // A group call going on: those it still rings for stop ringing (they missed it, unless
            // they join).
            let mut call = call.clone();
            let unanswered = std::mem::take(&mut call.ringing);
            call.missed.extend(unanswered);
            Ok(changed(call, done, false))
        }
        _ => Err(CommandError::internal()),
    }
}

/// `user` leaves the call (hung up, left the room, or was excluded): the call ends if that
/// leaves fewer than two participants (`reason`, or `cancelled` before anyone answered, when
/// the caller left).
fn leave(call: &Call, user: &UserId, reason: CallEndReason, now_ms: i64, result: CommandResult) -> CallPlan {
    let mut call = call.clone();
    call.participants.retain(|p| p.user != *user);
    call.ringing.retain(|u| u != user);
    call.declined.retain(|u| u != user);
    call.missed.retain(|u| u != user);
    let answered = call.status() == CallStatus::Active;
    if !answered && call.participants.is_empty() {
        let reason = if reason == CallEndReason::Revoked { reason } else { CallEndReason::Cancelled };
        return ended(&call, reason, now_ms, result);
    }
    if !answered && call.ringing.is_empty() {
        // Nobody left to ring: every invited member declined or is gone.
        let reason = if reason == CallEndReason::Revoked { reason } else { CallEndReason::Declined };
        return ended(&call, reason, now_ms, result);
    }
    if answered && call.participants.len() < 2 {
        return ended(&call, reason, now_ms, result);
    }
    changed(call, result, false)
}

/// Members leave the room (left, removed or excluded): they leave the call too. `revoked`: by a
/// rule (an exclusion), so a call it ends ends as revoked. `None` when the call does not change.
pub fn members_gone(call: &Call, gone: &[UserId], revoked: bool, now_ms: i64) -> Option<CallPlan> {
    let reason = if revoked { CallEndReason::Revoked } else { CallEndReason::Completed };
    let touches = |u: &UserId| call.participant(u).is_some() || call.ringing.contains(u) || call.declined.contains(u);
    let mut plan: Option<CallPlan> = None;
    let mut now = call.clone();
    for user in gone.iter().filter(|u| touches(u)) {
        let next = leave(&now, user, reason, now_ms, CommandResult::Done { seq: 0 });
        match next.change.as_ref().and_then(|c| c.after.clone()) {
            Some(after) => {
                now = after;
                plan = Some(next);
            }
            None => return Some(next), // it ended
        }
    }
    plan
}

/// The device a signal from `actor`'s `device` goes to: both must be in the call.
pub fn relay_target(
    call: Option<&Call>,
    call_id: &CallId,
    actor: &UserId,
    device: &DeviceId,
    to: &UserId,
) -> Result<DeviceId, CommandError> {
    let call =
        call.filter(|c| c.id == *call_id).ok_or_else(|| refuse(Refusal::CallNotFound, "no such call in this room"))?;
    if call.participant(actor).is_none_or(|p| p.device != *device) {
        return Err(refuse(Refusal::NotInCall, "this device is not in the call"));
    }
    match call.participant(to) {
        Some(p) if p.user != *actor => Ok(p.device.clone()),
        _ => Err(refuse(Refusal::NotInCall, "signals go only to another participant of the call")),
    }
}

#[cfg(test)]
mod tests {
    use chat_protocol::call::CallMedia;

    use super::*;

    fn ids(users: &[&str]) -> Vec<UserId> {
        users.iter().map(|u| UserId::new(*u)).collect()
    }

    fn dev(n: u64) -> DeviceId {
        DeviceId::of("node", n)
    }

    /// Run `command` by `actor` against the room's call, returning the plan and the call after.
    fn step(
        members: &[UserId],
        call: Option<&Call>,
        actor: &str,
        command: RoomCommand,
        now: i64,
    ) -> Result<(CallPlan, Option<Call>), CommandError> {
        let room = CallRoom { line: false, members, call, ring_timeout_ms: 30_000 };
        let plan = decide(&room, &UserId::new(actor), &command, now, || CallId::new("call-1"))?;
        let after = match &plan.change {
            Some(change) => change.after.clone(),
            None => call.cloned(),
        };
        Ok((plan, after))
    }

    fn start(members: &[UserId]) -> Call {
        let command = RoomCommand::CallStart { media: CallMedia::Video, device: dev(1) };
        let (plan, call) = step(members, None, "a", command, 1_000).unwrap();
        assert!(matches!(plan.events[..], [RoomEvent::CallStarted { .. }]));
        call.unwrap()
    }

    #[test]
    fn a_call_rings_for_the_others_and_the_first_device_to_answer_wins() {
        let members = ids(&["a", "b", "c"]);
        let call = start(&members);
        assert_eq!(call.ringing, ids(&["b", "c"]));
        assert_eq!(call.status(), CallStatus::Ringing);
        let answer = |device| RoomCommand::CallAnswer { call_id: call.id.clone(), device, move_here: false };
        let (plan, call) = step(&members, Some(&call), "b", answer(dev(2)), 2_000).unwrap();
        assert!(plan.change.as_ref().unwrap().answered);
        let call = call.unwrap();
        assert_eq!(call.status(), CallStatus::Active);
        assert_eq!(call.ringing, ids(&["c"]));
        // b's other device: answered elsewhere.
        let err = step(&members, Some(&call), "b", answer(dev(3)), 2_100).unwrap_err();
        assert_eq!(err.code, Refusal::CallAnsweredElsewhere);
        // the same device again: a repeat, nothing changes.
        let (plan, _) = step(&members, Some(&call), "b", answer(dev(2)), 2_200).unwrap();
        assert!(plan.change.is_none());
        // A join from b's other device moves b's place in the call there.
        let join = RoomCommand::CallAnswer { call_id: call.id.clone(), device: dev(3), move_here: true };
        let (plan, moved) = step(&members, Some(&call), "b", join, 2_250).unwrap();
        assert!(plan.events.is_empty());
        assert_eq!(moved.unwrap().participant(&UserId::new("b")).map(|p| p.device.clone()), Some(dev(3)));
        // One call per room.
        let again = RoomCommand::CallStart { media: CallMedia::Audio, device: dev(9) };
        assert_eq!(step(&members, Some(&call), "c", again, 2_300).unwrap_err().code, Refusal::CallInProgress);
    }

    #[test]
    fn hanging_up_ends_a_call_of_two_with_its_duration() {
        let members = ids(&["a", "b"]);
        let call = start(&members);
        let answer = RoomCommand::CallAnswer { call_id: call.id.clone(), device: dev(2), move_here: false };
        let (_, call) = step(&members, Some(&call), "b", answer, 5_000).unwrap();
        let call = call.unwrap();
        let not_mine = RoomCommand::CallHangup { call_id: call.id.clone(), device: dev(7) };
        assert_eq!(step(&members, Some(&call), "b", not_mine, 6_000).unwrap_err().code, Refusal::NotInCall);
        let hangup = RoomCommand::CallHangup { call_id: call.id.clone(), device: dev(2) };
        let (plan, after) = step(&members, Some(&call), "b", hangup, 65_000).unwrap();
        assert!(after.is_none());
        let change = plan.change.unwrap();
        assert_eq!(change.view.status, CallStatus::Ended);
        assert_eq!(change.view.end, Some(CallEnd { reason: CallEndReason::Completed, duration_ms: Some(60_000) }));
        assert!(matches!(
            &plan.events[..],
            [RoomEvent::CallEnded { reason: CallEndReason::Completed, duration_ms: Some(60_000), missed, .. }] if missed.is_empty()
        ));
    }

    #[test]
    fn unanswered_calls_end_missed_cancelled_or_declined() {
        let members = ids(&["a", "b", "c"]);
        let call = start(&members);
        let timeout = RoomCommand::CallRingTimeout { call_id: call.id.clone() };
        let (early, _) = step(&members, Some(&call), "system", timeout.clone(), 20_000).unwrap();
        assert!(early.change.is_none(), "not yet");
        let (plan, after) = step(&members, Some(&call), "system", timeout, 31_000).unwrap();
        assert!(after.is_none());
        assert!(matches!(
            &plan.events[..],
            [RoomEvent::CallEnded { reason: CallEndReason::Missed, duration_ms: None, missed, .. }] if *missed == ids(&["b", "c"])
        ));

        let cancel = RoomCommand::CallCancel { call_id: call.id.clone(), device: dev(1) };
        let (plan, _) = step(&members, Some(&call), "a", cancel, 3_000).unwrap();
        assert!(matches!(&plan.events[..], [RoomEvent::CallEnded { reason: CallEndReason::Cancelled, .. }]));

        let decline = |who| (who, RoomCommand::CallDecline { call_id: call.id.clone() });
        let (who, d) = decline("b");
        let (plan, call2) = step(&members, Some(&call), who, d, 3_000).unwrap();
        assert!(plan.events.is_empty(), "c still rings");
        let call2 = call2.unwrap();
        assert_eq!(call2.declined, ids(&["b"]));
        let (who, d) = decline("c");
        let (plan, after) = step(&members, Some(&call2), who, d, 4_000).unwrap();
        assert!(after.is_none());
        assert!(matches!(&plan.events[..], [RoomEvent::CallEnded { reason: CallEndReason::Declined, .. }]));
        // The caller cannot decline their own call.
        let (who, d) = decline("a");
        assert_eq!(step(&members, Some(&call), who, d, 4_000).unwrap_err().code, Refusal::NotInCall);
    }

    #[test]
    fn no_calls_with_line_users() {
        let members = ids(&["a", "b"]);
        let room = CallRoom { line: true, members: &members, call: None, ring_timeout_ms: 1 };
        let start = RoomCommand::CallStart { media: CallMedia::Audio, device: dev(1) };
        let err = decide(&room, &UserId::new("a"), &start, 0, || CallId::new("x")).unwrap_err();
        assert_eq!(err.code, Refusal::CallsUnavailableWithLine);
    }

    #[test]
    fn signals_go_only_between_participants_devices() {
        let members = ids(&["a", "b", "c"]);
        let call = start(&members);
        let answer = RoomCommand::CallAnswer { call_id: call.id.clone(), device: dev(2), move_here: false };
        let (_, call) = step(&members, Some(&call), "b", answer, 2_000).unwrap();
        let call = call.unwrap();
        let (a, b, c) = (UserId::new("a"), UserId::new("b"), UserId::new("c"));
        assert_eq!(relay_target(Some(&call), &call.id, &a, &dev(1), &b).unwrap(), dev(2));
        assert_eq!(relay_target(Some(&call), &call.id, &b, &dev(2), &a).unwrap(), dev(1));
        let code = |r: Result<DeviceId, CommandError>| r.unwrap_err().code;
        assert_eq!(code(relay_target(Some(&call), &call.id, &a, &dev(1), &c)), Refusal::NotInCall, "c is not in it");
        assert_eq!(code(relay_target(Some(&call), &call.id, &c, &dev(3), &a)), Refusal::NotInCall, "nor can c send");
        assert_eq!(code(relay_target(Some(&call), &call.id, &a, &dev(5), &b)), Refusal::NotInCall, "a's other device");
        assert_eq!(code(relay_target(Some(&call), &call.id, &a, &dev(1), &a)), Refusal::NotInCall, "not to oneself");
        assert_eq!(code(relay_target(Some(&call), &CallId::new("old"), &a, &dev(1), &b)), Refusal::CallNotFound);
        assert_eq!(code(relay_target(None, &call.id, &a, &dev(1), &b)), Refusal::CallNotFound);
    }

    #[test]
    fn an_exclusion_ends_a_call_it_leaves_with_one_participant() {
        let members = ids(&["a", "b", "c"]);
        let call = start(&members);
        let answer = RoomCommand::CallAnswer { call_id: call.id.clone(), device: dev(2), move_here: false };
        let (_, call) = step(&members, Some(&call), "b", answer, 2_000).unwrap();
        let call = call.unwrap();
        // c (still ringing) leaves: the call goes on.
        let plan = members_gone(&call, &ids(&["c"]), true, 3_000).unwrap();
        let call = plan.change.unwrap().after.unwrap();
        assert!(call.ringing.is_empty());
        assert!(members_gone(&call, &ids(&["nobody"]), true, 3_000).is_none());
        let plan = members_gone(&call, &ids(&["b"]), true, 4_000).unwrap();
        assert!(plan.change.unwrap().after.is_none());
        assert!(matches!(
            &plan.events[..],
            [RoomEvent::CallEnded { reason: CallEndReason::Revoked, duration_ms: Some(2_000), .. }]
        ));
    }

    #[test]
    fn a_group_call_goes_on_while_two_are_in_it_and_others_may_join() {
        let members = ids(&["a", "b", "c"]);
        let call = start(&members);
        let answer =
            |call: &Call, device| RoomCommand::CallAnswer { call_id: call.id.clone(), device, move_here: true };
        let (_, call) = step(&members, Some(&call), "b", answer(&call, dev(2)), 2_000).unwrap();
        let call = call.unwrap();
        let timeout = RoomCommand::CallRingTimeout { call_id: call.id.clone() };
        let (_, call) = step(&members, Some(&call), "system", timeout, 40_000).unwrap();
        let call = call.unwrap();
        assert!(call.ringing.is_empty(), "c stopped ringing");
        assert_eq!(call.missed, ids(&["c"]));
        assert_eq!(call.status(), CallStatus::Active);
        let (_, call) = step(&members, Some(&call), "c", answer(&call, dev(3)), 41_000).unwrap();
        let call = call.unwrap();
        assert_eq!(call.participants.len(), 3);
        assert!(call.missed.is_empty(), "c joined after all");
        let hangup = RoomCommand::CallHangup { call_id: call.id.clone(), device: dev(1) };
        let (plan, call) = step(&members, Some(&call), "a", hangup, 50_000).unwrap();
        assert!(plan.events.is_empty(), "b and c go on");
        assert_eq!(call.unwrap().participants.len(), 2);
    }

    #[test]
    fn a_group_call_lists_who_never_answered_and_every_view_is_newer_than_the_last() {
        let members = ids(&["a", "b", "c"]);
        let call = start(&members);
        let answer = RoomCommand::CallAnswer { call_id: call.id.clone(), device: dev(2), move_here: false };
        let (plan, answered) = step(&members, Some(&call), "b", answer, 2_000).unwrap();
        let answered = answered.unwrap();
        assert!(plan.change.unwrap().view.rev > call.rev);
        let timeout = RoomCommand::CallRingTimeout { call_id: call.id.clone() };
        let (_, rung_out) = step(&members, Some(&answered), "system", timeout, 40_000).unwrap();
        let rung_out = rung_out.unwrap();
        assert!(rung_out.rev > answered.rev);
        let hangup = RoomCommand::CallHangup { call_id: call.id.clone(), device: dev(2) };
        let (plan, after) = step(&members, Some(&rung_out), "b", hangup, 50_000).unwrap();
        assert!(after.is_none());
        assert!(plan.change.unwrap().view.rev > rung_out.rev, "the end is the newest view");
        assert!(matches!(
            &plan.events[..],
            [RoomEvent::CallEnded { reason: CallEndReason::Completed, missed, .. }] if *missed == ids(&["c"])
        ));
    }

    #[test]
    fn a_gone_device_leaves_the_call_and_a_moved_one_stays() {
        let members = ids(&["a", "b"]);
        let call = start(&members);
        let answer = RoomCommand::CallAnswer { call_id: call.id.clone(), device: dev(2), move_here: false };
        let (_, call) = step(&members, Some(&call), "b", answer, 2_000).unwrap();
        let call = call.unwrap();
        let gone = |device| RoomCommand::CallDeviceGone { call_id: call.id.clone(), device };
        let (plan, same) = step(&members, Some(&call), "system", gone(dev(9)), 3_000).unwrap();
        assert!(plan.change.is_none(), "not a device of the call");
        assert_eq!(same.as_ref(), Some(&call));
        let (plan, after) = step(&members, Some(&call), "system", gone(dev(2)), 9_000).unwrap();
        assert!(after.is_none());
        assert!(matches!(
            &plan.events[..],
            [RoomEvent::CallEnded { reason: CallEndReason::Completed, duration_ms: Some(7_000), .. }]
        ));
    }
}
