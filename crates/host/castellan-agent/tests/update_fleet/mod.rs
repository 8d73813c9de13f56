//! A stand-in fleet for the update tests: the real broker (rmqtt, mutual TLS) and PKI, an
//! onboarding responder, and a scripted update server that speaks the device half of
//! `docs/fleet-protocol.md` ("Over-the-air updates") exactly: offers, fetch → chunk, challenge
//! → evidence → result, cancel, re-offers on reconnect; plus a small HTTPS range server. The
//! real campaign engine is tested against the agent elsewhere; this one lets each test script
//! the transport (disconnects, stalls) and see every message.
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan_agent::factory::{RegistrationRequest, RegistrationResponse};
use castellan_agent::update::protocol::{HttpsSource, encode_chunk};
use castellan_agent::{AgentConfig, Backoff, Endpoint, FirmwareKit, KeyChoice, ProvisionRequest};
use castellan_broker::BrokerHandle;
use castellan_image::{TrustedKey, Version};
use castellan_pki::{CaKind, KeyBackend, LdevidKey, Pki};
use castellan_protocol::{TufRequest, WireMessage as _};
use castellan_services::update::COMPONENT;
use castellan_suit::builder::{ImageSpec, ManifestBuilder, Parameters, Sequence, Signer};
use castellan_suit::{Directive, Section};
use castellan_testkit::fleet::{release_key_hex, stand_in_broker};
use serde_json::{Value, json};

mod https;
mod tuf;
pub use https::*;
pub use tuf::*;

pub const CLASS: &str = "sensor-v1";
pub const CHUNK: u32 = 1024;

/// A release: the image, its signed envelope, and what the device attests once it runs it.
#[derive(Clone, Debug)]
pub struct Release {
    pub id: String,
    pub sequence: u64,
    pub image: Vec<u8>,
    pub envelope: Vec<u8>,
    /// The MCUboot measurement digest of the image (what the token's APP entry must show).
    pub measurement: Vec<u8>,
}

impl Release {
    /// The kit's application `version` with payload `label`, in a manifest of `sequence`
    /// signed with `release_key`; `f` may change the manifest (expiry, class).
    pub fn new(
        kit: &FirmwareKit,
        release_key: &p256::ecdsa::SigningKey,
        sequence: u64,
        version: Version,
        label: &[u8],
        f: impl FnOnce(ManifestBuilder) -> ManifestBuilder,
    ) -> Release {
        let image = kit.release_app(version, 1, label).unwrap();
        let ids = castellan_agent::device::update_ids(CLASS);
        let id = format!("{CLASS}-{sequence}");
        let fetch = Sequence::new()
            .override_parameters(
                &Parameters::new().uri(&format!("castellan:release/{CLASS}/{sequence}")),
            )
            .directive(Directive::Fetch);
        let b = ManifestBuilder::new(sequence, &ids.vendor_id, &ids.class_id)
            .image(ImageSpec::new(&COMPONENT, &image))
            .sequence(Section::PayloadFetch, fetch)
            .sequence(Section::Install, Sequence::new());
        let envelope = f(b).build(&Signer::Es256(release_key)).unwrap();
        let root = castellan_image::signer_id(&kit.key.public_spki_der());
        let measurement = castellan_image::verify(&mut &image[..], TrustedKey::Sha256OfSpki(root))
            .unwrap()
            .digest
            .as_bytes()
            .to_vec();
        Release {
            id,
            sequence,
            image,
            envelope,
            measurement,
        }
    }
}

/// What the fleet saw and how it behaves; shared with its event task.
#[derive(Default)]
pub struct State {
    /// Registered IAK per device.
    pub iaks: HashMap<String, Vec<u8>>,
    /// Onboarding hellos per device.
    pub hellos: HashMap<String, u32>,
    /// Update status reports (device, body).
    pub statuses: Vec<(String, Value)>,
    /// Fetches (device, offset, length).
    pub fetches: Vec<(String, u64, u32)>,
    /// Telemetry (device, body).
    pub telemetry: Vec<(String, Value)>,
    /// Results sent after evidence (device, updated, reason).
    pub results: Vec<(String, bool, String)>,
    /// The offer per device (re-sent when the device reconnects while downloading).
    pub offers: HashMap<String, Value>,
    /// The release offered to each device.
    pub releases: HashMap<String, Release>,
    /// Chunks served so far.
    pub chunks_served: u64,
    /// Kick the device after this many chunks were served (once).
    pub kick_after_chunks: Option<u64>,
    /// Do not answer fetches at or beyond this offset.
    pub serve_below: Option<u64>,
    /// Nonces of the post-update challenges.
    pub nonces: HashMap<String, Vec<u8>>,
    /// The TUF repository answering `up/tuf/request` (as the server does), if any.
    pub tuf_repository: Option<std::path::PathBuf>,
    /// Leave TUF requests unanswered (a stalling repository).
    pub tuf_silent: bool,
    /// TUF requests received.
    pub tuf_requests: u64,
}

pub struct Fleet {
    pub pki: Arc<Pki>,
    pub broker: Arc<BrokerHandle>,
    pub state: Arc<Mutex<State>>,
    pub release_key: p256::ecdsa::SigningKey,
}

impl Fleet {
    pub async fn start(dir: &Path) -> Fleet {
        let pki = Arc::new(Pki::init(&dir.join("pki"), KeyBackend::Files).unwrap());
        let broker = Arc::new(stand_in_broker(dir, &pki).await);
        let fleet = Fleet {
            pki,
            broker,
            state: Arc::default(),
            release_key: p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap(),
        };
        fleet.spawn_responder();
        fleet
    }

    /// The factory: builds the device and registers it; the answer carries the release key.
    pub async fn provision(&self, dir: &Path, kit: &FirmwareKit, serial: &str) {
        castellan_agent::build_device(dir, kit).unwrap();
        let pki = self.pki.clone();
        let state = self.state.clone();
        let anchor = release_key_hex(&self.release_key);
        // With a TUF repository, the answer carries its current root (as the server's does).
        let tuf_root = state
            .lock()
            .unwrap()
            .tuf_repository
            .as_ref()
            .map(|dir| std::fs::read_to_string(dir.join("metadata/root.json")).unwrap());
        let req = ProvisionRequest {
            serial: serial.into(),
            device_class: CLASS.into(),
            keys: KeyChoice::CryptoService,
        };
        let done = castellan_agent::factory::provision_sim_device_with(
            dir,
            &req,
            move |r: RegistrationRequest| async move {
                let csr = hex::decode(&r.csr).unwrap();
                let cert = pki.issue_idevid(&csr, &r.serial, &r.device_class).unwrap();
                state
                    .lock()
                    .unwrap()
                    .iaks
                    .insert(r.serial.clone(), hex::decode(&r.iak_public_key).unwrap());
                Ok(RegistrationResponse {
                    device_id: r.serial,
                    idevid_pem: cert.pem,
                    chain_pem: pki.chain_pem(CaKind::Manufacturer),
                    mqtt_ca_pem: pki.root_pem(),
                    release_public_key: Some(anchor),
                    mqtt: None,
                    tuf_root,
                })
            },
        )
        .await
        .unwrap();
        assert!(done.release_trust_anchor);
    }

    pub fn agent_config(&self, dir: &Path) -> AgentConfig {
        let mut cfg = AgentConfig::new(
            dir,
            Endpoint::parse(&self.broker.local_addr().to_string()).unwrap(),
            Arc::new(|l: &str| println!("agent: {l}")),
        );
        cfg.interval = Duration::from_millis(300);
        cfg.count = None;
        cfg.backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        cfg.max_failures = Some(20);
        cfg.onboard_timeout = Duration::from_secs(10);
        cfg
    }

    /// Publishes an offer of `release` to `device` for `campaign`.
    pub async fn offer(
        &self,
        device: &str,
        campaign: &str,
        release: &Release,
        https: Option<HttpsSource>,
    ) {
        let offer = json!({
            "campaign_id": campaign,
            "release_id": release.id,
            "version": "1.1.0",
            "manifest": hex::encode(&release.envelope),
            "image_size": release.image.len(),
            "chunk_size": CHUNK,
            "https": https,
        });
        {
            let mut s = self.state.lock().unwrap();
            s.offers.insert(device.into(), offer.clone());
            s.releases.insert(device.into(), release.clone());
        }
        self.broker
            .publish(
                &format!("dev/{device}/down/update/offer"),
                offer.to_string(),
                1,
            )
            .await
            .unwrap();
    }

    /// Waits until `cond` holds on the fleet's state.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&State) -> bool) {
        for _ in 0..1200 {
            if cond(&self.state.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = self.state.lock().unwrap();
        panic!(
            "timed out waiting for {what}; statuses {:?}",
            s.statuses
                .iter()
                .map(|(_, v)| format!("{} {}", v["state"], v["offset"]))
                .collect::<Vec<_>>()
        );
    }

    /// The states `device` reported, in order.
    pub fn states(&self, device: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .statuses
            .iter()
            .filter(|(d, _)| d == device)
            .map(|(_, v)| v["state"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The last status `device` reported in state `state`.
    pub fn status(&self, device: &str, state: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .statuses
            .iter()
            .rev()
            .find(|(d, v)| d == device && v["state"] == state)
            .map(|(_, v)| v.clone())
    }

    fn spawn_responder(&self) {
        let mut events = self.broker.subscribe_events();
        let (pki, state, broker) = (self.pki.clone(), self.state.clone(), self.broker.clone());
        tokio::spawn(async move {
            while let Some(m) = events.recv().await {
                let id = m.device_id.clone();
                let topic = m.topic.clone();
                let body: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                let mut out: Vec<(String, Vec<u8>)> = Vec::new();
                let mut kick = false;
                {
                    let mut s = state.lock().unwrap();
                    if topic.ends_with("/up/onboard/hello") {
                        *s.hellos.entry(id.clone()).or_default() += 1;
                        let nonce = [0x5a; 32];
                        s.nonces.insert(format!("onboard:{id}"), nonce.to_vec());
                        out.push((
                            format!("dev/{id}/down/onboard/challenge"),
                            json!({"nonce": hex::encode(nonce)}).to_string().into(),
                        ));
                    } else if topic.ends_with("/up/onboard/evidence") {
                        let csr = hex::decode(body["csr"].as_str().unwrap()).unwrap();
                        let cert = pki.issue_ldevid(LdevidKey::Csr(&csr), &id).unwrap();
                        let result = json!({"accepted": true, "ldevid_pem": cert.pem,
                            "chain_pem": pki.chain_pem(CaKind::Operational),
                            "policy": {"publish": [], "subscribe": []}});
                        out.push((
                            format!("dev/{id}/down/onboard/result"),
                            result.to_string().into(),
                        ));
                    } else if topic.ends_with("/telemetry") {
                        s.telemetry.push((id.clone(), body));
                    } else if topic.ends_with("/status") && body["online"] == true {
                        // Re-offer to a device that reconnects in the middle of a download.
                        let last = s
                            .statuses
                            .iter()
                            .rev()
                            .find(|(d, _)| *d == id)
                            .map(|(_, v)| v["state"].as_str().unwrap_or("").to_string());
                        if matches!(last.as_deref(), Some("accepted" | "downloading"))
                            && let Some(o) = s.offers.get(&id)
                        {
                            out.push((format!("dev/{id}/down/update/offer"), o.to_string().into()));
                        }
                    } else if topic.ends_with("/up/update/status") {
                        s.statuses.push((id.clone(), body.clone()));
                        if body["state"] == "confirmed" {
                            let nonce: Vec<u8> = (0..32u8).map(|i| i ^ 0xc3).collect();
                            s.nonces.insert(id.clone(), nonce.clone());
                            out.push((
                                format!("dev/{id}/down/update/challenge"),
                                json!({"campaign_id": body["campaign_id"],
                                    "nonce": hex::encode(nonce)})
                                .to_string()
                                .into(),
                            ));
                        }
                    } else if topic.ends_with("/up/update/fetch") {
                        let offset = body["offset"].as_u64().unwrap();
                        let length = body["length"].as_u64().unwrap() as u32;
                        s.fetches.push((id.clone(), offset, length));
                        let serve = s.serve_below.is_none_or(|b| offset < b);
                        if let (true, Some(r)) = (serve, s.releases.get(&id)) {
                            let end =
                                (offset + u64::from(length.min(CHUNK))).min(r.image.len() as u64);
                            let bytes = &r.image[offset as usize..end as usize];
                            out.push((
                                format!("dev/{id}/down/update/chunk/{}", r.id),
                                encode_chunk(offset, bytes),
                            ));
                            s.chunks_served += 1;
                            if s.kick_after_chunks == Some(s.chunks_served) {
                                s.kick_after_chunks = None;
                                kick = true;
                            }
                        }
                    } else if topic.ends_with("/up/tuf/request") {
                        s.tuf_requests += 1;
                        let request = TufRequest::parse(&m.payload).unwrap();
                        if let (false, Some(dir)) = (s.tuf_silent, &s.tuf_repository) {
                            let answer = castellan_tuf::mqtt::answer(dir, &request);
                            out.push((format!("dev/{id}/down/tuf/response"), answer.to_payload()));
                        }
                    } else if topic.ends_with("/up/update/evidence") {
                        let token = hex::decode(body["token"].as_str().unwrap()).unwrap();
                        let key = castellan_attest::VerificationKey::Es256(
                            p256::ecdsa::VerifyingKey::from_sec1_bytes(&s.iaks[&id]).unwrap(),
                        );
                        let (updated, reason) = match castellan_attest::verify_token(&token, &key) {
                            Ok(claims) if claims.nonce != s.nonces[&id] => {
                                (false, "nonce mismatch".to_string())
                            }
                            Ok(claims) => {
                                let app = claims.software_components.last().unwrap();
                                let want = &s.releases[&id].measurement;
                                if &app.measurement_value == want {
                                    (true, "attested the release's measurement".to_string())
                                } else {
                                    (false, "another measurement".to_string())
                                }
                            }
                            Err(e) => (false, format!("token refused: {e}")),
                        };
                        s.results.push((id.clone(), updated, reason.clone()));
                        out.push((
                            format!("dev/{id}/down/update/result"),
                            json!({"campaign_id": body["campaign_id"], "updated": updated,
                                "reason": reason})
                            .to_string()
                            .into(),
                        ));
                    }
                }
                for (t, p) in out {
                    let _ = broker.publish(&t, p, 1).await;
                }
                if kick {
                    let _ = broker.kick(&id).await;
                }
            }
        });
    }
}

/// A device provisioned (with the release key), booted once, and the kit it was built from.
pub async fn device(fleet: &Fleet, dir: &Path, serial: &str) -> FirmwareKit {
    let kit = FirmwareKit::load_or_create(&dir.join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    fleet.provision(&dir.join(serial), &kit, serial).await;
    kit
}

/// A running agent's task.
pub type AgentTask =
    tokio::task::JoinHandle<Result<castellan_agent::AgentReport, castellan_agent::AgentError>>;

/// Runs the agent of `dir`, its configuration changed by `edit`, until the returned `Notify`
/// is notified.
pub fn spawn_agent_with(
    fleet: &Fleet,
    dir: &Path,
    edit: impl FnOnce(&mut AgentConfig),
) -> (Arc<tokio::sync::Notify>, AgentTask) {
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut cfg = fleet.agent_config(dir);
    cfg.stop = Some(stop.clone());
    edit(&mut cfg);
    (stop, tokio::spawn(castellan_agent::run(cfg)))
}
