//! Training end to end on a generated set: the model fits the budget, is reproducible, and
//! ranks traces with injected foreign subsequences above held-out normal traces.

use castellan_detect::{MAX_HIDDEN, Model, Scorer};
use castellan_detect_train::eval::{auc, score_trace};
use castellan_detect_train::train::{Options, TrainError, state_bytes, train};

/// A tiny deterministic generator (the tests must not depend on a random crate's stream).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Normal behaviour: programs built from a few fixed call patterns ("open, read…, close",
/// "socket, connect, send/recv…, close", …) with random repeat counts and order.
fn normal_trace(rng: &mut Lcg) -> Vec<u16> {
    const PATTERNS: [&[u16]; 5] = [
        &[2, 5, 0, 0, 3],
        &[41, 42, 44, 45, 45, 3],
        &[9, 10, 11, 9],
        &[59, 12, 9, 21, 2, 5, 9, 3],
        &[1, 1, 1, 13, 14],
    ];
    let mut t = vec![59, 12, 21];
    for _ in 0..(10 + rng.next(20)) {
        let p = PATTERNS[rng.next(PATTERNS.len() as u64) as usize];
        for &e in p {
            t.push(e);
            if e == 0 || e == 1 || e == 45 {
                for _ in 0..rng.next(3) {
                    t.push(e);
                }
            }
        }
    }
    t.push(231);
    t
}

/// An attack: a normal trace with a foreign subsequence (known ids in an order normal
/// behaviour never shows, and a few ids never seen) injected at a random place.
fn attack_trace(rng: &mut Lcg) -> Vec<u16> {
    let mut t = normal_trace(rng);
    let known = [0u16, 1, 2, 3, 5, 9, 41, 42, 59, 12];
    let mut foreign: Vec<u16> = (0..12)
        .map(|_| known[rng.next(known.len() as u64) as usize])
        .collect();
    foreign.push(105);
    foreign.push(90);
    let at = rng.next(t.len() as u64) as usize;
    t.splice(at..at, foreign);
    t
}

fn quick() -> Options {
    Options {
        epochs: 3,
        ..Options::default()
    }
}

#[test]
fn attack_injected_foreign_subsequence_ranks_above_held_out_normal_traces() {
    let mut rng = Lcg(42);
    let training: Vec<Vec<u16>> = (0..60).map(|_| normal_trace(&mut rng)).collect();
    let held_out: Vec<Vec<u16>> = (0..40).map(|_| normal_trace(&mut rng)).collect();
    let attacks: Vec<Vec<u16>> = (0..40).map(|_| attack_trace(&mut rng)).collect();
    let trained = train(&training, &quick(), &mut |_| {}).unwrap();
    let model = Model::parse(&trained.bytes).unwrap();
    let score = |t: &Vec<u16>| f64::from(score_trace(model, t).anomaly());
    let normal: Vec<f64> = held_out.iter().map(score).collect();
    let attack: Vec<f64> = attacks.iter().map(score).collect();
    let area = auc(&normal, &attack);
    assert!(area >= 0.95, "AUC {area}");
}

#[test]
fn trained_model_fits_the_budget_with_the_scorer_state() {
    let mut rng = Lcg(7);
    let training: Vec<Vec<u16>> = (0..20).map(|_| normal_trace(&mut rng)).collect();
    for budget in [4096usize, 16 * 1024] {
        let o = Options {
            budget,
            epochs: 1,
            ..Options::default()
        };
        let trained = train(&training, &o, &mut |_| {}).unwrap();
        assert!(trained.bytes.len() + state_bytes() <= budget);
        let used = trained.bytes.len() + state_bytes();
        assert!(
            used > budget - 512 || usize::from(trained.dims.hidden) == MAX_HIDDEN,
            "the budget is used: {used} of {budget}"
        );
        // What the device loads, with the threshold learned from the held-out traces.
        let model = Model::parse(&trained.bytes).unwrap();
        assert_eq!(model.scales().threshold, trained.threshold);
        assert!((2.0 * std::f32::consts::LN_10..=8.0).contains(&trained.threshold));
        let mut s = Scorer::new(model);
        assert!(
            s.push(u16::MAX) > s.push(59).min(1.0),
            "an unseen id is surprising"
        );
    }
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let mut rng = Lcg(3);
    let training: Vec<Vec<u16>> = (0..15).map(|_| normal_trace(&mut rng)).collect();
    let o = Options {
        epochs: 1,
        ..Options::default()
    };
    let a = train(&training, &o, &mut |_| {}).unwrap();
    let b = train(&training, &o, &mut |_| {}).unwrap();
    assert_eq!(a.bytes, b.bytes);
    let c = train(
        &training,
        &Options {
            seed: 2,
            ..o.clone()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(a.bytes, c.bytes);
    let fixed = Options {
        threshold: Some(5.5),
        ..o
    };
    let d = train(&training, &fixed, &mut |_| {}).unwrap();
    assert_eq!(Model::parse(&d.bytes).unwrap().scales().threshold, 5.5);
}

#[test]
fn a_budget_too_small_is_refused_saying_why() {
    let training = vec![(0u16..300).collect::<Vec<_>>()];
    let o = Options {
        budget: 2048,
        epochs: 1,
        ..Options::default()
    };
    let err = train(&training, &o, &mut |_| {}).unwrap_err();
    assert!(matches!(
        err,
        TrainError::BudgetTooSmall { distinct: 300, .. }
    ));
    assert!(err.to_string().contains("raise --budget"));
    assert!(matches!(
        train(&[vec![]], &o, &mut |_| {}),
        Err(TrainError::NoEvents)
    ));
}

#[test]
fn a_model_for_a_linux_system_call_vocabulary_fits_16_kib() {
    // 175 distinct ids below 400, as in a Linux system-call benchmark.
    let mut rng = Lcg(11);
    let ids: Vec<u16> = (0..175u16).map(|i| i * 2 + 1).collect();
    let training: Vec<Vec<u16>> = (0..30)
        .map(|_| {
            (0..200)
                .map(|_| ids[rng.next(ids.len() as u64) as usize])
                .collect()
        })
        .collect();
    let o = Options {
        epochs: 1,
        ..Options::default()
    };
    let trained = train(&training, &o, &mut |_| {}).unwrap();
    assert_eq!(usize::from(trained.dims.vocab), 175);
    assert!(trained.bytes.len() + state_bytes() <= 16 * 1024);
    assert!(trained.dims.hidden >= 40, "{:?}", trained.dims);
}
