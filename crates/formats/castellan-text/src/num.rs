//! Integer digits with 32-bit arithmetic only.

/// Lower-case hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// `n / 10` and `n % 10` for a 64-bit `n`, in 16-bit steps of 32-bit divisions by a constant
/// (which the compiler turns into multiplications): no 64-bit division routine.
fn div10(n: u64) -> (u64, u32) {
    let hi = (n >> 32) as u32;
    let lo = n as u32;
    let (q_hi, r) = (hi / 10, hi % 10);
    // r < 10, so r << 16 | 16 bits < 655 360: fits, and the quotient fits 16 bits.
    let mid = (r << 16) | (lo >> 16);
    let (q_mid, r) = (mid / 10, mid % 10);
    let low = (r << 16) | (lo & 0xffff);
    let (q_low, r) = (low / 10, low % 10);
    (
        (u64::from(q_hi) << 32) | (u64::from(q_mid) << 16) | u64::from(q_low),
        r,
    )
}

/// The decimal digits of `n`, written at the end of `digits`.
pub fn decimal_u64(n: u64, digits: &mut [u8; 20]) -> &str {
    let mut start = digits.len();
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        let (q, r) = div10(rest);
        // r < 10: the cast cannot truncate.
        *slot = b'0' + r as u8;
        start -= 1;
        rest = q;
        if rest == 0 {
            break;
        }
    }
    ascii(digits.get(start..).unwrap_or(&[]))
}

/// The lower-case hex digits of `n` (at least `min_digits`, at most 16), at the end of
/// `digits`.
pub fn hex_u64(n: u64, min_digits: usize, digits: &mut [u8; 16]) -> &str {
    let mut start = digits.len();
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        // `rest & 0xf` is below 16.
        *slot = HEX.get((rest & 0xf) as usize).copied().unwrap_or(b'0');
        start -= 1;
        rest >>= 4;
        if rest == 0 && digits_len(start) >= min_digits {
            break;
        }
    }
    ascii(digits.get(start..).unwrap_or(&[]))
}

/// Digits written so far when the next is written at `start` of a 16-byte buffer.
fn digits_len(start: usize) -> usize {
    16 - start
}

/// ASCII digits as `&str` (they always are ASCII).
fn ascii(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div10_agrees_with_division_at_the_edges() {
        for n in [
            0,
            9,
            10,
            65_535,
            655_359,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX,
        ] {
            assert_eq!(div10(n), (n / 10, (n % 10) as u32), "{n}");
        }
    }

    #[test]
    fn hex_pads_to_the_minimum_and_never_past_sixteen() {
        let mut d = [0u8; 16];
        assert_eq!(hex_u64(0, 1, &mut d), "0");
        assert_eq!(hex_u64(0x12, 8, &mut d), "00000012");
        assert_eq!(hex_u64(u64::MAX, 40, &mut d), "ffffffffffffffff");
        assert_eq!(hex_u64(0xabc, 0, &mut d), "abc");
    }
}
