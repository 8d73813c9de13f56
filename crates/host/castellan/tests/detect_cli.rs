//! `castellan detect train | score | eval` through the real binary: the contract of the trace
//! format, the output lines, exit codes and errors naming the file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

const CASTELLAN: &str = env!("CARGO_BIN_EXE_castellan");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn castellan(args: &[&str]) -> Run {
    let o = Command::new(CASTELLAN).args(args).output().unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Normal traces: a few programs' call patterns, repeated with variations.
fn write_traces(dir: &Path, count: usize, foreign: bool) {
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    for i in 0..count {
        let mut events: Vec<u16> = vec![59, 12, 21];
        for r in 0..(8 + i % 7) {
            match (i + r) % 3 {
                0 => events.extend([2, 5, 0, 0, 3]),
                1 => events.extend([41, 42, 44, 45, 3]),
                _ => events.extend([9, 10, 11, 9]),
            }
        }
        if foreign {
            events.splice(10..10, [3, 3, 0, 2, 59, 9, 317, 41, 41, 11]);
        }
        let text: Vec<String> = events.iter().map(u16::to_string).collect();
        let sub = if i % 2 == 0 {
            dir.to_path_buf()
        } else {
            dir.join("nested")
        };
        std::fs::write(sub.join(format!("t{i}")), text.join(" ") + "\n").unwrap();
    }
}

fn trained(dir: &Path) -> PathBuf {
    write_traces(&dir.join("train"), 30, false);
    let model = dir.join("model.bin");
    let r = castellan(&[
        "detect",
        "train",
        "--traces",
        p(&dir.join("train")),
        "--model",
        p(&model),
        "--epochs",
        "2",
    ]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("epoch 2/2"),
        "progress on stderr: {}",
        r.stderr
    );
    model
}

#[test]
fn train_writes_a_model_within_the_default_budget_and_score_prints_one_line_per_trace() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained(dir.path());
    let size = std::fs::metadata(&model).unwrap().len();
    assert!(size <= 16384, "{size} bytes");
    write_traces(&dir.path().join("normal"), 6, false);
    write_traces(&dir.path().join("attack"), 6, true);
    let r = castellan(&[
        "detect",
        "score",
        "--model",
        p(&model),
        p(&dir.path().join("normal")),
        p(&dir.path().join("attack/t0")),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<(f64, String)> = r
        .stdout
        .lines()
        .map(|l| {
            let (score, path) = l.split_once('\t').unwrap();
            (score.parse().unwrap(), path.to_owned())
        })
        .collect();
    assert_eq!(
        lines.len(),
        7,
        "every file under the directory, recursively, and the file"
    );
    assert!(lines.iter().any(|(_, path)| path.contains("nested")));
    let attack = lines.last().unwrap().0;
    assert!(lines[..6].iter().all(|(s, _)| *s < attack), "{}", r.stdout);

    let r = castellan(&[
        "detect",
        "eval",
        "--model",
        p(&model),
        "--normal",
        p(&dir.path().join("normal")),
        "--attack",
        p(&dir.path().join("attack")),
        "--json",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["results"][0]["auc"], 1.0, "{}", r.stdout);
    assert_eq!(v["normal_traces"], 6);
    assert_eq!(v["families"][0]["family"], "nested", "{}", r.stdout);
}

#[test]
fn attack_malformed_trace_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained(dir.path());
    let bad = dir.path().join("bad.trace");
    std::fs::write(&bad, "1 2 3\n4 five 6\n").unwrap();
    let r = castellan(&["detect", "score", "--model", p(&model), p(&bad)]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("bad.trace:line 2"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    std::fs::write(&bad, "70000\n").unwrap();
    let r = castellan(&["detect", "score", "--model", p(&model), p(&bad)]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("above 65535"), "{}", r.stderr);
    let r = castellan(&[
        "detect",
        "train",
        "--traces",
        p(dir.path()),
        "--model",
        p(&model),
    ]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("bad.trace:line 1"), "{}", r.stderr);
}

#[test]
fn a_model_over_the_budget_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    write_traces(&dir.path().join("train"), 4, false);
    let model = dir.path().join("m");
    let r = castellan(&[
        "detect",
        "train",
        "--traces",
        p(&dir.path().join("train")),
        "--model",
        p(&model),
        "--budget",
        "600",
    ]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("budget is 600 bytes"), "{}", r.stderr);
    assert!(!model.exists());
}

#[test]
fn attack_corrupt_model_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    std::fs::write(&model, b"CDTM\x01\x00").unwrap();
    let trace = dir.path().join("t");
    std::fs::write(&trace, "1 2 3").unwrap();
    let r = castellan(&["detect", "score", "--model", p(&model), p(&trace)]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("model.bin: refused"), "{}", r.stderr);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
}

#[test]
fn every_detect_command_has_help() {
    for cmd in ["train", "score", "eval"] {
        let r = castellan(&["detect", cmd, "--help"]);
        assert_eq!(r.code, Some(0));
        assert!(r.stdout.contains("--model"), "{}", r.stdout);
    }
}
