//! Why a rule refused, or failed. The HTTP mapping (code, status, message) is the API's.

use chat_protocol::UserId;

use crate::media::MediaError;
use crate::secrets::Undecryptable;
use crate::store::StoreError;

/// A refusal (the request was wrong or not allowed; nothing changed) or a failure.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: &'static str },
    /// The caller is not an admin of their tenant.
    #[error("only an admin of the member's company manages LINE channels")]
    NotAdmin,
    /// No such member in the caller's tenant (another tenant's member is absent too).
    #[error("user {0} not found")]
    UserNotFound(UserId),
    #[error("the member may not use LINE")]
    LineNotAuthorized,
    #[error("this LINE channel is bound to another member")]
    ChannelExists,
    #[error("no LINE channel here")]
    ChannelNotFound,
    #[error("missing or invalid x-line-signature")]
    InvalidSignature,
    #[error("malformed webhook body: {0}")]
    MalformedJson(String),
    #[error("event {0} of the webhook has no webhookEventId")]
    MissingEventId(usize),
    #[error("authz unavailable: {0}")]
    AuthzUnavailable(String),
    /// Rooms did not say whether the caller is in a room.
    #[error("rooms unavailable: {0}")]
    RoomsUnavailable(String),
    /// The bus could not take an event (the change is stored).
    #[error("bus unavailable: {0}")]
    BusUnavailable(String),
    #[error(transparent)]
    Credentials(#[from] Undecryptable),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No failed message to that LINE user here (absent, not failed, or another tenant's).
    #[error("no undelivered message here")]
    DeadLetterNotFound,
    /// A failed message that cannot go out again as it is.
    #[error("{0}")]
    NotResendable(&'static str),
    /// No such medium for the caller (absent, or another tenant's).
    #[error("media not found")]
    MediaNotFound,
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A signed media link past its expiry.
    #[error("this link has expired")]
    LinkExpired,
    /// The caller is not in the room (or it does not exist).
    #[error("room not found")]
    RoomNotFound,
    #[error("the content type is missing or not a valid media type")]
    UnsupportedMediaType,
    #[error("the content is larger than {0} bytes")]
    PayloadTooLarge(u64),
    /// A preview could not be made of the stored image.
    #[error("making a preview: {0}")]
    Preview(String),
}
