//! The rules of authz, as methods on `AuthzCore`: login, users and LINE permission, trust
//! between tenants, the audit trail and decisions at the point of use. They take the caller
//! (`Principal`) and typed input, return typed results or an `AuthzError`, and know nothing of
//! HTTP: the API maps the error to its codes.

mod audit;
mod decide;
mod error;
mod login;
mod state;
mod trust;
mod users;

pub use error::AuthzError;
pub use login::{Credentials, IssuedToken, Me};
pub use state::{hash_password, AuthzCore, Limiters};
pub use trust::{Trust, TrustStatus};
pub use users::{NewUser, UserChanges, UserSummary};
