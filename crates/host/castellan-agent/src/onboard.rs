//! Onboarding (fleet protocol, "Onboarding"): with its IDevID the device proves who it is, with
//! a fresh attestation token over the server's nonce it proves what it runs, and with a CSR of a
//! new operational key (generated in its crypto service) it asks for its LDevID.
//!
//! ```text
//!  CONNECT (IDevID) · SUBSCRIBE dev/<id>/down/onboard/#
//!  PUBLISH dev/<id>/up/onboard/hello {}            ──▶
//!                                                  ◀── dev/<id>/down/onboard/challenge {"nonce"}
//!  token = attest_token(nonce); key = generate; csr = build_csr(key)
//!  PUBLISH dev/<id>/up/onboard/evidence {"token","csr"} ──▶
//!                                                  ◀── dev/<id>/down/onboard/result
//!  accepted: store ldevid.pem, ldevid-chain.pem, policy.json · refused: the server's reason
//! ```

use std::sync::Arc;
use std::time::Duration;

use castellan_protocol::{Challenge, Evidence, OnboardResult, WireMessage as _, topics};
use tokio::time::Instant;

use crate::error::{AgentError, read_text, write};
use crate::factory::check_certificate;
use crate::identity::{
    DeviceKey, DeviceRecord, IdentityFiles, KEY_ID_OPERATIONAL, KeyStorage, PemKey, ServiceKey,
    build_csr, open_key,
};
use crate::mqtt::{ConnectOptions, Endpoint, Message, MqttConnection};
use crate::secure::SecureWorld;

/// What onboarding asks of a device, whatever runs it (the simulated agent, the QEMU device's
/// bridge): the key of its IDevID for the TLS handshake, an attestation token over the server's
/// nonce made by its secure partition, and a new operational key whose CSR asks for the LDevID.
pub trait OnboardingDevice: Sync {
    /// The IDevID's key for the TLS client handshake.
    fn identity_key(&self) -> Result<Arc<dyn DeviceKey>, AgentError>;
    /// An attestation token over `nonce`, made by the device's secure partition.
    fn attest<'a>(&'a self, nonce: &'a [u8]) -> AttestFuture<'a>;
    /// A new operational key (replacing any earlier one), for the CSR.
    fn new_operational_key(&self) -> Result<Arc<dyn DeviceKey>, AgentError>;
    /// Where the keys live, for the log ("crypto service", "PEM file").
    fn key_place(&self) -> &'static str;
}

/// The answer of [`OnboardingDevice::attest`] (a QEMU run for the QEMU device).
pub type AttestFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, AgentError>> + Send + 'a>>;

/// Onboards the simulated device: returns once the LDevID is stored, or the server's refusal
/// as [`AgentError::OnboardingRefused`].
pub async fn onboard(
    endpoint: &Endpoint,
    files: &IdentityFiles,
    record: &DeviceRecord,
    world: &SecureWorld,
    timeout: Duration,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), AgentError> {
    let device = SimulatedDevice {
        files,
        record,
        world,
    };
    onboard_device(endpoint, files, &record.serial, &device, timeout, log).await
}

/// The fleet protocol's onboarding exchange for device `id`, whose identity files are `files`:
/// the one implementation every device runs.
pub async fn onboard_device<D: OnboardingDevice>(
    endpoint: &Endpoint,
    files: &IdentityFiles,
    id: &str,
    device: &D,
    timeout: Duration,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), AgentError> {
    let chain = format!(
        "{}\n{}",
        read_text(&files.idevid())?,
        read_text(&files.chain())?
    );
    let tls = crate::tls::client_config(
        &read_text(&files.mqtt_ca())?,
        &chain,
        device.identity_key()?,
    )?;
    let opts = ConnectOptions {
        client_id: id.to_owned(),
        keep_alive_secs: 30,
        will: None,
        connect_timeout: Duration::from_secs(10),
    };
    let mut conn = MqttConnection::connect(endpoint, tls, &opts).await?;
    log(&format!(
        "onboarding: connected to {endpoint} with the IDevID (TLS client key in the {})",
        device.key_place()
    ));
    let challenge_topic = topics::challenge(id);
    let result_topic = topics::result(id);
    conn.subscribe(&topics::onboard_down_filter(id), 1).await?;
    conn.publish(&Message::qos1(topics::hello(id), "{}"))
        .await?;
    log("onboarding: hello sent, waiting for the server's challenge");
    let deadline = Instant::now() + timeout;
    let (topic, payload) = wait_for(
        &mut conn,
        &[challenge_topic.as_str(), result_topic.as_str()],
        deadline,
    )
    .await?;
    if topic == result_topic {
        conn.disconnect().await;
        return Err(refusal(&payload));
    }
    let nonce = Challenge::parse(&payload)
        .and_then(|c| c.nonce_bytes())
        .map_err(|e| AgentError::protocol("the onboarding challenge", e))?;
    let token = device.attest(&nonce).await?;
    let operational = device.new_operational_key()?;
    let csr = build_csr(operational.as_ref(), id)?;
    let evidence = Evidence {
        token: hex::encode(&token),
        csr: hex::encode(&csr),
    };
    conn.publish(&Message::qos1(topics::evidence(id), evidence.to_payload()))
        .await?;
    log(&format!(
        "onboarding: evidence sent (attestation token {} bytes over the nonce, CSR of a new \
         operational key generated in the {})",
        token.len(),
        device.key_place()
    ));
    let (_, payload) = wait_for(&mut conn, &[result_topic.as_str()], deadline).await?;
    conn.disconnect().await;
    let result = OnboardResult::parse(&payload)
        .map_err(|e| AgentError::protocol("the onboarding result", e))?;
    if !result.accepted {
        return Err(refused(&result));
    }
    let ldevid = result
        .ldevid_pem
        .ok_or_else(|| AgentError::protocol_state("accepted without an LDevID"))?;
    check_certificate(&ldevid, id, &operational.public_key(), "LDevID")?;
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

/// The simulated device: keys in its crypto service (or PEM files), tokens from its secure
/// world, both through its call gate.
struct SimulatedDevice<'a> {
    files: &'a IdentityFiles,
    record: &'a DeviceRecord,
    world: &'a SecureWorld,
}

impl OnboardingDevice for SimulatedDevice<'_> {
    fn identity_key(&self) -> Result<Arc<dyn DeviceKey>, AgentError> {
        open_key(self.record, self.files, Some(self.world), false)
    }

    fn attest<'a>(&'a self, nonce: &'a [u8]) -> AttestFuture<'a> {
        Box::pin(async move { self.world.attest_token(nonce) })
    }

    fn new_operational_key(&self) -> Result<Arc<dyn DeviceKey>, AgentError> {
        new_operational_key(self.record, self.files, self.world)
    }

    fn key_place(&self) -> &'static str {
        key_place(self.record)
    }
}

fn key_place(record: &DeviceRecord) -> &'static str {
    match record.keys {
        KeyStorage::Service => "crypto service",
        KeyStorage::PemFile { .. } => "PEM file",
    }
}

fn refusal(payload: &[u8]) -> AgentError {
    match OnboardResult::parse(payload) {
        Ok(r) => refused(&r),
        Err(e) => AgentError::protocol("the onboarding result", e),
    }
}

/// The server's refusal as an [`AgentError::OnboardingRefused`], with its stable code.
fn refused(result: &OnboardResult) -> AgentError {
    AgentError::OnboardingRefused {
        code: result.code.clone(),
        reason: result.reason_text().to_string(),
    }
}

/// A new operational key in the device's key storage (replacing any earlier one).
fn new_operational_key(
    record: &DeviceRecord,
    files: &IdentityFiles,
    world: &SecureWorld,
) -> Result<Arc<dyn DeviceKey>, AgentError> {
    match record.keys {
        KeyStorage::Service => Ok(Arc::new(ServiceKey::generate_operational(
            world,
            KEY_ID_OPERATIONAL,
        )?)),
        KeyStorage::PemFile { .. } => Ok(Arc::new(fresh_operational_pem_key(files)?)),
    }
}

/// A new operational key in a PEM file (the earlier one, if any, is removed first).
pub fn fresh_operational_pem_key(files: &IdentityFiles) -> Result<PemKey, AgentError> {
    let path = files.operational_key_pem();
    if path.exists() {
        std::fs::remove_file(&path).map_err(|source| AgentError::Io {
            path: path.clone(),
            source,
        })?;
    }
    PemKey::load_or_generate(&path)
}

/// Waits for a message on one of `topics` (others are ignored) until `deadline`.
pub async fn wait_for(
    conn: &mut MqttConnection,
    topics: &[&str],
    deadline: Instant,
) -> Result<(String, Vec<u8>), AgentError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AgentError::Timeout("the server's onboarding answer"));
        }
        if let Some(m) = conn.recv(left).await?
            && topics.contains(&m.topic.as_str())
        {
            return Ok((m.topic, m.payload));
        }
    }
}
