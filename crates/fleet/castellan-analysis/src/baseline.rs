//! What each cohort's normal looks like, learned from the windows in which it did not shift:
//! per cohort and signal, an exponentially weighted median and spread. A cohort that has not
//! been learned yet (a new release) is judged against the most learned cohort of its class
//! (the release it replaces), so a release whose devices all misbehave is seen as a shift at
//! once; once it has run without a shift for a while it becomes its own baseline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Cohort, Signal};

/// Weight of a new window in the learned median and spread.
const ALPHA: f64 = 0.1;

/// One signal of one cohort, learned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// The cohort's typical median.
    pub median: f64,
    /// Its typical spread (scaled MAD).
    pub scale: f64,
    /// Windows learned from.
    pub windows: u32,
}

/// The learned normal of every cohort.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    learned: BTreeMap<Cohort, BTreeMap<Signal, Learned>>,
}

impl Baseline {
    /// What `cohort`'s `signal` is compared with: its own learned normal once it has `min`
    /// windows, else that of the cohort of its class with the most windows (at least `min`).
    pub fn reference(&self, cohort: &Cohort, signal: Signal, min: u32) -> Option<Learned> {
        let own = self
            .learned
            .get(cohort)
            .and_then(|s| s.get(&signal))
            .filter(|l| l.windows >= min);
        own.copied().or_else(|| {
            self.learned
                .iter()
                .filter(|(c, _)| c.device_class == cohort.device_class && *c != cohort)
                .filter_map(|(_, s)| s.get(&signal))
                .filter(|l| l.windows >= min)
                .max_by_key(|l| l.windows)
                .copied()
        })
    }

    /// Learn one window of `cohort`'s `signal` (its median and spread).
    pub fn learn(&mut self, cohort: &Cohort, signal: Signal, median: f64, scale: f64) {
        let entry = self
            .learned
            .entry(cohort.clone())
            .or_default()
            .entry(signal)
            .or_insert(Learned {
                median,
                scale,
                windows: 0,
            });
        // The first windows count equally (a plain mean), later ones with weight ALPHA.
        let weight = (1.0 / f64::from(entry.windows + 1)).max(ALPHA);
        entry.median += weight * (median - entry.median);
        entry.scale += weight * (scale - entry.scale);
        entry.windows = entry.windows.saturating_add(1);
    }

    /// An operator accepted `cohort`'s new behaviour: forget what was learned of it, so it is
    /// learned again from its own windows.
    pub fn forget(&mut self, cohort: &Cohort) {
        self.learned.remove(cohort);
    }
}
