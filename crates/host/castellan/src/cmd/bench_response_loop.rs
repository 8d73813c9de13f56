//! The watched half of `castellan bench response`: the benchmark's device agents (each stoppable
//! on its own), the three compromise cases, the API poll that times each case's milestones, the
//! two decommissioners' approval once healing failed, and the closing checks (registry, audit
//! chain, every step audited).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use castellan_agent::compromise::{Behaviour, Compromise};
use castellan_agent::{Endpoint, FleetApi};
use castellan_server::protocol::CampaignJson;
use serde_json::{Value, json};

/// The benchmark's running agents, by serial.
pub(super) struct Fleet {
    dir: PathBuf,
    endpoint: Endpoint,
    interval: u64,
    agents: BTreeMap<String, Agent>,
}

struct Agent {
    switch: Arc<Compromise>,
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Fleet {
    pub(super) fn new(dir: &Path, endpoint: Endpoint, interval: u64) -> Fleet {
        Fleet {
            dir: dir.to_path_buf(),
            endpoint,
            interval,
            agents: BTreeMap::new(),
        }
    }

    /// Power on `serial`'s agent with its compromise switch.
    pub(super) fn start(&mut self, serial: &str, switch: Arc<Compromise>) {
        let mut cfg =
            super::bench_response::agent_config(&self.dir, serial, &self.endpoint, self.interval);
        let stop = Arc::new(tokio::sync::Notify::new());
        cfg.stop = Some(stop.clone());
        cfg.compromise = Some(switch.clone());
        let task = tokio::spawn(async move {
            let _ = castellan_agent::run(cfg).await;
        });
        self.agents
            .insert(serial.to_owned(), Agent { switch, stop, task });
    }

    /// The compromise switch of `serial`'s agent.
    pub(super) fn switch(&self, serial: &str) -> Arc<Compromise> {
        self.agents
            .get(serial)
            .map(|a| a.switch.clone())
            .unwrap_or_default()
    }

    /// Power `serial`'s agent off (it says goodbye first) and wait for it.
    pub(super) async fn stop(&mut self, serial: &str) {
        if let Some(mut a) = self.agents.remove(serial) {
            // A permit: the agent stops at its next wait even if it is busy now.
            a.stop.notify_one();
            if tokio::time::timeout(Duration::from_secs(10), &mut a.task)
                .await
                .is_err()
            {
                // Power cut: the device is off either way before its flash is rewritten.
                a.task.abort();
                let _ = a.task.await;
            }
        }
    }

    pub(super) async fn stop_all(&mut self) {
        for (_, a) in std::mem::take(&mut self.agents) {
            a.stop.notify_waiters();
            a.task.abort();
        }
    }
}

/// What happens to one device at t0.
pub(super) struct Case {
    serial: String,
    what: &'static str,
    switch: Arc<Compromise>,
    behaviour: Behaviour,
    refuses: bool,
}

impl Case {
    /// (a) the good image, misbehaving at run time.
    pub(super) fn run_time(serial: &str, switch: Arc<Compromise>) -> Case {
        Case {
            serial: serial.into(),
            what: "run-time compromise (probes topics)",
            switch,
            behaviour: Behaviour::ProbeTopics,
            refuses: false,
        }
    }

    /// (b) a validly signed, unexpected build whose implant exfiltrates.
    pub(super) fn flashed(serial: &str, switch: Arc<Compromise>) -> Case {
        Case {
            serial: serial.into(),
            what: "unexpected build (exfiltrates)",
            switch,
            behaviour: Behaviour::Exfiltrate,
            refuses: false,
        }
    }

    /// (c) an unexpected build that probes and refuses every update.
    pub(super) fn refuses_updates(serial: &str, switch: Arc<Compromise>) -> Case {
        Case {
            serial: serial.into(),
            what: "unexpected build, refuses updates",
            switch,
            behaviour: Behaviour::ProbeTopics,
            refuses: true,
        }
    }

    fn start(&self) {
        self.switch.refuse_updates(self.refuses);
        self.switch.set(self.behaviour);
    }
}

/// The milestones of one case, seconds after t0.
#[derive(Default, Clone)]
struct Times {
    alert: Option<f64>,
    contained: Option<f64>,
    heal_failed: Option<f64>,
    released: Option<f64>,
    decommissioned: Option<f64>,
}

impl Times {
    fn done(&self, refuses: bool) -> bool {
        self.alert.is_some()
            && self.contained.is_some()
            && if refuses {
                self.decommissioned.is_some()
            } else {
                self.released.is_some()
            }
    }
}

/// Stage the cases at t0 and time them until each is released or decommissioned.
pub(super) async fn watch(
    admin: &FleetApi,
    (api_url, ca): (&str, &str),
    cases: &[Case],
    limit: Duration,
    (soak_alerts, soak_quarantines): (usize, usize),
) -> anyhow::Result<Value> {
    let mut deciders = Vec::new();
    for name in ["decommissioner-1", "decommissioner-2"] {
        let op: Value = admin
            .post(
                "/api/v1/operators",
                &json!({"name": name, "role": "decommissioner"}),
            )
            .await?;
        let token = op["token"].as_str().context("no operator token")?;
        deciders.push(FleetApi::new(api_url, token, ca)?);
    }
    let names: Vec<&str> = cases.iter().map(|c| c.serial.as_str()).collect();
    println!("  compromise at t0: {}", names.join(", "));
    let t0 = Instant::now();
    for c in cases {
        c.start();
    }
    let mut times = vec![Times::default(); cases.len()];
    while times.iter().zip(cases).any(|(t, c)| !t.done(c.refuses)) {
        if t0.elapsed() > limit {
            bail!("the cases did not all end in {} s", limit.as_secs());
        }
        let at = t0.elapsed().as_secs_f64();
        let raised = super::bench_response::alerts(admin).await?;
        let campaigns: Vec<CampaignJson> = admin.get("/api/v1/campaigns").await?;
        for (c, t) in cases.iter().zip(times.iter_mut()) {
            let id = c.serial.as_str();
            if t.alert.is_none() && raised.iter().any(|al| al.device_id.as_deref() == Some(id)) {
                t.alert = Some(at);
            }
            let d: Value = admin.get(&format!("/api/v1/devices/{id}")).await?;
            if t.contained.is_none() && d["quarantined"] == true {
                t.contained = Some(at);
            }
            if t.contained.is_some() && t.released.is_none() && d["quarantined"] == false {
                t.released = Some(at);
            }
            if c.refuses && t.heal_failed.is_none() && heal_failed(&campaigns, id) {
                t.heal_failed = Some(at);
                println!("  {id}: heal failed; two decommissioners decide to decommission it");
                for decider in &deciders {
                    let _: Value = decider
                        .post(&format!("/api/v1/devices/{id}/decommission"), &json!({}))
                        .await?;
                }
            }
            if t.decommissioned.is_none()
                && d["lifecycle_name"] == "decommissioned"
                && d["revoked"] == true
            {
                t.decommissioned = Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let peer_alerts = super::bench_response::alerts(admin)
        .await?
        .iter()
        .filter(|al| al.device_id.as_deref().is_some_and(|d| !names.contains(&d)))
        .count();
    let registry: Vec<Value> = admin.get("/api/v1/devices").await?;
    let verify: Value = admin.get("/api/v1/audit/verify").await?;
    let audit = audit_all(admin).await?;
    let mut all_audited = true;
    let mut rows = Vec::new();
    for (c, t) in cases.iter().zip(&times) {
        let missing = missing_steps(&audit, &c.serial, c.refuses);
        all_audited &= missing.is_empty();
        rows.push(json!({
            "device": c.serial,
            "case": c.what,
            "alert_s": t.alert,
            "contained_s": t.contained,
            "heal_failed_s": t.heal_failed,
            "released_s": t.released,
            "decommissioned_s": t.decommissioned,
            "steps_missing": missing,
        }));
    }
    Ok(json!({
        "soak_alerts": soak_alerts,
        "soak_quarantines": soak_quarantines,
        "cases": rows,
        "peer_alerts": peer_alerts,
        "registry_devices": registry.len(),
        "audit_intact": verify["intact"],
        "audit_entries": verify["entries"],
        "steps_audited": all_audited,
    }))
}

/// Whether a benchmark report shows a clean run: nothing raised in the soak or on the peers,
/// the audit chain intact with every step in it.
pub(super) fn clean(r: &Value) -> bool {
    r["soak_alerts"] == 0
        && r["peer_alerts"] == 0
        && r["audit_intact"] == true
        && r["steps_audited"] == true
}

/// A heal campaign (or any) in which device `id` failed.
fn heal_failed(campaigns: &[CampaignJson], id: &str) -> bool {
    campaigns.iter().any(|c| {
        c.devices
            .iter()
            .any(|d| d.device_id == id && d.state == "failed")
    })
}

/// The audit actions every case must show (action, decision, a word of its reason).
fn required(refuses: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut steps = vec![
        ("alert.raise", "allowed", ""),
        ("response.quarantine", "allowed", ""),
        ("response.heal", "allowed", ""),
    ];
    if refuses {
        steps.push(("device.decommission", "allowed", "proof of erasure"));
    } else {
        steps.push(("response.heal", "allowed", "probation"));
        steps.push(("response.release", "allowed", "released"));
    }
    steps
}

fn missing_steps(audit: &[Value], id: &str, refuses: bool) -> Vec<String> {
    required(refuses)
        .into_iter()
        .filter(|(action, decision, word)| {
            !audit.iter().any(|e| {
                e["target"] == id
                    && e["action"] == *action
                    && e["decision"] == *decision
                    && e["reason"].as_str().is_some_and(|r| r.contains(word))
            })
        })
        .map(|(action, _, word)| format!("{action} {word}").trim().to_string())
        .collect()
}

async fn audit_all(admin: &FleetApi) -> anyhow::Result<Vec<Value>> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
        let page: Vec<Value> = admin
            .get(&format!("/api/v1/audit?after={after}&limit=1000"))
            .await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}
