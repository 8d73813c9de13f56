//! The analysis's false alarms on a healthy simulated fleet (100 devices, two classes), per
//! medium threshold: findings per 1,000 device-windows, over `--windows N` windows (default
//! 20,000) after 20 windows of learning. Figures go to `docs/response.md`.

use castellan_analysis::simulate::{Noise, fleet_window};
use castellan_analysis::{Baseline, Policy, Severity, analyze};

fn main() {
    let windows: usize = std::env::args()
        .skip_while(|a| a != "--windows")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    println!("medium_z  device findings  per 1,000 device-windows  high  cohort shifts");
    for medium_z in [3.0, 4.0, 5.0, 6.0] {
        let policy = Policy {
            medium_z,
            ..Policy::default()
        };
        let mut noise = Noise::new(0x00c0_ffee);
        let mut baseline = Baseline::default();
        let (mut devices, mut high, mut shifts, mut device_windows) =
            (0usize, 0usize, 0usize, 0usize);
        for i in 0..windows + 20 {
            let window = fleet_window(&mut noise);
            let f = analyze(&window, &mut baseline, &policy);
            if i >= 20 {
                devices += f.devices.len();
                high += f
                    .devices
                    .iter()
                    .filter(|d| d.severity == Severity::High)
                    .count();
                shifts += f.shifts.len();
                device_windows += window.len();
            }
        }
        println!(
            "{medium_z:>8.1}  {devices:>15}  {:>24.3}  {high:>4}  {shifts:>13}",
            devices as f64 * 1000.0 / device_windows as f64
        );
    }
}
