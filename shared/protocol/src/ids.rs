//! Identifiers and the room -> shard mapping every publisher shares.
//!
//! Ids are newtypes over `String` (serde transparent, so the wire form is a plain string): a
//! room id cannot be passed where a user id is expected. They do not validate on decode; the
//! edges check what a client may send (`is_valid_client_id`, room ids are UUIDs).

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        /// A string (no store keeps U+0000, so no id holds it).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::id_string(stringify!($name))
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Maps and sets keyed by the id can be looked up with a `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A room: a UUIDv7 made by the node that creates it.
    RoomId
);
id_type!(
    /// A user: `<username>@<tenant>` for members, `line:<LINE user id>` for LINE users, or
    /// `system` for the engine itself.
    UserId
);
id_type!(
    /// A tenant (company).
    TenantId
);
id_type!(
    /// A message: a UUIDv7 made by the room that stores it.
    MessageId
);
id_type!(
    /// A call (a UUID, made by the room when the call starts).
    CallId
);
id_type!(
    /// One WebSocket connection, as calls know it: `<node>/<session>`. The server stamps it on
    /// the call commands a session sends (a client cannot name another device), and a relayed
    /// signal goes to that one connection (`chat_protocol::call`).
    DeviceId
);

/// The prefix of LINE users' ids.
pub const LINE_USER_PREFIX: &str = "line:";

impl UserId {
    /// The engine itself, as the actor of commands issued by rule (exclusions).
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    pub fn is_system(&self) -> bool {
        self.0 == "system"
    }

    /// A LINE user (`line:<id>`), reached through the LINE gateway rather than sessions.
    pub fn is_line_user(&self) -> bool {
        self.0.starts_with(LINE_USER_PREFIX)
    }

    /// The tenant named by a member id `<username>@<tenant>`, if it has one.
    pub fn tenant_part(&self) -> Option<&str> {
        self.0.rsplit_once('@').map(|(_, tenant)| tenant)
    }
}

impl TenantId {
    /// The pseudo-tenant of LINE users.
    pub fn line() -> Self {
        Self("line".to_owned())
    }
}

impl RoomId {
    /// A new time-ordered room id.
    pub fn generate() -> Self {
        Self(new_id())
    }
}

impl MessageId {
    /// A new time-ordered message id.
    pub fn generate() -> Self {
        Self(new_id())
    }
}

/// A new time-ordered id (UUIDv7), used for rooms, messages and commands.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The shard that owns `room_id`: `xxh3_64(room_id) % shards`.
///
/// Every publisher computes it itself, so routing never depends on who owns what. The shard
/// count is fixed for a deployment (256 in production); changing it is a migration.
pub fn shard_of(room_id: &RoomId, shards: u16) -> u16 {
    debug_assert!(shards > 0, "shard count must be positive");
    (xxh3_64(room_id.as_str().as_bytes()) % u64::from(shards.max(1))) as u16
}

/// True when `id` is acceptable as an opaque id from a client: 1..=64 printable ASCII
/// characters without spaces or separators that would be ambiguous in paths and keys.
pub fn is_valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_in_range() {
        // A fixed vector: if this changes, every deployed publisher disagrees with the consumers.
        assert_eq!(shard_of(&"room-1".into(), 256), shard_of(&"room-1".into(), 256));
        for i in 0..1000 {
            assert!(shard_of(&RoomId::new(format!("r{i}")), 256) < 256);
        }
        assert_eq!(shard_of(&"anything".into(), 1), 0);
    }

    #[test]
    fn shards_spread_rooms() {
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[shard_of(&RoomId::generate(), 8) as usize] += 1;
            let _ = i;
        }
        assert!(counts.iter().all(|&c| c > 700 && c < 1300), "{counts:?}");
    }

    #[test]
    fn client_ids_are_restricted() {
        assert!(is_valid_client_id("m-1.abc_D@x"));
        assert!(!is_valid_client_id(""));
        assert!(!is_valid_client_id("a b"));
        assert!(!is_valid_client_id(&"x".repeat(65)));
        assert!(!is_valid_client_id("a/b"));
    }
}

/// The command id of a post with a client idempotency key: the same (sender, key) gives the
/// same id, so a repeated send is recognised by the room however it arrives.
pub fn post_command_id(sender: &UserId, client_msg_id: &str) -> String {
    let sender = sender.as_str();
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_0d2e_8a57_4c1b_9e43_5b2a_7d10_c3f4);
    // Length-prefixed, so no (sender, key) pair can collide with another.
    uuid::Uuid::new_v5(&NAMESPACE, format!("{}:{sender}{client_msg_id}", sender.len()).as_bytes()).to_string()
}

/// The command id of any other command sent with a client idempotency key (HTTP
/// `Idempotency-Key`): the same (sender, kind of command, key) gives the same id, so a retried
/// request is recognised by the room; the kind keeps one key from meaning two different commands.
pub fn keyed_command_id(sender: &UserId, command: &str, key: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x2d9e_4b71_0c3a_4f86_b5d2_8e1f_6a09_c7e3);
    let sender = sender.as_str();
    let name = format!("{}:{sender}{}:{command}{key}", sender.len(), command.len());
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

#[cfg(test)]
mod command_id_tests {
    use super::*;

    #[test]
    fn post_ids_depend_on_sender_and_key() {
        let (a, b) = (UserId::new("a"), UserId::new("b"));
        assert_eq!(post_command_id(&a, "1"), post_command_id(&a, "1"));
        assert_ne!(post_command_id(&a, "1"), post_command_id(&b, "1"));
        assert_ne!(post_command_id(&UserId::new("a\u{0}1"), ""), post_command_id(&a, "1\u{0}"));
    }

    #[test]
    fn keyed_ids_depend_on_sender_command_and_key() {
        let (a, b) = (UserId::new("a"), UserId::new("b"));
        assert_eq!(keyed_command_id(&a, "leave", "k"), keyed_command_id(&a, "leave", "k"));
        assert_ne!(keyed_command_id(&a, "leave", "k"), keyed_command_id(&b, "leave", "k"));
        assert_ne!(keyed_command_id(&a, "leave", "k"), keyed_command_id(&a, "update_info", "k"));
        assert_ne!(keyed_command_id(&a, "leave", "k"), post_command_id(&a, "k"));
    }
}
