//! The rules of the LINE gateway, as methods on `LineCore`: members' channel bindings
//! (`channels`, admins only) and the webhook's intake (`intake`: verify, dedup, store), with the
//! checks of what admins type (`validation`), the members' reading of LINE users' media
//! (`media`) and profiles (`profiles`), and the admins' list and resending of undelivered
//! messages (`dead_letters`).
//! They take the caller (`Principal`) or LINE's raw request and return typed results or a
//! `LineError`, and know nothing of HTTP: the API maps the error to its codes. The stored events are applied by the inbox workers (`inbox`).

mod channels;
mod dead_letters;
mod error;
mod intake;
mod media;
mod profiles;
mod state;
pub mod validation;

pub use channels::NewChannel;
pub use dead_letters::DeadLetterCursor;
pub use error::LineError;
pub use intake::Receipt;
pub use media::{MediaContent, Shared, Upload};
pub use profiles::LineProfile;
pub use state::{push_limiter, LineCore, PushLimiter};
