//! What every session of the node shares.

use std::sync::Arc;

use chat_protocol::Limits;

use crate::access::RoomKinds;
use crate::authz::AuthzClient;
use crate::dispatch::Dispatcher;
use crate::hub::Hub;
use crate::quota::Quotas;
use crate::settings::WsSettings;
use crate::store::Store;
use crate::turn::Turn;

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
    /// The ICE servers (STUN, TURN with time-limited credentials) a device that joins a call
    /// is handed.
    pub turn: Arc<Turn>,
}
