//! Times as the wire shows them.

/// RFC 3339 with milliseconds, UTC, for `sent_at` and `created_at`.
pub fn format_time_ms(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}
