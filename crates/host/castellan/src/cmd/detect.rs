//! `castellan detect`: the edge detector's host commands.
//!
//! - `train --traces DIR --model FILE [--budget BYTES]`: learn a model from normal traces (every
//!   regular file under DIR, event ids separated by whitespace), write it in the device's format;
//! - `score --model FILE PATH…`: one line per trace, `<score>\t<path>`, higher = more anomalous;
//! - `eval --normal DIR --attack DIR --model FILE`: ROC AUC and detection rates at 1 % and
//!   0.1 % false alarms (with `--train DIR`, also the counting baselines).
//!
//! Malformed traces and models are refused naming the file (and line), exit status 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_detect::{Model, model_digest};
use castellan_detect_train::{eval, trace, train};
use clap::{Args, Subcommand};

use super::read_file;

/// `castellan detect …`
#[derive(Subcommand)]
pub(crate) enum DetectCommand {
    /// Learn a model from normal traces and write it in the format the device loads.
    Train(TrainArgs),
    /// Score traces: prints `<score>\t<path>` per trace, higher = more anomalous.
    Score(ScoreArgs),
    /// Measure a model: ROC AUC and detection rates at 1 % and 0.1 % false alarms.
    Eval(EvalArgs),
}

/// Arguments of `castellan detect train`.
#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Normal traces: every regular file under DIR (recursively), event ids 0–65535 separated
    /// by whitespace.
    #[arg(long, value_name = "DIR")]
    traces: PathBuf,
    /// Where to write the model.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Bytes the model file and the scorer's state may take on the device together.
    #[arg(long, value_name = "BYTES", default_value_t = train::DEFAULT_BUDGET)]
    budget: usize,
    /// Passes over the training events.
    #[arg(long, default_value_t = train::Options::default().epochs)]
    epochs: usize,
    /// Events the model looks back at (1–32).
    #[arg(long, default_value_t = train::Options::default().context)]
    context: usize,
    /// Embedding width (1–64).
    #[arg(long, default_value_t = train::Options::default().embed)]
    embed: usize,
    /// Hidden units (1–128; default: the largest that fits the budget).
    #[arg(long)]
    hidden: Option<usize>,
    /// Events in the sliding window score (1–64).
    #[arg(long, default_value_t = train::Options::default().window)]
    window: usize,
    /// Surprise (nats) below which an event is ordinary; the scores add up the excess above it
    /// (default: ln 100, i.e. a 1 % chance, or the level only 1 % of the held-out normal events
    /// exceed when that is higher; at most 8).
    #[arg(long, value_name = "NATS")]
    threshold: Option<f32>,
    /// Seed of initialisation and shuffling (the same seed and traces give the same model).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `castellan detect score`.
#[derive(Args)]
pub(crate) struct ScoreArgs {
    /// The model (from `castellan detect train`).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Trace files or directories of them (recursively).
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
}

/// Arguments of `castellan detect eval`.
#[derive(Args)]
pub(crate) struct EvalArgs {
    /// Normal traces not used in training.
    #[arg(long, value_name = "DIR")]
    normal: PathBuf,
    /// Attack traces.
    #[arg(long, value_name = "DIR")]
    attack: PathBuf,
    /// The model.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The training traces: also measure the counting baselines (stide, Markov chains) and
    /// their ensembles with the model.
    #[arg(long, value_name = "DIR")]
    train: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// Run a detect subcommand.
pub(crate) fn run(c: DetectCommand) -> anyhow::Result<ExitCode> {
    match c {
        DetectCommand::Train(a) => train_model(a),
        DetectCommand::Score(a) => score(a),
        DetectCommand::Eval(a) => evaluate(a),
    }
}

fn load_events(dir: &Path) -> anyhow::Result<Vec<Vec<u16>>> {
    let traces = trace::load(dir)?;
    Ok(traces.into_iter().map(|t| t.events).collect())
}

fn train_model(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let traces = load_events(&a.traces)?;
    if traces.is_empty() {
        bail!(
            "no trace files under {} (give a directory of normal traces)",
            a.traces.display()
        );
    }
    let cap = train::Options::default().surprise_cap;
    if let Some(t) = a.threshold.filter(|t| !(0.0..cap).contains(t)) {
        bail!(
            "--threshold {t} is out of range: give a surprise in nats, at least 0 and below the cap of {cap}"
        );
    }
    let events: usize = traces.iter().map(Vec::len).sum();
    eprintln!("{} traces, {events} events: training", traces.len());
    let options = train::Options {
        budget: a.budget,
        context: a.context,
        embed: a.embed,
        hidden: a.hidden,
        window: a.window,
        epochs: a.epochs.max(1),
        seed: a.seed,
        threshold: a.threshold,
        ..train::Options::default()
    };
    let trained = train::train(&traces, &options, &mut |p| {
        eprintln!(
            "epoch {}/{}: surprise {:.4} nats/event (training), {:.4} (held out)",
            p.epoch, p.epochs, p.train_nll, p.held_out_nll
        );
    })?;
    let total = trained.bytes.len() + trained.state_bytes;
    if total > a.budget {
        bail!(
            "the model takes {total} bytes with the scorer's state, over the budget of {} bytes",
            a.budget
        );
    }
    std::fs::write(&a.model, &trained.bytes)
        .with_context(|| format!("cannot write the model to {}", a.model.display()))?;
    let digest = hex::encode(model_digest(&trained.bytes));
    let d = trained.dims;
    if a.json {
        let summary = serde_json::json!({
            "model": a.model,
            "bytes": trained.bytes.len(),
            "state_bytes": trained.state_bytes,
            "budget": a.budget,
            "sha256": digest,
            "traces": traces.len(),
            "events": events,
            "known_ids": d.vocab,
            "context": d.context,
            "embed": d.embed,
            "hidden": d.hidden,
            "window": d.window,
            "best_epoch": trained.best_epoch,
            "held_out_nll": trained.held_out_nll,
            "threshold": trained.threshold,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "wrote {}: {} bytes + {} bytes scorer state (budget {}), {} known ids, context {}, embed {}, hidden {}, epoch {} kept, threshold {:.2} nats; sha256 {digest}",
            a.model.display(),
            trained.bytes.len(),
            trained.state_bytes,
            a.budget,
            d.vocab,
            d.context,
            d.embed,
            d.hidden,
            trained.best_epoch,
            trained.threshold,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn load_model(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read_file(path)?;
    Model::parse(&bytes).with_context(|| format!("{}: refused", path.display()))?;
    Ok(bytes)
}

fn score(a: ScoreArgs) -> anyhow::Result<ExitCode> {
    let bytes = load_model(&a.model)?;
    let model = Model::parse(&bytes)?;
    for path in &a.paths {
        for file in trace::files(path)? {
            let t = trace::read(&file)?;
            let s = eval::score_trace(model, &t.events);
            println!("{:.6}\t{}", s.anomaly(), file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn evaluate(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let bytes = load_model(&a.model)?;
    let model = Model::parse(&bytes)?;
    let normal = load_events(&a.normal)?;
    let attack_traces = trace::load(&a.attack)?;
    let families = families(&a.attack, &attack_traces);
    let attack: Vec<Vec<u16>> = attack_traces.into_iter().map(|t| t.events).collect();
    if normal.is_empty() || attack.is_empty() {
        bail!("eval needs at least one normal and one attack trace");
    }
    let mut results = eval::model_scores(model, &normal, &attack);
    let per_family = results
        .first()
        .map(|s| family_quality(s, &families))
        .unwrap_or_default();
    if let Some(dir) = &a.train {
        let train = load_events(dir)?;
        results.extend(eval::comparisons(model, &train, &normal, &attack));
    }
    if a.json {
        let rows: Vec<_> = results
            .iter()
            .map(|s| {
                let q = s.quality();
                serde_json::json!({
                    "detector": s.name,
                    "auc": q.auc,
                    "detection_at_1pct_false_alarms": q.detection_at_1pct,
                    "detection_at_0_1pct_false_alarms": q.detection_at_0_1pct,
                })
            })
            .collect();
        let families: Vec<_> = per_family
            .iter()
            .map(|(name, count, q)| {
                serde_json::json!({
                    "family": name,
                    "attack_traces": count,
                    "auc": q.auc,
                    "detection_at_1pct_false_alarms": q.detection_at_1pct,
                    "detection_at_0_1pct_false_alarms": q.detection_at_0_1pct,
                })
            })
            .collect();
        let out = serde_json::json!({
            "normal_traces": normal.len(),
            "attack_traces": attack.len(),
            "results": rows,
            "families": families,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} normal traces, {} attack traces",
            normal.len(),
            attack.len()
        );
        println!(
            "{:<72} {:>6} {:>9} {:>10}",
            "detector", "AUC", "det@1%FA", "det@0.1%FA"
        );
        for s in &results {
            let q = s.quality();
            println!(
                "{:<72} {:>6.3} {:>9.3} {:>10.3}",
                s.name, q.auc, q.detection_at_1pct, q.detection_at_0_1pct
            );
        }
        if !per_family.is_empty() {
            println!("per attack family (the device's score):");
            for (name, count, q) in &per_family {
                println!(
                    "  {:<70} {:>6.3} {:>9.3} {:>10.3}",
                    format!("{name} ({count} traces)"),
                    q.auc,
                    q.detection_at_1pct,
                    q.detection_at_0_1pct
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The attack family of each trace: the first folder under the attack directory (none when
/// the traces sit directly in it).
fn families(root: &Path, traces: &[trace::Trace]) -> Vec<Option<String>> {
    traces
        .iter()
        .map(|t| {
            let rel = t.path.strip_prefix(root).ok()?;
            let mut parts = rel.components();
            let first = parts.next()?;
            parts.next()?;
            Some(first.as_os_str().to_string_lossy().into_owned())
        })
        .collect()
}

/// Quality per attack family against all normal traces.
fn family_quality(
    scored: &eval::Scored,
    families: &[Option<String>],
) -> Vec<(String, usize, eval::Quality)> {
    let mut names: Vec<&String> = families.iter().flatten().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let attack: Vec<f64> = scored
                .attack
                .iter()
                .zip(families)
                .filter(|(_, f)| f.as_ref() == Some(name))
                .map(|(s, _)| *s)
                .collect();
            (
                name.clone(),
                attack.len(),
                eval::quality(&scored.normal, &attack),
            )
        })
        .collect()
}
