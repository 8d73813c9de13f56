//! Train on TRAIN, then compare the model with the baselines on NORMAL and ATTACK:
//! `cargo run --release -p castellan-detect-train --example compare TRAIN NORMAL ATTACK`.

use castellan_detect_train::{eval, trace, train};

fn load(p: &str) -> Vec<Vec<u16>> {
    trace::load(std::path::Path::new(p))
        .unwrap()
        .into_iter()
        .map(|t| t.events)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (tr, normal, attack) = (load(&args[1]), load(&args[2]), load(&args[3]));
    let mut o = train::Options::default();
    if let Some(e) = std::env::var("EPOCHS").ok().and_then(|v| v.parse().ok()) {
        o.epochs = e;
    }
    if let Some(e) = std::env::var("CONTEXT").ok().and_then(|v| v.parse().ok()) {
        o.context = e;
    }
    if let Some(e) = std::env::var("EMBED").ok().and_then(|v| v.parse().ok()) {
        o.embed = e;
    }
    let start = std::time::Instant::now();
    let t = train::train(&tr, &o, &mut |p| eprintln!("{p:?}")).unwrap();
    eprintln!(
        "trained in {:?}: {:?} {} bytes",
        start.elapsed(),
        t.dims,
        t.bytes.len()
    );
    let model = castellan_detect::Model::parse(&t.bytes).unwrap();
    let mut all = eval::model_scores(model, &normal, &attack);
    all.extend(eval::comparisons(model, &tr, &normal, &attack));
    for s in &all {
        let q = s.quality();
        println!(
            "{:50} AUC {:.3}  det@1% {:.3}  det@0.1% {:.3}",
            s.name, q.auc, q.detection_at_1pct, q.detection_at_0_1pct
        );
    }
}
