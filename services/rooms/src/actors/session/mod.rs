//! A WebSocket session: one task per connection, spawned on the worker that accepted it, owns the
//! session's state and its socket. It waits at once for the client's next message, the hub's
//! pushes, the answers of the work it started (sends, syncs, read markers: futures inside the
//! task, so their answers come back to it) and one timer (heartbeat, token expiry); it registers
//! with the hub and presence while it lives. No actor, no other task.
//!
//! Socket (`socket`). The response body is the session's own: two bounded queues of finished
//! WebSocket frames that actix-http's dispatcher drains into the connection, live frames first.
//! A push's frame is built once per delivery by the hub and the same bytes go to every session
//! (`WireFrame`); the session builds only its own frames (acks, errors, sync pages).
//!
//! Bounds. The session reads the client's next message only once it has handled the previous one
//! (quickly: work goes on in the background) and only while its live queue has room for the
//! answer, so a flooding client is slowed down by TCP rather than queued in memory. A session
//! has at most `ws.max_in_flight` frames in progress (sends waiting for their ack, syncs, read
//! markers); a frame over that is answered at once with `too_many_in_flight` and nothing is
//! done. Posts draw on the user's budget (`Quotas`), shared with the HTTP API: over it,
//! `rate_limited`. The hub queues at most `ws.outbound_queue` pushes for the session; past that
//! the session is closed (1008) as too slow.
//!
//! Order. One session's sends into one room are handled one after the other, in the order they
//! came (the access check and the publish of the next wait for the previous answer), so they
//! are stored in frame order; sends into different rooms proceed concurrently.
//!
//! Sync. `sync` answers go through their own queue, which waits for the client instead of
//! closing it; live frames (acks, pushes) go first through the live queue, and when that is full
//! the client is not reading: it is closed (1008) and will `sync` when it returns. While a sync
//! answers a room, that room's pushes are held back (`Holds`) and sent after its history, so a
//! room's frames arrive in seq order; frames of other rooms keep flowing. The session remembers
//! the last seq it sent per room: a push at or below it is a repeat and is dropped, a push past
//! the next one means pushes were missed, and the gap is read from the store first.
//!
//! Presence. The session registers with the hub, then writes presence, and handles nothing
//! before that write is done: any event committed after the client's `sync` was read finds the
//! session (pushed), and any event committed before it is in the sync's answer.
//!
//! Liveness. Every `ws.heartbeat_interval_secs` the session pings the client; a client not heard
//! from (a frame, a ping, a pong) for `ws.client_timeout_secs` is closed (1001), or, when it was
//! not heard because its live queue is full and it is not being read, closed as too slow (1008).
//!
//! Expiry. The session closes itself (1008, "token expired") when its token's `exp` passes.

mod calls;
mod context;
mod holds;
mod socket;
mod sync;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_http::ws::{CloseCode, CloseReason};
use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use bytes::Bytes;
use chat_auth::Principal;
use chat_protocol::bus::{CommandError, CommandResult, RoomCommand};
use chat_protocol::call::{CallId, DeviceId};
use chat_protocol::frames::{ClientFrame, ServerFrame};
use chat_protocol::{is_valid_client_id, post_command_id, Body, Limits, Refusal, RoomId};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Sleep;
use tracing::{debug, warn, Instrument, Span};

use self::calls::{CallDone, CallFrame};
pub use self::context::SessionContext;
use self::holds::Holds;
use self::socket::Socket;
/// The reader, for the fuzz target of the client's frames (`fuzz/`) and its replay test.
pub use self::socket::{Inbound, Reader};
use self::sync::{SyncAnswer, SyncFailed, SyncKind};
use crate::access;
use crate::dispatch::Submitted;
use crate::hub::{self, GoingAway, Push, SessionHandle, SessionLink};
use crate::metrics::metrics;

/// Calls a session's device remembers being in, to leave them when it ends (one per room).
const MAX_CALLS: usize = 16;

/// How long a session waits for its presence write before serving frames without it.
const PRESENCE_WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// Rooms whose last seq a session remembers at most (a user in more rooms only loses the
/// repeat and gap checks of the ones forgotten).
const LAST_SEQ_ROOMS: usize = 4096;

/// Start a session over a WebSocket handshake just accepted: its task is spawned on this
/// worker, and the returned body (the session's outbound frames) answers the handshake.
/// `payload` is the request's, the client's frames; `expires_at_secs` is the token's `exp`.
pub fn start(principal: Principal, expires_at_secs: Option<u64>, sc: Arc<SessionContext>, payload: Payload) -> BoxBody {
    let (socket, body) = socket::socket(sc.ws.outbound_queue);
    let reader = Reader::new(payload, sc.ws.max_frame_bytes);
    let (handle, link) = hub::session_link(sc.ws.outbound_queue.max(16));
    let session = Session::open(principal, expires_at_secs, sc, socket, handle);
    actix_web::rt::spawn(run(Serve::new(session, reader, link)));
    BoxBody::new(body)
}

/// A `send` waiting for the one before it in the same room.
struct PendingSend {
    room_id: RoomId,
    client_msg_id: String,
    body: Body,
    /// The frame's span (tracing on): the send runs in it, even when it waits its turn.
    span: Span,
}

/// The answer of work the session started, back in the session's task.
enum Done {
    /// A send was checked and published (or refused): the room's next send may go.
    Published { room_id: RoomId, client_msg_id: String, published: Result<Submitted, CommandError> },
    /// A send's answer, as the client gets it.
    Answered(ServerFrame),
    /// A read marker was stored, or this went wrong.
    Read(Option<CommandError>),
    /// A sync ended: the last seq sent per room, or why it stopped.
    Synced { kind: SyncKind, result: Result<BTreeMap<RoomId, i64>, SyncFailed> },
    /// A call frame was answered by its room.
    Call(CallDone),
    /// The calls going on in the user's rooms when the session opened.
    CallsGoingOn(Vec<ServerFrame>),
}

type Ops = FuturesUnordered<LocalBoxFuture<'static, Done>>;

/// What the session's loop handles next.
enum Event {
    GoingAway(GoingAway),
    /// The connection is gone.
    Gone,
    /// The heartbeat or the token's expiry is due.
    Timer,
    Done(Done),
    Push(Arc<Push>),
    Inbound(Option<Result<Inbound, CloseReason>>),
}

struct Session {
    /// This session's id in the node's hub.
    id: u64,
    /// The verified caller; every command and read is made on their behalf.
    principal: Rc<Principal>,
    /// When the caller's token expires: the session closes then.
    expires_at: Option<Instant>,
    sc: Arc<SessionContext>,
    socket: Socket,
    /// When the client last showed it is alive (a frame, a ping or a pong).
    last_heard: Instant,
    /// Frames taken on and not answered yet (at most `ws.max_in_flight`).
    in_flight: usize,
    /// Work in progress (none: no buffer).
    ops: Option<Ops>,
    /// Rooms with a send in progress, each with the sends waiting behind it, oldest first.
    sends: HashMap<RoomId, VecDeque<PendingSend>>,
    /// `Some` while a sync runs: the syncs waiting behind it, oldest first.
    syncs: Option<VecDeque<(BTreeMap<RoomId, i64>, SyncKind)>>,
    /// The last seq sent to this client per room (live or by a sync): a push at or below it is
    /// a repeat and is not sent again; a push past the next one means pushes were missed (a
    /// broker or Redis restart, a room that moved): the gap is filled from the store first, so
    /// the client gets each room's events once, in seq order. At most `LAST_SEQ_ROOMS` rooms.
    last_seq: HashMap<RoomId, i64>,
    /// Pushes held back for the rooms the running sync answers (shared with it).
    holds: Rc<RefCell<Holds>>,
    /// The presence write of this session went through, so its close is counted too.
    present: bool,
    /// Set once the session must end: the close frame's reason.
    ending: Option<Option<CloseReason>>,
    /// This connection as calls know it.
    device: DeviceId,
    /// The calls this device is in (at most one per room), left when the session ends.
    calls: Vec<(RoomId, CallId)>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn close(code: CloseCode, text: &str) -> Option<CloseReason> {
    Some(CloseReason { code, description: Some(text.into()) })
}

/// A client's text message read as a frame, or the error frame's refusal it gets instead.
/// `text` is what the reader gave (`Inbound::Text`: checked to be UTF-8).
pub fn client_frame(text: &[u8]) -> Result<ClientFrame, CommandError> {
    let text = std::str::from_utf8(text).unwrap_or_default();
    serde_json::from_str::<ClientFrame>(text).map_err(|err| {
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
        CommandError::new(code, text)
    })
}

/// The checks of a `send` frame made before any work starts: its client_msg_id, its body's
/// limits, and a room id that can name a room.
pub fn check_send(limits: &Limits, room_id: &RoomId, client_msg_id: &str, body: &Body) -> Result<(), CommandError> {
    if !is_valid_client_id(client_msg_id) {
        return Err(CommandError::new(Refusal::InvalidClientMsgId, "client_msg_id must be 1-64 of [A-Za-z0-9._@-]"));
    }
    limits.check_body(body)?;
    if uuid::Uuid::parse_str(room_id.as_str()).is_err() {
        return Err(CommandError::room_not_found());
    }
    Ok(())
}

/// The next answer of the work in progress (pending while there is none).
fn poll_ops(ops: &mut Option<Ops>, cx: &mut Context<'_>) -> Poll<Done> {
    match ops.as_mut().map(|ops| ops.poll_next_unpin(cx)) {
        Some(Poll::Ready(Some(done))) => Poll::Ready(done),
        _ => Poll::Pending,
    }
}

/// The session's task: write presence, serve until the session ends, then let presence know.
// An async block, not an async fn: an async fn's state would hold `serve` twice (the argument
// and its copy, rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)]
fn run(mut serve: Serve) -> impl Future<Output = ()> {
    async move {
        serve.session.write_presence().await;
        serve.session.show_calls();
        (&mut serve).await;
        let (present, presence, user) =
            (serve.session.present, serve.session.sc.presence.clone(), serve.session.principal.user_id.clone());
        let in_calls = std::mem::take(&mut serve.session.calls);
        let (sc, principal, device) =
            (serve.session.sc.clone(), serve.session.principal.clone(), serve.session.device.clone());
        drop(serve); // out of the hub, the close frame queued
        if !in_calls.is_empty() {
            actix_web::rt::spawn(async move { calls::leave_all(&sc, &principal, device, in_calls).await });
        }
        if present {
            let _ = Box::pin(presence.session_closed(&user)).await;
        }
    }
}

/// Events a session handles in one turn at most before it lets the worker's other tasks (its
/// connection's writer among them) run.
const EVENTS_PER_TURN: usize = 64;

/// The session's loop: a plain struct (no async state machine around it), polled until the
/// session ends.
struct Serve {
    session: Session,
    reader: Reader,
    link: SessionLink,
    /// The one timer: the next heartbeat, or the token's expiry if sooner.
    timer: Pin<Box<Sleep>>,
    beat: Duration,
    next_beat: Instant,
}

impl Serve {
    fn new(session: Session, reader: Reader, link: SessionLink) -> Self {
        let beat = Duration::from_secs(session.sc.ws.heartbeat_interval_secs.max(1));
        let next_beat = Instant::now() + beat;
        let timer = Box::pin(tokio::time::sleep_until(session.next_wake(next_beat).into()));
        Self { session, reader, link, timer, beat, next_beat }
    }
}

impl Future for Serve {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..EVENTS_PER_TURN {
            if this.session.ending.is_some() {
                return Poll::Ready(());
            }
            let event = ready!(this.session.poll_event(cx, &mut this.reader, &this.link, this.timer.as_mut()));
            if let Event::Timer = event {
                this.session.on_timer(&mut this.next_beat, this.beat);
                this.timer.as_mut().reset(this.session.next_wake(this.next_beat).into());
            } else {
                this.session.on_event(event);
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Session {
    /// In the hub at once: pushes wait in the session's queue until it serves them.
    fn open(
        principal: Principal,
        expires_at_secs: Option<u64>,
        sc: Arc<SessionContext>,
        socket: Socket,
        handle: SessionHandle,
    ) -> Self {
        let id = sc.hub.next_session_id();
        metrics().sessions.inc();
        sc.hub.register(&principal.user_id, id, handle);
        let now = Instant::now();
        let expires_at = expires_at_secs.map(|exp| now + Duration::from_secs(exp.saturating_sub(now_secs())));
        let holds = Rc::new(RefCell::new(Holds::new(sc.ws.outbound_queue)));
        let device = DeviceId::of(sc.hub.node_id(), id);
        Session {
            device,
            calls: Vec::new(),
            id,
            principal: Rc::new(principal),
            expires_at,
            sc,
            socket,
            last_heard: now,
            in_flight: 0,
            ops: None,
            sends: HashMap::new(),
            syncs: None,
            last_seq: HashMap::new(),
            holds,
            present: false,
            ending: None,
        }
    }

    /// Write presence; the session handles nothing before it is done (or failed, or timed out).
    async fn write_presence(&mut self) {
        let presence = self.sc.presence.clone();
        let user = &self.principal.user_id;
        // Boxed: the write's state is let go once it is done, not kept in the session's task.
        match Box::pin(tokio::time::timeout(PRESENCE_WRITE_TIMEOUT, presence.session_opened(user))).await {
            Ok(Ok(())) => self.present = true,
            Ok(Err(err)) => warn!(error = %err, "presence not recorded"),
            Err(_) => warn!("presence not recorded in time"),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::GoingAway(why) => self.going_away(why),
            Event::Gone => self.end(None),
            Event::Timer => {} // the loop's own
            Event::Done(done) => {
                self.on_done(done);
                if self.ops.as_ref().is_some_and(FuturesUnordered::is_empty) {
                    self.ops = None;
                }
            }
            Event::Push(push) => self.on_push(&push),
            Event::Inbound(next) => self.on_inbound(next),
        }
    }

    /// What the session must handle next. The hub's close, the connection's end and the timer
    /// come first (they are rare); then pushes, in the order the hub queued them, before the
    /// answers of work in progress (a room's delivery comes before its reply, so a client gets
    /// its own message before its ack, as the room sent them); the client's next message last,
    /// and only while the live queue has room for an answer (the socket wakes the task when it
    /// gets room again). Neither pushes (bounded by the hub's queue) nor answers (bounded by the
    /// frames in flight) can keep the others waiting for long.
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut Reader,
        link: &SessionLink,
        timer: Pin<&mut Sleep>,
    ) -> Poll<Event> {
        if let Poll::Ready(why) = link.poll_going_away(cx) {
            return Poll::Ready(Event::GoingAway(why));
        }
        if self.socket.poll_gone(cx).is_ready() {
            return Poll::Ready(Event::Gone);
        }
        if timer.poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        if let Poll::Ready(push) = link.poll_push(cx) {
            return Poll::Ready(Event::Push(push));
        }
        if let Poll::Ready(done) = poll_ops(&mut self.ops, cx) {
            return Poll::Ready(Event::Done(done));
        }
        if self.socket.has_room() {
            return reader.poll_next(cx).map(Event::Inbound);
        }
        Poll::Pending
    }

    /// When the timer must fire next: the next heartbeat, or the token's expiry if sooner.
    fn next_wake(&self, next_beat: Instant) -> Instant {
        self.expires_at.map_or(next_beat, |exp| exp.min(next_beat))
    }

    fn on_timer(&mut self, next_beat: &mut Instant, beat: Duration) {
        let now = Instant::now();
        if self.expires_at.is_some_and(|exp| now >= exp) {
            debug!(session = self.id, "token expired");
            return self.end(close(CloseCode::Policy, "token expired"));
        }
        if now < *next_beat {
            return;
        }
        *next_beat = (*next_beat + beat).max(now + Duration::from_millis(1));
        let timeout = Duration::from_secs(self.sc.ws.client_timeout_secs.max(2));
        if self.last_heard.elapsed() > timeout {
            if !self.socket.has_room() {
                // Not heard because not read: its live queue is full, it does not read.
                debug!(session = self.id, "client not reading");
                return self.slow();
            }
            debug!(session = self.id, "client timed out");
            return self.end(close(CloseCode::Away, "timeout"));
        }
        let _ = self.socket.push(socket::ping_frame());
    }

    /// End the session with this close frame (the first reason stands).
    fn end(&mut self, reason: Option<CloseReason>) {
        if self.ending.is_none() {
            self.ending = Some(reason);
        }
    }

    fn going_away(&mut self, why: GoingAway) {
        match why {
            GoingAway::Restart => self.end(close(CloseCode::Restart, "server restarting")),
            GoingAway::Revoked => self.end(close(CloseCode::Policy, "access revoked")),
            GoingAway::Slow => self.slow(),
        }
    }

    /// The client does not read what it is sent: close it (it will `sync` when it returns).
    fn slow(&mut self) {
        if self.ending.is_none() {
            metrics().sessions_dropped_slow.inc();
        }
        self.end(close(CloseCode::Policy, "slow consumer"));
    }

    /// Queue a live frame; a full queue means the client is not reading: close it.
    fn send(&mut self, frame: &ServerFrame) {
        if let Some(frame) = socket::text_frame(frame) {
            self.send_bytes(frame.into_bytes());
        }
    }

    fn send_bytes(&mut self, frame: Bytes) {
        if self.socket.push(frame).is_err() {
            self.slow();
        }
    }

    fn error(&mut self, err: CommandError, client_msg_id: Option<String>) {
        self.send(&ServerFrame::Error {
            code: err.code,
            message: err.message,
            client_msg_id,
            room_id: None,
            call_id: None,
        });
    }

    /// Run `work` in the background; its answer comes back to `on_done`.
    /// It runs in the current span (the frame's, while tracing is on).
    fn spawn(&mut self, work: impl Future<Output = Done> + 'static) {
        let work: LocalBoxFuture<'static, Done> = match chat_telemetry::tracing_on() {
            true => Box::pin(work.instrument(Span::current())),
            false => Box::pin(work),
        };
        self.ops.get_or_insert_with(FuturesUnordered::new).push(work);
    }

    fn on_inbound(&mut self, next: Option<Result<Inbound, CloseReason>>) {
        match next {
            Some(Ok(Inbound::Text(text))) => {
                self.last_heard = Instant::now();
                self.on_text(&text);
            }
            Some(Ok(Inbound::Ping(payload))) => {
                let _ = self.socket.push(socket::pong_frame(&payload));
                self.last_heard = Instant::now();
            }
            Some(Ok(Inbound::Pong)) => self.last_heard = Instant::now(),
            Some(Ok(Inbound::Close)) | None => self.end(None),
            Some(Err(reason)) => self.end(Some(reason)),
        }
    }

    fn on_text(&mut self, text: &[u8]) {
        match client_frame(text) {
            Ok(frame) => {
                let span = frame_span(&frame);
                span.in_scope(|| self.on_frame(frame));
            }
            Err(err) => self.error(err, None),
        }
    }

    /// Take on one more frame, or refuse it (`too_many_in_flight`) when the session is full.
    fn admit(&mut self, client_msg_id: Option<String>) -> bool {
        let max = self.sc.ws.max_in_flight.max(1);
        if self.in_flight >= max {
            let message = format!("at most {max} frames in progress per session; wait for their answers");
            self.error(CommandError::new(Refusal::TooManyInFlight, message), client_msg_id);
            return false;
        }
        self.in_flight += 1;
        true
    }

    fn on_frame(&mut self, frame: ClientFrame) {
        match frame {
            ClientFrame::Ping {} => self.send(&ServerFrame::Pong),
            ClientFrame::Send { room_id, client_msg_id, body } => self.on_send(room_id, client_msg_id, body),
            ClientFrame::Sync { rooms } => {
                if self.admit(None) {
                    self.start_sync(rooms, SyncKind::Client);
                }
            }
            ClientFrame::Read { room_id, seq } => {
                if !self.admit(None) {
                    return;
                }
                let sc = self.sc.clone();
                let p = self.principal.clone();
                self.spawn(async move {
                    let failed = match sc.store.mark_read(&room_id, &p.user_id, &p.tenant, seq).await {
                        Ok(Some(_)) => None,
                        Ok(None) => Some(CommandError::room_not_found()),
                        Err(err) => {
                            tracing::error!(error = %err, "read marker not stored");
                            Some(CommandError::internal())
                        }
                    };
                    Done::Read(failed)
                });
            }
            call => match CallFrame::of(call, &self.device) {
                Ok(call) => self.on_call(call),
                Err(refused) => self.send(&refused),
            },
        }
    }

    /// Tell the client of the calls going on in its rooms (read once it is in the hub, so no
    /// change after the read is missed; one from before it may come after a newer push: the
    /// client keeps the highest `rev`).
    fn show_calls(&mut self) {
        let (sc, p) = (self.sc.clone(), self.principal.clone());
        self.spawn(async move { Done::CallsGoingOn(calls::going_on(&sc, &p).await) });
    }

    /// A call frame: to its room (in the background); `call_joined` or an error comes back.
    fn on_call(&mut self, call: CallFrame) {
        // A call written to the room's history draws on the user's budget of posts.
        if call.starts() {
            if let Err(wait) = self.sc.quotas.post(&self.principal.user_id) {
                let secs = wait.as_secs().max(1);
                let err = CommandError::new(Refusal::RateLimited, format!("too many calls; retry in {secs} s"));
                return self.send(&call.refused(err));
            }
        }
        if !self.admit(None) {
            return;
        }
        let (sc, p, device) = (self.sc.clone(), self.principal.clone(), self.device.clone());
        self.spawn(async move { Done::Call(calls::run(&sc, &p, device, call).await) });
    }

    /// What a call frame's answer changes: the calls this device is in; the client's answer.
    fn call_done(&mut self, done: CallDone) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match done.membership {
            Some((call_id, true)) => {
                self.calls.retain(|(room, _)| *room != done.room_id);
                if self.calls.len() < MAX_CALLS {
                    self.calls.push((done.room_id, call_id));
                }
            }
            Some((call_id, false)) => self.calls.retain(|(_, c)| *c != call_id),
            None => {}
        }
        if let Some(answer) = done.answer {
            self.send(&answer);
        }
    }

    fn on_send(&mut self, room_id: RoomId, client_msg_id: String, body: Body) {
        if let Err(err) = check_send(&self.sc.limits, &room_id, &client_msg_id, &body) {
            // An invalid client_msg_id is not echoed back.
            let echo = (err.code != Refusal::InvalidClientMsgId).then_some(client_msg_id);
            return self.error(err, echo);
        }
        if !self.admit(Some(client_msg_id.clone())) {
            return;
        }
        if let Err(wait) = self.sc.quotas.post(&self.principal.user_id) {
            self.in_flight = self.in_flight.saturating_sub(1);
            let secs = wait.as_secs().max(1);
            let err = CommandError::new(Refusal::RateLimited, format!("too many messages; retry in {secs} s"));
            return self.error(err, Some(client_msg_id));
        }
        let job = PendingSend { room_id, client_msg_id, body, span: Span::current() };
        match self.sends.get_mut(&job.room_id) {
            Some(waiting) => waiting.push_back(job),
            None => {
                self.sends.insert(job.room_id.clone(), VecDeque::new());
                self.run_send(job);
            }
        }
    }

    /// Check and publish one send; once it is published, start the next send of the same room
    /// (so a session's sends into a room are queued in the order they arrived, pipelined), and
    /// answer it when the room does.
    fn run_send(&mut self, job: PendingSend) {
        let PendingSend { room_id, client_msg_id, body, span } = job;
        let _in_frame = span.enter();
        let sc = self.sc.clone();
        let p = self.principal.clone();
        let command_id = post_command_id(&p.user_id, &client_msg_id);
        let command = RoomCommand::Post { client_msg_id: Some(client_msg_id.clone()), body };
        self.spawn(async move {
            let published = async {
                access::may_post(&p, &room_id, &sc.store, &sc.kinds, &sc.authz).await?;
                let submitted =
                    sc.dispatcher.submit(&room_id, &p.user_id, &p.tenant, Some(command_id), command).await?;
                Ok::<_, CommandError>(submitted)
            }
            .await;
            Done::Published { room_id, client_msg_id, published }
        });
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Published { room_id, client_msg_id, published } => {
                // This room's next send may go now: this one is in the room's queue (or refused).
                match self.sends.get_mut(&room_id).and_then(VecDeque::pop_front) {
                    Some(next) => self.run_send(next),
                    None => {
                        self.sends.remove(&room_id);
                        if self.sends.is_empty() {
                            self.sends = HashMap::new(); // no buffer kept
                        }
                    }
                }
                match published {
                    Ok(submitted) => self.spawn(async move {
                        let res = submitted.answer().await.map_err(CommandError::from);
                        Done::Answered(answer_frame(room_id, client_msg_id, res))
                    }),
                    Err(err) => {
                        self.in_flight = self.in_flight.saturating_sub(1);
                        self.send(&answer_frame(room_id, client_msg_id, Err(err)));
                    }
                }
            }
            Done::Answered(frame) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.send(&frame);
            }
            Done::Read(failed) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if let Some(err) = failed {
                    self.error(err, None);
                }
            }
            Done::Synced { kind, result } => self.synced(kind, result),
            Done::Call(done) => self.call_done(done),
            Done::CallsGoingOn(frames) => frames.iter().for_each(|frame| self.send(frame)),
        }
    }

    /// Run a sync now, or after the one running.
    fn start_sync(&mut self, rooms: BTreeMap<RoomId, i64>, kind: SyncKind) {
        match &mut self.syncs {
            Some(waiting) => waiting.push_back((rooms, kind)),
            None => self.run_sync(rooms, kind),
        }
    }

    /// Answer a `sync` (one at a time per session): hold the rooms' pushes, send each room's
    /// history, then `synced` (not for a gap fill, which the client did not ask for);
    /// afterwards start the next waiting sync.
    fn run_sync(&mut self, rooms: BTreeMap<RoomId, i64>, kind: SyncKind) {
        self.syncs.get_or_insert_with(VecDeque::new);
        {
            let mut holds = self.holds.borrow_mut();
            for room in rooms.keys() {
                holds.hold(room.clone());
            }
        }
        let sync = SyncAnswer {
            sc: self.sc.clone(),
            principal: self.principal.clone(),
            socket: self.socket.clone(),
            holds: self.holds.clone(),
        };
        self.spawn(async move {
            let result = sync.answer(rooms, kind).await;
            Done::Synced { kind, result }
        });
    }

    fn synced(&mut self, kind: SyncKind, result: Result<BTreeMap<RoomId, i64>, SyncFailed>) {
        if kind == SyncKind::Client {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        if let Ok(sent) = &result {
            for (room, seq) in sent {
                self.remember_seq(room, *seq);
            }
        }
        // Normally nothing is left; after a failure, what was held goes out live.
        let held = self.holds.borrow_mut().release_all();
        for frame in held {
            self.send_bytes(frame.into_bytes());
        }
        match (&result, kind) {
            (Err(SyncFailed::Store), SyncKind::Client) => {
                self.error(CommandError::new(Refusal::Internal, "sync failed; sync again"), None)
            }
            (Err(SyncFailed::Slow), _) => self.slow(),
            _ => {}
        }
        match self.syncs.as_mut().and_then(VecDeque::pop_front) {
            Some((next, kind)) => self.run_sync(next, kind),
            None => self.syncs = None,
        }
    }

    fn on_push(&mut self, push: &Push) {
        if let Some(room) = &push.room {
            if self.holds.borrow_mut().offer(room, push.seq, &push.frame) {
                return;
            }
            if let Some(seq) = push.seq {
                match self.last_seq.get(room).copied() {
                    // Sent already (a redelivered command's events come again).
                    Some(last) if seq <= last => return,
                    // Pushes were missed: read them from the store, this one held behind them.
                    Some(last) if seq > last + 1 => {
                        self.start_sync(BTreeMap::from([(room.clone(), last)]), SyncKind::GapFill);
                        let mut holds = self.holds.borrow_mut();
                        holds.hold(room.clone());
                        holds.offer(room, push.seq, &push.frame);
                        return;
                    }
                    _ => self.remember_seq(room, seq),
                }
            }
        }
        self.send_bytes(push.frame.bytes().clone());
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

/// What the client gets for a send: its ack, or the error naming it.
/// The span of one client frame (`ws <type>`), the root of what it causes; a disabled span
/// while tracing is off.
fn frame_span(frame: &ClientFrame) -> Span {
    if !chat_telemetry::tracing_on() {
        return Span::none();
    }
    let (kind, room) = match frame {
        ClientFrame::Ping {} => ("ping", None),
        ClientFrame::Send { room_id, .. } => ("send", Some(room_id)),
        ClientFrame::Sync { .. } => ("sync", None),
        ClientFrame::Read { room_id, .. } => ("read", Some(room_id)),
        ClientFrame::CallStart { room_id, .. } => ("call_start", Some(room_id)),
        ClientFrame::CallAccept { room_id, .. } => ("call_accept", Some(room_id)),
        ClientFrame::CallJoin { room_id, .. } => ("call_join", Some(room_id)),
        ClientFrame::CallDecline { room_id, .. } => ("call_decline", Some(room_id)),
        ClientFrame::CallCancel { room_id, .. } => ("call_cancel", Some(room_id)),
        ClientFrame::CallHangup { room_id, .. } => ("call_hangup", Some(room_id)),
        ClientFrame::CallSignal { room_id, .. } => ("call_signal", Some(room_id)),
    };
    tracing::info_span!(
        "ws frame",
        otel.name = format!("ws {kind}"),
        otel.kind = "server",
        ws.frame.type = kind,
        room.id = room.map(RoomId::as_str),
    )
}

fn answer_frame(room_id: RoomId, client_msg_id: String, res: Result<CommandResult, CommandError>) -> ServerFrame {
    let err = match res {
        Ok(CommandResult::Posted { message_id, seq }) => {
            return ServerFrame::Ack { client_msg_id, room_id, message_id, seq };
        }
        Ok(_) => CommandError::internal(),
        Err(err) if err.code == Refusal::CommandTimeout => {
            CommandError::new(Refusal::CommandTimeout, "no answer in time; send again with the same client_msg_id")
        }
        Err(err) => err,
    };
    ServerFrame::Error {
        code: err.code,
        message: err.message,
        client_msg_id: Some(client_msg_id),
        room_id: None,
        call_id: None,
    }
}

/// However the session ends (its loop done, a panic, the runtime stopping): out of the hub and
/// the gauge, and its close frame queued.
impl Drop for Session {
    fn drop(&mut self) {
        metrics().sessions.dec();
        self.sc.hub.unregister(&self.principal.user_id, self.id);
        self.socket.close(self.ending.take().flatten());
    }
}
