//! Why a rule refused, or failed. The HTTP mapping (code, status, message) is the API's.

use std::time::Duration;

use chat_protocol::{TenantId, UnknownValue, UserId};

use crate::keys::KeyError;
use crate::store::StoreError;

/// A refusal (the request was wrong or not allowed; nothing changed) or a failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("tenant, username or password too long")]
    LoginFieldTooLong,
    #[error("too many login attempts; retry in {0:?}")]
    RateLimited(Duration),
    #[error("wrong tenant, username or password")]
    InvalidCredentials,
    /// The caller's token names a user that no longer exists, is disabled, or moved tenant.
    #[error("user {0} is unknown or disabled")]
    UnknownCaller(UserId),
    #[error("user {0} is not an admin of their tenant")]
    NotAdmin(UserId),
    /// No such user in the admin's tenant (users of other tenants are answered as absent).
    #[error("user {0} not found")]
    UserNotFound(UserId),
    #[error("user {0} exists")]
    UserExists(UserId),
    #[error("invalid username {0:?}")]
    InvalidUsername(String),
    #[error("passwords are 8 to 256 characters")]
    InvalidPassword,
    #[error("display names are 1 to 100 characters")]
    InvalidDisplayName,
    #[error("at most {0} ids at a time")]
    TooManyIds(usize),
    #[error("invalid LINE mode: {0}")]
    InvalidLineMode(UnknownValue),
    #[error("tenant {0} cannot trust itself")]
    SelfTrust(TenantId),
    #[error("tenant {0} not found")]
    TenantNotFound(TenantId),
    #[error("no trust granted to tenant {0}")]
    TrustNotFound(TenantId),
    /// An `/internal/` call without the service token.
    #[error("not an internal caller")]
    NotInternalCaller,
    #[error("password hashing: {0}")]
    Hashing(argon2::password_hash::Error),
    #[error("password hashing task: {0}")]
    HashingTask(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
