//! The model format and the scorer: round trip, refusals with typed errors, no panics on any
//! input, deterministic scores.

use castellan_detect::{
    Dimensions, HEADER_LEN, MAX_HIDDEN, Model, ModelError, ModelParts, Scales, Scorer, encode,
    encoded_len, model_digest,
};
use proptest::prelude::*;

/// A small model with weights from a simple deterministic pattern.
fn model_bytes(dims: Dimensions, salt: u8) -> Vec<u8> {
    let (k, e, h, v) = (
        usize::from(dims.context),
        usize::from(dims.embed),
        usize::from(dims.hidden),
        usize::from(dims.vocab),
    );
    let pattern = |n: usize, m: u8| -> Vec<i8> {
        (0..n)
            .map(|i| ((i as u8).wrapping_mul(37).wrapping_add(m) as i8) / 2)
            .collect()
    };
    let ids: Vec<u16> = (0..v as u16).map(|i| i * 3 + 1).collect();
    let parts = ModelParts {
        dims,
        scales: Scales {
            embed: 0.02,
            hidden_weights: 0.01,
            hidden_bias: 1e-4,
            output_weights: 0.05,
            output_bias: 1e-4,
            surprise_cap: 16.0,
            threshold: 0.5,
        },
        ids: &ids,
        embeddings: &pattern((v + 2) * e, salt),
        hidden_weights: &pattern(h * k * e, salt.wrapping_add(1)),
        hidden_bias: &vec![100; h],
        output_weights: &pattern((v + 1) * h, salt.wrapping_add(2)),
        output_bias: &(0..=v as i16).map(|i| i * 50).collect::<Vec<_>>(),
    };
    let mut out = vec![0u8; encoded_len(&dims)];
    let n = encode(&parts, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn dims() -> Dimensions {
    Dimensions {
        context: 4,
        embed: 3,
        hidden: 5,
        vocab: 6,
        window: 4,
    }
}

#[test]
fn round_trip_keeps_shape_ids_and_scales() {
    let bytes = model_bytes(dims(), 7);
    let model = Model::parse(&bytes).unwrap();
    assert_eq!(model.dims(), dims());
    assert_eq!(
        model.known_ids().collect::<Vec<_>>(),
        vec![1, 4, 7, 10, 13, 16]
    );
    assert_eq!(model.scales().surprise_cap, 16.0);
    assert_eq!(model.class_of(7), 2);
    assert_eq!(model.class_of(8), 6, "an unknown id is the unseen class");
    assert_eq!(model.class_of(u16::MAX), 6);
    assert_ne!(model_digest(&bytes), model_digest(&model_bytes(dims(), 8)));
}

#[test]
fn attack_truncated_model_is_refused() {
    let bytes = model_bytes(dims(), 1);
    assert_eq!(
        Model::parse(&bytes[..10]).unwrap_err(),
        ModelError::Truncated { len: 10 }
    );
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Model::parse(cut),
        Err(ModelError::LengthMismatch { .. })
    ));
}

#[test]
fn attack_model_with_trailing_bytes_is_refused() {
    let mut bytes = model_bytes(dims(), 1);
    bytes.push(0);
    assert!(matches!(
        Model::parse(&bytes),
        Err(ModelError::LengthMismatch { .. })
    ));
}

#[test]
fn attack_tampered_model_header_is_refused_with_typed_errors() {
    let good = model_bytes(dims(), 1);
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(Model::parse(&bad).unwrap_err(), ModelError::BadMagic);
    let mut bad = good.clone();
    bad[4] = 2;
    assert_eq!(
        Model::parse(&bad).unwrap_err(),
        ModelError::UnsupportedVersion { version: 2 }
    );
    let mut bad = good.clone();
    bad[14..16].copy_from_slice(&(MAX_HIDDEN as u16 + 1).to_le_bytes());
    assert!(matches!(
        Model::parse(&bad),
        Err(ModelError::DimensionOutOfRange {
            field: "hidden",
            ..
        })
    ));
    let mut bad = good.clone();
    bad[12] = 0;
    assert!(matches!(
        Model::parse(&bad),
        Err(ModelError::DimensionOutOfRange {
            field: "context",
            ..
        })
    ));
    let mut bad = good.clone();
    bad[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(matches!(
        Model::parse(&bad),
        Err(ModelError::BadScale { .. })
    ));
    let mut bad = good.clone();
    bad[44..48].copy_from_slice(&20.0f32.to_le_bytes());
    assert_eq!(
        Model::parse(&bad).unwrap_err(),
        ModelError::BadScale {
            field: "surprise threshold"
        },
        "a threshold above the cap would make every score zero"
    );
    let mut bad = good.clone();
    // Swap the first two known ids: no longer increasing.
    bad.swap(HEADER_LEN, HEADER_LEN + 2);
    bad.swap(HEADER_LEN + 1, HEADER_LEN + 3);
    assert_eq!(
        Model::parse(&bad).unwrap_err(),
        ModelError::UnsortedVocabulary { index: 1 }
    );
    // Every error has a message a person can act on.
    assert!(
        ModelError::BadMagic
            .to_string()
            .contains("not a Castellan detection model")
    );
}

#[test]
fn encode_refuses_inconsistent_parts_and_small_buffers() {
    let d = dims();
    let bytes = model_bytes(d, 3);
    let model = Model::parse(&bytes).unwrap();
    let ids: Vec<u16> = model.known_ids().collect();
    let parts = ModelParts {
        dims: d,
        scales: model.scales(),
        ids: &ids,
        embeddings: &[0; 8],
        hidden_weights: &[],
        hidden_bias: &[],
        output_weights: &[],
        output_bias: &[],
    };
    let mut out = vec![0u8; 4096];
    assert!(matches!(
        encode(&parts, &mut out),
        Err(ModelError::LengthMismatch { .. })
    ));
    let mut small = [0u8; 8];
    let full = ModelParts {
        embeddings: &[0; 8 * 3],
        hidden_weights: &[0; 5 * 12],
        hidden_bias: &[0; 5],
        output_weights: &[0; 7 * 5],
        output_bias: &[0; 7],
        ..parts
    };
    assert_eq!(
        encode(&full, &mut small),
        Err(ModelError::BufferTooSmall {
            needed: encoded_len(&d)
        })
    );
}

#[test]
fn scoring_is_deterministic_and_reset_starts_over() {
    let bytes = model_bytes(dims(), 5);
    let model = Model::parse(&bytes).unwrap();
    let trace = [1u16, 4, 7, 999, 10, 13, 16, 1, 4];
    let run = || {
        let mut s = Scorer::new(model);
        let per_event: Vec<f32> = trace.iter().map(|&e| s.push(e)).collect();
        (per_event, s.trace_score())
    };
    let (a, score_a) = run();
    let (b, score_b) = run();
    assert_eq!(a, b);
    assert_eq!(score_a, score_b);
    assert_eq!(score_a.events, trace.len() as u32);
    let mut s = Scorer::new(model);
    trace.iter().for_each(|&e| {
        s.push(e);
    });
    s.reset();
    assert_eq!(s.trace_score().events, 0);
    assert_eq!(s.push(1), a[0]);
}

#[test]
fn scorer_state_is_small() {
    // Model and state must fit 16 KiB on the device: the state is a fixed, small part of it.
    assert!(core::mem::size_of::<Scorer<'static>>() <= 1024);
}

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Model::parse(&bytes);
    }

    #[test]
    fn parser_never_panics_on_mutated_models(at in 0usize..200, value in any::<u8>()) {
        let mut bytes = model_bytes(dims(), 9);
        let i = at % bytes.len();
        bytes[i] = value;
        if let Ok(model) = Model::parse(&bytes) {
            let mut s = Scorer::new(model);
            for id in [0u16, 1, 4, u16::MAX] {
                let v = s.push(id);
                prop_assert!(v.is_finite());
            }
        }
    }

    #[test]
    fn scorer_never_panics_and_stays_within_the_cap(
        ids in proptest::collection::vec(any::<u16>(), 0..200),
        context in 1u8..=8, embed in 1u8..=6, hidden in 1u16..=12, vocab in 1u16..=20, window in 1u16..=10,
    ) {
        let d = Dimensions { context, embed, hidden, vocab, window };
        let bytes = model_bytes(d, 11);
        let model = Model::parse(&bytes).unwrap();
        let mut s = Scorer::new(model);
        for id in ids {
            let v = s.push(id);
            prop_assert!((0.0..=16.0).contains(&v));
            prop_assert!(s.window_score().is_finite());
        }
        let t = s.trace_score();
        prop_assert!(t.mean.is_finite() && t.max_window.is_finite() && t.anomaly() >= 0.0);
        prop_assert!(t.excess <= t.mean);
    }
}

proptest! {
    #[test]
    fn any_valid_shape_encodes_and_parses_back(
        context in 1u8..=6, embed in 1u8..=5, hidden in 1u16..=9, vocab in 1u16..=12, window in 1u16..=8,
        salt in any::<u8>(),
    ) {
        let d = Dimensions { context, embed, hidden, vocab, window };
        let bytes = model_bytes(d, salt);
        let model = Model::parse(&bytes).unwrap();
        prop_assert_eq!(model.dims(), d);
        // The ids and the length the header calls for agree with what was encoded.
        let ids: Vec<u16> = model.known_ids().collect();
        prop_assert_eq!(ids.len(), usize::from(vocab));
        prop_assert_eq!(encoded_len(&d), bytes.len());
    }
}
