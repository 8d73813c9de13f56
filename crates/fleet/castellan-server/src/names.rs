//! The one rule for the names operators give things (device classes, tags, operator names):
//! shared by the API's request checks and the campaign engine.

/// Whether `name` is 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
