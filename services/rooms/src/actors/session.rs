//! `SessionActor`: one per WebSocket. It reads client frames (through a reader task), sends
//! through bounded outbound queues drained by a writer task, heartbeats, and registers with
//! the hub and presence while it lives.
//!
//! Bounds. The reader hands the actor one frame at a time and waits for it to be taken, so a
//! flooding client is slowed down by TCP rather than queued in memory. A session has at most
//! `ws.max_in_flight` frames in progress (sends waiting for their ack, syncs, read markers); a
//! frame over that is answered at once with `too_many_in_flight` and nothing is done. Posts draw
//! on the user's budget (`Quotas`), shared with the HTTP API: over it, `rate_limited`.
//!
//! Order. One session's sends into one room are handled one after the other, in the order they
//! came (the access check and the publish of the next wait for the previous answer), so they
//! are stored in frame order; sends into different rooms proceed concurrently.
//!
//! Sync. `sync` answers go through their own queue, which waits for the client instead of
//! closing it; live frames (acks, pushes) go first through the live queue, and when that is full
//! the client is not reading: it is closed (1008) and will `sync` when it returns. While a sync
//! answers a room, that room's pushes are held back (`Holds`) and sent after its history, so a
//! room's frames arrive in seq order; frames of other rooms keep flowing.
//!
//! Presence. The session registers with the hub, then writes presence, and handles no frame
//! before that write is done: any event committed after the client's `sync` was read finds the
//! session (pushed), and any event committed before it is in the sync's answer.
//!
//! Expiry. The session closes itself (1008, "token expired") when its token's `exp` passes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use chat_auth::Principal;
use chat_protocol::bus::{CommandError, CommandResult, RoomCommand};
use chat_protocol::frames::{ClientFrame, ServerFrame};
use chat_protocol::{is_valid_client_id, post_command_id, Body, Limits, Refusal, RoomId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::access::{self, RoomKinds};
use crate::authz::AuthzClient;
use crate::dispatch::Dispatcher;
use crate::hub::{GoingAway, Hub, Push, SessionHandle, SlowConsumer};
use crate::metrics::metrics;
use crate::quota::Quotas;
use crate::settings::WsSettings;
use crate::store::Store;
use crate::views;

/// What a session needs, shared by all sessions of the node.
pub struct SessionContext {
    pub hub: Arc<Hub>,
    pub authz: Arc<AuthzClient>,
    pub kinds: Arc<RoomKinds>,
    pub dispatcher: Dispatcher,
    pub store: Store,
    pub presence: chat_presence::SharedPresence,
    pub limits: Limits,
    pub ws: WsSettings,
    /// Per-user budgets of posts and room creations (HTTP and WebSocket alike).
    pub quotas: Arc<Quotas>,
}

/// Frames of `sync` answers waiting for the writer (they wait for room, never close).
const SYNC_QUEUE: usize = 64;
/// How long a session waits for its presence write before serving frames without it.
const PRESENCE_WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// Live frames to the client, in order.
enum Outbound {
    Text(Arc<str>),
    Ping,
    Pong(bytes::Bytes),
}

/// A text frame from the client.
#[derive(Message)]
#[rtype(result = "()")]
struct Inbound(String);

/// The client answered a ping, or showed it is alive some other way.
#[derive(Message)]
#[rtype(result = "()")]
struct Heard;

/// The connection ended, or must end with this close frame.
#[derive(Message)]
#[rtype(result = "()")]
struct End(Option<CloseReason>);

/// A sync has sent a room's history (and its queue is written): what next for that room.
#[derive(Message)]
#[rtype(result = "Step")]
struct SyncStep(RoomId);

/// Stop holding a room's pushes (the sync does not answer it): send what was held, live.
#[derive(Message)]
#[rtype(result = "()")]
struct Unhold(RoomId);

/// A push held back, with its seq when it has one.
type Held = (Option<i64>, Arc<str>);

/// What a sync does next for a room, once it has sent the room's history.
#[derive(Debug, PartialEq, Eq, actix::MessageResponse)]
enum Step {
    /// Pushes were dropped while held: read the history again from where it got.
    Reread,
    /// Send these held pushes (skipping seqs already sent), then ask again.
    Flush(Vec<Held>),
    /// Nothing held: the room's pushes flow live from now on.
    Done,
}

/// Pushes of the rooms a sync is answering, held back until the sync has sent each room's
/// history. Bounded: past `capacity` frames in all, a room's held frames are dropped and it is
/// marked `overflowed` (its pushes are dropped until the sync reads it again: the events are
/// committed, so the store has them).
struct Holds {
    rooms: HashMap<RoomId, RoomHold>,
    total: usize,
    capacity: usize,
}

#[derive(Default)]
struct RoomHold {
    frames: VecDeque<Held>,
    overflowed: bool,
}

/// Rooms whose last seq a session remembers at most (a user in more rooms only loses the
/// repeat and gap checks of the ones forgotten).
const LAST_SEQ_ROOMS: usize = 4096;

/// Who asked for a sync: the client (answered with `synced`, counted in flight), or the
/// session itself to fill a gap in a room's pushes (silent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncKind {
    Client,
    GapFill,
}

impl Holds {
    fn new(capacity: usize) -> Self {
        Self { rooms: HashMap::new(), total: 0, capacity: capacity.max(1) }
    }

    fn hold(&mut self, room: RoomId) {
        self.rooms.entry(room).or_default();
    }

    /// Take a push of `room` if the room is held (true), keeping or dropping it.
    fn offer(&mut self, room: &RoomId, seq: Option<i64>, frame: &Arc<str>) -> bool {
        let Some(hold) = self.rooms.get_mut(room) else { return false };
        if hold.overflowed {
            return true;
        }
        if self.total >= self.capacity {
            self.total -= hold.frames.len();
            hold.frames.clear();
            hold.overflowed = true;
            return true;
        }
        hold.frames.push_back((seq, frame.clone()));
        self.total += 1;
        true
    }

    fn step(&mut self, room: &RoomId) -> Step {
        let Some(hold) = self.rooms.get_mut(room) else { return Step::Done };
        if hold.overflowed {
            hold.overflowed = false;
            return Step::Reread;
        }
        if hold.frames.is_empty() {
            self.rooms.remove(room);
            return Step::Done;
        }
        self.total -= hold.frames.len();
        Step::Flush(hold.frames.drain(..).collect())
    }

    /// Stop holding `room`: its held frames, in order.
    fn release(&mut self, room: &RoomId) -> Vec<Arc<str>> {
        let Some(hold) = self.rooms.remove(room) else { return Vec::new() };
        self.total -= hold.frames.len();
        hold.frames.into_iter().map(|(_, frame)| frame).collect()
    }

    /// Stop holding every room (a sync that ended early): the held frames.
    fn release_all(&mut self) -> Vec<Arc<str>> {
        let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
        rooms.iter().flat_map(|room| self.release(room)).collect()
    }
}

/// A `send` waiting for the one before it in the same room.
struct PendingSend {
    room_id: RoomId,
    client_msg_id: String,
    body: Body,
}

pub struct SessionActor {
    /// This session's id in the node's hub.
    id: u64,
    /// The verified caller; every command and read is made on their behalf.
    principal: Principal,
    /// When the caller's token expires (Unix seconds): the session closes then.
    expires_at_secs: Option<u64>,
    sc: Arc<SessionContext>,
    /// The bounded queue of live frames the writer task drains into the socket.
    out: mpsc::Sender<Outbound>,
    /// The queue of `sync` answers, drained by the writer after the live frames.
    sync_out: mpsc::Sender<Arc<str>>,
    /// Tells the writer task to send a close frame and end; taken once.
    close: Option<oneshot::Sender<Option<CloseReason>>>,
    /// When the client last showed it is alive (a frame, a ping or a pong).
    last_heard: Instant,
    /// Frames taken on and not answered yet (at most `ws.max_in_flight`).
    in_flight: usize,
    /// Rooms with a send in progress, each with the sends waiting behind it, oldest first.
    sends: HashMap<RoomId, VecDeque<PendingSend>>,
    /// `Some` while a sync runs: the syncs waiting behind it, oldest first.
    syncs: Option<VecDeque<(BTreeMap<RoomId, i64>, SyncKind)>>,
    /// The last seq sent to this client per room (live or by a sync): a push at or below it is
    /// a repeat and is not sent again; a push past the next one means pushes were missed (a
    /// broker or Redis restart, a room that moved): the gap is filled from the store first, so
    /// the client gets each room's events once, in seq order. At most `LAST_SEQ_ROOMS` rooms.
    last_seq: HashMap<RoomId, i64>,
    /// Pushes held back for the rooms the running sync answers.
    holds: Holds,
    /// The presence write of this session went through, so its close is counted too.
    present: bool,
}

/// Start a session over an upgraded connection. `expires_at_secs` is the token's `exp`.
pub fn start(
    principal: Principal,
    expires_at_secs: Option<u64>,
    sc: Arc<SessionContext>,
    session: actix_ws::Session,
    stream: AggregatedMessageStream,
) {
    let (out, out_rx) = mpsc::channel(sc.ws.outbound_queue.max(1));
    let (sync_out, sync_rx) = mpsc::channel(SYNC_QUEUE);
    let (close_tx, close_rx) = oneshot::channel();
    let id = sc.hub.next_session_id();
    let holds = Holds::new(sc.ws.outbound_queue);
    let actor = SessionActor {
        id,
        principal,
        expires_at_secs,
        sc,
        out: out.clone(),
        sync_out,
        close: Some(close_tx),
        last_heard: Instant::now(),
        in_flight: 0,
        sends: HashMap::new(),
        syncs: None,
        last_seq: HashMap::new(),
        holds,
        present: false,
    };
    let addr = actor.start();
    actix_web::rt::spawn(write_loop(session, out_rx, sync_rx, close_rx));
    actix_web::rt::spawn(read_loop(stream, addr, out));
}

/// Drain the queues into the socket: a close request first, then live frames, then sync frames.
async fn write_loop(
    mut session: actix_ws::Session,
    mut live: mpsc::Receiver<Outbound>,
    mut sync: mpsc::Receiver<Arc<str>>,
    mut close: oneshot::Receiver<Option<CloseReason>>,
) {
    let mut sync_open = true;
    loop {
        let sent = tokio::select! {
            biased;
            reason = &mut close => {
                let _ = session.close(reason.unwrap_or(None)).await;
                return;
            }
            next = live.recv() => match next {
                Some(Outbound::Text(text)) => session.text(text.to_string()).await,
                Some(Outbound::Ping) => session.ping(b"").await,
                Some(Outbound::Pong(bytes)) => session.pong(&bytes).await,
                None => return,
            },
            next = sync.recv(), if sync_open => match next {
                Some(text) => session.text(text.to_string()).await,
                None => {
                    sync_open = false;
                    continue;
                }
            },
        };
        if sent.is_err() {
            return;
        }
    }
}

fn close_for(err: &ProtocolError) -> CloseReason {
    match err {
        ProtocolError::Overflow => CloseReason { code: CloseCode::Size, description: Some("frame too large".into()) },
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            CloseReason { code: CloseCode::Invalid, description: Some("invalid utf-8".into()) }
        }
        // The aggregator reports an oversized fragmented message as an I/O error.
        ProtocolError::Io(io) if io.to_string().contains("size") => {
            CloseReason { code: CloseCode::Size, description: Some("message too large".into()) }
        }
        _ => CloseReason { code: CloseCode::Protocol, description: Some("protocol error".into()) },
    }
}

/// Hand client frames to the actor one at a time: the next is read only once the actor has
/// taken the previous one, so a client sending faster than it is served waits on TCP.
async fn read_loop(mut stream: AggregatedMessageStream, addr: Addr<SessionActor>, out: mpsc::Sender<Outbound>) {
    let end = loop {
        let Some(next) = stream.recv().await else {
            break None;
        };
        let taken = match next {
            Ok(AggregatedMessage::Text(text)) => addr.send(Inbound(text.to_string())).await,
            Ok(AggregatedMessage::Binary(_)) => {
                break Some(CloseReason { code: CloseCode::Unsupported, description: Some("text frames only".into()) });
            }
            Ok(AggregatedMessage::Ping(bytes)) => {
                let _ = out.try_send(Outbound::Pong(bytes));
                addr.send(Heard).await
            }
            Ok(AggregatedMessage::Pong(_)) => addr.send(Heard).await,
            Ok(AggregatedMessage::Close(_)) => break None,
            Err(err) => break Some(close_for(&err)),
        };
        if taken.is_err() {
            return; // the session has stopped
        }
    };
    addr.do_send(End(end));
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl SessionActor {
    /// Queue a live frame; a full queue means the client is not reading: close it.
    fn send(&mut self, frame: &ServerFrame, ctx: &mut Context<Self>) {
        if let Ok(text) = serde_json::to_string(frame) {
            self.send_text(Arc::from(text), ctx);
        }
    }

    fn send_text(&mut self, text: Arc<str>, ctx: &mut Context<Self>) {
        if self.out.try_send(Outbound::Text(text)).is_err() {
            self.slow(ctx);
        }
    }

    fn slow(&mut self, ctx: &mut Context<Self>) {
        metrics().sessions_dropped_slow.inc();
        self.end(Some(CloseReason { code: CloseCode::Policy, description: Some("slow consumer".into()) }), ctx);
    }

    fn end(&mut self, reason: Option<CloseReason>, ctx: &mut Context<Self>) {
        if let Some(close) = self.close.take() {
            let _ = close.send(reason);
        }
        ctx.stop();
    }

    fn error(&mut self, err: CommandError, client_msg_id: Option<String>, ctx: &mut Context<Self>) {
        let frame = ServerFrame::Error { code: err.code, message: err.message, client_msg_id };
        self.send(&frame, ctx);
    }

    /// Take on one more frame, or refuse it (`too_many_in_flight`) when the session is full.
    fn admit(&mut self, client_msg_id: Option<String>, ctx: &mut Context<Self>) -> bool {
        let max = self.sc.ws.max_in_flight.max(1);
        if self.in_flight >= max {
            let message = format!("at most {max} frames in progress per session; wait for their answers");
            self.error(CommandError::new(Refusal::TooManyInFlight, message), client_msg_id, ctx);
            return false;
        }
        self.in_flight += 1;
        true
    }

    fn on_frame(&mut self, frame: ClientFrame, ctx: &mut Context<Self>) {
        match frame {
            ClientFrame::Ping {} => self.send(&ServerFrame::Pong, ctx),
            ClientFrame::Send { room_id, client_msg_id, body } => self.on_send(room_id, client_msg_id, body, ctx),
            ClientFrame::Sync { rooms } => {
                if self.admit(None, ctx) {
                    self.start_sync(rooms, SyncKind::Client, ctx);
                }
            }
            ClientFrame::Read { room_id, seq } => {
                if !self.admit(None, ctx) {
                    return;
                }
                let sc = self.sc.clone();
                let p = self.principal.clone();
                let fut = async move { sc.store.mark_read(&room_id, &p.user_id, &p.tenant, seq).await };
                ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
                    act.in_flight = act.in_flight.saturating_sub(1);
                    match res {
                        Ok(Some(_)) => {}
                        Ok(None) => act.error(CommandError::room_not_found(), None, ctx),
                        Err(err) => {
                            tracing::error!(error = %err, "read marker not stored");
                            act.error(CommandError::internal(), None, ctx)
                        }
                    }
                }));
            }
        }
    }

    fn on_send(&mut self, room_id: RoomId, client_msg_id: String, body: Body, ctx: &mut Context<Self>) {
        if !is_valid_client_id(&client_msg_id) {
            let err = CommandError::new(Refusal::InvalidClientMsgId, "client_msg_id must be 1-64 of [A-Za-z0-9._@-]");
            return self.error(err, None, ctx);
        }
        if let Err(e) = self.sc.limits.check_body(&body) {
            return self.error(e.into(), Some(client_msg_id), ctx);
        }
        if uuid::Uuid::parse_str(room_id.as_str()).is_err() {
            return self.error(CommandError::room_not_found(), Some(client_msg_id), ctx);
        }
        if !self.admit(Some(client_msg_id.clone()), ctx) {
            return;
        }
        if let Err(wait) = self.sc.quotas.post(&self.principal.user_id) {
            self.in_flight = self.in_flight.saturating_sub(1);
            let secs = wait.as_secs().max(1);
            let err = CommandError::new(Refusal::RateLimited, format!("too many messages; retry in {secs} s"));
            return self.error(err, Some(client_msg_id), ctx);
        }
        let job = PendingSend { room_id, client_msg_id, body };
        match self.sends.get_mut(&job.room_id) {
            Some(waiting) => waiting.push_back(job),
            None => {
                self.sends.insert(job.room_id.clone(), VecDeque::new());
                self.run_send(job, ctx);
            }
        }
    }

    /// Check and publish one send; once it is published, start the next send of the same room
    /// (so a session's sends into a room are queued in the order they arrived, pipelined), and
    /// answer it when the room does.
    fn run_send(&mut self, job: PendingSend, ctx: &mut Context<Self>) {
        let PendingSend { room_id, client_msg_id, body } = job;
        let sc = self.sc.clone();
        let p = self.principal.clone();
        let command_id = post_command_id(&p.user_id, &client_msg_id);
        let command = RoomCommand::Post { client_msg_id: Some(client_msg_id.clone()), body };
        let rid = room_id.clone();
        let published = async move {
            access::may_post(&p, &rid, &sc.store, &sc.kinds, &sc.authz).await?;
            let submitted = sc.dispatcher.submit(&rid, &p.user_id, &p.tenant, Some(command_id), command).await?;
            Ok::<_, CommandError>(submitted)
        };
        ctx.spawn(published.into_actor(self).map(move |published, act, ctx| {
            // This room's next send may go now: this one is in the room's queue (or refused).
            match act.sends.get_mut(&room_id).and_then(VecDeque::pop_front) {
                Some(next) => act.run_send(next, ctx),
                None => {
                    act.sends.remove(&room_id);
                }
            }
            let answered = async move {
                match published {
                    Ok(submitted) => submitted.answer().await.map_err(CommandError::from),
                    Err(err) => Err(err),
                }
            };
            ctx.spawn(answered.into_actor(act).map(move |res, act, ctx| {
                act.in_flight = act.in_flight.saturating_sub(1);
                match res {
                    Ok(CommandResult::Posted { message_id, seq }) => {
                        let ack = ServerFrame::Ack { client_msg_id, room_id, message_id, seq };
                        act.send(&ack, ctx)
                    }
                    Ok(_) => act.error(CommandError::internal(), Some(client_msg_id), ctx),
                    Err(err) if err.code == Refusal::CommandTimeout => act.error(
                        CommandError::new(
                            Refusal::CommandTimeout,
                            "no answer in time; send again with the same client_msg_id",
                        ),
                        Some(client_msg_id),
                        ctx,
                    ),
                    Err(err) => act.error(err, Some(client_msg_id), ctx),
                }
            }));
        }));
    }

    /// Run a sync now, or after the one running.
    fn start_sync(&mut self, rooms: BTreeMap<RoomId, i64>, kind: SyncKind, ctx: &mut Context<Self>) {
        match &mut self.syncs {
            Some(waiting) => waiting.push_back((rooms, kind)),
            None => self.run_sync(rooms, kind, ctx),
        }
    }

    /// Answer a `sync` (one at a time per session): hold the rooms' pushes, send each room's
    /// history, then `synced` (not for a gap fill, which the client did not ask for);
    /// afterwards start the next waiting sync.
    fn run_sync(&mut self, rooms: BTreeMap<RoomId, i64>, kind: SyncKind, ctx: &mut Context<Self>) {
        self.syncs.get_or_insert_with(VecDeque::new);
        for room in rooms.keys() {
            self.holds.hold(room.clone());
        }
        let sync = SyncAnswer {
            sc: self.sc.clone(),
            principal: self.principal.clone(),
            out: self.sync_out.clone(),
            session: ctx.address(),
        };
        ctx.spawn(sync.answer(rooms, kind).into_actor(self).map(move |res, act, ctx| {
            if kind == SyncKind::Client {
                act.in_flight = act.in_flight.saturating_sub(1);
            }
            if let Ok(sent) = &res {
                for (room, seq) in sent {
                    act.remember_seq(room, *seq);
                }
            }
            // Normally nothing is left; after a failure, what was held goes out live.
            for frame in act.holds.release_all() {
                act.send_text(frame, ctx);
            }
            if let (Err(SyncFailed::Store), SyncKind::Client) = (&res, kind) {
                act.error(CommandError::new(Refusal::Internal, "sync failed; sync again"), None, ctx);
            }
            match act.syncs.as_mut().and_then(VecDeque::pop_front) {
                Some((next, kind)) => act.run_sync(next, kind, ctx),
                None => act.syncs = None,
            }
        }));
    }

    /// Note the last seq of `room` this client has.
    fn remember_seq(&mut self, room: &RoomId, seq: i64) {
        if let Some(last) = self.last_seq.get_mut(room) {
            *last = (*last).max(seq);
            return;
        }
        if self.last_seq.len() >= LAST_SEQ_ROOMS {
            self.last_seq.clear(); // forgetting only skips a check, it loses nothing
        }
        self.last_seq.insert(room.clone(), seq);
    }
}

/// Why a sync ended without `synced`.
enum SyncFailed {
    /// The store failed: the client is told to sync again.
    Store,
    /// The session or its writer is gone.
    Gone,
}

/// One `sync` answer in progress.
struct SyncAnswer {
    sc: Arc<SessionContext>,
    principal: Principal,
    out: mpsc::Sender<Arc<str>>,
    session: Addr<SessionActor>,
}

impl SyncAnswer {
    async fn queue(&self, frame: &ServerFrame) -> Result<(), SyncFailed> {
        let text = serde_json::to_string(frame).map_err(|_| SyncFailed::Gone)?;
        self.out.send(Arc::from(text)).await.map_err(|_| SyncFailed::Gone)
    }

    /// Wait until the writer has taken every queued sync frame (all permits free again).
    async fn written(&self) -> Result<(), SyncFailed> {
        self.out.reserve_many(SYNC_QUEUE).await.map(drop).map_err(|_| SyncFailed::Gone)
    }

    /// Everything after each given seq, in order per room, then `synced` (for the client's
    /// syncs). The last seq sent per room.
    async fn answer(self, rooms: BTreeMap<RoomId, i64>, kind: SyncKind) -> Result<BTreeMap<RoomId, i64>, SyncFailed> {
        let p = &self.principal;
        let mut last = BTreeMap::new();
        for (room_id, after) in rooms {
            match self.sc.store.is_member(&room_id, &p.user_id, &p.tenant).await {
                Ok(true) => {}
                Ok(false) if kind == SyncKind::GapFill => {
                    // No longer a member (the push was its own removal): nothing to fill.
                    self.session.send(Unhold(room_id)).await.map_err(|_| SyncFailed::Gone)?;
                    continue;
                }
                Ok(false) => {
                    let refusal = CommandError::room_not_found();
                    self.queue(&ServerFrame::Error {
                        code: refusal.code,
                        message: refusal.message,
                        client_msg_id: None,
                    })
                    .await?;
                    self.session.send(Unhold(room_id)).await.map_err(|_| SyncFailed::Gone)?;
                    continue;
                }
                Err(err) => {
                    warn!(error = %err, "sync: membership not readable");
                    return Err(SyncFailed::Store);
                }
            }
            let sent = self.room(&room_id, after).await?;
            last.insert(room_id, sent);
        }
        if kind == SyncKind::Client {
            self.queue(&ServerFrame::Synced { rooms: last.clone() }).await?;
        }
        Ok(last)
    }

    /// One room: its history after `after`, then what was held back meanwhile, until nothing
    /// is held and the room's pushes flow live again. Returns the last seq sent.
    async fn room(&self, room_id: &RoomId, mut after: i64) -> Result<i64, SyncFailed> {
        let page_size = self.sc.ws.sync_page.max(1);
        loop {
            loop {
                let reader = Some(&self.principal.user_id);
                let page =
                    self.sc.store.history(room_id, reader, Some(after), None, page_size).await.map_err(|err| {
                        warn!(error = %err, "sync: history not readable");
                        SyncFailed::Store
                    })?;
                for row in &page {
                    self.queue(&views::event_frame(room_id, row)).await?;
                    after = row.seq;
                }
                if (page.len() as i64) < page_size {
                    break;
                }
            }
            // Live pushes of this room may only follow frames already written.
            let reread = loop {
                self.written().await?;
                match self.session.send(SyncStep(room_id.clone())).await.map_err(|_| SyncFailed::Gone)? {
                    Step::Done => break false,
                    Step::Reread => break true,
                    Step::Flush(frames) => {
                        for (seq, text) in frames {
                            if seq.is_some_and(|s| s <= after) {
                                continue; // already sent with the history
                            }
                            self.out.send(text).await.map_err(|_| SyncFailed::Gone)?;
                            if let Some(s) = seq {
                                after = s;
                            }
                        }
                    }
                }
            };
            if !reread {
                return Ok(after);
            }
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.sc.ws.outbound_queue.max(16));
        metrics().sessions.inc();
        let addr = ctx.address();
        let handle = SessionHandle {
            push: addr.clone().recipient(),
            slow: addr.clone().recipient(),
            going_away: addr.recipient(),
        };
        // In the hub first (pushes wait in the mailbox), then in presence; no frame is handled
        // before the presence write is done (`wait` holds the mailbox).
        self.sc.hub.register(&self.principal.user_id, self.id, handle);
        let presence = self.sc.presence.clone();
        let user = self.principal.user_id.clone();
        let write = async move { tokio::time::timeout(PRESENCE_WRITE_TIMEOUT, presence.session_opened(&user)).await };
        ctx.wait(write.into_actor(self).map(|res, act, _ctx| match res {
            Ok(Ok(())) => act.present = true,
            Ok(Err(err)) => warn!(error = %err, "presence not recorded"),
            Err(_) => warn!("presence not recorded in time"),
        }));
        let interval = Duration::from_secs(self.sc.ws.heartbeat_interval_secs.max(1));
        let timeout = Duration::from_secs(self.sc.ws.client_timeout_secs.max(2));
        ctx.run_interval(interval, move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                debug!(session = act.id, "client timed out");
                act.end(Some(CloseReason { code: CloseCode::Away, description: Some("timeout".into()) }), ctx);
                return;
            }
            let _ = act.out.try_send(Outbound::Ping);
        });
        if let Some(exp) = self.expires_at_secs {
            let left = Duration::from_secs(exp.saturating_sub(now_secs()));
            ctx.run_later(left, |act, ctx| {
                debug!(session = act.id, "token expired");
                act.end(Some(CloseReason { code: CloseCode::Policy, description: Some("token expired".into()) }), ctx);
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics().sessions.dec();
        self.sc.hub.unregister(&self.principal.user_id, self.id);
        if let Some(close) = self.close.take() {
            let _ = close.send(None);
        }
        if self.present {
            let presence = self.sc.presence.clone();
            let user = self.principal.user_id.clone();
            actix::spawn(async move {
                let _ = presence.session_closed(&user).await;
            });
        }
    }
}

impl Handler<Inbound> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match serde_json::from_str::<ClientFrame>(&msg.0) {
            Ok(frame) => self.on_frame(frame, ctx),
            Err(err) => {
                let text = err.to_string();
                let code = if err.is_syntax() || err.is_eof() {
                    Refusal::MalformedJson
                } else if text.contains("unknown variant") {
                    Refusal::UnknownType
                } else if text.contains("unknown field") {
                    Refusal::UnknownField
                } else {
                    Refusal::InvalidFrame
                };
                self.error(CommandError::new(code, text), None, ctx);
            }
        }
    }
}

impl Handler<Heard> for SessionActor {
    type Result = ();

    fn handle(&mut self, _msg: Heard, _ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
    }
}

impl Handler<End> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: End, ctx: &mut Self::Context) {
        self.end(msg.0, ctx);
    }
}

impl Handler<Push> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        if let Some(room) = &msg.room {
            if self.holds.offer(room, msg.seq, &msg.frame) {
                return;
            }
            if let Some(seq) = msg.seq {
                match self.last_seq.get(room).copied() {
                    // Sent already (a redelivered command's events come again).
                    Some(last) if seq <= last => return,
                    // Pushes were missed: read them from the store, this one held behind them.
                    Some(last) if seq > last + 1 => {
                        self.start_sync(BTreeMap::from([(room.clone(), last)]), SyncKind::GapFill, ctx);
                        self.holds.hold(room.clone());
                        self.holds.offer(room, msg.seq, &msg.frame);
                        return;
                    }
                    _ => self.remember_seq(room, seq),
                }
            }
        }
        self.send_text(msg.frame, ctx);
    }
}

impl Handler<SyncStep> for SessionActor {
    type Result = Step;

    fn handle(&mut self, msg: SyncStep, _ctx: &mut Self::Context) -> Step {
        self.holds.step(&msg.0)
    }
}

impl Handler<Unhold> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Unhold, ctx: &mut Self::Context) {
        for frame in self.holds.release(&msg.0) {
            self.send_text(frame, ctx);
        }
    }
}

impl Handler<SlowConsumer> for SessionActor {
    type Result = ();

    fn handle(&mut self, _msg: SlowConsumer, ctx: &mut Self::Context) {
        self.slow(ctx);
    }
}

impl Handler<GoingAway> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: GoingAway, ctx: &mut Self::Context) {
        let reason = match msg {
            GoingAway::Restart => {
                CloseReason { code: CloseCode::Restart, description: Some("server restarting".into()) }
            }
            GoingAway::Revoked => CloseReason { code: CloseCode::Policy, description: Some("access revoked".into()) },
        };
        self.end(Some(reason), ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: i64) -> Arc<str> {
        Arc::from(format!(r#"{{"type":"message","room_id":"r","seq":{seq}}}"#))
    }

    #[test]
    fn pushes_of_held_rooms_wait_and_others_pass() {
        let mut holds = Holds::new(10);
        let (r, other) = (RoomId::new("r"), RoomId::new("o"));
        holds.hold(r.clone());
        assert!(holds.offer(&r, Some(7), &frame(7)));
        assert!(holds.offer(&r, Some(8), &frame(8)));
        assert!(!holds.offer(&other, Some(1), &frame(1)), "a room not synced flows live");
        match holds.step(&r) {
            Step::Flush(frames) => assert_eq!(frames.iter().map(|f| f.0).collect::<Vec<_>>(), vec![Some(7), Some(8)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(holds.step(&r), Step::Done);
        assert!(!holds.offer(&r, Some(9), &frame(9)), "released: live again");
        assert_eq!(holds.total, 0);
    }

    #[test]
    fn an_overflowing_hold_drops_its_frames_until_the_room_is_read_again() {
        let mut holds = Holds::new(2);
        let (a, b) = (RoomId::new("a"), RoomId::new("b"));
        holds.hold(a.clone());
        holds.hold(b.clone());
        assert!(holds.offer(&a, Some(1), &frame(1)));
        assert!(holds.offer(&b, Some(1), &frame(1)));
        // Full: a's frames go, and a keeps dropping until its next step says reread.
        assert!(holds.offer(&a, Some(2), &frame(2)));
        assert!(holds.offer(&a, Some(3), &frame(3)));
        assert_eq!(holds.total, 1);
        assert_eq!(holds.step(&a), Step::Reread);
        assert!(holds.offer(&a, Some(4), &frame(4)), "held again after the reread began");
        match holds.step(&a) {
            Step::Flush(frames) => assert_eq!(frames.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(holds.step(&a), Step::Done);
        assert_eq!(holds.release_all().len(), 1, "b's frame");
        assert_eq!(holds.total, 0);
        assert!(holds.rooms.is_empty());
    }
}
