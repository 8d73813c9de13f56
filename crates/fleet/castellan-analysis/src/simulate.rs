//! A simulated fleet's signals, for the tests, the false-alarm measurement
//! (`cargo run -p castellan-analysis --example false_alarms`) and demonstrations: healthy
//! devices whose message counts vary normally and whose refusals and reconnects are rare.
//! Deterministic (seeded), not random enough for anything but simulation.

use std::collections::BTreeMap;

use crate::{Cohort, Observation, Signal};

/// A small deterministic generator for simulated noise (xorshift64*).
#[derive(Debug, Clone)]
pub struct Noise(u64);

impl Noise {
    /// A generator from `seed` (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u64) -> Noise {
        Noise(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (Irwin–Hall with 12 terms).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..12).map(|_| self.unit()).sum();
        mean + (s - 6.0) * sd
    }

    /// 1 with probability `p`, else 0.
    pub fn rare(&mut self, p: f64) -> f64 {
        if self.unit() < p { 1.0 } else { 0.0 }
    }
}

/// One healthy window of `n` devices of `class` on `release`, ids `<class>-<i>` (three digits).
pub fn healthy(noise: &mut Noise, class: &str, release: &str, n: usize) -> Vec<Observation> {
    (0..n)
        .map(|i| Observation {
            device: format!("{class}-{i:03}"),
            cohort: Cohort {
                device_class: class.into(),
                release: release.into(),
            },
            values: BTreeMap::from([
                (Signal::Messages, noise.normal(60.0, 8.0).max(0.0).round()),
                (Signal::Connections, 1.0 + noise.rare(0.02)),
                (Signal::RefusedPublishes, noise.rare(0.01)),
                (Signal::RefusedHandshakes, noise.rare(0.005)),
                (Signal::DetectorScore, noise.normal(1.0, 0.1)),
            ]),
        })
        .collect()
}

/// A fleet of 60 `sensor-v1` devices on 1.0.0 and 40 `gateway-v2` devices on 3.1.0.
pub fn fleet_window(noise: &mut Noise) -> Vec<Observation> {
    let mut w = healthy(noise, "sensor-v1", "1.0.0", 60);
    w.extend(healthy(noise, "gateway-v2", "3.1.0", 40));
    w
}
