//! Fuzz target for `castellan-detect`, the device's parser of anomaly models: arbitrary bytes go
//! to `Model::parse`; a model that parses is scored over ids taken from the same input, so the
//! scorer's arithmetic is exercised with hostile weights and scales. Any panic is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(model) = castellan_detect::Model::parse(data) {
        let mut scorer = castellan_detect::Scorer::new(model);
        for pair in data.chunks_exact(2).take(64) {
            let surprise = scorer.push(u16::from_le_bytes([pair[0], pair[1]]));
            assert!(surprise.is_finite());
        }
        let _ = scorer.trace_score().anomaly();
    }
});
