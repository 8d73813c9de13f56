//! Host scoring speed, fast path against the plain computation ([`Scorer::reference`]), over a
//! cyclic trace of 64 distinct ids: the firmware's model (context 1, embed 1, hidden 1, 295 ids,
//! zero embeddings: its hidden layer never moves, the normaliser cache always hits), the same
//! shape with a moving hidden layer, and an 11.5 KiB model (context 4, embed 8, hidden 24).
//! `cargo run --release -p castellan-detect --example score_speed`; docs/benchmarks.md keeps
//! the ratios.

use std::time::Instant;

use castellan_detect::{Dimensions, Model, ModelParts, Scales, Scorer, encode, encoded_len};

fn model(context: u8, embed: u8, hidden: u16, vocab: u16, still: bool) -> Vec<u8> {
    let dims = Dimensions {
        context,
        embed,
        hidden,
        vocab,
        window: 8,
    };
    let (k, e, h, v) = (
        usize::from(context),
        usize::from(embed),
        usize::from(hidden),
        usize::from(vocab),
    );
    let pattern = |n: usize, m: u8| -> Vec<i8> {
        (0..n)
            .map(|i| ((i as u8).wrapping_mul(37).wrapping_add(m) as i8) / 2)
            .collect()
    };
    let ids: Vec<u16> = (0..vocab).map(|i| i * 3 + 1).collect();
    let parts = ModelParts {
        dims,
        scales: Scales {
            embed: 0.02,
            hidden_weights: 0.01,
            hidden_bias: 1e-4,
            output_weights: 0.05,
            output_bias: 1e-3,
            surprise_cap: 20.0,
            threshold: 6.0,
        },
        ids: &ids,
        embeddings: &if still {
            vec![0; (v + 2) * e]
        } else {
            pattern((v + 2) * e, 1)
        },
        hidden_weights: &pattern(h * k * e, 2),
        hidden_bias: &vec![100; h],
        output_weights: &pattern((v + 1) * h, 3),
        output_bias: &(0..=v).map(|i| (i % 200) as i16).collect::<Vec<_>>(),
    };
    let mut out = vec![0u8; encoded_len(&dims)];
    let n = encode(&parts, &mut out).expect("a valid shape");
    out.truncate(n);
    out
}

fn events_per_second(mut scorer: Scorer<'_>, trace: &[u16], rounds: usize) -> (f64, f32) {
    let start = Instant::now();
    let mut sum = 0.0f32;
    for _ in 0..rounds {
        for &id in trace {
            sum += scorer.push(id);
        }
    }
    let n = (rounds * trace.len()) as f64;
    (n / start.elapsed().as_secs_f64(), sum)
}

fn main() {
    let trace: Vec<u16> = (0..64u16).map(|i| i * 3 + 1).collect();
    for (name, bytes, rounds) in [
        (
            "firmware model (k1 E1 H1 V295, zero embeddings)",
            model(1, 1, 1, 295, true),
            2_000,
        ),
        ("k1 E1 H1 V295", model(1, 1, 1, 295, false), 2_000),
        ("k4 E8 H24 V295", model(4, 8, 24, 295, false), 300),
    ] {
        let m = Model::parse(&bytes).expect("parses");
        let (fast, a) = events_per_second(Scorer::new(m), &trace, rounds);
        let (plain, b) = events_per_second(Scorer::reference(m), &trace, rounds);
        println!(
            "{name}, {} bytes: fast {fast:.0} events/s, plain {plain:.0} events/s, ratio {:.1}x (sums {a:.3} / {b:.3})",
            bytes.len(),
            fast / plain
        );
    }
}
