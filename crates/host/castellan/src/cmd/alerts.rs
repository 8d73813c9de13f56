//! `castellan alerts`, `castellan policy` and `castellan device`: what the fleet's analysis
//! raised, each class's response policy, and an operator's own containment.
//!
//! ```text
//! castellan alerts list --token-file T [--state open] [--json]
//! castellan alerts ack|resolve alr-… --token-file T
//! castellan policy show sensor-v1 --token-file T [--json]
//! castellan policy set sensor-v1 --auto-quarantine on --max-per-hour 3 --token-file ADMIN
//! castellan device quarantine|release|heal CSTL-0001 --token-file T
//! ```

use std::process::ExitCode;

use anyhow::bail;
use castellan_server::protocol::update::CampaignJson;
use castellan_server::protocol::{AlertJson, ResponsePolicyJson};
use clap::{Args, Subcommand, ValueEnum};

use super::fleet_api::{ApiArgs, block_on};

/// `castellan alerts …`
#[derive(Subcommand)]
pub(crate) enum AlertsCommand {
    /// List alerts, newest first, with their evidence.
    List(ListArgs),
    /// Acknowledge an alert (admin, operator).
    Ack(AlertId),
    /// Resolve an alert (admin, operator); a resolved alert stays resolved.
    Resolve(AlertId),
}

/// Arguments of `castellan alerts list`.
#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only alerts in this state.
    #[arg(long, value_parser = ["open", "acknowledged", "resolved"])]
    state: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// An alert id and the server options.
#[derive(Args)]
pub(crate) struct AlertId {
    /// The alert (`alr-…`).
    id: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// `castellan policy …`
#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Show a device class's response policy.
    Show(PolicyShow),
    /// Set a device class's response policy (admin).
    Set(PolicySet),
}

/// Arguments of `castellan policy show`.
#[derive(Args)]
pub(crate) struct PolicyShow {
    /// The device class.
    class: String,
    #[command(flatten)]
    api: ApiArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// On or off.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Arguments of `castellan policy set`.
#[derive(Args)]
pub(crate) struct PolicySet {
    /// The device class.
    class: String,
    #[command(flatten)]
    api: ApiArgs,
    /// Quarantine a device at once on a high alert.
    #[arg(long, value_enum)]
    auto_quarantine: Switch,
    /// At most this many automatic quarantines in the class per hour (beyond: alerts only).
    #[arg(long, default_value_t = 3)]
    max_per_hour: u32,
}

/// `castellan device …`
#[derive(Subcommand)]
pub(crate) enum DeviceCommand {
    /// Restrict a device to its update, attestation and report channels (its session is
    /// closed and re-checked).
    Quarantine(DeviceId),
    /// Lift the restriction.
    Release(DeviceId),
    /// Heal a quarantined device as the heal policy says: a device whose measurement is the
    /// good one already (a run-time compromise) gets a signed reboot-and-reattest command; any
    /// other the last good release of its class. Once it attests the good measurement it goes
    /// on probation, then leaves quarantine by itself; a failed reattest goes on to the
    /// release.
    Heal(DecommissionArgs),
    /// Decommission a device for good (role decommissioner): a signed command makes its secure
    /// services crypto-erase every key and asset, its final attestation token is the proof of
    /// erasure, its certificates are revoked and it can never onboard again. Needs a second
    /// decommissioner: the first request waits (across restarts of the service) until another
    /// one asks for the same device.
    Decommission(DecommissionArgs),
}

/// `castellan device decommission|heal ID [--json]`.
#[derive(Args)]
pub(crate) struct DecommissionArgs {
    #[command(flatten)]
    device: DeviceId,
    /// Print the server's answer as JSON (decommission: `status` `awaiting_approval` or
    /// `sent`; heal: `heal` `campaign` or `reattest`).
    #[arg(long)]
    json: bool,
}

/// A device id and the server options.
#[derive(Args)]
pub(crate) struct DeviceId {
    /// The device.
    id: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Run `castellan alerts …`.
pub(crate) fn run_alerts(c: AlertsCommand) -> anyhow::Result<ExitCode> {
    match c {
        AlertsCommand::List(a) => {
            let path = match &a.state {
                Some(s) => format!("/api/v1/alerts?state={s}"),
                None => "/api/v1/alerts".into(),
            };
            let alerts: Vec<AlertJson> = block_on(a.api.client()?.get(&path))??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&alerts)?);
            } else if alerts.is_empty() {
                println!("no alerts");
            } else {
                for al in &alerts {
                    println!(
                        "{}  {:<6} {:<12} {:<24} {}",
                        al.alert_id,
                        al.severity,
                        al.state,
                        al.device_id
                            .clone()
                            .unwrap_or_else(|| format!("{}/{}", al.device_class, al.release)),
                        al.summary
                    );
                }
            }
        }
        AlertsCommand::Ack(a) => move_alert(&a, "acknowledge")?,
        AlertsCommand::Resolve(a) => move_alert(&a, "resolve")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn move_alert(a: &AlertId, verb: &str) -> anyhow::Result<()> {
    let al: AlertJson = block_on(a.api.client()?.post(
        &format!("/api/v1/alerts/{}/{verb}", a.id),
        &serde_json::json!({}),
    ))??;
    println!("{} is {}", al.alert_id, al.state);
    Ok(())
}

/// Run `castellan policy …`.
pub(crate) fn run_policy(c: PolicyCommand) -> anyhow::Result<ExitCode> {
    let (p, json) = match c {
        PolicyCommand::Show(a) => {
            let p: ResponsePolicyJson = block_on(
                a.api
                    .client()?
                    .get(&format!("/api/v1/policies/{}", a.class)),
            )??;
            (p, a.json)
        }
        PolicyCommand::Set(a) => {
            let body = ResponsePolicyJson {
                device_class: a.class.clone(),
                auto_quarantine: matches!(a.auto_quarantine, Switch::On),
                max_quarantines_per_hour: a.max_per_hour,
                updated_by: String::new(),
            };
            let p: ResponsePolicyJson = block_on(
                a.api
                    .client()?
                    .put(&format!("/api/v1/policies/{}", a.class), &body),
            )??;
            (p, false)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        println!(
            "{}: automatic quarantine {}, at most {} an hour (set by {})",
            p.device_class,
            if p.auto_quarantine { "on" } else { "off" },
            p.max_quarantines_per_hour,
            p.updated_by
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `castellan device …`.
pub(crate) fn run_device(c: DeviceCommand) -> anyhow::Result<ExitCode> {
    let (a, on) = match &c {
        DeviceCommand::Quarantine(a) => (a, true),
        DeviceCommand::Release(a) => (a, false),
        DeviceCommand::Heal(a) => return heal(a),
        DeviceCommand::Decommission(a) => return decommission(a),
    };
    let api = a.api.client()?;
    let path = format!("/api/v1/devices/{}/quarantine", a.id);
    let answer: serde_json::Value = if on {
        block_on(api.post(&path, &serde_json::json!({})))??
    } else {
        block_on(api.delete(&path))??
    };
    if answer["quarantined"].as_bool() != Some(on) {
        bail!("the server answered {answer}");
    }
    println!(
        "{} {} ({})",
        a.id,
        if on {
            "quarantined: update, attestation and report channels only"
        } else {
            "released from quarantine"
        },
        if answer["session_closed"].as_bool() == Some(true) {
            "its session was closed to apply the policy"
        } else {
            "no open session"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn heal(a: &DecommissionArgs) -> anyhow::Result<ExitCode> {
    let id = &a.device.id;
    let h: serde_json::Value = block_on(a.device.api.client()?.post(
        &format!("/api/v1/devices/{id}/heal"),
        &serde_json::json!({}),
    ))??;
    if a.json {
        println!("{h}");
        return Ok(ExitCode::SUCCESS);
    }
    match h["heal"].as_str() {
        Some("campaign") => {
            let c: CampaignJson = serde_json::from_value(h.clone())
                .map_err(|e| anyhow::anyhow!("the server answered {h}: {e}"))?;
            println!(
                "{id}: heal campaign {} of release {} (the last good release of its class); \
                 follow it with `castellan campaign status {} --watch`",
                c.campaign_id, c.release_id, c.campaign_id
            );
        }
        Some("reattest") => println!(
            "{id}: its measurement is the good one (a run-time compromise): signed \
             reboot-and-reattest command sent; the fresh token is due by {} (Unix time), else \
             the device goes on to a heal campaign; follow it with `castellan alerts list`",
            h["deadline"]
        ),
        _ => bail!("the server answered {h}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn decommission(a: &DecommissionArgs) -> anyhow::Result<ExitCode> {
    let id = &a.device.id;
    let r: serde_json::Value = block_on(a.device.api.client()?.post(
        &format!("/api/v1/devices/{id}/decommission"),
        &serde_json::json!({}),
    ))??;
    if a.json {
        println!("{r}");
        return Ok(ExitCode::SUCCESS);
    }
    match r["status"].as_str() {
        Some("awaiting_approval") => println!(
            "{id}: decommission requested by {}; a second decommissioner must run the same \
             command",
            r["requested_by"].as_str().unwrap_or("?")
        ),
        Some("sent") => println!(
            "{id}: signed decommission command sent (requested by {}, approved by {}); the \
             proof of erasure is due by {} (Unix time), else it is recorded as unconfirmed; \
             its certificates are revoked either way",
            r["requested_by"].as_str().unwrap_or("?"),
            r["approved_by"].as_str().unwrap_or("?"),
            r["deadline"]
        ),
        _ => bail!("the server answered {r}"),
    }
    Ok(ExitCode::SUCCESS)
}
