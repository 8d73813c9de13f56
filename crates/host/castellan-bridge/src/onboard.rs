//! Onboarding the QEMU device (fleet protocol, "Onboarding"): the bridge connects with the
//! IDevID, asks for a challenge, has the device's secure partition make a token over the
//! server's nonce (one QEMU run), sends it with the CSR of a new operational key, and stores
//! the LDevID.
//!
//! ```text
//!  CONNECT (IDevID, bridge-held key) · SUBSCRIBE dev/<id>/down/onboard/#
//!  PUBLISH dev/<id>/up/onboard/hello {}            ──▶
//!                                                  ◀── dev/<id>/down/onboard/challenge {nonce}
//!  QEMU `attest <nonce>` → token (IAK, secure partition); CSR of a new bridge-held key
//!  PUBLISH dev/<id>/up/onboard/evidence {token, csr} ──▶ appraisal against the registry
//!                                                  ◀── dev/<id>/down/onboard/result
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{Challenge, Evidence, OnboardResult, WireMessage as _, topics};
use castellan_agent::Endpoint;
use castellan_agent::PemKey;
use castellan_agent::factory::check_certificate;
use castellan_agent::identity::{DeviceKey as _, IdentityFiles, build_csr, open_key};
use castellan_agent::mqtt::{ConnectOptions, Message, MqttConnection};
use tokio::time::Instant;

use crate::Logger;
use crate::device::QemuDevice;
use crate::error::{BridgeError, read_text, write};

/// Onboards the device registered in `files`: returns once its LDevID is stored, or the
/// server's refusal as [`BridgeError::Refused`].
pub async fn onboard(
    endpoint: &Endpoint,
    files: &IdentityFiles,
    device: &QemuDevice,
    timeout: Duration,
    log: &Logger,
) -> Result<(), BridgeError> {
    let record = files.record()?;
    let id = record.serial.clone();
    let identity = open_key(&record, files, None, false)?;
    let chain = format!(
        "{}\n{}",
        read_text(&files.idevid())?,
        read_text(&files.chain())?
    );
    let tls = castellan_agent::tls::client_config(&read_text(&files.mqtt_ca())?, &chain, identity)?;
    let opts = ConnectOptions {
        client_id: id.clone(),
        keep_alive_secs: 60,
        will: None,
        connect_timeout: Duration::from_secs(10),
    };
    let mut conn = MqttConnection::connect(endpoint, tls, &opts).await?;
    log(&format!(
        "onboarding: connected to {endpoint} with the IDevID"
    ));
    conn.subscribe(&topics::onboard_down_filter(&id), 1).await?;
    conn.publish(&Message::qos1(topics::hello(&id), "{}"))
        .await?;
    let deadline = Instant::now() + timeout;
    let challenge_topic = topics::challenge(&id);
    let result_topic = topics::result(&id);
    let (topic, payload) =
        wait_for(&mut conn, &[&challenge_topic, &result_topic], deadline).await?;
    if topic == result_topic {
        conn.disconnect().await;
        return Err(refusal(&payload));
    }
    let nonce = Challenge::parse(&payload).and_then(|c| c.nonce_bytes())?;
    let d = device.clone();
    let token = tokio::task::spawn_blocking(move || d.attest(&nonce))
        .await
        .map_err(|e| BridgeError::Protocol(format!("the QEMU run failed: {e}")))??;
    let operational = new_operational_key(files)?;
    let csr = build_csr(operational.as_ref(), &id)?;
    let evidence = Evidence {
        token: hex::encode(&token),
        csr: hex::encode(&csr),
    };
    conn.publish(&Message::qos1(topics::evidence(&id), evidence.to_payload()))
        .await?;
    log(&format!(
        "onboarding: evidence sent (token of {} bytes made by the secure partition over the server's nonce)",
        token.len()
    ));
    let (_, payload) = wait_for(&mut conn, &[&result_topic], deadline).await?;
    conn.disconnect().await;
    let result = OnboardResult::parse(&payload)?;
    if !result.accepted {
        return Err(BridgeError::Refused(format!(
            "onboarding: {}",
            result.reason_text()
        )));
    }
    let ldevid = result
        .ldevid_pem
        .ok_or_else(|| BridgeError::Protocol("accepted without an LDevID".into()))?;
    check_certificate(&ldevid, &id, &operational.public_key(), "LDevID")?;
    write(
        &files.ldevid_chain(),
        result.chain_pem.unwrap_or_default().as_bytes(),
    )?;
    if let Some(policy) = result.policy {
        write(&files.policy(), &policy.to_payload())?;
    }
    // Written last: its presence is what "onboarded" means.
    write(&files.ldevid(), ldevid.as_bytes())?;
    log("onboarding: accepted; LDevID stored");
    Ok(())
}

/// A new operational key file (replacing an earlier one).
fn new_operational_key(files: &IdentityFiles) -> Result<Arc<PemKey>, BridgeError> {
    let path = files.operational_key_pem();
    if path.exists() {
        std::fs::remove_file(&path).map_err(|source| BridgeError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Arc::new(PemKey::load_or_generate(&path)?))
}

fn refusal(payload: &[u8]) -> BridgeError {
    match OnboardResult::parse(payload) {
        Ok(r) => BridgeError::Refused(format!("onboarding: {}", r.reason_text())),
        Err(e) => e.into(),
    }
}

/// Waits for a message on one of `topics` (others are ignored).
pub(crate) async fn wait_for(
    conn: &mut MqttConnection,
    topics: &[&str],
    deadline: Instant,
) -> Result<(String, Vec<u8>), BridgeError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BridgeError::Fleet(castellan_agent::AgentError::Timeout(
                "the server's answer",
            )));
        }
        if let Some(m) = conn.recv(left).await?
            && topics.contains(&m.topic.as_str())
        {
            return Ok((m.topic, m.payload));
        }
    }
}
