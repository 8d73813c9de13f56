//! The trace format as a property: any ids written with any whitespace read back the same, and
//! no text makes the parser panic.

use castellan_detect_train::trace::{SyntaxError, parse};
use proptest::prelude::*;

proptest! {
    #[test]
    fn ids_written_with_any_whitespace_read_back(
        ids in proptest::collection::vec(any::<u16>(), 0..200),
        separators in proptest::collection::vec(prop_oneof![Just(" "), Just("\t"), Just("\n"), Just("\r\n"), Just("  \n ")], 200),
    ) {
        let mut text = String::new();
        for (id, sep) in ids.iter().zip(&separators) {
            text.push_str(&id.to_string());
            text.push_str(sep);
        }
        prop_assert_eq!(parse(&text).unwrap(), ids);
    }

    #[test]
    fn any_text_parses_or_names_a_line_of_it(text in "\\PC{0,300}") {
        match parse(&text) {
            Ok(events) => prop_assert!(events.len() <= text.len()),
            Err(SyntaxError::NotANumber { line, .. } | SyntaxError::OutOfRange { line, .. }) => {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1));
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}
