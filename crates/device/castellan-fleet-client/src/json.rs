//! The few JSON reads the client needs, without a JSON library or an allocator: the string or
//! boolean value of a top-level key of an object (`docs/fleet-protocol.md` messages are flat
//! objects with string and boolean fields, plus a `policy` object this reader skips).
//!
//! Strings are unescaped into a caller's buffer (`\"`, `\\`, `\/`, `\n`, `\r`, `\t`, `\b`,
//! `\f`, and `\uXXXX` below U+0080; anything else is refused). Hostile input gives `None`,
//! never a panic.

/// Skips spaces.
fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The end of the string starting at `b[i] == '"'` (the index after its closing quote).
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end of any value starting at `i` (strings, numbers, literals, nested objects/arrays).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The raw value of top-level `key` (its first byte's index and end).
fn find(b: &[u8], key: &str) -> Option<(usize, usize)> {
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    loop {
        let k_end = skip_string(b, i)?;
        let k = b.get(i + 1..k_end - 1)?;
        i = ws(b, k_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        let v_end = skip_value(b, i)?;
        if k == key.as_bytes() {
            return Some((i, v_end));
        }
        i = ws(b, v_end);
        match b.get(i)? {
            b',' => i = ws(b, i + 1),
            _ => return None,
        }
    }
}

/// The boolean value of top-level `key`.
pub fn bool_field(json: &[u8], key: &str) -> Option<bool> {
    let (s, e) = find(json, key)?;
    match json.get(s..e)? {
        b"true" => Some(true),
        b"false" => Some(false),
        _ => None,
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The string value of top-level `key`, unescaped into `out`; its length.
pub fn str_field(json: &[u8], key: &str, out: &mut [u8]) -> Option<usize> {
    let (s, e) = find(json, key)?;
    let raw = json.get(s + 1..e.checked_sub(1)?)?;
    if json.get(s) != Some(&b'"') {
        return None;
    }
    let mut n = 0;
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let (byte, used) = if c == b'\\' {
            match raw.get(i + 1)? {
                b'"' => (b'"', 2),
                b'\\' => (b'\\', 2),
                b'/' => (b'/', 2),
                b'n' => (b'\n', 2),
                b'r' => (b'\r', 2),
                b't' => (b'\t', 2),
                b'b' => (0x08, 2),
                b'f' => (0x0c, 2),
                b'u' => {
                    let h = raw.get(i + 2..i + 6)?;
                    let mut v = 0u32;
                    for &d in h {
                        v = v * 16 + u32::from(hex_digit(d)?);
                    }
                    (u8::try_from(v).ok().filter(|v| *v < 0x80)?, 6)
                }
                _ => return None,
            }
        } else {
            (c, 1)
        };
        *out.get_mut(n)? = byte;
        n += 1;
        i += used;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_at_the_top_level_only() {
        let j = br#"{"policy": {"accepted": false, "x": ["a\"}"]}, "accepted" : true, "reason":"a\nb\u0041\/"}"#;
        assert_eq!(bool_field(j, "accepted"), Some(true));
        let mut out = [0u8; 16];
        let n = str_field(j, "reason", &mut out).unwrap();
        assert_eq!(&out[..n], b"a\nbA/");
        assert_eq!(str_field(j, "missing", &mut out), None);
    }

    #[test]
    fn hostile_input_is_refused_without_panic() {
        let mut out = [0u8; 4];
        for j in [
            &b""[..],
            b"{",
            b"{\"a\"",
            b"{\"a\":",
            b"{\"a\":\"\\",
            b"{\"a\":\"\\u12\"}",
            b"{\"a\":\"12345\"}",
            b"{\"a\":\"\\u00e9\"}",
            b"}}}}",
            b"{\"a\":[[[[}",
        ] {
            assert_eq!(str_field(j, "a", &mut out), None, "{j:?}");
            assert_eq!(bool_field(j, "a"), None);
        }
    }
}
