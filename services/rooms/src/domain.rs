//! The rules of a room, as pure functions: `decide` turns a command and the room's state into
//! a `Plan` (events, membership changes, notifications, the result) or a refusal; the room
//! actor commits the plan and only then lets the state `absorb` it.
//!
//! Nothing here does I/O. Refusals are `CommandError`s with a `Refusal` code; the API and the
//! WebSocket session map them to statuses and error frames.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};

use crate::calls::{self, CallChange, CallRoom};
use chat_protocol::bus::{
    CommandEnvelope, CommandError, CommandResult, Excluded, MemberKind, MemberSpec, RoomCommand, RoomKind,
};
use chat_protocol::call::{Call, CallId};
use chat_protocol::frames::NotificationKind;
use chat_protocol::room::{ExclusionReason, RoomInfo};
use chat_protocol::{new_id, Body, Limits, MessageId, Refusal, RoomEvent, RoomId, TenantId, UserId};

chat_protocol::text_enum! {
    /// A member's role in the room.
    pub enum Role {
        /// The Group Master of an external group room (its creator, then a successor).
        Master,
        Member,
    }
}

/// One participant, as the room keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub tenant: TenantId,
    pub kind: MemberKind,
    pub role: Role,
    /// The seq of the event that added them (the Group Master's successor is the earliest).
    pub joined_seq: i64,
}

/// What a room is, apart from its members and its history. Declared once: the actor's state,
/// a commit and the read path's room view all carry this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMeta {
    pub id: RoomId,
    /// The tenant of the creator.
    pub tenant: TenantId,
    pub kind: RoomKind,
    pub info: RoomInfo,
    /// Set on 1:1 rooms: the kind and the sorted pair, unique in the store.
    pub direct_key: Option<String>,
}

/// What a room actor keeps in memory.
#[derive(Debug, Clone)]
pub struct RoomState {
    pub meta: RoomMeta,
    pub last_seq: i64,
    pub members: Members,
    /// Recent command ids and their recorded results (the dedup window).
    pub recent: RecentCommands,
    /// The room's call, if one is going on (`calls`).
    pub call: Option<Call>,
}

/// A room's members, sorted by id in one exactly sized vector: a map's interface at a fraction
/// of a `BTreeMap`'s memory for the small rooms most rooms are (a B-tree leaf holds room for
/// eleven entries whatever the count). Lookups are binary searches; joins and leaves, rare,
/// shift the entries after them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members(Vec<(UserId, Member)>);

impl Members {
    fn find<Q: Ord + ?Sized>(&self, user: &Q) -> Result<usize, usize>
    where
        UserId: Borrow<Q>,
    {
        self.0.binary_search_by(|(id, _)| id.borrow().cmp(user))
    }

    pub fn get<Q: Ord + ?Sized>(&self, user: &Q) -> Option<&Member>
    where
        UserId: Borrow<Q>,
    {
        self.find(user).ok().map(|at| &self.0[at].1)
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, user: &Q) -> Option<&mut Member>
    where
        UserId: Borrow<Q>,
    {
        self.find(user).ok().map(|at| &mut self.0[at].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, user: &Q) -> bool
    where
        UserId: Borrow<Q>,
    {
        self.find(user).is_ok()
    }

    pub fn insert(&mut self, user: UserId, member: Member) {
        match self.find(&user) {
            Ok(at) => self.0[at].1 = member,
            Err(at) => self.0.insert(at, (user, member)),
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, user: &Q) -> Option<Member>
    where
        UserId: Borrow<Q>,
    {
        let member = self.find(user).ok().map(|at| self.0.remove(at).1);
        if self.0.capacity() > 2 * self.0.len() + 4 {
            self.0.shrink_to_fit();
        }
        member
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Members in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&UserId, &Member)> {
        self.0.iter().map(|(id, m)| (id, m))
    }

    pub fn keys(&self) -> impl Iterator<Item = &UserId> {
        self.0.iter().map(|(id, _)| id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Member> {
        self.0.iter().map(|(_, m)| m)
    }
}

impl FromIterator<(UserId, Member)> for Members {
    fn from_iter<I: IntoIterator<Item = (UserId, Member)>>(iter: I) -> Self {
        let mut all: Vec<(UserId, Member)> = iter.into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.dedup_by(|a, b| a.0 == b.0);
        all.shrink_to_fit();
        Members(all)
    }
}

impl<Q: Ord + ?Sized> std::ops::Index<&Q> for Members
where
    UserId: Borrow<Q>,
{
    type Output = Member;

    fn index(&self, user: &Q) -> &Member {
        self.get(user).expect("a member of the room")
    }
}

/// The ids of the room's recent commands (the dedup window), oldest evicted first. Ids only,
/// as 64-bit hashes: a hit is answered from the command's record in the store (a hash that
/// collides finds no record there and is decided as new; the store's key on command ids keeps
/// it from being applied twice either way).
#[derive(Debug, Clone, Default)]
pub struct RecentCommands {
    capacity: usize,
    order: VecDeque<u64>,
    ids: HashSet<u64>,
}

fn id_hash(command_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    command_id.hash(&mut h);
    h.finish()
}

impl RecentCommands {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), ..Default::default() }
    }

    /// True when the command was (very likely) applied here recently.
    pub fn contains(&self, command_id: &str) -> bool {
        self.ids.contains(&id_hash(command_id))
    }

    pub fn insert(&mut self, command_id: &str) {
        let id = id_hash(command_id);
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
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
    Message { message_id: MessageId, sender: UserId, body: Body },
    System(RoomEvent),
}

/// A notification a command leaves for one user (stored with the commit, then pushed).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNotification {
    pub id: String,
    pub user: UserId,
    pub tenant: TenantId,
    pub kind: NotificationKind,
    pub text: String,
}

/// What a command does, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub result: CommandResult,
    /// Set when the command creates the room: the new room's meta.
    pub create: Option<RoomMeta>,
    pub events: Vec<PlannedEvent>,
    pub added: Vec<(UserId, Member)>,
    pub removed: Vec<UserId>,
    /// A new Group Master, when the old one left.
    pub new_master: Option<UserId>,
    /// The room's info after the command (already merged with the current one).
    pub info: Option<RoomInfo>,
    /// The seq of a recalled message.
    pub recall_seq: Option<i64>,
    pub notifications: Vec<PlannedNotification>,
    /// The room's call changes (stored with the commit, then shown to the members).
    pub call: Option<CallChange>,
}

/// A message looked up for a recall.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRef {
    pub seq: i64,
    pub sender: UserId,
    pub recalled: bool,
}

fn refuse(code: Refusal, message: impl Into<String>) -> CommandError {
    CommandError::new(code, message)
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
            call: None,
        }
    }

    /// True when the plan writes nothing (a repeated create, an exclusion of someone gone).
    pub fn is_noop(&self) -> bool {
        self.events.is_empty() && self.create.is_none() && self.call.is_none()
    }

    /// The room's meta after this plan: the new room's, or the current one with the new info.
    /// `None` only for a plan that neither creates a room nor has one to change.
    pub fn meta_after(&self, state: Option<&RoomState>) -> Option<RoomMeta> {
        match (&self.create, state) {
            (Some(meta), _) => Some(meta.clone()),
            (None, Some(state)) => {
                let info = self.info.clone().unwrap_or_else(|| state.meta.info.clone());
                Some(RoomMeta { info, ..state.meta.clone() })
            }
            (None, None) => None,
        }
    }

    /// The planned events with the seqs they take after `last_seq`.
    pub fn sequenced(&self, last_seq: i64) -> impl Iterator<Item = (i64, &PlannedEvent)> {
        self.events.iter().enumerate().map(move |(i, e)| (last_seq + 1 + i as i64, e))
    }

    fn notify(&mut self, user: &UserId, tenant: &TenantId, kind: NotificationKind, text: String) {
        self.notifications.push(PlannedNotification {
            id: new_id(),
            user: user.clone(),
            tenant: tenant.clone(),
            kind,
            text,
        });
    }
}

/// The key that makes a 1:1 room unique per pair.
pub fn direct_key(kind: RoomKind, a: &UserId, b: &UserId) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{x}:{y}", kind.as_str())
}

/// The kind a new room takes from its participants (the creator included) and whether it was
/// named: LINE users make it a LINE room, other tenants an external room; two participants
/// without a name make a 1:1 room.
pub fn kind_for(creator_tenant: &TenantId, participants: &[MemberSpec], named: bool) -> RoomKind {
    let line = participants.iter().any(|m| m.kind == MemberKind::LineUser);
    let external = participants.iter().any(|m| m.tenant != *creator_tenant && m.kind == MemberKind::Member);
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

fn display_name(info: &RoomInfo) -> String {
    info.name.clone().unwrap_or_else(|| "a conversation".to_owned())
}

/// Decide a `Create` for a room that does not exist yet.
pub fn decide_create(env: &CommandEnvelope, limits: &Limits) -> Result<Plan, CommandError> {
    let RoomCommand::Create { kind, members, info } = &env.command else {
        return Err(CommandError::room_not_found());
    };
    let info = limits.check_info(info)?;
    let mut participants: Vec<MemberSpec> = Vec::new();
    for m in members {
        if !participants.iter().any(|p| p.user == m.user) {
            participants.push(m.clone());
        }
    }
    if !participants.iter().any(|p| p.user == env.actor) {
        return Err(refuse(Refusal::InvalidMembers, "the creator must be a participant"));
    }
    if participants.len() > limits.max_members {
        return Err(refuse(Refusal::TooManyMembers, format!("at most {} members", limits.max_members)));
    }
    if kind.is_one_to_one() {
        if participants.len() != 2 {
            return Err(refuse(Refusal::InvalidMembers, "a 1:1 room has exactly two participants"));
        }
        if info.name.is_some() {
            return Err(refuse(Refusal::NotAllowedForKind, "a 1:1 room has no name"));
        }
    }
    let key = kind.is_one_to_one().then(|| direct_key(*kind, &participants[0].user, &participants[1].user));
    let master_role = |user: &UserId| {
        if *kind == RoomKind::ExternalGroup && *user == env.actor {
            Role::Master
        } else {
            Role::Member
        }
    };
    let mut plan = Plan::new(CommandResult::Created { room_id: env.room_id.clone(), existed: false });
    plan.create = Some(RoomMeta {
        id: env.room_id.clone(),
        tenant: env.tenant.clone(),
        kind: *kind,
        info: info.clone(),
        direct_key: key,
    });
    plan.info = Some(info.clone());
    plan.events.push(PlannedEvent::System(RoomEvent::RoomCreated {
        by: env.actor.clone(),
        kind: *kind,
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
            plan.notify(
                &p.user,
                &p.tenant,
                NotificationKind::RoomAdded,
                format!("you were added to {}", display_name(&info)),
            );
        }
    }
    Ok(plan)
}

/// Decide a command against an existing room (a `Create` reaching it: see
/// `decide_create_existing`).
pub fn decide(
    state: &RoomState,
    env: &CommandEnvelope,
    limits: &Limits,
    recall_target: Option<&MessageRef>,
) -> Result<Plan, CommandError> {
    let mut plan = decide_command(state, env, limits, recall_target)?;
    // Members who leave the room leave its call (an exclusion may end it at once).
    if let Some(call) = state.call.as_ref().filter(|_| !plan.removed.is_empty()) {
        let revoked = matches!(env.command, RoomCommand::Exclude { .. });
        if let Some(gone) = calls::members_gone(call, &plan.removed, revoked, env.issued_at_ms) {
            plan.events.extend(gone.events.into_iter().map(PlannedEvent::System));
            plan.call = gone.change;
        }
    }
    Ok(plan)
}

/// A call command (`calls`): the room's members, its kind and its call decide. Only members
/// (not LINE users) call; the system only times the ringing out and takes gone devices out.
pub fn decide_call(
    state: &RoomState,
    env: &CommandEnvelope,
    ring_timeout_ms: i64,
    now_ms: i64,
) -> Result<Plan, CommandError> {
    let is_member =
        state.members.get(&env.actor).is_some_and(|m| m.tenant == env.tenant && m.kind == MemberKind::Member);
    let by_system = matches!(env.command, RoomCommand::CallRingTimeout { .. } | RoomCommand::CallDeviceGone { .. });
    if !(is_member || (by_system && env.actor.is_system())) {
        return Err(CommandError::room_not_found());
    }
    let members = state.session_recipients();
    let line = state.meta.kind.is_line() || state.members.values().any(|m| m.kind == MemberKind::LineUser);
    let room = CallRoom { line, members: &members, call: state.call.as_ref(), ring_timeout_ms };
    let decided = calls::decide(&room, &env.actor, &env.command, now_ms, || CallId::new(new_id()))?;
    let mut result = decided.result;
    if let CommandResult::Done { seq } = &mut result {
        *seq = state.last_seq + decided.events.len() as i64;
    }
    let mut plan = Plan::new(result);
    plan.events = decided.events.into_iter().map(PlannedEvent::System).collect();
    plan.call = decided.change;
    Ok(plan)
}

fn decide_command(
    state: &RoomState,
    env: &CommandEnvelope,
    limits: &Limits,
    recall_target: Option<&MessageRef>,
) -> Result<Plan, CommandError> {
    let system = env.actor.is_system();
    let caller = state.members.get(&env.actor);
    // Tenant and membership: anything else is answered as if the room did not exist.
    let is_member = caller.is_some_and(|m| m.tenant == env.tenant);
    if let RoomCommand::Create { kind, members, .. } = &env.command {
        // The one command a participant who is not a member may send: back into their 1:1 room.
        return decide_create_existing(state, env, *kind, members, is_member);
    }
    if !system && !is_member {
        return Err(CommandError::room_not_found());
    }
    let next_seq = state.last_seq + 1;
    match &env.command {
        RoomCommand::Create { .. } => {
            Ok(Plan::new(CommandResult::Created { room_id: state.meta.id.clone(), existed: true }))
        }
        // The room actor reads the blocks itself; nothing to write.
        RoomCommand::BlocksChanged => Ok(Plan::new(CommandResult::Done { seq: state.last_seq })),
        // Decided by `decide_call` (the room actor sends them there).
        RoomCommand::CallStart { .. }
        | RoomCommand::CallAnswer { .. }
        | RoomCommand::CallDecline { .. }
        | RoomCommand::CallCancel { .. }
        | RoomCommand::CallHangup { .. }
        | RoomCommand::CallSignal { .. }
        | RoomCommand::CallRingTimeout { .. }
        | RoomCommand::CallDeviceGone { .. } => Err(CommandError::internal()),
        RoomCommand::Post { body, .. } => {
            limits.check_body(body)?;
            let to_line = state.members.values().any(|m| m.kind == MemberKind::LineUser);
            if state.meta.kind.is_line() && !to_line {
                return Err(refuse(Refusal::LineRoomClosed, "nobody on LINE is in this room any more"));
            }
            if to_line && !env.actor.is_line_user() && !body.is_sendable_to_line() {
                return Err(refuse(Refusal::StickerNotSendable, "LINE users cannot be sent this sticker"));
            }
            let message_id = MessageId::generate();
            let mut plan = Plan::new(CommandResult::Posted { message_id: message_id.clone(), seq: next_seq });
            plan.events.push(PlannedEvent::Message { message_id, sender: env.actor.clone(), body: body.clone() });
            Ok(plan)
        }
        RoomCommand::Recall { message_id } => {
            let target = recall_target.ok_or_else(|| refuse(Refusal::MessageNotFound, "message not found"))?;
            if target.sender != env.actor {
                return Err(refuse(Refusal::RecallNotAllowed, "only the sender can recall a message"));
            }
            // What a member sent has reached LINE and cannot be taken back there; a LINE user
            // who unsent their own message on LINE has it hidden here too.
            let to_line = state.members.values().any(|m| m.kind == MemberKind::LineUser);
            if to_line && !env.actor.is_line_user() {
                return Err(refuse(Refusal::RecallNotAllowed, "messages sent to LINE cannot be recalled"));
            }
            if target.recalled {
                return Err(refuse(Refusal::AlreadyRecalled, "the message was already recalled"));
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
        RoomCommand::UpdateInfo { info } => {
            if state.meta.kind.is_one_to_one() {
                return Err(refuse(Refusal::NotAllowedForKind, "a 1:1 room cannot be renamed"));
            }
            if info.name.as_deref().is_some_and(|name| name.trim().is_empty()) {
                return Err(refuse(Refusal::InvalidField, "a room's name cannot be blank"));
            }
            let change = limits.check_info(info)?;
            let updated = change.over(&state.meta.info);
            if updated == state.meta.info {
                // Nothing changes: nothing is written, and nobody is told.
                return Ok(Plan::new(CommandResult::Done { seq: state.last_seq }));
            }
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.events.push(PlannedEvent::System(RoomEvent::InfoUpdated {
                by: env.actor.clone(),
                name: change.name.clone(),
                description: change.description.clone(),
                photo_url: change.photo_url.clone(),
            }));
            plan.info = Some(updated);
            Ok(plan)
        }
        RoomCommand::AddMembers { users } => decide_add(state, env, users, limits),
        RoomCommand::RemoveMember { user } => {
            if state.meta.kind.is_one_to_one() {
                return Err(refuse(Refusal::NotAllowedForKind, "members of a 1:1 room cannot be removed"));
            }
            if state.meta.kind == RoomKind::ExternalGroup && caller.map(|c| c.role) != Some(Role::Master) {
                return Err(refuse(Refusal::NotGroupMaster, "only the Group Master can remove members"));
            }
            if *user == env.actor {
                return Err(refuse(Refusal::InvalidMembers, "use leave to leave a room"));
            }
            let Some(target) = state.members.get(user) else {
                return Err(refuse(Refusal::MemberNotFound, "not a member of this room"));
            };
            let mut plan = Plan::new(CommandResult::Done { seq: next_seq });
            plan.removed.push(user.clone());
            plan.events
                .push(PlannedEvent::System(RoomEvent::MemberRemoved { by: env.actor.clone(), user: user.clone() }));
            notify_removed(
                &mut plan,
                user,
                target,
                format!("you were removed from {}", display_name(&state.meta.info)),
            );
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
            plan.events.push(PlannedEvent::System(RoomEvent::MemberExcluded { user: user.clone(), reason: *reason }));
            if target.role == Role::Master {
                plan.new_master = successor(state, user);
            }
            notify_removed(
                &mut plan,
                user,
                target,
                format!("you were excluded from {}: {reason}", display_name(&state.meta.info)),
            );
            Ok(plan)
        }
    }
}

/// A `Create` that reaches a room that exists: the 1:1 room of the pair it names (the API sends
/// it there; a create that lost the race to the pair's first create follows it there).
///
/// A 1:1 room is the pair's conversation, one per pair: creating it again brings back into it
/// whichever of the two had left (or was excluded), with the history kept, as authz allowed
/// them at the edge; when both are in, it changes nothing. Only the two participants of the pair
/// may do this, each with their own tenant, and only for the room's own kind; anyone else is
/// answered as if the room did not exist. Other rooms answer a member's repeated create with the
/// room, and nobody else.
fn decide_create_existing(
    state: &RoomState,
    env: &CommandEnvelope,
    kind: RoomKind,
    members: &[MemberSpec],
    is_member: bool,
) -> Result<Plan, CommandError> {
    let existed = CommandResult::Created { room_id: state.meta.id.clone(), existed: true };
    if !state.meta.kind.is_one_to_one() {
        return if is_member { Ok(Plan::new(existed)) } else { Err(CommandError::room_not_found()) };
    }
    let mut pair: Vec<&MemberSpec> = Vec::new();
    for m in members {
        if !pair.iter().any(|p| p.user == m.user) {
            pair.push(m);
        }
    }
    if !names_this_pair(state, env, kind, &pair) {
        return Err(CommandError::room_not_found());
    }
    let missing: Vec<&MemberSpec> = pair.into_iter().filter(|p| !state.members.contains_key(&p.user)).collect();
    let mut plan = Plan::new(existed);
    if missing.is_empty() {
        return Ok(plan);
    }
    let joined_seq = state.last_seq + 1;
    plan.events.push(PlannedEvent::System(RoomEvent::MembersJoined {
        by: env.actor.clone(),
        users: missing.iter().map(|p| p.user.clone()).collect(),
    }));
    for p in missing {
        let member = Member { tenant: p.tenant.clone(), kind: p.kind, role: Role::Member, joined_seq };
        plan.added.push((p.user.clone(), member));
        if p.user != env.actor && p.kind == MemberKind::Member {
            let text = format!("you were added to {}", display_name(&state.meta.info));
            plan.notify(&p.user, &p.tenant, NotificationKind::RoomAdded, text);
        }
    }
    Ok(plan)
}

/// Whether `pair` is this 1:1 room's pair, asked for by one of the two: the same kind and key,
/// the caller with their own tenant, the participants' tenants and kinds those the room was made
/// of (its creator's tenant among them), and those still in the room the same as in it.
fn names_this_pair(state: &RoomState, env: &CommandEnvelope, kind: RoomKind, pair: &[&MemberSpec]) -> bool {
    let [a, b] = pair else { return false };
    let meta = &state.meta;
    let caller_in_pair =
        pair.iter().any(|p| p.user == env.actor && p.tenant == env.tenant && p.kind == MemberKind::Member);
    let consistent = pair.iter().all(|p| is_consistent(p));
    let participants = [(*a).clone(), (*b).clone()];
    let same_room = kind == meta.kind
        && meta.direct_key.as_deref() == Some(direct_key(kind, &a.user, &b.user).as_str())
        && kind_for(&meta.tenant, &participants, false) == meta.kind
        && pair.iter().any(|p| p.kind == MemberKind::Member && p.tenant == meta.tenant);
    let present_alike =
        pair.iter().all(|p| state.members.get(&p.user).is_none_or(|m| m.tenant == p.tenant && m.kind == p.kind));
    caller_in_pair && consistent && same_room && present_alike
}

fn notify_removed(plan: &mut Plan, user: &UserId, member: &Member, text: String) {
    if member.kind == MemberKind::Member {
        plan.notify(user, &member.tenant, NotificationKind::RoomRemoved, text);
    }
}

/// The member who becomes Group Master when `leaving` goes: the earliest joined member
/// (ties by id), LINE users excluded.
fn successor(state: &RoomState, leaving: &UserId) -> Option<UserId> {
    state
        .members
        .iter()
        .filter(|(id, m)| *id != leaving && m.kind == MemberKind::Member)
        .min_by(|a, b| a.1.joined_seq.cmp(&b.1.joined_seq).then_with(|| a.0.cmp(b.0)))
        .map(|(id, _)| id.clone())
}

/// Whether a group room takes this participant. The specs come from authz's verdicts at the
/// edge (another company's member only with an active trust, a LINE user only for an inviter
/// allowed to use LINE); the room adds what its kind allows, and a room's kind never changes:
/// its own tenant's members join any group; members of other tenants only an external group
/// (a plain group would become external: they are excluded, `not_authorized`); LINE users only
/// a LINE group.
fn admits(meta: &RoomMeta, spec: &MemberSpec) -> bool {
    if !is_consistent(spec) {
        return false;
    }
    match spec.kind {
        MemberKind::LineUser => meta.kind == RoomKind::LineGroup,
        MemberKind::Member => spec.tenant == meta.tenant || meta.kind == RoomKind::ExternalGroup,
    }
}

/// A participant whose id, kind and tenant agree: a LINE user is `line:<id>` of the LINE
/// pseudo-tenant; a member is not, and a member id `<username>@<tenant>` names its tenant.
fn is_consistent(spec: &MemberSpec) -> bool {
    match spec.kind {
        MemberKind::LineUser => spec.user.is_line_user() && spec.tenant == TenantId::line(),
        MemberKind::Member => {
            !spec.user.is_line_user()
                && spec.tenant != TenantId::line()
                && spec.user.tenant_part().is_none_or(|t| t == spec.tenant.as_str())
        }
    }
}

fn decide_add(
    state: &RoomState,
    env: &CommandEnvelope,
    users: &[MemberSpec],
    limits: &Limits,
) -> Result<Plan, CommandError> {
    let kind = state.meta.kind;
    if kind.is_one_to_one() {
        return Err(refuse(Refusal::NotAllowedForKind, "invite people into a group room instead"));
    }
    let caller_role = state.members.get(&env.actor).map(|m| m.role);
    if kind == RoomKind::ExternalGroup && !env.actor.is_system() && caller_role != Some(Role::Master) {
        return Err(refuse(Refusal::NotGroupMaster, "only the Group Master can add members"));
    }
    let next_seq = state.last_seq + 1;
    let mut added: Vec<(UserId, Member)> = Vec::new();
    let mut excluded = Vec::new();
    for spec in users {
        if state.members.contains_key(&spec.user) || added.iter().any(|(u, _)| *u == spec.user) {
            continue;
        }
        if !admits(&state.meta, spec) {
            excluded.push(Excluded { user: spec.user.clone(), reason: ExclusionReason::NotAuthorized });
            continue;
        }
        added.push((
            spec.user.clone(),
            Member { tenant: spec.tenant.clone(), kind: spec.kind, role: Role::Member, joined_seq: next_seq },
        ));
    }
    if state.members.len() + added.len() > limits.max_members {
        return Err(refuse(Refusal::TooManyMembers, format!("at most {} members", limits.max_members)));
    }
    let seq = (!added.is_empty()).then_some(next_seq);
    let mut plan =
        Plan::new(CommandResult::MembersAdded { added: added.iter().map(|(u, _)| u.clone()).collect(), excluded, seq });
    if !added.is_empty() {
        plan.events.push(PlannedEvent::System(RoomEvent::MembersJoined {
            by: env.actor.clone(),
            users: added.iter().map(|(u, _)| u.clone()).collect(),
        }));
        let text = format!("you were added to {}", display_name(&state.meta.info));
        for (user, member) in &added {
            if member.kind == MemberKind::Member {
                plan.notify(user, &member.tenant, NotificationKind::RoomAdded, text.clone());
            }
        }
    }
    plan.added = added;
    Ok(plan)
}

/// The LINE users who must get `sender`'s message through the LINE gateway: every LINE member
/// for a member's message; the other LINE members for a LINE user's (none in a 1:1 room).
pub fn line_recipients_of(sender: &UserId, line_members: &[UserId]) -> Vec<UserId> {
    line_members.iter().filter(|user| *user != sender).cloned().collect()
}

impl RoomState {
    /// The state after a committed plan whose events end at `committed_last_seq`: a new room's
    /// first state, or `current` with the plan applied.
    pub fn after(current: Option<RoomState>, plan: &Plan, committed_last_seq: i64, dedup: usize) -> Option<RoomState> {
        let mut state = match (current, &plan.create) {
            (Some(state), _) => state,
            (None, Some(meta)) => RoomState {
                meta: meta.clone(),
                last_seq: 0,
                members: Members::default(),
                recent: RecentCommands::new(dedup),
                call: None,
            },
            (None, None) => return None,
        };
        state.absorb(plan, committed_last_seq);
        Some(state)
    }

    /// Take in a plan that was committed with events up to `committed_last_seq`.
    fn absorb(&mut self, plan: &Plan, committed_last_seq: i64) {
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
            self.meta.info = info.clone();
        }
        if let Some(change) = &plan.call {
            self.call = change.after.clone();
        }
    }

    /// The user ids that receive live events of this room (LINE users are reached through
    /// the LINE gateway, not through sessions).
    pub fn session_recipients(&self) -> Vec<UserId> {
        self.members.iter().filter(|(_, m)| m.kind == MemberKind::Member).map(|(id, _)| id.clone()).collect()
    }

    /// The room's LINE users (reached through the LINE gateway).
    pub fn line_recipients(&self) -> Vec<UserId> {
        self.members.iter().filter(|(_, m)| m.kind == MemberKind::LineUser).map(|(id, _)| id.clone()).collect()
    }
}

/// The open blocks whose blocker is a member of the room, as (blocker, blocked): a blocked
/// sender's messages skip the blocker's sessions (and the store leaves them out of the blocker's
/// history and sync). The blocked sender is not told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocks(HashSet<(UserId, UserId)>);

impl Blocks {
    pub fn new(pairs: HashSet<(UserId, UserId)>) -> Self {
        Self(pairs)
    }

    /// The recipients of a message of `sender`, without those who block the sender.
    pub fn recipients_of(&self, sender: &UserId, recipients: &[UserId]) -> Vec<UserId> {
        if self.0.is_empty() {
            return recipients.to_vec();
        }
        recipients.iter().filter(|r| !self.0.contains(&((*r).clone(), sender.clone()))).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: &str, tenant: &str) -> MemberSpec {
        MemberSpec { user: user.into(), tenant: tenant.into(), kind: MemberKind::Member }
    }

    fn env(actor: impl Into<UserId>, tenant: &str, command: RoomCommand) -> CommandEnvelope {
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

    fn users(ids: &[&str]) -> Vec<UserId> {
        ids.iter().map(|id| UserId::new(*id)).collect()
    }

    fn created(kind: RoomKind, members: Vec<MemberSpec>, name: Option<&str>) -> RoomState {
        let e = env(
            members[0].user.clone(),
            members[0].tenant.as_str(),
            RoomCommand::Create {
                kind,
                members: members.clone(),
                info: RoomInfo { name: name.map(Into::into), ..RoomInfo::default() },
            },
        );
        let plan = decide_create(&e, &Limits::default()).unwrap();
        RoomState::after(None, &plan, plan.events.len() as i64, 100).unwrap()
    }

    fn text(t: &str) -> Body {
        Body::Text { text: t.into() }
    }

    #[test]
    fn kinds_follow_the_participants() {
        let acme = [spec("a", "acme"), spec("b", "acme")];
        assert_eq!(kind_for(&"acme".into(), &acme, false), RoomKind::Direct);
        assert_eq!(kind_for(&"acme".into(), &acme, true), RoomKind::Group);
        let ext = [spec("a", "acme"), spec("c", "globex")];
        assert_eq!(kind_for(&"acme".into(), &ext, false), RoomKind::ExternalDirect);
        let line =
            [spec("a", "acme"), MemberSpec { user: "U1".into(), tenant: "line".into(), kind: MemberKind::LineUser }];
        assert_eq!(kind_for(&"acme".into(), &line, false), RoomKind::LineDirect);
        assert_eq!(
            direct_key(RoomKind::Direct, &"b".into(), &"a".into()),
            direct_key(RoomKind::Direct, &"a".into(), &"b".into())
        );
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
        assert_eq!(outsider.unwrap_err().code, Refusal::RoomNotFound);
        // Same user id presented with another tenant's token: not the member.
        let other_tenant = decide(
            &room,
            &env("b", "globex", RoomCommand::Post { client_msg_id: None, body: text("hi") }),
            &Limits::default(),
            None,
        );
        assert_eq!(other_tenant.unwrap_err().code, Refusal::RoomNotFound);
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
        assert_eq!(by_member.unwrap_err().code, Refusal::NotGroupMaster);
        let plan =
            decide(&room, &env("a", "acme", RoomCommand::RemoveMember { user: "d".into() }), &Limits::default(), None)
                .unwrap();
        assert_eq!(plan.removed, users(&["d"]));
        assert_eq!(plan.notifications[0].user, "d");
        // The master leaves: the earliest joined remaining member takes over.
        let seq = room.last_seq + 1;
        room.absorb(&plan, seq);
        let leave = decide(&room, &env("a", "acme", RoomCommand::Leave), &Limits::default(), None).unwrap();
        assert_eq!(leave.new_master, Some(UserId::new("c")));
    }

    #[test]
    fn only_stickers_line_users_can_be_sent_go_into_rooms_with_line_users() {
        let line_user = MemberSpec { user: "line:U1".into(), tenant: "line".into(), kind: MemberKind::LineUser };
        let room = created(RoomKind::LineDirect, vec![spec("a", "acme"), line_user], None);
        let sticker = |package: &str| Body::Sticker { package_id: package.into(), sticker_id: "1".into() };
        let post = |actor: &str, tenant: &str, body: Body| {
            decide(
                &room,
                &env(actor, tenant, RoomCommand::Post { client_msg_id: None, body }),
                &Limits::default(),
                None,
            )
        };
        assert_eq!(post("a", "acme", sticker("999999")).unwrap_err().code, Refusal::StickerNotSendable);
        assert!(post("a", "acme", sticker("446")).is_ok());
        // A LINE user's own (purchased) sticker is stored and shown.
        assert!(post("line:U1", "line", sticker("999999")).is_ok());
        let group = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        let anywhere = env("a", "acme", RoomCommand::Post { client_msg_id: None, body: sticker("999999") });
        assert!(decide(&group, &anywhere, &Limits::default(), None).is_ok(), "no LINE users, no LINE rule");
    }

    #[test]
    fn line_users_get_members_messages_and_each_others_in_rooms_with_several() {
        let (u1, u2) = (UserId::new("line:U1"), UserId::new("line:U2"));
        let both = vec![u1.clone(), u2.clone()];
        assert_eq!(line_recipients_of(&UserId::new("a"), &both), both);
        assert_eq!(line_recipients_of(&u1, &both), vec![u2.clone()]);
        assert!(line_recipients_of(&u1, std::slice::from_ref(&u1)).is_empty(), "nothing back to the writer");
    }

    #[test]
    fn a_line_room_without_line_participants_is_closed_for_sending() {
        let line_user = MemberSpec { user: "line:U1".into(), tenant: "line".into(), kind: MemberKind::LineUser };
        let mut room = created(RoomKind::LineDirect, vec![spec("a", "acme"), line_user], None);
        let post = env("a", "acme", RoomCommand::Post { client_msg_id: None, body: text("hi") });
        assert!(decide(&room, &post, &Limits::default(), None).is_ok());
        room.members.remove(&UserId::new("line:U1"));
        let closed = decide(&room, &post, &Limits::default(), None).unwrap_err();
        assert_eq!(closed.code, Refusal::LineRoomClosed);
        let plain = created(RoomKind::Group, vec![spec("a", "acme")], Some("alone"));
        assert!(decide(&plain, &post, &Limits::default(), None).is_ok(), "other rooms are not closed so");
    }

    #[test]
    fn recall_is_refused_in_rooms_with_line_members_and_for_others_messages() {
        let line_user = MemberSpec { user: "U1".into(), tenant: "line".into(), kind: MemberKind::LineUser };
        let room = created(RoomKind::LineDirect, vec![spec("a", "acme"), line_user], None);
        let target = MessageRef { seq: 3, sender: "a".into(), recalled: false };
        let e = env("a", "acme", RoomCommand::Recall { message_id: "m".into() });
        assert_eq!(decide(&room, &e, &Limits::default(), Some(&target)).unwrap_err().code, Refusal::RecallNotAllowed);

        let group = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        let by_other = env("b", "acme", RoomCommand::Recall { message_id: "m".into() });
        assert_eq!(
            decide(&group, &by_other, &Limits::default(), Some(&target)).unwrap_err().code,
            Refusal::RecallNotAllowed
        );
        let plan = decide(&group, &e, &Limits::default(), Some(&target)).unwrap();
        assert_eq!(plan.recall_seq, Some(3));
    }

    #[test]
    fn a_line_user_may_recall_their_own_message_in_a_room_with_line_members() {
        let line_user = MemberSpec { user: "line:U1".into(), tenant: "line".into(), kind: MemberKind::LineUser };
        let room = created(RoomKind::LineDirect, vec![spec("a", "acme"), line_user], None);
        let theirs = MessageRef { seq: 4, sender: "line:U1".into(), recalled: false };
        let unsend = env("line:U1", "line", RoomCommand::Recall { message_id: "m".into() });
        let plan = decide(&room, &unsend, &Limits::default(), Some(&theirs)).unwrap();
        assert_eq!(plan.recall_seq, Some(4));

        // Not a member's message, and the member still cannot recall theirs nor the LINE user's.
        let members = MessageRef { seq: 3, sender: "a".into(), recalled: false };
        let refused = decide(&room, &unsend, &Limits::default(), Some(&members)).unwrap_err();
        assert_eq!(refused.code, Refusal::RecallNotAllowed);
        let by_member = env("a", "acme", RoomCommand::Recall { message_id: "m".into() });
        for target in [&members, &theirs] {
            let refused = decide(&room, &by_member, &Limits::default(), Some(target)).unwrap_err();
            assert_eq!(refused.code, Refusal::RecallNotAllowed);
        }
        let recalled = MessageRef { recalled: true, ..theirs };
        let again = decide(&room, &unsend, &Limits::default(), Some(&recalled)).unwrap_err();
        assert_eq!(again.code, Refusal::AlreadyRecalled);
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
        assert_eq!(added, users(&["c"]));
        assert_eq!(excluded, vec![Excluded { user: "x".into(), reason: ExclusionReason::NotAuthorized }]);
    }

    fn line(user: &str) -> MemberSpec {
        MemberSpec { user: user.into(), tenant: TenantId::line(), kind: MemberKind::LineUser }
    }

    fn add(room: &RoomState, actor: &str, tenant: &str, specs: Vec<MemberSpec>) -> Result<Plan, CommandError> {
        decide(room, &env(actor, tenant, RoomCommand::AddMembers { users: specs }), &Limits::default(), None)
    }

    fn added_and_excluded(plan: Plan) -> (Vec<UserId>, Vec<Excluded>) {
        let CommandResult::MembersAdded { added, excluded, .. } = plan.result else { panic!("wrong result") };
        (added, excluded)
    }

    fn not_authorized(user: &str) -> Excluded {
        Excluded { user: user.into(), reason: ExclusionReason::NotAuthorized }
    }

    #[test]
    fn the_group_master_adds_other_companies_members_to_an_external_group_and_nobody_else_does() {
        let room = created(
            RoomKind::ExternalGroup,
            vec![spec("a", "acme"), spec("b", "acme"), spec("d", "globex")],
            Some("deal"),
        );
        let by_master = add(&room, "a", "acme", vec![spec("c", "globex"), spec("e", "acme")]).unwrap();
        assert_eq!(
            by_master.added.iter().map(|(u, m)| (u.as_str(), m.tenant.as_str())).collect::<Vec<_>>(),
            [("c", "globex"), ("e", "acme")]
        );
        assert_eq!(added_and_excluded(by_master), (users(&["c", "e"]), vec![]));
        assert_eq!(add(&room, "b", "acme", vec![spec("c", "globex")]).unwrap_err().code, Refusal::NotGroupMaster);
        assert_eq!(add(&room, "d", "globex", vec![spec("c", "globex")]).unwrap_err().code, Refusal::NotGroupMaster);
        // An external group is no LINE room.
        let lined = add(&room, "a", "acme", vec![line("line:U1")]).unwrap();
        assert_eq!(added_and_excluded(lined), (vec![], vec![not_authorized("line:U1")]));
    }

    #[test]
    fn line_users_join_line_groups_and_a_plain_group_keeps_to_its_tenant() {
        let shop =
            created(RoomKind::LineGroup, vec![spec("a", "acme"), line("line:U1"), spec("b", "acme")], Some("shop"));
        let by_member = add(&shop, "b", "acme", vec![line("line:U2"), spec("e", "acme"), spec("c", "globex")]).unwrap();
        assert_eq!(by_member.added[0].1.kind, MemberKind::LineUser);
        assert_eq!(added_and_excluded(by_member), (users(&["line:U2", "e"]), vec![not_authorized("c")]));

        let team = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("team"));
        let widened = add(&team, "a", "acme", vec![line("line:U1"), spec("c", "globex"), spec("e", "acme")]).unwrap();
        assert_eq!(added_and_excluded(widened), (users(&["e"]), vec![not_authorized("line:U1"), not_authorized("c")]));
        // A member spec cannot pass for a LINE user, nor the other way round.
        let forged = MemberSpec { user: "line:U3".into(), tenant: "acme".into(), kind: MemberKind::LineUser };
        let odd = MemberSpec { user: "x".into(), tenant: TenantId::line(), kind: MemberKind::Member };
        let plan = add(&shop, "a", "acme", vec![forged, odd]).unwrap();
        assert_eq!(added_and_excluded(plan), (vec![], vec![not_authorized("line:U3"), not_authorized("x")]));
    }

    fn recreate(actor: &str, tenant: &str, kind: RoomKind, pair: Vec<MemberSpec>) -> CommandEnvelope {
        env(actor, tenant, RoomCommand::Create { kind, members: pair, info: RoomInfo::default() })
    }

    #[test]
    fn a_participant_who_left_a_one_to_one_room_comes_back_by_creating_it_and_nobody_else_can() {
        let mut room = created(RoomKind::Direct, vec![spec("a", "acme"), spec("b", "acme")], None);
        let leave = decide(&room, &env("a", "acme", RoomCommand::Leave), &Limits::default(), None).unwrap();
        let seq = room.last_seq + 1;
        room.absorb(&leave, seq);
        assert!(!room.members.contains_key("a"));

        let again = recreate("a", "acme", RoomKind::Direct, vec![spec("b", "acme"), spec("a", "acme")]);
        let plan = decide(&room, &again, &Limits::default(), None).unwrap();
        assert_eq!(plan.result, CommandResult::Created { room_id: room.meta.id.clone(), existed: true });
        assert_eq!(
            plan.added,
            vec![(
                UserId::new("a"),
                Member {
                    tenant: "acme".into(),
                    kind: MemberKind::Member,
                    role: Role::Member,
                    joined_seq: room.last_seq + 1
                }
            )]
        );
        assert_eq!(
            plan.events,
            vec![PlannedEvent::System(RoomEvent::MembersJoined { by: "a".into(), users: users(&["a"]) })]
        );
        assert!(plan.notifications.is_empty(), "nobody else is told: bob never left");

        // Not the pair, not the caller's own tenant, not the room's kind: as if there were no room.
        let outsider = recreate("c", "acme", RoomKind::Direct, vec![spec("a", "acme"), spec("c", "acme")]);
        let for_someone = recreate("c", "acme", RoomKind::Direct, vec![spec("a", "acme"), spec("b", "acme")]);
        let other_tenant = recreate("a", "globex", RoomKind::Direct, vec![spec("a", "globex"), spec("b", "globex")]);
        let other_kind = recreate("a", "acme", RoomKind::ExternalDirect, vec![spec("a", "acme"), spec("b", "acme")]);
        for e in [outsider, for_someone, other_tenant, other_kind] {
            assert_eq!(decide(&room, &e, &Limits::default(), None).unwrap_err().code, Refusal::RoomNotFound, "{e:?}");
        }

        // Both in: nothing to write.
        let seq = room.last_seq + 1;
        room.absorb(&plan, seq);
        let by_bob = recreate("b", "acme", RoomKind::Direct, vec![spec("a", "acme"), spec("b", "acme")]);
        assert!(decide(&room, &by_bob, &Limits::default(), None).unwrap().is_noop());
    }

    #[test]
    fn creating_a_one_to_one_room_again_brings_back_the_other_participant_too() {
        let (alice, carol) = (spec("a@acme", "acme"), spec("c@globex", "globex"));
        let mut room = created(RoomKind::ExternalDirect, vec![alice.clone(), carol.clone()], None);
        let leave = decide(&room, &env("c@globex", "globex", RoomCommand::Leave), &Limits::default(), None).unwrap();
        let seq = room.last_seq + 1;
        room.absorb(&leave, seq);
        let again = recreate("a@acme", "acme", RoomKind::ExternalDirect, vec![alice.clone(), carol]);
        let plan = decide(&room, &again, &Limits::default(), None).unwrap();
        assert_eq!(
            plan.added.iter().map(|(u, m)| (u.as_str(), m.tenant.as_str())).collect::<Vec<_>>(),
            [("c@globex", "globex")]
        );
        assert_eq!(plan.notifications.iter().map(|n| n.user.as_str()).collect::<Vec<_>>(), ["c@globex"]);
        // The other side's member id presented with another tenant is not that participant.
        let forged = recreate("a@acme", "acme", RoomKind::ExternalDirect, vec![alice, spec("c@globex", "initech")]);
        assert_eq!(decide(&room, &forged, &Limits::default(), None).unwrap_err().code, Refusal::RoomNotFound);
        // A group room takes no create from someone who is not in it.
        let group = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        let e = recreate("x", "acme", RoomKind::Group, vec![spec("x", "acme"), spec("a", "acme")]);
        assert_eq!(decide(&group, &e, &Limits::default(), None).unwrap_err().code, Refusal::RoomNotFound);
    }

    #[test]
    fn one_to_one_rooms_cannot_be_renamed_or_widened() {
        let room = created(RoomKind::Direct, vec![spec("a", "acme"), spec("b", "acme")], None);
        let rename = env(
            "a",
            "acme",
            RoomCommand::UpdateInfo { info: RoomInfo { name: Some("x".into()), ..RoomInfo::default() } },
        );
        assert_eq!(decide(&room, &rename, &Limits::default(), None).unwrap_err().code, Refusal::NotAllowedForKind);
        let add = env("a", "acme", RoomCommand::AddMembers { users: vec![spec("c", "acme")] });
        assert_eq!(decide(&room, &add, &Limits::default(), None).unwrap_err().code, Refusal::NotAllowedForKind);
    }

    #[test]
    fn exclusion_removes_and_notifies_and_is_idempotent() {
        let room = created(RoomKind::ExternalGroup, vec![spec("a", "acme"), spec("c", "globex")], Some("deal"));
        let e = env(
            UserId::system(),
            "acme",
            RoomCommand::Exclude { user: "c".into(), reason: ExclusionReason::TrustRevoked },
        );
        let plan = decide(&room, &e, &Limits::default(), None).unwrap();
        assert_eq!(plan.removed, users(&["c"]));
        assert_eq!(plan.notifications.len(), 1);
        let e2 = env(
            UserId::system(),
            "acme",
            RoomCommand::Exclude { user: "nobody".into(), reason: ExclusionReason::LineAccessRevoked },
        );
        assert!(decide(&room, &e2, &Limits::default(), None).unwrap().events.is_empty());
    }

    #[test]
    fn a_blank_name_is_refused_and_an_update_that_changes_nothing_writes_nothing() {
        let room = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        let blank = RoomInfo { name: Some("   ".into()), ..RoomInfo::default() };
        let err = decide(&room, &env("a", "acme", RoomCommand::UpdateInfo { info: blank }), &Limits::default(), None)
            .unwrap_err();
        assert_eq!(err.code, Refusal::InvalidField);
        for same in [RoomInfo::default(), RoomInfo { name: Some("g".into()), ..RoomInfo::default() }] {
            let plan =
                decide(&room, &env("a", "acme", RoomCommand::UpdateInfo { info: same }), &Limits::default(), None)
                    .unwrap();
            assert!(plan.events.is_empty(), "nothing changed, no event");
            assert!(plan.info.is_none(), "nothing written");
        }
    }

    #[test]
    fn an_update_checks_urls_as_a_create_does() {
        let room = created(RoomKind::Group, vec![spec("a", "acme"), spec("b", "acme")], Some("g"));
        for url in ["javascript:alert(1)", "ftp://example.com/a.png", "https://exa mple.com/a.png"] {
            let bad = RoomInfo { photo_url: Some(url.into()), ..RoomInfo::default() };
            let update = env("a", "acme", RoomCommand::UpdateInfo { info: bad.clone() });
            assert_eq!(
                decide(&room, &update, &Limits::default(), None).unwrap_err().code,
                Refusal::InvalidUrl,
                "{url}"
            );
            let create = env(
                "a",
                "acme",
                RoomCommand::Create {
                    kind: RoomKind::Group,
                    members: vec![spec("a", "acme"), spec("b", "acme")],
                    info: bad,
                },
            );
            assert_eq!(decide_create(&create, &Limits::default()).unwrap_err().code, Refusal::InvalidUrl, "{url}");
        }
        let good = RoomInfo { photo_url: Some("https://example.com/a.png".into()), ..RoomInfo::default() };
        let plan =
            decide(&room, &env("a", "acme", RoomCommand::UpdateInfo { info: good }), &Limits::default(), None).unwrap();
        assert_eq!(plan.info.unwrap().name.as_deref(), Some("g"), "fields not given stay as they are");
    }

    #[test]
    fn members_are_a_sorted_map() {
        let m = |seq: i64| Member {
            tenant: TenantId::new("acme"),
            kind: MemberKind::Member,
            role: Role::Member,
            joined_seq: seq,
        };
        let mut members: Members =
            [("c", 1), ("a", 2), ("b", 3), ("a", 4)].into_iter().map(|(u, s)| (UserId::new(u), m(s))).collect();
        assert_eq!(members.keys().map(|u| u.as_str()).collect::<Vec<_>>(), ["a", "b", "c"], "sorted, one entry per id");
        members.insert(UserId::new("ab"), m(5));
        members.insert(UserId::new("b"), m(6));
        assert_eq!(members.keys().map(|u| u.as_str()).collect::<Vec<_>>(), ["a", "ab", "b", "c"]);
        assert_eq!(members["b"].joined_seq, 6, "an insert of a present id replaces it");
        assert_eq!(members.remove("a").map(|m| m.joined_seq), Some(2));
        assert!(members.remove("a").is_none() && !members.contains_key("a"));
        if let Some(c) = members.get_mut("c") {
            c.role = Role::Master;
        }
        assert_eq!(members.get("c").map(|m| m.role), Some(Role::Master));
        assert_eq!(members.len(), 3);
    }

    #[test]
    fn the_dedup_window_is_bounded() {
        let mut recent = RecentCommands::new(2);
        for i in 0..3 {
            recent.insert(&format!("c{i}"));
        }
        recent.insert("c2");
        assert_eq!(recent.len(), 2);
        assert!(!recent.contains("c0"));
        assert!(recent.contains("c1") && recent.contains("c2"));
    }
}
