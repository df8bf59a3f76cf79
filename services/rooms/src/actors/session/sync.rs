//! One `sync` answer in progress: each room's history after the client's seq, then what was held
//! back meanwhile, in order, until the room's pushes flow live again (see the session's module
//! doc). It runs inside the session's task, beside the session's loop, and shares with it the
//! socket and the holds (one thread: no lock, no borrow across an await).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use chat_auth::Principal;
use chat_protocol::bus::CommandError;
use chat_protocol::frames::ServerFrame;
use chat_protocol::RoomId;
use tracing::warn;

use super::context::SessionContext;
use super::holds::{Holds, Step};
use super::socket::Socket;
use crate::hub::WireFrame;
use crate::views;

/// Who asked for a sync: the client (answered with `synced`, counted in flight), or the
/// session itself to fill a gap in a room's pushes (silent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Client,
    GapFill,
}

/// Why a sync ended without `synced`.
#[derive(Debug)]
pub enum SyncFailed {
    /// The store failed: the client is told to sync again.
    Store,
    /// The session is closing or its connection is gone.
    Gone,
    /// Frames it released went live into a full queue: the client is not reading.
    Slow,
}

/// One `sync` answer in progress.
pub struct SyncAnswer {
    pub sc: Arc<SessionContext>,
    pub principal: Rc<Principal>,
    pub socket: Socket,
    pub holds: Rc<RefCell<Holds>>,
}

impl SyncAnswer {
    async fn queue(&self, frame: &ServerFrame) -> Result<(), SyncFailed> {
        let frame = WireFrame::encode(frame).map_err(|_| SyncFailed::Gone)?;
        self.socket.push_sync(frame.into_bytes()).await.map_err(|_| SyncFailed::Gone)
    }

    /// Wait until the socket has taken every queued sync frame.
    async fn written(&self) -> Result<(), SyncFailed> {
        self.socket.sync_written().await.map_err(|_| SyncFailed::Gone)
    }

    /// Stop holding a room the sync does not answer: what was held goes out live.
    fn unhold(&self, room: &RoomId) -> Result<(), SyncFailed> {
        let frames = self.holds.borrow_mut().release(room);
        for frame in frames {
            self.socket.push(frame.into_bytes()).map_err(|_| SyncFailed::Slow)?;
        }
        Ok(())
    }

    /// Everything after each given seq, in order per room, then `synced` (for the client's
    /// syncs). The last seq sent per room.
    pub async fn answer(
        self,
        rooms: BTreeMap<RoomId, i64>,
        kind: SyncKind,
    ) -> Result<BTreeMap<RoomId, i64>, SyncFailed> {
        let p = &self.principal;
        let mut last = BTreeMap::new();
        for (room_id, after) in rooms {
            match self.sc.store.is_member(&room_id, &p.user_id, &p.tenant).await {
                Ok(true) => {}
                Ok(false) if kind == SyncKind::GapFill => {
                    // No longer a member (the push was its own removal): nothing to fill.
                    self.unhold(&room_id)?;
                    continue;
                }
                Ok(false) => {
                    let refusal = CommandError::room_not_found();
                    self.queue(&ServerFrame::Error {
                        code: refusal.code,
                        message: refusal.message,
                        client_msg_id: None,
                        room_id: None,
                        call_id: None,
                    })
                    .await?;
                    self.unhold(&room_id)?;
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
                let step = self.holds.borrow_mut().step(room_id);
                match step {
                    Step::Done => break false,
                    Step::Reread => break true,
                    Step::Flush(frames) => {
                        for (seq, frame) in frames {
                            if seq.is_some_and(|s| s <= after) {
                                continue; // already sent with the history
                            }
                            self.socket.push_sync(frame.into_bytes()).await.map_err(|_| SyncFailed::Gone)?;
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
