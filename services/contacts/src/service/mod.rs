//! The rules of contacts, as methods on `ContactsCore`: Clients/Partners and LINE friends
//! (`contacts`), blocks (`blocks`), the LINE profile (`profile`) and invite (`invite`), and
//! the checks of what members type (`validation`). They take the caller (`Principal`) and typed
//! input, return typed results or a `ContactsError`, and know nothing of HTTP: the API maps the
//! error to its codes.

mod blocks;
mod contacts;
mod error;
mod invite;
mod profile;
mod state;
pub mod validation;

pub use blocks::block_event;
pub use contacts::{ListRequest, NewContact, NotesPatch, Page};
pub use error::ContactsError;
pub use invite::Invite;
pub use profile::{ProfilePatch, ProfileView};
pub use state::ContactsCore;
