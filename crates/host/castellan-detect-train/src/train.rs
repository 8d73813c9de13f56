//! Training: from normal traces only to a model file within a byte budget.
//!
//! The vocabulary is every id seen in training (anything else is "unseen", a class the model
//! learns to find very unlikely). The shape is chosen to fill the budget: the largest hidden
//! layer for which the file plus the scorer's state fit. One trace in ten is held out; after
//! each epoch the held-out surprise decides which epoch's weights are kept (early stopping),
//! so the model that ships is the one that generalised best, not the one that memorised most.
//! Everything is seeded: the same traces and options give the same bytes.

use std::collections::BTreeSet;
use std::fmt;

use castellan_detect::{
    Dimensions, MAX_CONTEXT, MAX_EMBED, MAX_HIDDEN, MAX_VOCAB, MAX_WINDOW, Model, ModelError,
    Scorer, encoded_len,
};

use crate::net::{Adam, Scratch, Shape, example};
use crate::quantise::quantise;
use crate::rng::SplitMix64;

/// The default budget: model file plus scorer state, in bytes.
pub const DEFAULT_BUDGET: usize = 16 * 1024;

/// Training options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bytes the model file and the scorer's state may take together.
    pub budget: usize,
    /// Events the model looks back at.
    pub context: usize,
    /// Embedding width.
    pub embed: usize,
    /// Hidden units (None: the largest that fits the budget, at most 128).
    pub hidden: Option<usize>,
    /// Events in the sliding window score.
    pub window: usize,
    /// Passes over the training events.
    pub epochs: usize,
    /// Seed of weight initialisation and shuffling.
    pub seed: u64,
    /// Largest surprise one event may add (nats).
    pub surprise_cap: f32,
    /// Surprise below which an event is ordinary (nats); the scores add up the excess above it.
    /// None: ln 100 (events the model gave less than a 1 % chance), or the 99th percentile of
    /// the quantised model's surprise on the held-out normal traces when that is higher (so
    /// that at most 1 % of normal events exceed it), at most cap / 2.
    pub threshold: Option<f32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            budget: DEFAULT_BUDGET,
            context: 12,
            embed: 8,
            hidden: None,
            window: 32,
            epochs: 12,
            seed: 1,
            surprise_cap: 16.0,
            threshold: None,
        }
    }
}

/// Why training failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrainError {
    /// No events at all in the training traces.
    NoEvents,
    /// More distinct ids than the format holds.
    VocabularyTooLarge {
        /// Distinct ids seen.
        distinct: usize,
    },
    /// Even the smallest model does not fit the budget.
    BudgetTooSmall {
        /// The budget.
        budget: usize,
        /// Bytes the smallest model (one hidden unit) plus scorer state needs.
        needed: usize,
        /// Distinct ids seen.
        distinct: usize,
    },
    /// An option outside what the format supports.
    BadOption {
        /// Which option.
        option: &'static str,
        /// Largest value accepted.
        max: usize,
    },
    /// The encoder refused the model.
    Encode(ModelError),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEvents => f.write_str("the training traces contain no events"),
            Self::VocabularyTooLarge { distinct } => write!(
                f,
                "the training traces use {distinct} distinct event ids; a model holds at most {MAX_VOCAB}"
            ),
            Self::BudgetTooSmall {
                budget,
                needed,
                distinct,
            } => write!(
                f,
                "a model for {distinct} distinct event ids needs at least {needed} bytes (model file plus scorer state); the budget is {budget} bytes: raise --budget or reduce --context/--embed"
            ),
            Self::BadOption { option, max } => write!(f, "{option} must be between 1 and {max}"),
            Self::Encode(e) => write!(f, "cannot encode the model: {e}"),
        }
    }
}

impl std::error::Error for TrainError {}

/// Progress of training, reported after each epoch.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Epoch just finished (1-based).
    pub epoch: usize,
    /// Of how many.
    pub epochs: usize,
    /// Mean training surprise per event in this epoch (nats).
    pub train_nll: f32,
    /// Mean surprise per event on the held-out traces (nats).
    pub held_out_nll: f32,
}

/// A trained model.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The model file.
    pub bytes: Vec<u8>,
    /// Its shape.
    pub dims: Dimensions,
    /// Bytes of the scorer's state next to it.
    pub state_bytes: usize,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// Held-out surprise per event of those weights (float model, nats).
    pub held_out_nll: f32,
    /// The surprise threshold written into the model (nats).
    pub threshold: f32,
}

/// Bytes of the scorer's state, counted against the budget.
pub fn state_bytes() -> usize {
    std::mem::size_of::<Scorer<'static>>()
}

/// Choose the shape: the largest hidden layer that fits the budget.
fn choose_shape(vocab: usize, o: &Options) -> Result<Shape, TrainError> {
    for (option, value, max) in [
        ("--context", o.context, MAX_CONTEXT),
        ("--embed", o.embed, MAX_EMBED),
        ("--window", o.window, MAX_WINDOW),
        ("--hidden", o.hidden.unwrap_or(1), MAX_HIDDEN),
    ] {
        if value == 0 || value > max {
            return Err(TrainError::BadOption { option, max });
        }
    }
    let size = |hidden: usize| {
        let dims = Dimensions {
            context: o.context as u8,
            embed: o.embed as u8,
            hidden: hidden as u16,
            vocab: vocab as u16,
            window: o.window as u16,
        };
        encoded_len(&dims) + state_bytes()
    };
    let candidates: Vec<usize> = match o.hidden {
        Some(h) => vec![h],
        None => (1..=MAX_HIDDEN).rev().collect(),
    };
    let hidden = candidates
        .into_iter()
        .find(|&h| size(h) <= o.budget)
        .ok_or(TrainError::BudgetTooSmall {
            budget: o.budget,
            needed: size(o.hidden.unwrap_or(1)),
            distinct: vocab,
        })?;
    Ok(Shape {
        context: o.context,
        embed: o.embed,
        hidden,
        vocab,
    })
}

/// The examples of one trace: (trace index, position).
fn positions(traces: &[Vec<u16>]) -> Vec<(u32, u32)> {
    traces
        .iter()
        .enumerate()
        .flat_map(|(t, tr)| (0..tr.len()).map(move |i| (t as u32, i as u32)))
        .collect()
}

/// The context before position `i` of a trace of classes (padding before the start).
fn context_at(shape: &Shape, trace: &[u16], i: usize, out: &mut [u16]) {
    for (slot, back) in out.iter_mut().zip((1..=shape.context).rev()) {
        *slot = if i >= back {
            trace[i - back]
        } else {
            shape.padding()
        };
    }
}

fn mean_nll(shape: &Shape, params: &[f32], traces: &[Vec<u16>]) -> f32 {
    let mut sc = Scratch::new(shape);
    let mut ctx = vec![0u16; shape.context];
    let (mut sum, mut n) = (0.0f64, 0usize);
    for tr in traces {
        for i in 0..tr.len() {
            context_at(shape, tr, i, &mut ctx);
            sum += f64::from(example(shape, params, &ctx, tr[i], &mut sc, None));
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { (sum / n as f64) as f32 }
}

/// Learn a model from normal traces.
pub fn train(
    traces: &[Vec<u16>],
    o: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Trained, TrainError> {
    let ids: Vec<u16> = traces
        .iter()
        .flatten()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Err(TrainError::NoEvents);
    }
    if ids.len() > MAX_VOCAB {
        return Err(TrainError::VocabularyTooLarge {
            distinct: ids.len(),
        });
    }
    let shape = choose_shape(ids.len(), o)?;
    let class_of = |id: &u16| ids.binary_search(id).map_or(shape.unseen(), |c| c as u16);
    let classes: Vec<Vec<u16>> = traces
        .iter()
        .map(|t| t.iter().map(class_of).collect())
        .collect();
    // One trace in ten held out for early stopping (all of them train when there are < 10).
    let (mut fit, mut held): (Vec<Vec<u16>>, Vec<Vec<u16>>) = (Vec::new(), Vec::new());
    for (i, t) in classes.into_iter().enumerate() {
        if i % 10 == 9 {
            held.push(t)
        } else {
            fit.push(t)
        }
    }
    if held.is_empty() {
        held = fit.clone();
    }

    let mut rng = SplitMix64::new(o.seed);
    let mut params = init(&shape, &mut rng);
    let mut best = (params.clone(), f32::INFINITY, 0usize);
    let mut adam = Adam::new(params.len());
    let mut grad = vec![0.0f32; params.len()];
    let mut sc = Scratch::new(&shape);
    let mut ctx = vec![0u16; shape.context];
    let mut order = positions(&fit);
    const BATCH: usize = 32;
    const PER_EPOCH_CAP: usize = 400_000;
    let steps_total = (o.epochs * order.len().min(PER_EPOCH_CAP))
        .div_ceil(BATCH)
        .max(1);
    let mut step = 0usize;
    for epoch in 1..=o.epochs {
        rng.shuffle(&mut order);
        let (mut loss_sum, mut count) = (0.0f64, 0usize);
        for batch in order[..order.len().min(PER_EPOCH_CAP)].chunks(BATCH) {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for &(t, i) in batch {
                let tr = &fit[t as usize];
                context_at(&shape, tr, i as usize, &mut ctx);
                // Now and then an input event is "unseen", so that class's embedding learns
                // what follows an unknown event instead of staying random.
                for c in ctx.iter_mut() {
                    if *c != shape.padding() && rng.unit() < 0.01 {
                        *c = shape.unseen();
                    }
                }
                let target = tr[i as usize];
                loss_sum += f64::from(example(
                    &shape,
                    &params,
                    &ctx,
                    target,
                    &mut sc,
                    Some(&mut grad),
                ));
                count += 1;
            }
            let scale = 1.0 / batch.len() as f32;
            grad.iter_mut().for_each(|g| *g *= scale);
            // Linear decay to a tenth of the initial rate.
            let lr = 3e-3 * (1.0 - 0.9 * step as f32 / steps_total as f32);
            adam.step(&mut params, &grad, lr);
            step += 1;
        }
        let held_out_nll = mean_nll(&shape, &params, &held);
        progress(Progress {
            epoch,
            epochs: o.epochs,
            train_nll: (loss_sum / count.max(1) as f64) as f32,
            held_out_nll,
        });
        if held_out_nll < best.1 {
            best = (params.clone(), held_out_nll, epoch);
        }
    }
    let window = o.window as u16;
    let encode = |threshold: f32| {
        quantise(&shape, window, o.surprise_cap, threshold, &ids, &best.0)
            .map_err(TrainError::Encode)
    };
    // At least ln 100 (the model gave the event less than a 1 % chance); higher when the model
    // is so uncertain that more than 1 % of normal events would pass that.
    let (lowest, highest) = (2.0 * std::f32::consts::LN_10, o.surprise_cap / 2.0);
    let threshold = match o.threshold {
        Some(t) => t,
        None => held_out_quantile(&encode(lowest)?, &held, &ids, 0.99)?.clamp(lowest, highest),
    };
    let bytes = encode(threshold)?;
    let dims = Model::parse(&bytes).map_err(TrainError::Encode)?.dims();
    Ok(Trained {
        bytes,
        dims,
        state_bytes: state_bytes(),
        best_epoch: best.2,
        held_out_nll: best.1,
        threshold,
    })
}

/// The `q` quantile of the quantised model's per-event surprise on the held-out traces (given
/// as classes; turned back into ids for the scorer).
fn held_out_quantile(
    bytes: &[u8],
    held: &[Vec<u16>],
    ids: &[u16],
    q: f64,
) -> Result<f32, TrainError> {
    let model = Model::parse(bytes).map_err(TrainError::Encode)?;
    let mut surprises: Vec<f32> = Vec::new();
    for trace in held {
        let mut scorer = Scorer::new(model);
        for &class in trace {
            // Classes index the sorted ids; only known ids occur in training traces.
            let id = ids.get(usize::from(class)).copied().unwrap_or(u16::MAX);
            surprises.push(scorer.push(id));
        }
    }
    surprises.sort_by(f32::total_cmp);
    let at = ((surprises.len() as f64 * q) as usize).min(surprises.len().saturating_sub(1));
    Ok(surprises.get(at).copied().unwrap_or(0.0))
}

/// Xavier-uniform weights, zero biases, small embeddings.
fn init(shape: &Shape, rng: &mut SplitMix64) -> Vec<f32> {
    let o = shape.offsets();
    let mut p = vec![0.0f32; shape.params()];
    let mut fill = |range: std::ops::Range<usize>, limit: f32, rng: &mut SplitMix64| {
        for v in &mut p[range] {
            *v = (rng.unit() * 2.0 - 1.0) * limit;
        }
    };
    let n_in = (shape.context * shape.embed) as f32;
    fill(o[0]..o[1], 0.5, rng);
    fill(o[1]..o[2], (6.0 / (n_in + shape.hidden as f32)).sqrt(), rng);
    fill(
        o[3]..o[4],
        (6.0 / (shape.hidden + shape.classes()) as f32).sqrt(),
        rng,
    );
    p
}
