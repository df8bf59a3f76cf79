//! Why a rule refused, or failed. The HTTP mapping (code, status, message) is the API's.

use chat_protocol::bus::CommandError;
use chat_protocol::UserId;

use crate::invite::InviteImageError;
use crate::store::StoreError;

/// A refusal (the request was wrong or not allowed; nothing changed) or a failure.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid field: {0}")]
    InvalidField(String),
    #[error("{field} is longer than {max} characters")]
    FieldTooLong { field: &'static str, max: usize },
    #[error("invalid phone number")]
    InvalidPhone,
    #[error("invalid email address")]
    InvalidEmail,
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("invalid tenant: {0}")]
    InvalidTenant(String),
    /// A member of the caller's own tenant is not an external contact.
    #[error("a member of your own company is not an external contact")]
    OwnTenant,
    #[error("invalid username: {0}")]
    InvalidUsername(String),
    /// A field of the LINE profile that comes from the workspace profile.
    #[error("{0} comes from the workspace profile")]
    WorkspaceField(&'static str),
    #[error("the status message is the company name and cannot be edited")]
    StatusMessageNotEditable,
    /// No such contact of the caller (another member's or tenant's is absent too).
    #[error("contact not found")]
    ContactNotFound,
    #[error("user {0} not found")]
    UserNotFound(UserId),
    /// No active trust between the caller's tenant and the user's.
    #[error("user {0} is in a company yours has no active trust with")]
    ExternalNotAuthorized(UserId),
    #[error("the caller may not use LINE")]
    LineNotAuthorized,
    #[error("no LINE Official Account is set up for the caller")]
    LineAccountNotSetUp,
    #[error("authz unavailable: {0}")]
    AuthzUnavailable(String),
    /// Rooms refused to open the 1:1 room.
    #[error("rooms refused: {0}")]
    RoomRefused(CommandError),
    #[error("rooms did not answer in time")]
    RoomTimeout,
    /// The bus could not take a command or an event (the change, if any, is stored).
    #[error("bus unavailable: {0}")]
    BusUnavailable(String),
    #[error("invite image: {0}")]
    Image(#[from] InviteImageError),
    #[error("rendering task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}
