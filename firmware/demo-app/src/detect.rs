//! `detect <mode>`: the application's side of the edge detector. It prints the attestation
//! public key (the host verifies reports with it), then runs [`ROUNDS`] rounds of ordinary
//! work (sensor reads and network sends reported as application events, op 27, a trusted
//! storage read, 100 ms of computation for the secure PC sampler) and ends each round with a detection
//! report signed in the secure partition (op 28), printed in hex.
//!
//! `mode` is the run-time behaviour switch of the same signed image: `healthy`, or an attack
//! staged in round [`ATTACK_ROUND`] as a compromised application would run it:
//! - `scan`: probes secure memory through the gate (refused pointers);
//! - `flood`: reports application events far beyond their rate limit.

use castellan_gate::client::{Veneers, power_off};
use castellan_gate::{DETECT_REPORT_CAP, SecureGate as _, app_kind, println};

/// Rounds (reports) per run.
const ROUNDS: u32 = 6;
/// The round the attack runs in (1-based).
const ATTACK_ROUND: u32 = 3;

pub fn run(mode: &str) -> ! {
    if !matches!(mode, "healthy" | "scan" | "flood") {
        println!("[app] usage: detect healthy|scan|flood");
        power_off(2)
    }
    let mut key = [0u8; 65];
    if Veneers.attest_public_key(&mut key).is_ok() {
        crate::print_hex("[app] attestation public key: ", &key);
    }
    println!("[app] detect: {ROUNDS} rounds, mode {mode}");
    let mut report = [0u8; DETECT_REPORT_CAP];
    for round in 1..=ROUNDS {
        // A sensor node's pace: four events a round, well within the rate limit (a burst of
        // 32, 16 a second).
        for i in 0..2u32 {
            let _ = Veneers.app_event(app_kind::SENSOR_READ, i);
            let _ = Veneers.app_event(app_kind::NET_SEND, 48);
        }
        let mut b = [0u8; 4];
        let _ = Veneers.its_get(crate::UID_BOOT_COUNT, &mut b);
        if round == ATTACK_ROUND {
            attack(mode);
        }
        embassy_time::block_for(embassy_time::Duration::from_millis(100));
        match Veneers.detect_report(&mut report) {
            Ok(n) => crate::print_hex("[app] detect report: ", report.get(..n).unwrap_or(&[])),
            Err(e) => println!("[app] detect report refused: {}", e.name()),
        }
    }
    power_off(0)
}

fn attack(mode: &str) {
    println!("[app] detect: staging the {mode} attack");
    match mode {
        "scan" => {
            for addr in (0x3800_0000u32..0x3800_4000).step_by(0x1000) {
                let _ = Veneers::console_write_at(addr, 16);
            }
        }
        "flood" => {
            for _ in 0..200 {
                let _ = Veneers.app_event(app_kind::NET_SEND, 1400);
            }
        }
        _ => {}
    }
}
