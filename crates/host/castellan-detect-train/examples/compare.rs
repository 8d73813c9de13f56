//! Train on TRAIN, then compare the model with the baselines on NORMAL and ATTACK:
//! `cargo run -p castellan-detect-train --example compare TRAIN NORMAL ATTACK`.
//! Environment: EPOCHS, CONTEXT, EMBED (training options); MODEL_OUT (save the model);
//! MODEL_IN (score with this model instead of training one); FAMILIES (per-family AUC).

use castellan_detect::{Model, Scorer};
use castellan_detect_train::{eval, trace, train};

fn load(p: &str) -> Vec<Vec<u16>> {
    trace::load(std::path::Path::new(p))
        .unwrap()
        .into_iter()
        .map(|t| t.events)
        .collect()
}

fn env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Per-event surprises of a trace.
fn surprises(model: Model<'_>, t: &[u16]) -> Vec<f32> {
    let mut s = Scorer::new(model);
    t.iter().map(|&e| s.push(e)).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (tr, normal, attack) = (load(&args[1]), load(&args[2]), load(&args[3]));
    let bytes = if let Ok(path) = std::env::var("MODEL_IN") {
        std::fs::read(path).unwrap()
    } else {
        let mut o = train::Options::default();
        o.epochs = env("EPOCHS").unwrap_or(o.epochs);
        o.context = env("CONTEXT").unwrap_or(o.context);
        o.embed = env("EMBED").unwrap_or(o.embed);
        let start = std::time::Instant::now();
        let t = train::train(&tr, &o, &mut |p| eprintln!("{p:?}")).unwrap();
        eprintln!(
            "trained in {:?}: {:?} {} bytes",
            start.elapsed(),
            t.dims,
            t.bytes.len()
        );
        t.bytes
    };
    if let Ok(path) = std::env::var("MODEL_OUT") {
        std::fs::write(path, &bytes).unwrap();
    }
    let model = Model::parse(&bytes).unwrap();
    let show = |name: &str, n: &[f64], a: &[f64]| {
        let q = eval::quality(n, a);
        println!(
            "{name:55} AUC {:.3}  det@1% {:.3}  det@0.1% {:.3}",
            q.auc, q.detection_at_1pct, q.detection_at_0_1pct
        );
    };
    // Aggregates of the per-event surprises.
    let sn: Vec<Vec<f32>> = normal.iter().map(|t| surprises(model, t)).collect();
    let sa: Vec<Vec<f32>> = attack.iter().map(|t| surprises(model, t)).collect();
    let agg = |name: &str, f: &dyn Fn(&[f32]) -> f64| {
        let n: Vec<f64> = sn.iter().map(|s| f(s)).collect();
        let a: Vec<f64> = sa.iter().map(|s| f(s)).collect();
        show(name, &n, &a);
    };
    fn parts(s: &[f32], tau: f32) -> (f64, f64, f64, f64) {
        let n = s.len().max(1) as f64;
        let mean = s.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let hinge = s
            .iter()
            .map(|&x| f64::from((x - tau).max(0.0)))
            .sum::<f64>()
            / n;
        let w = 32.min(s.len().max(1));
        let win = |f: &dyn Fn(f32) -> f64| {
            s.windows(w)
                .map(|x| x.iter().map(|&v| f(v)).sum::<f64>() / w as f64)
                .fold(0.0, f64::max)
        };
        let maxw = win(&|v| f64::from(v)).max(mean);
        let maxh = win(&|v| f64::from((v - tau).max(0.0))).max(hinge);
        (mean, hinge, maxw, maxh)
    }
    for eps in [0.0, 0.01, 0.05, 0.2] {
        agg(
            &format!("excess + window of excess + {eps} x mean, 4.6"),
            &|s| {
                let p = parts(s, 4.6);
                p.1 + p.3 + eps * p.0
            },
        );
    }
    agg("share of traces scoring exactly 0 (normal+attack)", &|s| {
        let p = parts(s, 4.6);
        f64::from(u8::from(p.1 + p.3 == 0.0))
    });
    for tau in [4.6f32, 6.9] {
        agg(&format!("mean excess over {tau}"), &|s| parts(s, tau).1);
        agg(&format!("highest window of excess over {tau}"), &|s| {
            parts(s, tau).3
        });
        agg(&format!("mean + excess over {tau}"), &|s| {
            let p = parts(s, tau);
            p.0 + p.1
        });
        agg(&format!("mean + 4 x excess over {tau}"), &|s| {
            let p = parts(s, tau);
            p.0 + 4.0 * p.1
        });
        agg(
            &format!("mean + window + excess + window of excess, {tau}"),
            &|s| {
                let p = parts(s, tau);
                p.0 + p.1 + p.2 + p.3
            },
        );
        agg(&format!("excess + window of excess, {tau}"), &|s| {
            let p = parts(s, tau);
            p.1 + p.3
        });
        agg(&format!("mean + window of excess, {tau}"), &|s| {
            let p = parts(s, tau);
            p.0 + p.3
        });
    }
    let mut all = eval::model_scores(model, &normal, &attack);
    if std::env::var("BASELINES").is_ok() {
        all.extend(eval::comparisons(model, &tr, &normal, &attack));
    }
    for s in &all {
        show(s.name, &s.normal, &s.attack);
    }
}
