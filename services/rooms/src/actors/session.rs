//! `SessionActor`: one per WebSocket. It reads client frames (through a reader task), sends
//! through a bounded outbound queue drained by a writer task, heartbeats, and registers with
//! the hub and presence while it lives. A client that cannot keep up is closed (1008) rather
//! than allowed to grow memory; it `sync`s when it comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use chat_auth::Principal;
use chat_protocol::bus::{CommandError, CommandResult, RoomCommand};
use chat_protocol::frames::{ClientFrame, ServerFrame};
use chat_protocol::{is_valid_client_id, post_command_id, Body, Limits, Refusal, RoomId};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::access::{self, RoomKinds};
use crate::authz::AuthzClient;
use crate::dispatch::Dispatcher;
use crate::hub::{GoingAway, Hub, Push, SessionHandle, SlowConsumer};
use crate::metrics::metrics;
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
}

/// Frames to the client, in order.
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

pub struct SessionActor {
    /// This session's id in the node's hub.
    id: u64,
    /// The verified caller; every command and read is made on their behalf.
    principal: Principal,
    sc: Arc<SessionContext>,
    /// The bounded queue the writer task drains into the socket.
    out: mpsc::Sender<Outbound>,
    /// Tells the writer task to send a close frame and end; taken once.
    close: Option<oneshot::Sender<Option<CloseReason>>>,
    /// When the client last showed it is alive (a frame, a ping or a pong).
    last_heard: Instant,
}

/// Start a session over an upgraded connection.
pub fn start(
    principal: Principal,
    sc: Arc<SessionContext>,
    session: actix_ws::Session,
    stream: AggregatedMessageStream,
) {
    let (out, out_rx) = mpsc::channel(sc.ws.outbound_queue.max(1));
    let (close_tx, close_rx) = oneshot::channel();
    let id = sc.hub.next_session_id();
    let actor = SessionActor { id, principal, sc, out: out.clone(), close: Some(close_tx), last_heard: Instant::now() };
    let addr = actor.start();
    actix_web::rt::spawn(write_loop(session, out_rx, close_rx));
    actix_web::rt::spawn(read_loop(stream, addr, out));
}

/// Drain the outbound queue into the socket; a close request goes first.
async fn write_loop(
    mut session: actix_ws::Session,
    mut frames: mpsc::Receiver<Outbound>,
    mut close: oneshot::Receiver<Option<CloseReason>>,
) {
    loop {
        tokio::select! {
            biased;
            reason = &mut close => {
                let _ = session.close(reason.unwrap_or(None)).await;
                return;
            }
            next = frames.recv() => {
                let sent = match next {
                    Some(Outbound::Text(text)) => session.text(text.to_string()).await,
                    Some(Outbound::Ping) => session.ping(b"").await,
                    Some(Outbound::Pong(bytes)) => session.pong(&bytes).await,
                    None => return,
                };
                if sent.is_err() {
                    return;
                }
            }
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

async fn read_loop(mut stream: AggregatedMessageStream, addr: Addr<SessionActor>, out: mpsc::Sender<Outbound>) {
    let end = loop {
        let Some(next) = stream.recv().await else {
            break None;
        };
        match next {
            Ok(AggregatedMessage::Text(text)) => addr.do_send(Inbound(text.to_string())),
            Ok(AggregatedMessage::Binary(_)) => {
                break Some(CloseReason { code: CloseCode::Unsupported, description: Some("text frames only".into()) });
            }
            Ok(AggregatedMessage::Ping(bytes)) => {
                let _ = out.try_send(Outbound::Pong(bytes));
                addr.do_send(Heard);
            }
            Ok(AggregatedMessage::Pong(_)) => addr.do_send(Heard),
            Ok(AggregatedMessage::Close(_)) => break None,
            Err(err) => break Some(close_for(&err)),
        }
    };
    addr.do_send(End(end));
}

impl SessionActor {
    /// Queue a frame; a full queue means the client is not reading: close it.
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

    fn on_frame(&mut self, frame: ClientFrame, ctx: &mut Context<Self>) {
        match frame {
            ClientFrame::Ping {} => self.send(&ServerFrame::Pong, ctx),
            ClientFrame::Send { room_id, client_msg_id, body } => self.on_send(room_id, client_msg_id, body, ctx),
            ClientFrame::Sync { rooms } => self.on_sync(rooms, ctx),
            ClientFrame::Read { room_id, seq } => {
                let sc = self.sc.clone();
                let p = self.principal.clone();
                let fut = async move { sc.store.mark_read(&room_id, &p.user_id, &p.tenant, seq).await };
                ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
                    Ok(Some(_)) => {}
                    Ok(None) => act.error(CommandError::room_not_found(), None, ctx),
                    Err(err) => {
                        tracing::error!(error = %err, "read marker not stored");
                        act.error(CommandError::internal(), None, ctx)
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
        let sc = self.sc.clone();
        let p = self.principal.clone();
        let command_id = post_command_id(&p.user_id, &client_msg_id);
        let command = RoomCommand::Post { client_msg_id: Some(client_msg_id.clone()), body };
        let rid = room_id.clone();
        let fut = async move {
            access::may_post(&p, &rid, &sc.store, &sc.kinds, &sc.authz).await?;
            let result = sc.dispatcher.execute(&rid, &p.user_id, &p.tenant, Some(command_id), command).await?;
            Ok::<_, CommandError>(result)
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(CommandResult::Posted { message_id, seq }) => {
                act.send(&ServerFrame::Ack { client_msg_id, room_id, message_id, seq }, ctx)
            }
            Ok(_) => act.error(CommandError::internal(), Some(client_msg_id), ctx),
            Err(err) if err.code == Refusal::CommandTimeout => act.error(
                CommandError::new(Refusal::CommandTimeout, "no answer in time; send again with the same client_msg_id"),
                Some(client_msg_id),
                ctx,
            ),
            Err(err) => act.error(err, Some(client_msg_id), ctx),
        }));
    }

    /// Answer `sync`: everything after each given seq, in order per room, then `synced`. The
    /// pages wait for room in the outbound queue instead of dropping the session.
    fn on_sync(&mut self, rooms: std::collections::BTreeMap<RoomId, i64>, ctx: &mut Context<Self>) {
        let sc = self.sc.clone();
        let p = self.principal.clone();
        let out = self.out.clone();
        let fut = async move {
            let mut last = std::collections::BTreeMap::new();
            for (room_id, mut after) in rooms {
                match sc.store.is_member(&room_id, &p.user_id, &p.tenant).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let refusal = CommandError::room_not_found();
                        let e =
                            ServerFrame::Error { code: refusal.code, message: refusal.message, client_msg_id: None };
                        if send_waiting(&out, &e).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                }
                loop {
                    let Ok(page) = sc.store.history(&room_id, Some(after), None, sc.ws.sync_page).await else {
                        return;
                    };
                    for row in &page {
                        if send_waiting(&out, &views::event_frame(&room_id, row)).await.is_err() {
                            return;
                        }
                        after = row.seq;
                    }
                    if (page.len() as i64) < sc.ws.sync_page {
                        break;
                    }
                }
                last.insert(room_id, after);
            }
            let _ = send_waiting(&out, &ServerFrame::Synced { rooms: last }).await;
        };
        ctx.spawn(fut.into_actor(self));
    }
}

async fn send_waiting(out: &mpsc::Sender<Outbound>, frame: &ServerFrame) -> Result<(), ()> {
    let text = serde_json::to_string(frame).map_err(|_| ())?;
    out.send(Outbound::Text(Arc::from(text))).await.map_err(|_| ())
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
        self.sc.hub.register(&self.principal.user_id, self.id, handle);
        let presence = self.sc.presence.clone();
        let user = self.principal.user_id.clone();
        actix::spawn(async move {
            if let Err(err) = presence.session_opened(&user).await {
                tracing::warn!(error = %err, "presence not recorded");
            }
        });
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
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics().sessions.dec();
        self.sc.hub.unregister(&self.principal.user_id, self.id);
        if let Some(close) = self.close.take() {
            let _ = close.send(None);
        }
        let presence = self.sc.presence.clone();
        let user = self.principal.user_id.clone();
        actix::spawn(async move {
            let _ = presence.session_closed(&user).await;
        });
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
        self.send_text(msg.0, ctx);
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
