//! The fast scoring path (normaliser cache, tanh by table) against the plain computation
//! ([`Scorer::reference`]) on random models and traces: every event's surprise and the trace's
//! scores agree within [`TOLERANCE`] nats.

use castellan_detect::{Dimensions, Model, ModelParts, Scales, Scorer, encode, encoded_len};
use proptest::prelude::*;

/// Largest difference allowed between the fast and the plain surprise of one event (nats). The
/// normaliser cache is exact; the tanh table rounds the same as `round(127 · tanhf)` except for
/// an input within a float rounding of a step, which random models do not hit in practice.
const TOLERANCE: f32 = 1e-4;

/// A random model: shape, scales and every weight drawn by proptest.
fn arb_model() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=4, 1u8..=4, 1u16..=8, 1u16..=24, 1u16..=8)
        .prop_flat_map(|(k, e, h, v, w)| {
            let dims = Dimensions {
                context: k,
                embed: e,
                hidden: h,
                vocab: v,
                window: w,
            };
            let (k, e, h, v) = (
                usize::from(k),
                usize::from(e),
                usize::from(h),
                usize::from(v),
            );
            (
                Just(dims),
                prop::collection::vec(any::<i8>(), (v + 2) * e),
                prop::collection::vec(any::<i8>(), h * k * e),
                prop::collection::vec(any::<i16>(), h),
                prop::collection::vec(any::<i8>(), (v + 1) * h),
                prop::collection::vec(any::<i16>(), v + 1),
                (
                    0.001f32..0.1,
                    0.001f32..0.1,
                    1e-5f32..1e-3,
                    0.01f32..2.0,
                    1e-5f32..1e-3,
                ),
            )
        })
        .prop_map(|(dims, emb, hw, hb, ow, ob, (se, shw, shb, sow, sob))| {
            let ids: Vec<u16> = (0..dims.vocab).map(|i| i * 2).collect();
            let parts = ModelParts {
                dims,
                scales: Scales {
                    embed: se,
                    hidden_weights: shw,
                    hidden_bias: shb,
                    output_weights: sow,
                    output_bias: sob,
                    surprise_cap: 30.0,
                    threshold: 1.0,
                },
                ids: &ids,
                embeddings: &emb,
                hidden_weights: &hw,
                hidden_bias: &hb,
                output_weights: &ow,
                output_bias: &ob,
            };
            let mut out = vec![0u8; encoded_len(&dims)];
            let n = encode(&parts, &mut out).unwrap_or(0);
            out.truncate(n);
            out
        })
}

proptest! {
    #[test]
    fn fast_path_scores_match_the_plain_computation(
        bytes in arb_model(),
        trace in prop::collection::vec(0u16..60, 1..300),
    ) {
        let model = Model::parse(&bytes).unwrap();
        let (mut fast, mut plain) = (Scorer::new(model), Scorer::reference(model));
        for (i, &id) in trace.iter().enumerate() {
            let (a, b) = (fast.push(id), plain.push(id));
            prop_assert!((a - b).abs() <= TOLERANCE, "event {i}: fast {a}, plain {b}");
            if i == trace.len() / 2 {
                // A new trace keeps the cache: still the same scores.
                fast.reset();
                plain.reset();
            }
        }
        let (a, b) = (fast.trace_score(), plain.trace_score());
        prop_assert_eq!(a.events, b.events);
        prop_assert!((a.anomaly() - b.anomaly()).abs() <= TOLERANCE);
        prop_assert!((fast.window_score() - plain.window_score()).abs() <= TOLERANCE);
    }
}
