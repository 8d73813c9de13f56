//! The response part of `castellan demo`: a staged run-time compromise of one device (the same
//! signed, attested image, misbehaving at run time), contained, healed by the signed
//! reboot-and-reattest (its measurement is the good release's), on probation, released; then a
//! device decommissioned by two decommissioners, with the proof of erasure in the audit chain.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use castellan_agent::compromise::{Behaviour, Compromise};
use castellan_agent::{AgentConfig, Backoff, Endpoint, FleetApi};
use serde_json::{Value, json};

/// How long the loop may take before the demo gives up.
const LIMIT: Duration = Duration::from_secs(60);

/// The response steps, numbered from `first`.
pub(crate) async fn steps(
    first: usize,
    admin: &FleetApi,
    api_url: &str,
    ca_pem: &str,
    serials: &[String],
    devices_dir: &Path,
    endpoint: &Endpoint,
) -> anyhow::Result<()> {
    let target = serials.first().context("no device")?.clone();
    let retired = serials.last().context("no device")?.clone();
    let compromise = Arc::new(Compromise::default());
    let contained = Arc::new(AtomicBool::new(false));
    let mut agents = tokio::task::JoinSet::new();
    for serial in [&target, &retired] {
        let seen = contained.clone();
        let mut cfg = AgentConfig::new(
            devices_dir.join(serial),
            endpoint.clone(),
            Arc::new(move |line: &str| {
                if line.starts_with("quarantined:") {
                    seen.store(true, Ordering::SeqCst);
                }
                if std::env::var_os("CASTELLAN_DEMO_TRACE").is_some() {
                    eprintln!("    trace | {line}");
                }
            }),
        );
        cfg.interval = Duration::from_millis(500);
        cfg.backoff = Backoff::new(Duration::from_millis(300), Duration::from_secs(2));
        if *serial == target {
            cfg.compromise = Some(compromise.clone());
        }
        // The device may still be settling from the previous step (a reverted trial image, an
        // aborted session): power it on again until it runs.
        agents.spawn(async move {
            for _ in 0..20 {
                if castellan_agent::run(cfg.clone()).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        if target == retired {
            break;
        }
    }
    let result = async {
        contain_and_reattest(first, admin, &target, &compromise, &contained).await?;
        decommission(first + 1, admin, api_url, ca_pem, &retired).await
    }
    .await;
    agents.abort_all();
    result
}

async fn contain_and_reattest(
    step: usize,
    admin: &FleetApi,
    id: &str,
    compromise: &Compromise,
    contained: &AtomicBool,
) -> anyhow::Result<()> {
    super::demo::say(
        step,
        &format!(
            "A run-time compromise: {id}'s application (the same signed and attested image) \
             starts reaching for other devices' topics. The broker refuses every attempt; the \
             operator quarantines it, and heals it: its measurement is the good release's, so \
             the service sends a signed reboot-and-reattest command instead of an update."
        ),
    );
    wait_online(admin, id).await?;
    compromise.set(Behaviour::ProbeTopics);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _: Value = admin
        .post(&format!("/api/v1/devices/{id}/quarantine"), &json!({}))
        .await?;
    println!("    {id}: quarantined (update, attestation and lifecycle channels only)");
    // Its session was closed: wait for it to come back with the quarantined policy.
    let started = Instant::now();
    while !contained.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h: Value = admin
        .post(&format!("/api/v1/devices/{id}/heal"), &json!({}))
        .await?;
    if h["heal"] != "reattest" {
        bail!("{id}: expected a reattest, the service answered {h}");
    }
    let nonce: String = h["nonce"]
        .as_str()
        .unwrap_or("?")
        .chars()
        .take(16)
        .collect();
    println!("    heal: signed reattest command sent, nonce {nonce}…");
    let started = Instant::now();
    loop {
        let d: Value = admin.get(&format!("/api/v1/devices/{id}")).await?;
        if d["quarantined"] == false {
            break;
        }
        if started.elapsed() > LIMIT {
            bail!("{id} still quarantined after {} s", LIMIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for e in audit_of(
        admin,
        id,
        &["response.reattest", "response.heal", "response.release"],
    )
    .await?
    {
        println!("    {e}");
    }
    println!(
        "    {id}: released after {:.1} s; the reboot ended the compromise ({:?})",
        started.elapsed().as_secs_f64(),
        compromise.get()
    );
    Ok(())
}

async fn decommission(
    step: usize,
    admin: &FleetApi,
    api_url: &str,
    ca_pem: &str,
    id: &str,
) -> anyhow::Result<()> {
    super::demo::say(
        step,
        &format!(
            "{id} is retired: two decommissioners (a role of its own; not even the admin may) \
             ask for it; the device checks the signed command, crypto-erases itself and answers \
             with its final attestation token, the proof of erasure."
        ),
    );
    wait_online(admin, id).await?;
    let mut deciders = Vec::new();
    for name in ["decommissioner-1", "decommissioner-2"] {
        let op: Value = admin
            .post(
                "/api/v1/operators",
                &json!({"name": name, "role": "decommissioner"}),
            )
            .await?;
        let token = op["token"].as_str().context("no operator token")?;
        deciders.push(FleetApi::new(api_url, token, ca_pem)?);
    }
    let path = format!("/api/v1/devices/{id}/decommission");
    for d in &deciders {
        let r: Value = d.post(&path, &json!({})).await?;
        match r["status"].as_str() {
            Some("awaiting_approval") => println!(
                "    {} asks: awaiting a second decommissioner",
                r["requested_by"].as_str().unwrap_or("?")
            ),
            Some("sent") => println!(
                "    {} approves: signed decommission command sent",
                r["approved_by"].as_str().unwrap_or("?")
            ),
            _ => bail!("{id}: the service answered {r}"),
        }
    }
    let started = Instant::now();
    loop {
        let d: Value = admin.get(&format!("/api/v1/devices/{id}")).await?;
        // Revoking its certificates is the last closing step.
        if d["lifecycle_name"] == "decommissioned" && d["revoked"] == true {
            println!(
                "    {id}: {} (revoked: {})",
                d["attestation_reason"].as_str().unwrap_or("decommissioned"),
                d["revoked"]
            );
            break;
        }
        if started.elapsed() > LIMIT {
            bail!("{id} not decommissioned after {} s", LIMIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Give the device's agent a moment to connect.
async fn wait_online(_admin: &FleetApi, _id: &str) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(())
}

/// The audit entries of `id` with one of `actions`, one line each.
async fn audit_of(admin: &FleetApi, id: &str, actions: &[&str]) -> anyhow::Result<Vec<String>> {
    let all: Vec<Value> = admin.get("/api/v1/audit?limit=1000").await?;
    Ok(all
        .iter()
        .filter(|e| e["target"] == id && actions.iter().any(|a| e["action"] == *a))
        .map(|e| {
            format!(
                "#{} {} {} {}: {}",
                e["seq"],
                e["actor"].as_str().unwrap_or("?"),
                e["action"].as_str().unwrap_or("?"),
                e["decision"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?")
            )
        })
        .collect())
}
