//! The rules of a room, as pure functions: `decide` turns a command and the room's state into
//! a `Plan` (events, membership changes, notifications, the result) or a refusal; the room
//! actor commits the plan and only then lets the state `absorb` it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chat_protocol::bus::{
    CommandEnvelope, CommandError, CommandResult, Excluded, MemberKind, MemberSpec, RoomCommand, RoomKind,
};
use chat_protocol::{new_id, Body, Limits, RoomEvent};

/// The actor id used for commands issued by the engine itself (exclusions by rule).
pub const SYSTEM_ACTOR: &str = "system";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The Group Master of an external group room (its creator, then a successor).
    Master,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Role {
        if s == "master" {
            Role::Master
        } else {
            Role::Member
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub tenant: String,
    pub kind: MemberKind,
    pub role: Role,
    pub joined_seq: i64,
}

/// What a room actor keeps in memory.
#[derive(Debug, Clone)]
pub struct RoomState {
    pub id: String,
    pub tenant: String,
    pub kind: RoomKind,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo_url: Option<String>,
    pub direct_key: Option<String>,
    pub last_seq: i64,
    pub created_at_ms: i64,
    pub members: BTreeMap<String, Member>,
    /// Recent command ids and their recorded results (the dedup window).
    pub recent: RecentCommands,
}

/// A bounded map of command id -> result, oldest evicted first.
#[derive(Debug, Clone, Default)]
pub struct RecentCommands {
    capacity: usize,
    order: VecDeque<String>,
    results: HashMap<String, CommandResult>,
}

impl RecentCommands {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), ..Default::default() }
    }

    pub fn get(&self, command_id: &str) -> Option<&CommandResult> {
        self.results.get(command_id)
    }

    pub fn insert(&mut self, command_id: String, result: CommandResult) {
        if self.results.insert(command_id.clone(), result).is_none() {
            self.order.push_back(command_id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// One event to append, before it has a seq.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedEvent {
    Message { message_id: String, sender: String, body: Body },
    System(RoomEvent),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNotification {
    pub user: String,
    pub tenant: String,
    pub kind: &'static str,
    pub text: String,
}

/// What a command does, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub result: CommandResult,
    /// Set when the command creates the room.
    pub create: Option<NewRoom>,
    pub events: Vec<PlannedEvent>,
    pub added: Vec<(String, Member)>,
    pub removed: Vec<String>,
    /// A new Group Master, when the old one left.
    pub new_master: Option<String>,
    pub info: Option<InfoChange>,
    /// The seq of a recalled message.
    pub recall_seq: Option<i64>,
    pub notifications: Vec<PlannedNotification>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewRoom {
    pub tenant: String,
    pub kind: RoomKind,
    pub direct_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InfoChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo_url: Option<String>,
}

/// A message looked up for a recall.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRef {
    pub seq: i64,
    pub sender: String,
    pub recalled: bool,
}

fn refuse(code: &str, message: impl Into<String>) -> CommandError {
    CommandError { code: code.to_owned(), message: message.into() }
}

/// The answer for a room the caller may not see: the same as for a room that does not exist.
pub fn room_not_found() -> CommandError {
    refuse("room_not_found", "room not found")
}

impl Plan {
    fn new(result: CommandResult) -> Self {
        Plan {
            result,
            create: None,
            events: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            new_master: None,
            info: None,
            recall_seq: None,
            notifications: Vec::new(),
        }
    }

    /// The seq the first planned event will get, given the room's current last seq.
    pub fn first_seq(last_seq: i64) -> i64 {
        last_seq + 1
    }
}

/// The key that makes a 1:1 room unique per pair.
pub fn direct_key(kind: RoomKind, a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{x}:{y}", kind.as_str())
}

/// The kind a new room takes from its participants (the creator included) and whether it was
/// named: LINE users make it a LINE room, other tenants an external room; two participants
/// without a name make a 1:1 room.
pub fn kind_for(creator_tenant: &str, participants: &[MemberSpec], named: bool) -> RoomKind {
    let line = participants.iter().any(|m| m.kind == MemberKind::LineUser);
    let external = participants.iter().any(|m| m.tenant != creator_tenant && m.kind == MemberKind::Member);
    let pair = participants.len() == 2 && !named;
    match (line, external, pair) {
        (true, _, true) => RoomKind::LineDirect,
        (true, _, false) => RoomKind::LineGroup,
        (false, true, true) => RoomKind::ExternalDirect,
        (false, true, false) => RoomKind::ExternalGroup,
        (false, false, true) => RoomKind::Direct,
        (false, false, false) => RoomKind::Group,
    }
}

fn display_name(state: &RoomState) -> String {
    state.name.clone().unwrap_or_else(|| "a conversation".to_owned())
}

/// Decide a `Create` for a room that does not exist yet.
pub fn decide_create(env: &CommandEnvelope, limits: &Limits) -> Result<Plan, CommandError> {
    let RoomCommand::Create { kind, members, name, description, photo_url } = &env.command else {
        return Err(room_not_found());
    };
    let info = check_info(limits, name, description, photo_url)?;
    let mut participants: Vec<MemberSpec> = Vec::new();
    for m in members {
        if !participants.iter().any(|p| p.user == m.user) {
            participants.push(m.clone());
        }
    }
    if !participants.iter().any(|p| p.user == env.actor) {
        return Err(refuse("invalid_members", "the creator must be a participant"));
    }
    if participants.len() > limits.max_members {
        return Err(refuse("too_many_members", format!("at most {} members", limits.max_members)));
    }
    if kind.is_one_to_one() {
        if participants.len() != 2 {
            return Err(refuse("invalid_members", "a 1:1 room has exactly two participants"));
        }
        if info.name.is_some() {
            return Err(refuse("not_allowed_for_kind", "a 1:1 room has no name"));
        }
    }
    let key = kind.is_one_to_one().then(|| direct_key(*kind, &participants[0].user, &participants[1].user));
    let master_role = |user: &str| {
        if *kind == RoomKind::ExternalGroup && user == env.actor {
            Role::Master
        } else {
            Role::Member
        }
    };
    let mut plan = Plan::new(CommandResult::Created { room_id: env.room_id.clone(), existed: false });
    plan.create = Some(NewRoom { tenant: env.tenant.clone(), kind: *kind, direct_key: key });
    plan.info = Some(info.clone());
    plan.events.push(PlannedEvent::System(RoomEvent::RoomCreated {
        by: env.actor.clone(),
        kind: kind.as_str().to_owned(),
        name: info.name.clone(),
    }));
    plan.events.push(PlannedEvent::System(RoomEvent::MembersJoined {
        by: env.actor.clone(),
        users: participants.iter().map(|p| p.user.clone()).collect(),
    }));
    for p in &participants {
        let member = Member { tenant: p.tenant.clone(), kind: p.kind, role: master_role(&p.user), joined_seq: 1 };
        plan.added.push((p.user.clone(), member));
        if p.user != env.actor && p.kind == MemberKind::Member {
            plan.notifications.push(PlannedNotification {
                user: p.user.clone(),
                tenant: p.tenant.clone(),
                kind: "room_added",
                text: format!("you were added to {}", info.name.clone().unwrap_or_else(|| "a conversation".into())),
            });
        }
    }
    Ok(plan)
}

fn check_info(
    limits: &Limits,
    name: &Option<String>,
    description: &Option<String>,
    photo_url: &Option<String>,
) -> Result<InfoChange, CommandError> {
    let lim = |e: chat_protocol::LimitError| refuse(e.code(), e.to_string());
    let name = name.as_ref().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if let Some(n) = &name {
        limits.check_name(n).map_err(lim)?;
    }
    if let Some(d) = description {
        limits.check_description(d).map_err(lim)?;
    }
    if let Some(u) = photo_url.as_ref().filter(|u| !u.is_empty()) {
        limits.check_url(u).map_err(lim)?;
    }
    Ok(InfoChange { name, description: description.clone(), photo_url: photo_url.clone() })
}

/// Decide any command other than `Create` against an existing room.
pub fn decide(
    state: &RoomState,
    env: &CommandEnvelope,
    limits: &Limits,
    recall_target: Option<&MessageRef>,
) -> Result<Plan, CommandError> {
    let system = env.actor == SYSTEM_ACTOR;
    let caller = state.members.get(&env.actor);
    // Tenant and membership: anything else is answered as if the room did not exist.
    let is_member = caller.is_some_and(|m| m.tenant == env.tenant);
    if !system && !is_member {
        return Err(room_not_found());
    }
    let next_seq = state.last_seq + 1;
    match &env.command {
        RoomCommand::Create { .. } => {
            Ok(Plan::new(CommandResult::Created { room_id: state.id.clone(), existed: true }))
        }
        RoomCommand::Post { body, .. } => {
            limits.check_body(body).map_err(|e| refuse(e.code(), e.to_string()))?;
            let message_id = new_id();
            let mut plan = Plan::new(CommandResult::Posted { message_id: message_id.clone(), seq: next_seq });
            plan.events.push(PlannedEvent::Message { message_id, sender: env.actor.clone(), body: body.clone() });
            Ok(plan)
        }
        RoomCommand::Recall { message_id } => {
            let target = recall_target.ok_or_else(|| refuse("message_not_found", "message not found"))?;
            if target.sender != env.actor {
                return Err(refuse("recall_not_allowed", "only the sender can recall a message"));
            }
            if state.members.values().any(|m| m.kind == MemberKind::LineUser) {
                return Err(refuse("recall_not_allowed", "messages sent to LINE cannot be recalled"));
            }
            if target.recalled {
                return Err(refuse("already_recalled", "the message was already recalled"));
            }
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.recall_seq = Some(target.seq);
            plan.events.push(PlannedEvent::System(RoomEvent::MessageRecalled {
                by: env.actor.clone(),
                message_id: message_id.clone(),
                message_seq: target.seq,
            }));
            Ok(plan)
        }
        RoomCommand::UpdateInfo { name, description, photo_url } => {
            if state.kind.is_one_to_one() {
                return Err(refuse("not_allowed_for_kind", "a 1:1 room cannot be renamed"));
            }
            let info = check_info(limits, name, description, photo_url)?;
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.events.push(PlannedEvent::System(RoomEvent::InfoUpdated {
                by: env.actor.clone(),
                name: info.name.clone(),
                description: info.description.clone(),
                photo_url: info.photo_url.clone(),
            }));
            plan.info = Some(InfoChange {
                name: info.name.or_else(|| state.name.clone()),
                description: info.description.or_else(|| state.description.clone()),
                photo_url: info.photo_url.or_else(|| state.photo_url.clone()),
            });
            Ok(plan)
        }
        RoomCommand::AddMembers { users } => decide_add(state, env, users, limits),
        RoomCommand::RemoveMember { user } => {
            if state.kind.is_one_to_one() {
                return Err(refuse("not_allowed_for_kind", "members of a 1:1 room cannot be removed"));
            }
            if state.kind == RoomKind::ExternalGroup && caller.map(|c| c.role) != Some(Role::Master) {
                return Err(refuse("not_group_master", "only the Group Master can remove members"));
            }
            if user == &env.actor {
                return Err(refuse("invalid_members", "use leave to leave a room"));
            }
            let Some(target) = state.members.get(user) else {
                return Err(refuse("member_not_found", "not a member of this room"));
            };
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.removed.push(user.clone());
            plan.events
                .push(PlannedEvent::System(RoomEvent::MemberRemoved { by: env.actor.clone(), user: user.clone() }));
            notify_removed(&mut plan, user, target, &format!("you were removed from {}", display_name(state)));
            Ok(plan)
        }
        RoomCommand::Leave => {
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.removed.push(env.actor.clone());
            plan.events.push(PlannedEvent::System(RoomEvent::MemberLeft { user: env.actor.clone() }));
            if caller.map(|c| c.role) == Some(Role::Master) {
                plan.new_master = successor(state, &env.actor);
            }
            Ok(plan)
        }
        RoomCommand::Exclude { user, reason } => {
            let Some(target) = state.members.get(user) else {
                // Already gone: nothing to do, and saying so is not an error for the sender.
                return Ok(Plan::new(CommandResult::Done { seq: state.last_seq }));
            };
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.removed.push(user.clone());
            plan.events
                .push(PlannedEvent::System(RoomEvent::MemberExcluded { user: user.clone(), reason: reason.clone() }));
            if target.role == Role::Master {
                plan.new_master = successor(state, user);
            }
            notify_removed(
                &mut plan,
                user,
                target,
                &format!("you were excluded from {}: {reason}", display_name(state)),
            );
            Ok(plan)
        }
    }
}

fn notify_removed(plan: &mut Plan, user: &str, member: &Member, text: &str) {
    if member.kind == MemberKind::Member {
        plan.notifications.push(PlannedNotification {
            user: user.to_owned(),
            tenant: member.tenant.clone(),
            kind: "room_removed",
            text: text.to_owned(),
        });
    }
}

/// The member who becomes Group Master when `leaving` goes: the earliest joined member
/// (ties by id), LINE users excluded.
fn successor(state: &RoomState, leaving: &str) -> Option<String> {
    state
        .members
        .iter()
        .filter(|(id, m)| id.as_str() != leaving && m.kind == MemberKind::Member)
        .min_by(|a, b| a.1.joined_seq.cmp(&b.1.joined_seq).then_with(|| a.0.cmp(b.0)))
        .map(|(id, _)| id.clone())
}

fn decide_add(
    state: &RoomState,
    env: &CommandEnvelope,
    users: &[MemberSpec],
    limits: &Limits,
) -> Result<Plan, CommandError> {
    if state.kind.is_one_to_one() {
        return Err(refuse("not_allowed_for_kind", "invite people into a group room instead"));
    }
    let caller_role = state.members.get(&env.actor).map(|m| m.role);
    if state.kind == RoomKind::ExternalGroup && caller_role != Some(Role::Master) {
        return Err(refuse("not_group_master", "only the Group Master can add members"));
    }
    let next_seq = state.last_seq + 1;
    let mut added = Vec::new();
    let mut excluded = Vec::new();
    for spec in users {
        if state.members.contains_key(&spec.user) || added.iter().any(|(u, _): &(String, Member)| u == &spec.user) {
            continue;
        }
        // Only the room's own kind of participant joins here: widening a room to another
        // tenant or to LINE needs the authorization decision of the authz service.
        let same_scope = spec.kind == MemberKind::Member && spec.tenant == state.tenant;
        let allowed = same_scope
            || matches!(state.kind, RoomKind::ExternalGroup | RoomKind::LineGroup) && env.actor == SYSTEM_ACTOR;
        if !allowed {
            excluded.push(Excluded { user: spec.user.clone(), reason: "not_authorized".into() });
            continue;
        }
        added.push((
            spec.user.clone(),
            Member { tenant: spec.tenant.clone(), kind: spec.kind, role: Role::Member, joined_seq: next_seq },
        ));
    }
    if state.members.len() + added.len() > limits.max_members {
        return Err(refuse("too_many_members", format!("at most {} members", limits.max_members)));
    }
    let seq = (!added.is_empty()).then_some(next_seq);
    let mut plan =
        Plan::new(CommandResult::MembersAdded { added: added.iter().map(|(u, _)| u.clone()).collect(), excluded, seq });
    if !added.is_empty() {
        plan.events.push(PlannedEvent::System(RoomEvent::MembersJoined {
            by: env.actor.clone(),
            users: added.iter().map(|(u, _)| u.clone()).collect(),
        }));
        for (user, member) in &added {
            if member.kind == MemberKind::Member {
                plan.notifications.push(PlannedNotification {
                    user: user.clone(),
                    tenant: member.tenant.clone(),
                    kind: "room_added",
                    text: format!("you were added to {}", display_name(state)),
                });
            }
        }
    }
    plan.added = added;
    Ok(plan)
}

impl RoomState {
    /// A state built from a committed `Create` plan.
    pub fn from_create(room_id: &str, plan: &Plan, committed_last_seq: i64, now_ms: i64, dedup: usize) -> Option<Self> {
        let create = plan.create.as_ref()?;
        let info = plan.info.clone().unwrap_or_default();
        Some(RoomState {
            id: room_id.to_owned(),
            tenant: create.tenant.clone(),
            kind: create.kind,
            name: info.name,
            description: info.description,
            photo_url: info.photo_url,
            direct_key: create.direct_key.clone(),
            last_seq: committed_last_seq,
            created_at_ms: now_ms,
            members: plan.added.iter().cloned().collect(),
            recent: RecentCommands::new(dedup),
        })
    }

    /// Take in a plan that was committed with events up to `committed_last_seq`.
    pub fn absorb(&mut self, plan: &Plan, committed_last_seq: i64) {
        self.last_seq = committed_last_seq;
        for (user, member) in &plan.added {
            self.members.insert(user.clone(), member.clone());
        }
        for user in &plan.removed {
            self.members.remove(user);
        }
        if let Some(master) = &plan.new_master {
            if let Some(m) = self.members.get_mut(master) {
                m.role = Role::Master;
            }
        }
        if let Some(info) = &plan.info {
            self.name = info.name.clone();
            self.description = info.description.clone();
            self.photo_url = info.photo_url.clone();
        }
    }

    /// The user ids that receive live events of this room (LINE users are reached through
    /// the LINE gateway, not through sessions).
    pub fn session_recipients(&self) -> Vec<String> {
        self.members.iter().filter(|(_, m)| m.kind == MemberKind::Member).map(|(id, _)| id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: &str, tenant: &str) -> MemberSpec {
        MemberSpec { user: user.into(), tenant: tenant.into(), kind: MemberKind::Member }
    }

    fn env(actor: &str, tenant: &str, command: RoomCommand) -> CommandEnvelope {
        CommandEnvelope {
            command_id: new_id(),
            room_id: "r1".into(),
            actor: actor.into(),
            tenant: tenant.into(),
            reply_to: None,
            issued_at_ms: 0,
            command,
        }
    }

    fn created(kind: RoomKind, members: Vec<MemberSpec>, name: Option<&str>) -> RoomState {
        let e = env(
            &members[0].user,
            &members[0].tenant,
            RoomCommand::Create {
                kind,
                members: members.clone(),
                name: name.map(Into::into),
                description: None,
                photo_url: None,
            },
        );
        let plan = decide_create(&e, &Limits::default()).unwrap();
        RoomState::from_create("r1", &plan, plan.events.len() as i64, 0, 100).unwrap()
    }

    fn text(t: &str) -> Body {
        Body::Text { text: t.into() }
    }

    #[test]
    fn kinds_follow_the_participants() {
        let acme = [spec("a", "acme"), spec("b", "acme")];
        assert_eq!(kind_for("acme", &acme, false), RoomKind::Direct);
        assert_eq!(kind_for("acme", &acme, true), RoomKind::Group);
        let ext = [spec("a", "acme"), spec("c", "globex")];
        assert_eq!(kind_for("acme", &ext, false), RoomKind::ExternalDirect);
        let line =
            [spec("a", "acme"), MemberSpec { user: "U1".into(), tenant: "line".into(), kind: MemberKind::LineUser }];
        assert_eq!(kind_for("acme", &line, false), RoomKind::LineDirect);
        assert_eq!(direct_key(RoomKind::Direct, "b", "a"), direct_key(RoomKind::Direct, "a", "b"));
    }

    #[test]
    fn only_members_of_the_right_tenant_may_post() {
        let room = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("team"));
        let ok = decide(
            &room,
            &env("b", "acme", RoomCommand::Post { client_msg_id: None, body: text("hi") }),
            &Limits::default(),
            None,
        );
        assert!(matches!(ok.unwrap().result, CommandResult::Posted { seq, .. } if seq == room.last_seq + 1));
        let outsider = decide(
            &room,
            &env("x", "acme", RoomCommand::Post { client_msg_id: None, body: text("hi") }),
            &Limits::default(),
            None,
        );
        assert_eq!(outsider.unwrap_err().code, "room_not_found");
        // Same user id presented with another tenant's token: not the member.
        let other_tenant = decide(
            &room,
            &env("b", "globex", RoomCommand::Post { client_msg_id: None, body: text("hi") }),
            &Limits::default(),
            None,
        );
        assert_eq!(other_tenant.unwrap_err().code, "room_not_found");
    }

    #[test]
    fn a_group_master_manages_an_external_group() {
        let mut room = created(
            RoomKind::ExternalGroup,
            vec![spec("a", "acme"), spec("c", "globex"), spec("d", "globex")],
            Some("deal"),
        );
        assert_eq!(room.members["a"].role, Role::Master);
        let by_member = decide(
            &room,
            &env("c", "globex", RoomCommand::RemoveMember { user: "d".into() }),
            &Limits::default(),
            None,
        );
        assert_eq!(by_member.unwrap_err().code, "not_group_master");
        let plan =
            decide(&room, &env("a", "acme", RoomCommand::RemoveMember { user: "d".into() }), &Limits::default(), None)
                .unwrap();
        assert_eq!(plan.removed, vec!["d".to_string()]);
        assert_eq!(plan.notifications[0].user, "d");
        // The master leaves: the earliest joined remaining member takes over.
        let seq = room.last_seq + 1;
        room.absorb(&plan, seq);
        let leave = decide(&room, &env("a", "acme", RoomCommand::Leave), &Limits::default(), None).unwrap();
        assert_eq!(leave.new_master.as_deref(), Some("c"));
    }

    #[test]
    fn recall_is_refused_in_rooms_with_line_members_and_for_others_messages() {
        let line_user = MemberSpec { user: "U1".into(), tenant: "line".into(), kind: MemberKind::LineUser };
        let room = created(RoomKind::LineDirect, vec![spec("a", "acme"), line_user], None);
        let target = MessageRef { seq: 3, sender: "a".into(), recalled: false };
        let e = env("a", "acme", RoomCommand::Recall { message_id: "m".into() });
        assert_eq!(decide(&room, &e, &Limits::default(), Some(&target)).unwrap_err().code, "recall_not_allowed");

        let group = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        let by_other = env("b", "acme", RoomCommand::Recall { message_id: "m".into() });
        assert_eq!(
            decide(&group, &by_other, &Limits::default(), Some(&target)).unwrap_err().code,
            "recall_not_allowed"
        );
        let plan = decide(&group, &e, &Limits::default(), Some(&target)).unwrap();
        assert_eq!(plan.recall_seq, Some(3));
    }

    #[test]
    fn invitations_outside_the_tenant_are_excluded_with_a_reason() {
        let room = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        let e = env(
            "a",
            "acme",
            RoomCommand::AddMembers { users: vec![spec("c", "acme"), spec("x", "globex"), spec("b", "acme")] },
        );
        let plan = decide(&room, &e, &Limits::default(), None).unwrap();
        let CommandResult::MembersAdded { added, excluded, .. } = plan.result else { panic!("wrong result") };
        assert_eq!(added, vec!["c".to_string()]);
        assert_eq!(excluded, vec![Excluded { user: "x".into(), reason: "not_authorized".into() }]);
    }

    #[test]
    fn one_to_one_rooms_cannot_be_renamed_or_widened() {
        let room = created(RoomKind::Direct, vec![spec("a", "acme"), spec("b", "acme")], None);
        let rename =
            env("a", "acme", RoomCommand::UpdateInfo { name: Some("x".into()), description: None, photo_url: None });
        assert_eq!(decide(&room, &rename, &Limits::default(), None).unwrap_err().code, "not_allowed_for_kind");
        let add = env("a", "acme", RoomCommand::AddMembers { users: vec![spec("c", "acme")] });
        assert_eq!(decide(&room, &add, &Limits::default(), None).unwrap_err().code, "not_allowed_for_kind");
    }

    #[test]
    fn exclusion_removes_and_notifies_and_is_idempotent() {
        let room = created(RoomKind::ExternalGroup, vec![spec("a", "acme"), spec("c", "globex")], Some("deal"));
        let e = env(SYSTEM_ACTOR, "acme", RoomCommand::Exclude { user: "c".into(), reason: "trust_revoked".into() });
        let plan = decide(&room, &e, &Limits::default(), None).unwrap();
        assert_eq!(plan.removed, vec!["c".to_string()]);
        assert_eq!(plan.notifications.len(), 1);
        let e2 = env(SYSTEM_ACTOR, "acme", RoomCommand::Exclude { user: "nobody".into(), reason: "x".into() });
        assert!(decide(&room, &e2, &Limits::default(), None).unwrap().events.is_empty());
    }

    #[test]
    fn the_dedup_window_is_bounded() {
        let mut recent = RecentCommands::new(2);
        for i in 0..3 {
            recent.insert(format!("c{i}"), CommandResult::Done { seq: i });
        }
        assert_eq!(recent.len(), 2);
        assert!(recent.get("c0").is_none());
        assert_eq!(recent.get("c2"), Some(&CommandResult::Done { seq: 2 }));
    }
}
