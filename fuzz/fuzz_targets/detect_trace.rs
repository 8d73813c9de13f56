//! Fuzz target for the trace format `castellan detect` reads (event ids separated by
//! whitespace): arbitrary text goes to `trace::parse`; an accepted trace must hold ids in range
//! and a refused one must name a line of the input. Any panic is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match castellan_detect_train::trace::parse(text) {
        Ok(events) => assert!(events.len() <= text.len()),
        Err(e) => {
            let line = match e {
                castellan_detect_train::trace::SyntaxError::NotANumber { line, .. }
                | castellan_detect_train::trace::SyntaxError::OutOfRange { line, .. } => line,
                _ => 1,
            };
            assert!(line >= 1 && line <= text.lines().count().max(1));
        }
    }
});
