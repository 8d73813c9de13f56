//! Evaluation: ROC AUC and detection rates at fixed false-alarm rates.

/// Quality of a score that should rank attacks above normal traces.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// Area under the ROC curve (ties count half).
    pub auc: f64,
    /// Fraction of attacks detected at the threshold that flags at most 1 % of normal traces.
    pub detection_at_1pct: f64,
    /// Same at 0.1 %.
    pub detection_at_0_1pct: f64,
}

/// ROC AUC by the Mann–Whitney statistic.
pub fn auc(normal: &[f64], attack: &[f64]) -> f64 {
    if normal.is_empty() || attack.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = normal
        .iter()
        .map(|&s| (s, false))
        .chain(attack.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of attack ranks, ties sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += mean_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (n, a) = (normal.len() as f64, attack.len() as f64);
    (rank_sum - a * (a + 1.0) / 2.0) / (n * a)
}

/// Fraction of attacks scored above the threshold that flags at most `rate` of normal traces.
pub fn detection_at(normal: &[f64], attack: &[f64], rate: f64) -> f64 {
    if normal.is_empty() || attack.is_empty() {
        return f64::NAN;
    }
    let mut sorted = normal.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (rate * normal.len() as f64).floor() as usize;
    // Flag scores strictly above the (allowed + 1)-th highest normal score.
    let threshold = sorted[allowed.min(sorted.len() - 1)];
    attack.iter().filter(|&&s| s > threshold).count() as f64 / attack.len() as f64
}

/// AUC and detection rates together.
pub fn quality(normal: &[f64], attack: &[f64]) -> Quality {
    Quality {
        auc: auc(normal, attack),
        detection_at_1pct: detection_at(normal, attack, 0.01),
        detection_at_0_1pct: detection_at(normal, attack, 0.001),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_reversed_rankings() {
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 0.0);
        assert_eq!(auc(&[1.0, 1.0], &[1.0, 1.0]), 0.5);
        assert!((auc(&[1.0, 3.0], &[2.0, 4.0]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn detection_rate_respects_the_false_alarm_budget() {
        let normal: Vec<f64> = (0..100).map(f64::from).collect();
        let attack = [98.5, 99.5, 50.0, 120.0];
        // 1 % of 100 normal traces: one may be flagged, so the threshold is 98.
        assert_eq!(detection_at(&normal, &attack, 0.01), 0.75);
        assert_eq!(detection_at(&normal, &attack, 0.001), 0.5);
    }
}

/// Score one trace with the device's scorer.
pub fn score_trace(
    model: castellan_detect::Model<'_>,
    events: &[u16],
) -> castellan_detect::TraceScore {
    let mut scorer = castellan_detect::Scorer::new(model);
    for &e in events {
        scorer.push(e);
    }
    scorer.trace_score()
}

/// One detector's scores on the normal and attack traces.
#[derive(Clone, Debug)]
pub struct Scored {
    /// The detector.
    pub name: &'static str,
    /// Scores of the normal traces.
    pub normal: Vec<f64>,
    /// Scores of the attack traces.
    pub attack: Vec<f64>,
}

impl Scored {
    /// Its quality.
    pub fn quality(&self) -> Quality {
        quality(&self.normal, &self.attack)
    }
}

/// The model's scores (the trace score the device reports, and the alternatives it computes).
pub fn model_scores(
    model: castellan_detect::Model<'_>,
    normal: &[Vec<u16>],
    attack: &[Vec<u16>],
) -> Vec<Scored> {
    let all = |traces: &[Vec<u16>]| -> Vec<castellan_detect::TraceScore> {
        traces.iter().map(|t| score_trace(model, t)).collect()
    };
    let (n, a) = (all(normal), all(attack));
    let pick = |name, f: fn(&castellan_detect::TraceScore) -> f64| Scored {
        name,
        normal: n.iter().map(f).collect(),
        attack: a.iter().map(f).collect(),
    };
    vec![
        pick(
            "model: excess + highest window excess + mean/100 (the device's score)",
            |s| f64::from(s.anomaly()),
        ),
        pick("model: mean surprise per event", |s| f64::from(s.mean)),
        pick("model: mean excess surprise per event", |s| {
            f64::from(s.excess)
        }),
        pick("model: highest window excess", |s| f64::from(s.max_window)),
    ]
}

/// The counting baselines, trained on `train`.
pub fn baseline_scores(
    train: &[Vec<u16>],
    normal: &[Vec<u16>],
    attack: &[Vec<u16>],
) -> Vec<Scored> {
    use crate::baseline::{Markov, Stide};
    let stide = Stide::train(train, 6);
    let m1 = Markov::train(train, 1);
    let m2 = Markov::train(train, 2);
    let m6 = Markov::train(train, 6);
    let run = |name, f: &dyn Fn(&[u16]) -> f64| Scored {
        name,
        normal: normal.iter().map(|t| f(t)).collect(),
        attack: attack.iter().map(|t| f(t)).collect(),
    };
    vec![
        run("stide (unseen 6-grams)", &|t| stide.score(t)),
        run("Markov chain, order 1", &|t| m1.score(t)),
        run("Markov chain, order 2", &|t| m2.score(t)),
        run("Markov chain, order 6", &|t| m6.score(t)),
    ]
}

/// Two detectors combined by the sum of their scores standardised against the normal traces'
/// training scores (`reference`: each detector's scores on the training traces).
pub fn ensemble(name: &'static str, parts: &[(&Scored, &[f64])]) -> Scored {
    let mut out = Scored {
        name,
        normal: vec![0.0; parts.first().map_or(0, |p| p.0.normal.len())],
        attack: vec![0.0; parts.first().map_or(0, |p| p.0.attack.len())],
    };
    for (scored, reference) in parts {
        let n = reference.len().max(1) as f64;
        let mean = reference.iter().sum::<f64>() / n;
        let sd = (reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
            .sqrt()
            .max(1e-9);
        for (o, s) in out.normal.iter_mut().zip(&scored.normal) {
            *o += (s - mean) / sd;
        }
        for (o, s) in out.attack.iter_mut().zip(&scored.attack) {
            *o += (s - mean) / sd;
        }
    }
    out
}

/// The baselines trained on `train`, and the model's ensembles with stide and the order-6
/// Markov chain. For the ensembles, the baselines learn from nine training traces in ten and
/// each detector is standardised against its scores on the tenth (the traces the trainer
/// holds out too), so no detector is scaled by scores on traces it memorised.
pub fn comparisons(
    model: castellan_detect::Model<'_>,
    train: &[Vec<u16>],
    normal: &[Vec<u16>],
    attack: &[Vec<u16>],
) -> Vec<Scored> {
    let mut out = baseline_scores(train, normal, attack);
    let (fit, held): (Vec<_>, Vec<_>) = train
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 10 != 9);
    let fit: Vec<Vec<u16>> = fit.into_iter().map(|(_, t)| t).collect();
    let held: Vec<Vec<u16>> = held.into_iter().map(|(_, t)| t).collect();
    if held.is_empty() {
        return out;
    }
    let base = baseline_scores(&fit, normal, attack);
    let base_reference = baseline_scores(&fit, &held, &[]);
    let model_scored = model_scores(model, normal, attack);
    let model_reference = model_scores(model, &held, &[]);
    if let (Some(m), Some(mr)) = (model_scored.first(), model_reference.first()) {
        for (index, name) in [
            (0, "ensemble: model + stide"),
            (3, "ensemble: model + Markov order 6"),
        ] {
            if let (Some(b), Some(br)) = (base.get(index), base_reference.get(index)) {
                out.push(ensemble(name, &[(m, &mr.normal), (b, &br.normal)]));
            }
        }
    }
    out
}
