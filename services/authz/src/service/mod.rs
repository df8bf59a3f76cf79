//! The rules of authz, as methods on `AuthzCore`: login (with its rate limits), users and LINE
//! permission, who members may know by name, trust between tenants, the audit trail, decisions and revocations at the point
//! of use. A change writes its rows, audit entries and events in one transaction. They take the caller
//! (`Principal`) and typed input, return typed results or an `AuthzError`, and know nothing of
//! HTTP: the API maps the error to its codes.

mod audit;
mod decide;
mod directory;
mod error;
mod limits;
mod login;
mod state;
mod trust;
mod users;

pub use directory::{Person, MAX_LOOKUP};
pub use error::AuthzError;
pub use limits::{Cidr, InvalidProxy, Limiters, Origin};
pub use login::{Credentials, IssuedToken, Me};
pub use state::{hash_password, AuthzCore};
pub use trust::{Trust, TrustStatus};
pub use users::{NewUser, UserChanges, UserSummary};
