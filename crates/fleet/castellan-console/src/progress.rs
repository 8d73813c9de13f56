//! A campaign's progress as the page and the live stream show it, computed once from the API's
//! [`CampaignJson`]: counts per wave and device phase, and the chart over time (cumulative
//! updated and failed devices, as SVG polyline points drawn on the server).

use castellan_protocol::CampaignJson;
use serde::Serialize;

/// The device phases, in the order of a device's way through a campaign.
pub(crate) const PHASES: [&str; 8] = [
    "pending",
    "offered",
    "downloading",
    "installing",
    "rebooting",
    "confirming",
    "updated",
    "failed",
];

/// The chart's drawing area (SVG user units).
pub(crate) const CHART_W: u32 = 600;
/// The chart's height.
pub(crate) const CHART_H: u32 = 160;

/// At most this many devices are listed on a campaign's page and in its live events (the
/// failed ones first); the counts cover every device.
pub(crate) const MAX_LISTED: usize = 500;

/// One device's row.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct DeviceRow {
    pub(crate) device_id: String,
    pub(crate) wave: u32,
    pub(crate) phase: String,
    pub(crate) reason: String,
}

/// What the page shows of a campaign's progress, and what the live stream sends.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct Progress {
    pub(crate) campaign_id: String,
    pub(crate) state: String,
    pub(crate) wave: u32,
    pub(crate) reason: String,
    pub(crate) failure_rate: String,
    /// Device count per phase (in [`PHASES`] order), over the whole campaign.
    pub(crate) counts: Vec<u32>,
    /// Device count per wave and phase.
    pub(crate) waves: Vec<Vec<u32>>,
    /// Cumulative updated devices over time, SVG points.
    pub(crate) updated_points: String,
    /// Cumulative failed devices over time, SVG points.
    pub(crate) failed_points: String,
    /// The devices listed (failed first, then by id), at most [`MAX_LISTED`].
    pub(crate) devices: Vec<DeviceRow>,
    /// How many devices the campaign has.
    pub(crate) total: usize,
}

fn phase_index(state: &str) -> Option<usize> {
    PHASES.iter().position(|p| *p == state)
}

impl Progress {
    /// The progress of `c`.
    pub(crate) fn of(c: &CampaignJson) -> Progress {
        let n_waves = c.waves.len() + 1;
        let mut counts = vec![0u32; PHASES.len()];
        let mut waves = vec![vec![0u32; PHASES.len()]; n_waves];
        for d in &c.devices {
            if let Some(i) = phase_index(&d.state) {
                counts[i] += 1;
                if let Some(w) = waves.get_mut(d.wave as usize) {
                    w[i] += 1;
                }
            }
        }
        let mut rows: Vec<DeviceRow> = c
            .devices
            .iter()
            .map(|d| DeviceRow {
                device_id: d.device_id.clone(),
                wave: d.wave,
                phase: d.state.clone(),
                reason: d.reason.clone().unwrap_or_default(),
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.phase != "failed", &a.device_id).cmp(&(b.phase != "failed", &b.device_id))
        });
        rows.truncate(MAX_LISTED);
        Progress {
            campaign_id: c.campaign_id.clone(),
            state: c.state.clone(),
            wave: c.wave,
            reason: c.reason.clone().unwrap_or_default(),
            failure_rate: format!("{:.1} %", c.failure_rate),
            counts,
            waves,
            updated_points: series(c, "updated"),
            failed_points: series(c, "failed"),
            devices: rows,
            total: c.devices.len(),
        }
    }
}

/// The cumulative count of devices that reached `phase` (by the time of their last change),
/// as a step line from the campaign's creation to its last change.
fn series(c: &CampaignJson, phase: &str) -> String {
    let mut times: Vec<i64> = c
        .devices
        .iter()
        .filter(|d| d.state == phase)
        .map(|d| d.updated_at)
        .collect();
    times.sort_unstable();
    let start = c.created_at;
    let end = c
        .devices
        .iter()
        .map(|d| d.updated_at)
        .chain([c.updated_at, start + 1])
        .max()
        .unwrap_or(start + 1);
    let span = (end - start).max(1) as f64;
    let total = c.devices.len().max(1) as f64;
    let x = |t: i64| ((t - start).max(0) as f64 / span * f64::from(CHART_W)).round() as i64;
    let y = |n: usize| (f64::from(CHART_H) - n as f64 / total * f64::from(CHART_H)).round() as i64;
    let mut pts = vec![format!("0,{}", y(0))];
    for (k, t) in times.iter().enumerate() {
        pts.push(format!("{},{}", x(*t), y(k)));
        pts.push(format!("{},{}", x(*t), y(k + 1)));
    }
    pts.push(format!("{},{}", CHART_W, y(times.len())));
    pts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan_protocol::{CampaignCounts, CampaignDeviceJson, OnThreshold};

    pub(crate) fn campaign(devices: &[(&str, &str, u32, i64)]) -> CampaignJson {
        CampaignJson {
            campaign_id: "cmp-1".into(),
            release_id: "r-2".into(),
            device_class: "c".into(),
            tags: vec![],
            state: "running".into(),
            wave: 0,
            waves: vec!["100%".into()],
            canary: 1,
            counts: CampaignCounts::default(),
            failure_rate: 50.0,
            reason: None,
            rollback_of: None,
            device_timeout_s: 600,
            max_failures: 3,
            max_failure_rate: 20,
            min_sample: 5,
            on_threshold: OnThreshold::Pause,
            created_at: 1000,
            created_by: "rm".into(),
            updated_at: 1000,
            devices: devices
                .iter()
                .map(|(id, st, w, t)| CampaignDeviceJson {
                    device_id: (*id).into(),
                    state: (*st).into(),
                    wave: *w,
                    reason: (*st == "failed").then(|| "update.timeout".into()),
                    offset: 0,
                    updated_at: *t,
                })
                .collect(),
        }
    }

    #[test]
    fn counts_per_wave_and_phase_and_failed_devices_first() {
        let c = campaign(&[
            ("a", "updated", 0, 1010),
            ("b", "downloading", 1, 1020),
            ("c", "failed", 1, 1030),
            ("d", "pending", 1, 1000),
        ]);
        let p = Progress::of(&c);
        assert_eq!(p.counts, vec![1, 0, 1, 0, 0, 0, 1, 1]);
        assert_eq!(p.waves[0][6], 1, "wave 0: one updated");
        assert_eq!(p.waves[1][2], 1, "wave 1: one downloading");
        assert_eq!(p.waves[1][7], 1, "wave 1: one failed");
        assert_eq!(p.devices[0].device_id, "c", "failures first");
        assert_eq!(p.devices[0].reason, "update.timeout");
        assert_eq!(p.total, 4);
    }

    #[test]
    fn the_chart_climbs_with_each_finished_device() {
        let c = campaign(&[
            ("a", "updated", 0, 1010),
            ("b", "updated", 0, 1020),
            ("c", "pending", 1, 1000),
            ("d", "pending", 1, 1000),
        ]);
        let p = Progress::of(&c);
        // Half the cohort updated by the end: the line ends at half height.
        assert!(p.updated_points.ends_with("600,80"), "{}", p.updated_points);
        assert!(p.updated_points.starts_with("0,160"));
        assert_eq!(p.failed_points, "0,160 600,160", "no failure: flat");
    }
}
