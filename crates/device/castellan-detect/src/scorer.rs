//! The streaming scorer: one event id in, its surprise out, with fixed-size state.
//!
//! For each event the model predicts a distribution over the known ids (plus "unseen") from the
//! `context` events before it; the event's surprise is its negative log-likelihood under that
//! prediction, capped by the model. Only the excess of surprise above the model's threshold
//! counts as anomalous (an event the model gave at least e^-threshold is ordinary): the window
//! score is the mean excess over the last `window` events, and the trace's anomaly adds the mean
//! excess per event (evidence spread over the whole trace) and the highest window score (a
//! short burst of foreign behaviour inside a long normal trace).
//!
//! Cost (docs/detection.md, "CPU"): the softmax normaliser (one exponential per class) depends
//! only on the quantised hidden layer, so the scorer keeps the normaliser of the last hidden
//! layer it computed one for and, when the layer is the same again, computes only the observed
//! class's logit; the int8 tanh of the hidden layer is a bisection over the steps of
//! `round(127 · tanh x)` (`tanh_table`) instead of a soft-float `tanhf`. [`Scorer::reference`]
//! is the plain computation (a `tanhf` per hidden unit, every normaliser recomputed), the
//! yardstick the fast path is tested against.
//!
//! State: the context classes, the quantised hidden layer, the window ring and the normaliser
//! cache, 760 bytes on x86-64; nothing is allocated and no input can make the scorer panic.

use crate::Model;
use crate::format::{MAX_CONTEXT, MAX_HIDDEN, MAX_WINDOW, le16};
use crate::tanh_table::quantised_tanh;

/// Scores of the events pushed since the last reset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceScore {
    /// Events pushed.
    pub events: u32,
    /// Mean surprise per event (nats).
    pub mean: f32,
    /// Mean excess surprise above the threshold per event (nats).
    pub excess: f32,
    /// Highest mean excess over `window` consecutive events (the whole trace's when it is
    /// shorter than a window).
    pub max_window: f32,
}

impl TraceScore {
    /// The anomaly score of the trace, higher is more anomalous: the mean excess per event plus
    /// the highest window's, plus a hundredth of the mean surprise so that traces with no
    /// surprising event (excess 0) still rank by how likely they were overall instead of tying.
    /// docs/detection.md compares it with the other choices.
    pub fn anomaly(&self) -> f32 {
        self.excess + self.max_window + TIE_BREAK * self.mean
    }
}

/// Weight of the mean surprise in [`TraceScore::anomaly`]: small enough not to change the order
/// of traces with surprising events, large enough to order the others.
pub const TIE_BREAK: f32 = 0.01;

/// A streaming scorer over one model.
#[derive(Clone, Debug)]
pub struct Scorer<'m> {
    model: Model<'m>,
    /// Classes of the last events, oldest first; the model reads the last `context` of them.
    context: [u16; MAX_CONTEXT],
    /// The hidden layer, int8 values stored as their two's-complement bytes.
    hidden: [u8; MAX_HIDDEN],
    window: [f32; MAX_WINDOW],
    window_at: usize,
    window_len: usize,
    /// Sum of the window ring on the fast path (kept as events come and go, recomputed exactly
    /// each time the ring wraps).
    window_sum: f32,
    total: f32,
    total_excess: f32,
    events: u32,
    max_window: f32,
    /// The fast path (tanh table, normaliser cache) or the plain computation.
    fast: bool,
    cache: NormaliserCache,
}

/// The log-normaliser `ln Σ exp(logit)` of the last hidden layer it was computed for (exact, so
/// a hit scores the same as recomputing). One entry: each one costs `MAX_HIDDEN` bytes of
/// state, which the trainer counts against the model's budget.
#[derive(Clone, Debug)]
struct NormaliserCache {
    hidden: [u8; MAX_HIDDEN],
    log_norm: f32,
    valid: bool,
}

impl NormaliserCache {
    const fn new() -> Self {
        Self {
            hidden: [0; MAX_HIDDEN],
            log_norm: 0.0,
            valid: false,
        }
    }

    fn get(&self, hidden: &[u8]) -> Option<f32> {
        (self.valid && self.hidden.get(..hidden.len()) == Some(hidden)).then_some(self.log_norm)
    }

    fn insert(&mut self, hidden: &[u8], log_norm: f32) {
        if let Some(dst) = self.hidden.get_mut(..hidden.len()) {
            dst.copy_from_slice(hidden);
            self.log_norm = log_norm;
            self.valid = true;
        }
    }
}

impl<'m> Scorer<'m> {
    /// A scorer at the start of a trace (the fast path).
    pub fn new(model: Model<'m>) -> Self {
        Self::with_path(model, true)
    }

    /// A scorer computing every event the plain way: `tanhf` per hidden unit and the softmax
    /// normaliser recomputed for every event. Its scores are the yardstick of the fast path's
    /// (they agree within a float rounding, or one int8 step of a hidden unit at a tanh step).
    pub fn reference(model: Model<'m>) -> Self {
        Self::with_path(model, false)
    }

    fn with_path(model: Model<'m>, fast: bool) -> Self {
        let padding = model.dims.vocab.saturating_add(1);
        Self {
            model,
            context: [padding; MAX_CONTEXT],
            hidden: [0; MAX_HIDDEN],
            window: [0.0; MAX_WINDOW],
            window_at: 0,
            window_len: 0,
            window_sum: 0.0,
            total: 0.0,
            total_excess: 0.0,
            events: 0,
            max_window: 0.0,
            fast,
            cache: NormaliserCache::new(),
        }
    }

    /// Forget the trace so far: the next event starts a new trace (the normaliser cache, a
    /// function of the model alone, is kept).
    pub fn reset(&mut self) {
        let cache = core::mem::replace(&mut self.cache, NormaliserCache::new());
        *self = Self::with_path(self.model, self.fast);
        self.cache = cache;
    }

    /// The model this scorer runs.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Feed one event; returns its surprise (nats, `0..=surprise_cap`).
    pub fn push(&mut self, id: u16) -> f32 {
        let class = self.model.class_of(id);
        self.compute_hidden();
        let surprise = self.surprise_of(class);
        self.context.rotate_left(1);
        if let Some(last) = self.context.last_mut() {
            *last = class;
        }
        self.record(surprise);
        surprise
    }

    /// Mean excess surprise over the last `window` events (fewer at the start of a trace).
    pub fn window_score(&self) -> f32 {
        let used = self.window.get(..self.window_len).unwrap_or_default();
        if used.is_empty() {
            return 0.0;
        }
        let sum = if self.fast {
            self.window_sum.max(0.0)
        } else {
            used.iter().sum::<f32>()
        };
        sum / used.len() as f32
    }

    /// Scores of the trace so far.
    pub fn trace_score(&self) -> TraceScore {
        let per_event = |sum: f32| {
            if self.events == 0 {
                0.0
            } else {
                sum / self.events as f32
            }
        };
        let excess = per_event(self.total_excess);
        let full = self.window_len == usize::from(self.model.dims.window);
        TraceScore {
            events: self.events,
            mean: per_event(self.total),
            excess,
            max_window: if full { self.max_window } else { excess },
        }
    }

    fn record(&mut self, surprise: f32) {
        let w = usize::from(self.model.dims.window).min(MAX_WINDOW);
        let excess = (surprise - self.model.scales.threshold).max(0.0);
        if let Some(slot) = self.window.get_mut(self.window_at) {
            let leaving = if self.window_len == w { *slot } else { 0.0 };
            self.window_sum += excess - leaving;
            *slot = excess;
        }
        self.total_excess += excess;
        self.window_at = (self.window_at + 1) % w.max(1);
        self.window_len = (self.window_len + 1).min(w);
        if self.window_at == 0 {
            // Once per window: drop the rounding the running sum gathered.
            let used = self.window.get(..self.window_len).unwrap_or_default();
            self.window_sum = used.iter().sum();
        }
        self.total += surprise;
        self.events = self.events.saturating_add(1);
        if self.window_len == w {
            self.max_window = self.max_window.max(self.window_score());
        }
    }

    /// The hidden layer from the context: int8 dot products, then tanh, re-quantised to int8.
    fn compute_hidden(&mut self) {
        let m = &self.model;
        let k = usize::from(m.dims.context);
        let e = usize::from(m.dims.embed);
        let context = self
            .context
            .get(MAX_CONTEXT.saturating_sub(k)..)
            .unwrap_or_default();
        let input_scale = m.scales.hidden_weights * m.scales.embed;
        let rows = m.hidden_weights.chunks_exact(k * e);
        for ((out, row), bias) in self
            .hidden
            .iter_mut()
            .zip(rows)
            .zip(m.hidden_bias.chunks_exact(2))
        {
            let mut acc: i32 = 0;
            for (segment, &class) in row.chunks_exact(e).zip(context) {
                let start = usize::from(class) * e;
                let embedding = m.embeddings.get(start..start + e).unwrap_or_default();
                acc += dot_i8(segment, embedding);
            }
            let pre =
                acc as f32 * input_scale + f32::from(le16(bias) as i16) * m.scales.hidden_bias;
            *out = if self.fast {
                quantised_tanh(pre)
            } else {
                quantise_unit(libm::tanhf(pre))
            };
        }
    }

    /// Negative log-likelihood of `class` under the output softmax: the log-normaliser (cached
    /// by hidden layer on the fast path) minus the class's logit.
    fn surprise_of(&mut self, class: u16) -> f32 {
        let h = usize::from(self.model.dims.hidden);
        let hidden = self.hidden.get(..h).unwrap_or_default();
        let cached = if self.fast {
            self.cache.get(hidden)
        } else {
            None
        };
        let log_norm = match cached {
            Some(n) => n,
            None => {
                let n = self.log_normaliser();
                if self.fast {
                    let hidden = self.hidden.get(..h).unwrap_or_default();
                    self.cache.insert(hidden, n);
                }
                n
            }
        };
        let target = self.logit(class);
        let surprise = log_norm - target;
        let cap = self.model.scales.surprise_cap;
        if surprise.is_nan() {
            cap
        } else {
            surprise.clamp(0.0, cap)
        }
    }

    /// The logit of one class (−∞ for a class outside the model).
    fn logit(&self, class: u16) -> f32 {
        let m = &self.model;
        let h = usize::from(m.dims.hidden);
        let hidden = self.hidden.get(..h).unwrap_or_default();
        let c = usize::from(class);
        match (
            m.output_weights.get(c * h..(c + 1) * h),
            m.output_bias.get(2 * c..2 * c + 2),
        ) {
            (Some(row), Some(bias)) => {
                dot_i8(row, hidden) as f32 * (m.scales.output_weights * (1.0 / 127.0))
                    + f32::from(le16(bias) as i16) * m.scales.output_bias
            }
            _ => f32::NEG_INFINITY,
        }
    }

    /// `ln Σ exp(logit)` over every class (online log-sum-exp).
    fn log_normaliser(&self) -> f32 {
        let m = &self.model;
        let h = usize::from(m.dims.hidden);
        let hidden = self.hidden.get(..h).unwrap_or_default();
        let weight_scale = m.scales.output_weights * (1.0 / 127.0);
        let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
        let rows = m.output_weights.chunks_exact(h);
        for (row, bias) in rows.zip(m.output_bias.chunks_exact(2)) {
            let logit = dot_i8(row, hidden) as f32 * weight_scale
                + f32::from(le16(bias) as i16) * m.scales.output_bias;
            if logit > max {
                sum = sum * libm::expf(max - logit) + 1.0;
                max = logit;
            } else {
                sum += libm::expf(logit - max);
            }
        }
        max + libm::logf(sum)
    }
}

/// Σ a·b over two int8 vectors stored as bytes.
fn dot_i8(a: &[u8], b: &[u8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x as i8) * i32::from(y as i8))
        .sum()
}

/// A value in [-1, 1] as int8 (× 127, rounded), stored as its byte.
fn quantise_unit(x: f32) -> u8 {
    let q = libm::roundf(x.clamp(-1.0, 1.0) * 127.0) as i8;
    q as u8
}

#[cfg(test)]
mod tests {
    use super::NormaliserCache;

    #[test]
    fn cache_hits_the_hidden_layer_it_stored_and_only_that() {
        let mut c = NormaliserCache::new();
        assert_eq!(c.get(&[1, 2]), None);
        c.insert(&[1, 2], 3.5);
        assert_eq!(c.get(&[1, 2]), Some(3.5));
        assert_eq!(c.get(&[1, 3]), None);
        c.insert(&[7; 200], 1.0);
        assert_eq!(
            c.get(&[1, 2]),
            Some(3.5),
            "a layer wider than the limit is not stored"
        );
    }
}
