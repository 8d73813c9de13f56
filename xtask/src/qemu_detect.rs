//! The edge detector on the QEMU device: the model `cargo xtask firmware` embeds in the secure
//! partition, and the `detect` QEMU scenario.
//!
//! ```text
//!  xtask: firmware_model() ──▶ target/castellan-detect-model.bin ──▶ secure build.rs:
//!                                                                   MODEL + MODEL_DIGEST
//!  QEMU `detect <mode>`: app events (op 27) · PC samples (SysTick_S) · gate entries
//!        └─▶ one signed report (op 28) per round, printed hex ──▶ host: verify_report with the
//!            attestation key, counter +1 each round, alarm round, a changed byte refused
//! ```
//!
//! The model is built by hand over the gate's event vocabulary (as the simulated devices'
//! `castellan-devkit::detect_model`, plus the PC sampler's regions): every successful gate
//! entry and service error, every application event and a PC in the application's code is
//! ordinary; a refused pointer or length, an application-event flood, a fault, or a PC outside
//! the application's code (region 15) is about 10 nats more surprising, so one in a window of
//! eight events crosses the 1.0-nat alarm. A device class with recorded traces ships a model
//! from `castellan detect train` instead, the same way.

use std::path::PathBuf;

use castellan_detect::{Dimensions, ModelParts, Scales, encode, encoded_len};
use castellan_detect_report::{Report, verify_report};
use castellan_gate_api::{Op, app_kind, sensor};

use crate::qemu::{Ctx, check, hex_after, qemu, unhex};
use crate::steps::Result;

/// Events in the sliding window.
const WINDOW: u16 = 8;
/// Rounds the demo's `detect` command runs (one signed report each).
const ROUNDS: usize = 6;
/// The round in which a staged attack runs.
const ATTACK_ROUND: usize = 3;

/// The event ids the model knows.
fn vocabulary() -> Vec<u16> {
    let mut ids = Vec::new();
    for op in Op::ALL {
        for size in 0..4u16 {
            for result in [0u16, 3] {
                ids.push(sensor::GATE_BASE + (op.id() as u16 & 0x3f) * 16 + size * 4 + result);
            }
        }
    }
    for kind in 1..=app_kind::MAX {
        for class in 0..8u16 {
            ids.push(sensor::APP_BASE + kind as u16 * 8 + class);
        }
    }
    // The application's code: regions 0–14 of the sampler's watched range.
    for region in 0..sensor::PC_REGIONS as u16 - 1 {
        ids.push(sensor::PC_BASE + region);
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The secure partition's model file.
pub(crate) fn firmware_model() -> Result<Vec<u8>> {
    let ids = vocabulary();
    let n = ids.len();
    let vocab = u16::try_from(n).map_err(|_| "vocabulary too large")?;
    let dims = Dimensions {
        context: 1,
        embed: 1,
        hidden: 1,
        vocab,
        window: WINDOW,
    };
    // Known classes bias 0, the unseen class −10 nats.
    let mut output_bias = vec![0i16; n + 1];
    output_bias[n] = -1000;
    let parts = ModelParts {
        dims,
        scales: Scales {
            embed: 1.0,
            hidden_weights: 1.0,
            hidden_bias: 1.0,
            output_weights: 1.0,
            output_bias: 0.01,
            surprise_cap: 20.0,
            threshold: (n as f32).ln() + 0.5,
        },
        ids: &ids,
        embeddings: &vec![0i8; n + 2],
        hidden_weights: &[0i8],
        hidden_bias: &[0i16],
        output_weights: &vec![0i8; n + 1],
        output_bias: &output_bias,
    };
    let mut out = vec![0u8; encoded_len(&dims)];
    let len = encode(&parts, &mut out).map_err(|e| format!("the detector model: {e:?}"))?;
    out.truncate(len);
    Ok(out)
}

/// Writes the model where the secure partition's build script embeds it; its path.
pub(crate) fn write_firmware_model() -> Result<PathBuf> {
    let path = crate::firmware::target_dir().join("castellan-detect-model.bin");
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let model = firmware_model()?;
    // Unchanged bytes keep their timestamp (no rebuild of the partition).
    if std::fs::read(&path).ok().as_deref() != Some(model.as_slice()) {
        crate::qemu::write(&path, &model)?;
    }
    Ok(path)
}

/// One run of the demo's `detect <mode>` (under `-icount shift=0` when `icount`): its
/// reports, verified, in order.
fn run_mode(c: &Ctx, mode: &str, icount: bool) -> Result<Vec<Report>> {
    let name = format!("detect-{mode}{}", if icount { "-icount" } else { "" });
    let dir = c.device(&name, &c.bootloader, &c.v1)?;
    let command = format!("detect {mode}");
    let run = qemu(&c.built.rom, &dir, Some(&command), &[], icount)?;
    check(
        &run,
        0,
        &[
            "[secure] detector: model of ",
            "[app] detect: ",
            "[secure] detector: ",
        ],
        &["NOT installed", "ISOLATION BROKEN"],
    )?;
    let key = hex_after(&run.output, "[app] attestation public key: ")
        .ok_or("no attestation public key in the output")?;
    let key = unhex(key)?;
    let mut reports = Vec::new();
    for (i, line) in run
        .output
        .lines()
        .filter_map(|l| l.strip_prefix("[app] detect report: "))
        .enumerate()
    {
        let bytes = unhex(line.trim())?;
        let r = verify_report(&bytes, &key)
            .map_err(|e| format!("{mode}: report {} does not verify: {e:?}", i + 1))?;
        // A report changed on its way (a non-secure forger cannot sign): refused.
        for at in [bytes.len() / 3, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            if verify_report(&bad, &key).is_ok() {
                return Err(format!("{mode}: a report changed at byte {at} verified"));
            }
        }
        reports.push(r);
    }
    if reports.len() != ROUNDS {
        return Err(format!(
            "{mode}: {} reports, expected {ROUNDS}",
            reports.len()
        ));
    }
    for (i, r) in reports.iter().enumerate() {
        if r.counter != i as u64 + 1 {
            return Err(format!(
                "{mode}: report {} has counter {}, expected {}",
                i + 1,
                r.counter,
                i + 1
            ));
        }
    }
    let line = run
        .output
        .lines()
        .find(|l| l.starts_with("[secure] detector: ") && l.contains("PC samples"))
        .unwrap_or("");
    eprintln!("      {name}: {line}");
    Ok(reports)
}

fn summary(reports: &[Report]) -> String {
    reports
        .iter()
        .map(|r| {
            format!(
                "#{} {} events, max {}{} (refused {}/{}, floods {}, faults {}, PC {})",
                r.counter,
                r.events,
                r.score_milli,
                if r.crossed { " ALARM" } else { "" },
                r.counters[1],
                r.counters[2],
                r.counters[5],
                r.counters[6],
                r.counters[7],
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `detect` scenario: a healthy run with no alarm, then each staged attack (same image, a
/// run-time switch) raising it in the report of the round it ran in, not before.
pub(crate) fn detect(c: &Ctx) -> Result {
    let healthy = run_mode(c, "healthy", false)?;
    eprintln!("      healthy: {}", summary(&healthy));
    if let Some(r) = healthy.iter().find(|r| r.crossed) {
        return Err(format!(
            "healthy run: report {} has the alarm set",
            r.counter
        ));
    }
    // The sampler runs on the secure SysTick, out of the application's reach: its count rises
    // in every report period.
    if healthy
        .windows(2)
        .any(|w| w[1].counters[7] <= w[0].counters[7])
        || healthy[0].counters[7] == 0
    {
        return Err("healthy run: the PC samples did not rise in every report period".into());
    }
    // The sampler's cost, in instructions (the same healthy run under `-icount shift=0`).
    let measured = run_mode(c, "healthy", true)?;
    if measured.iter().any(|r| r.crossed) {
        return Err("healthy run under -icount: the alarm is set".into());
    }
    for mode in ["scan", "flood"] {
        let reports = run_mode(c, mode, false)?;
        eprintln!("      {mode}: {}", summary(&reports));
        let first = reports.iter().position(|r| r.crossed);
        if first != Some(ATTACK_ROUND - 1) {
            return Err(format!(
                "{mode}: the alarm is first set in report {:?}, expected report {ATTACK_ROUND} \
                 (the round the attack ran in)",
                first.map(|i| i + 1)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use castellan_detect::{Model, Scorer};
    use castellan_gate_api::{Op, psa, sensor};

    use super::firmware_model;

    /// The alarm threshold the secure partition uses (milli-nats).
    const ALARM: f32 = 1.0;

    fn scorer_after(model: &Model<'static>, ids: &[u16]) -> f32 {
        let mut s = Scorer::new(*model);
        for id in ids {
            s.push(*id);
        }
        s.window_score()
    }

    #[test]
    fn the_firmware_model_parses_within_budget_and_knows_ordinary_events() {
        let bytes: &'static [u8] = Box::leak(firmware_model().unwrap().into_boxed_slice());
        assert!(bytes.len() <= 16 * 1024);
        let model = Model::parse(bytes).unwrap();
        let ok = sensor::gate_event(Op::ItsGet, [1, 0x2820_0000, 4, 0], 4);
        let send = sensor::app_event(sensor::app_kind::NET_SEND, 48).unwrap();
        let pc = sensor::PC_BASE + 3;
        let healthy: Vec<u16> = [ok, send, pc].iter().copied().cycle().take(64).collect();
        assert!(scorer_after(&model, &healthy) < ALARM);
    }

    #[test]
    fn attack_refused_pointer_in_a_window_crosses_the_alarm() {
        let bytes: &'static [u8] = Box::leak(firmware_model().unwrap().into_boxed_slice());
        let model = Model::parse(bytes).unwrap();
        let ok = sensor::gate_event(Op::ConsoleWrite, [0x2820_0000, 16, 0, 0], 0);
        let refused = sensor::gate_event(
            Op::ConsoleWrite,
            [0x3800_0000, 16, 0, 0],
            psa::ERROR_PROGRAMMER_ERROR,
        );
        let mut ids = vec![ok; 16];
        ids.push(refused);
        assert!(scorer_after(&model, &ids) >= ALARM);
        for foreign in [
            sensor::APP_FLOOD,
            sensor::FAULT_BASE + 4,
            sensor::PC_BASE + 15,
        ] {
            let mut ids = vec![ok; 16];
            ids.push(foreign);
            assert!(scorer_after(&model, &ids) >= ALARM, "{foreign}");
        }
    }
}
