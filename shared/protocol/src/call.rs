//! Voice and video calls: what the room keeps of its one call, the signaling a participant
//! relays to another, and the history a call leaves in the room.
//!
//! The engine does the signaling; media flows between the clients (peer to peer, or through a
//! TURN server whose time-limited credentials each participant is handed when it joins). A
//! call is a mesh: whoever joins sends an offer to each participant already in the call.

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::refusal::Refusal;

crate::text_enum! {
    /// What a call carries.
    pub enum CallMedia {
        Audio,
        Video,
    }
}

crate::text_enum! {
    /// Where a call is.
    pub enum CallStatus {
        /// Started, nobody has answered yet: the invited members' devices ring.
        Ringing,
        /// Two participants or more.
        Active,
        Ended,
    }
}

crate::text_enum! {
    /// Why a call ended.
    pub enum CallEndReason {
        /// It was answered; then fewer than two participants were left.
        Completed,
        /// Nobody answered before the ringing timed out.
        Missed,
        /// Every invited member declined.
        Declined,
        /// The caller hung up before anyone answered.
        Cancelled,
        /// A participant lost the right to be in the room (a withdrawn trust or permission),
        /// leaving fewer than two.
        Revoked,
    }
}

pub use crate::ids::{CallId, DeviceId};

impl DeviceId {
    /// The device of session `session` on node `node`.
    pub fn of(node: &str, session: u64) -> Self {
        Self::new(format!("{node}/{session}"))
    }

    /// The node and the session of this device; `None` for a malformed id.
    pub fn parts(&self) -> Option<(&str, u64)> {
        let (node, session) = self.as_str().rsplit_once('/')?;
        Some((node, session.parse().ok()?))
    }
}

/// The most participants a call holds at once (a mesh: each sends its media to every other).
pub const MAX_CALL_PARTICIPANTS: usize = 8;
/// The most bytes of a session description (offer or answer).
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// The most bytes of an ICE candidate line, and of its media id.
pub const MAX_CANDIDATE_BYTES: usize = 1024;

/// WebRTC signaling, relayed as it is from one participant's device to another's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallSignal {
    Offer {
        /// At most 32 KiB.
        sdp: String,
    },
    Answer {
        /// At most 32 KiB.
        sdp: String,
    },
    /// A trickled ICE candidate (`RTCIceCandidateInit`).
    Ice {
        /// At most 1 KiB; empty for the end of candidates.
        candidate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_m_line_index: Option<u16>,
    },
}

impl CallSignal {
    /// The size bounds, with the refusal a frame over them gets.
    pub fn check(&self) -> Result<(), (Refusal, String)> {
        let too_long = |what: &str, max: usize| (Refusal::PayloadTooLarge, format!("{what} is over {max} bytes"));
        match self {
            CallSignal::Offer { sdp } | CallSignal::Answer { sdp } => {
                if sdp.len() > MAX_SDP_BYTES {
                    return Err(too_long("sdp", MAX_SDP_BYTES));
                }
                if sdp.trim().is_empty() {
                    return Err((Refusal::InvalidField, "sdp is empty".into()));
                }
            }
            CallSignal::Ice { candidate, sdp_mid, .. } => {
                if candidate.len() > MAX_CANDIDATE_BYTES {
                    return Err(too_long("candidate", MAX_CANDIDATE_BYTES));
                }
                if sdp_mid.as_ref().is_some_and(|m| m.len() > MAX_CANDIDATE_BYTES) {
                    return Err(too_long("sdp_mid", MAX_CANDIDATE_BYTES));
                }
            }
        }
        Ok(())
    }
}

/// One participant's device in a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallParticipant {
    pub user: UserId,
    pub device: DeviceId,
    pub joined_at_ms: i64,
}

/// A room's call as the room keeps it (in memory, and in the store with every change, so a
/// room's next actor, on this replica or another, takes it over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub media: CallMedia,
    pub started_by: UserId,
    pub started_at_ms: i64,
    /// The invited members who have neither answered nor declined: their devices ring.
    pub ringing: Vec<UserId>,
    /// Who is in the call, one device each.
    pub participants: Vec<CallParticipant>,
    /// Invited members who declined.
    #[serde(default)]
    pub declined: Vec<UserId>,
    /// When the ringing stops unanswered.
    pub ring_deadline_ms: i64,
    /// When a second participant came (the call's duration counts from here).
    #[serde(default)]
    pub answered_at_ms: Option<i64>,
    /// Invited members it stopped ringing for unanswered while it went on (a group call).
    #[serde(default)]
    pub missed: Vec<UserId>,
    /// Raised by every change: of two views of one call, the higher `rev` is the newer.
    #[serde(default)]
    pub rev: u64,
}

impl Call {
    pub fn status(&self) -> CallStatus {
        match self.answered_at_ms {
            Some(_) => CallStatus::Active,
            None => CallStatus::Ringing,
        }
    }

    pub fn participant(&self, user: &UserId) -> Option<&CallParticipant> {
        self.participants.iter().find(|p| p.user == *user)
    }

    /// How the call looks to clients now.
    pub fn view(&self) -> CallView {
        CallView {
            call_id: self.id.clone(),
            media: self.media,
            status: self.status(),
            started_by: self.started_by.clone(),
            started_at: crate::time::format_time_ms(self.started_at_ms),
            ringing: self.ringing.clone(),
            participants: self.participants.clone(),
            end: None,
            rev: self.rev,
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallEnd {
    pub reason: CallEndReason,
    /// From the answer to the end; `None` for a call nobody answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// A room's call as its members' clients see it (the `call` frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallView {
    pub call_id: CallId,
    pub media: CallMedia,
    pub status: CallStatus,
    pub started_by: UserId,
    pub started_at: String,
    /// Members whose devices ring (a device of theirs that answered stops the others).
    pub ringing: Vec<UserId>,
    pub participants: Vec<CallParticipant>,
    /// Set when `status` is `ended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<CallEnd>,
    /// Raised by every change of the call: a client keeps the view of the highest `rev` (a
    /// view read at connect may arrive after a newer one pushed).
    pub rev: u64,
}

/// A STUN or TURN server for `RTCPeerConnection`'s `iceServers`. TURN credentials follow the
/// TURN REST API scheme coturn implements (`use-auth-secret`): the username is
/// `<expiry unix time>:<user id>`, the credential base64(HMAC-SHA1(secret, username)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_bounded_and_typed() {
        let offer: CallSignal = serde_json::from_str(r#"{"kind":"offer","sdp":"v=0"}"#).unwrap();
        assert!(offer.check().is_ok());
        let ice: CallSignal =
            serde_json::from_str(r#"{"kind":"ice","candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host","sdp_mid":"0","sdp_m_line_index":0}"#)
                .unwrap();
        assert!(ice.check().is_ok());
        let big = CallSignal::Offer { sdp: "a".repeat(MAX_SDP_BYTES + 1) };
        assert_eq!(big.check().unwrap_err().0, Refusal::PayloadTooLarge);
        let long =
            CallSignal::Ice { candidate: "c".repeat(MAX_CANDIDATE_BYTES + 1), sdp_mid: None, sdp_m_line_index: None };
        assert_eq!(long.check().unwrap_err().0, Refusal::PayloadTooLarge);
        assert_eq!(CallSignal::Answer { sdp: " ".into() }.check().unwrap_err().0, Refusal::InvalidField);
        assert!(serde_json::from_str::<CallSignal>(r#"{"kind":"offer","sdp":"v=0","x":1}"#).is_err());
        assert!(serde_json::from_str::<CallSignal>(r#"{"kind":"bye"}"#).is_err());
    }

    #[test]
    fn a_device_names_its_node_and_session() {
        let device = DeviceId::of("rooms-7f/x", 42);
        assert_eq!(device.as_str(), "rooms-7f/x/42");
        assert_eq!(device.parts(), Some(("rooms-7f/x", 42)));
        assert_eq!(DeviceId::new("nonsense").parts(), None);
    }

    #[test]
    fn a_call_is_ringing_until_answered() {
        let mut call = Call {
            id: CallId::new("c"),
            media: CallMedia::Video,
            started_by: UserId::new("a"),
            started_at_ms: 0,
            ringing: vec![UserId::new("b")],
            participants: vec![],
            declined: vec![],
            ring_deadline_ms: 30_000,
            answered_at_ms: None,
            missed: vec![],
            rev: 0,
        };
        assert_eq!(call.view().status, CallStatus::Ringing);
        call.answered_at_ms = Some(5);
        assert_eq!(call.view().status, CallStatus::Active);
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), call);
    }
}
