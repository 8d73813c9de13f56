//! The writers against `core::fmt` (what the device's text must equal, digit for digit), and
//! the fixed buffer's overflow.

use castellan_text::{Describe, Piece, Sink, TextBuf, TextError};
use proptest::prelude::*;

fn write(f: impl FnOnce(&mut dyn Sink) -> Result<(), TextError>) -> String {
    let mut buf = [0u8; 256];
    let mut t = TextBuf::new(&mut buf);
    f(t.sink()).expect("fits");
    t.as_str().to_owned()
}

proptest! {
    #[test]
    fn decimal_is_core_fmt_decimal(n in any::<u64>()) {
        prop_assert_eq!(write(|s| s.dec(n)), n.to_string());
    }

    #[test]
    fn signed_is_core_fmt_signed(n in any::<i64>()) {
        prop_assert_eq!(write(|s| s.int(n)), n.to_string());
    }

    #[test]
    fn hex_is_core_fmt_alternate_hex(n in any::<u64>(), w in 0usize..=16) {
        // `{n:#0W$x}` counts the `0x` in its width.
        prop_assert_eq!(write(|s| s.hex(n, w)), format!("{n:#0width$x}", width = w + 2));
    }

    #[test]
    fn a_full_buffer_keeps_whole_pieces(pieces in proptest::collection::vec("[a-zé]{0,9}", 0..12), cap in 0usize..40) {
        let mut buf = vec![0u8; cap];
        let mut t = TextBuf::new(&mut buf);
        let mut expected = String::new();
        for p in &pieces {
            match t.put(p) {
                Ok(()) => expected.push_str(p),
                Err(e) => { prop_assert_eq!(e, TextError::Overflow); prop_assert!(expected.len() + p.len() > cap) }
            }
        }
        prop_assert_eq!(t.as_str(), expected.as_str());
        prop_assert!(t.len() <= cap);
    }
}

#[test]
fn edges_match_core_fmt() {
    assert_eq!(write(|s| s.dec(0)), "0");
    assert_eq!(write(|s| s.dec(u64::MAX)), "18446744073709551615");
    assert_eq!(write(|s| s.int(i64::MIN)), "-9223372036854775808");
    assert_eq!(write(|s| s.hex(0x1f, 8)), "0x0000001f");
    assert_eq!(write(|s| s.hex(0, 1)), "0x0");
}

#[test]
fn overflow_is_a_typed_error_and_writes_nothing_of_the_piece() {
    let mut buf = [0u8; 5];
    let mut t = TextBuf::new(&mut buf);
    assert_eq!(t.put("abc"), Ok(()));
    assert_eq!(t.sink().dec(12_345), Err(TextError::Overflow));
    assert_eq!(t.as_str(), "abc");
    assert_eq!(t.sink().dec(12), Ok(()));
    assert_eq!(t.as_str(), "abc12");
    assert_eq!(t.put(""), Ok(()));
    assert_eq!(t.put("x"), Err(TextError::Overflow));
}

struct Pair(u32, &'static str);

impl Describe for Pair {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        out.pieces(&[
            Piece::Str(self.1),
            Piece::Str(" "),
            Piece::Dec(self.0.into()),
        ])
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        castellan_text::display(self, f)
    }
}

#[test]
fn pieces_and_descriptions_reach_display() {
    let p = Pair(42, "answer");
    assert_eq!(p.to_string(), "answer 42");
    assert_eq!(format!("[{p}]"), "[answer 42]");
    let line = write(|s| {
        s.pieces(&[
            Piece::Str("a "),
            Piece::Text(&p),
            Piece::Int(-3),
            Piece::Hex(255, 4),
        ])
    });
    assert_eq!(line, "a answer 42-3Hex".replace("Hex", "0x00ff"));
}

#[test]
fn templates_take_their_arguments_in_order() {
    let p = Pair(7, "seven");
    let t = write(|s| {
        s.fill(
            "a {} b {}{} c",
            &[Piece::Dec(1), Piece::Text(&p), Piece::Hex(16, 2)],
        )
    });
    assert_eq!(t, "a 1 b seven 70x10 c");
    assert_eq!(
        write(|s| s.fill("no placeholder", &[Piece::Dec(1)])),
        "no placeholder"
    );
    assert_eq!(write(|s| s.fill("{}", &[Piece::Str("{}")])), "{}");
    assert_eq!(write(|s| s.fill("{", &[])), "{");
    assert_eq!(write(|s| s.fill("é{}é", &[Piece::Int(-1)])), "é-1é");
    let mut buf = [0u8; 32];
    let mut t = TextBuf::new(&mut buf);
    assert_eq!(
        t.sink().fill("x {} y {}", &[Piece::Dec(1)]),
        Err(TextError::MissingArgument)
    );
    assert_eq!(t.as_str(), "x 1 y ");
}

proptest! {
    #[test]
    fn a_template_is_its_pieces(parts in proptest::collection::vec(("[a-z :é]{0,8}", any::<u32>()), 0..6)) {
        let template: String = parts.iter().map(|(s, _)| format!("{s}{{}}")).collect();
        let args: Vec<Piece<'_>> = parts.iter().map(|(_, n)| Piece::Dec((*n).into())).collect();
        let expected: String = parts.iter().map(|(s, n)| format!("{s}{n}")).collect();
        prop_assert_eq!(write(|s| s.fill(&template, &args)), expected);
    }
}
