//! The classic counting detectors, trained on the same normal traces, for comparison:
//! stide (the fraction of a trace's n-grams never seen in training; Forrest et al. 1996) and
//! order-n Markov chains (mean surprise per event with add-δ smoothing).

use std::collections::{HashMap, HashSet};

/// Stide: the set of n-grams of the normal traces.
pub struct Stide {
    n: usize,
    seen: HashSet<Vec<u16>>,
}

impl Stide {
    /// Learn the n-grams of the normal traces.
    pub fn train(traces: &[Vec<u16>], n: usize) -> Self {
        let mut seen = HashSet::new();
        for t in traces {
            for g in grams(t, n) {
                seen.insert(g.to_vec());
            }
        }
        Self { n, seen }
    }

    /// Fraction of the trace's n-grams never seen in training.
    pub fn score(&self, trace: &[u16]) -> f64 {
        let all = grams(trace, self.n);
        if all.is_empty() {
            return 0.0;
        }
        all.iter().filter(|g| !self.seen.contains(**g)).count() as f64 / all.len() as f64
    }
}

fn grams(t: &[u16], n: usize) -> Vec<&[u16]> {
    if t.len() < n {
        return if t.is_empty() { vec![] } else { vec![t] };
    }
    t.windows(n).collect()
}

/// An order-n Markov chain over event ids.
pub struct Markov {
    order: usize,
    counts: HashMap<Vec<u16>, (HashMap<u16, u32>, u32)>,
    vocab: usize,
}

impl Markov {
    /// Count transitions of the normal traces (the start of a trace is its own state).
    pub fn train(traces: &[Vec<u16>], order: usize) -> Self {
        let mut counts: HashMap<Vec<u16>, (HashMap<u16, u32>, u32)> = HashMap::new();
        let mut ids = HashSet::new();
        for t in traces {
            for (i, &e) in t.iter().enumerate() {
                ids.insert(e);
                let state = t[i.saturating_sub(order)..i].to_vec();
                let entry = counts.entry(state).or_default();
                *entry.0.entry(e).or_default() += 1;
                entry.1 += 1;
            }
        }
        Self {
            order,
            counts,
            vocab: ids.len() + 1,
        }
    }

    /// Mean surprise per event (nats), add-0.01 smoothing over the known ids and one more.
    pub fn score(&self, trace: &[u16]) -> f64 {
        const DELTA: f64 = 0.01;
        if trace.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0;
        for (i, e) in trace.iter().enumerate() {
            let state = &trace[i.saturating_sub(self.order)..i];
            let (c, total) = self
                .counts
                .get(state)
                .map_or((0, 0), |(m, t)| (m.get(e).copied().unwrap_or(0), *t));
            let p = (f64::from(c) + DELTA) / (f64::from(total) + DELTA * self.vocab as f64);
            sum -= p.ln();
        }
        sum / trace.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stide_counts_unseen_grams_and_markov_prefers_seen_transitions() {
        let normal = vec![vec![1, 2, 3, 1, 2, 3, 1, 2, 3]];
        let stide = Stide::train(&normal, 3);
        assert_eq!(stide.score(&[1, 2, 3, 1]), 0.0);
        assert_eq!(stide.score(&[1, 2, 9, 1]), 1.0);
        let markov = Markov::train(&normal, 1);
        assert!(markov.score(&[1, 2, 3, 1, 2]) < markov.score(&[1, 3, 2, 1, 3]));
    }
}
