//! The engine's vocabulary: ids, the shard function, message bodies, WebSocket frames and the
//! commands and deliveries that travel on the bus. serde only, no I/O.

pub mod authz;
pub mod body;
pub mod bus;
pub mod call;
pub mod events;
pub mod frames;
pub mod ids;
pub mod json_int;
pub mod limits;
pub mod openapi;
pub mod refusal;
pub mod room;
pub mod time;

pub use body::{Body, RoomEvent};
pub use ids::{
    is_valid_client_id, keyed_command_id, new_id, post_command_id, shard_of, MessageId, RoomId, TenantId, UserId,
};
pub use limits::{LimitError, Limits};
pub use refusal::Refusal;

/// A value read from storage or the wire that names no variant of its enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// Declares an enum kept as text (in the store, on the wire): serde and strum derives with
/// snake_case names, `as_str`, `Display`, and `TryFrom<String>` that refuses an unknown name
/// rather than defaulting, and an OpenAPI schema (a string enum of the names). The calling crate
/// depends on `serde` and `strum`.
///
/// ```
/// chat_protocol::text_enum! {
///     /// What a thing is.
///     pub enum Kind { First, SecondOne }
/// }
/// assert_eq!(Kind::SecondOne.as_str(), "second_one");
/// assert_eq!(Kind::try_from("first".to_owned()), Ok(Kind::First));
/// assert!(Kind::try_from("third".to_owned()).is_err());
/// ```
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            serde::Serialize,
            serde::Deserialize,
            strum::EnumIter,
            strum::IntoStaticStr,
            strum::EnumString,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        $vis enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            /// The snake_case name, as stored and sent.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        /// A string enum of the snake_case names (the OpenAPI documents).
        impl $crate::openapi::utoipa::PartialSchema for $name {
            fn schema() -> $crate::openapi::utoipa::openapi::RefOr<$crate::openapi::utoipa::openapi::schema::Schema> {
                let names = <Self as strum::IntoEnumIterator>::iter().map(Self::as_str);
                $crate::openapi::string_enum(concat!(stringify!($name), " (snake_case)"), names)
            }
        }

        impl $crate::openapi::utoipa::ToSchema for $name {}

        impl TryFrom<String> for $name {
            type Error = $crate::UnknownValue;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse().map_err(|_| $crate::UnknownValue { kind: stringify!($name), value })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Current time in milliseconds since the Unix epoch (the unit of every `*_ms` field).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
