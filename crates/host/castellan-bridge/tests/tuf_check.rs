//! The QEMU device's bridge checks every offer against the fleet's TUF repository before the
//! device sees a byte of it: the real bridge session (`castellan_bridge::run`) with the TUF
//! root its factory stores, the real broker (mutual TLS, the device's LDevID), and a stand-in
//! for the fleet server's MQTT half that answers the device's `up/tuf/request` from the
//! repository directory (as `castellan serve` does) and records its status reports.
//!
//! The device is a stand-in for QEMU (`Qemu::program`): a script that records each run and
//! answers as the secure partition does when it refuses a manifest. An offer TUF does not
//! list must be refused (`failed`, "TUF: …") without a single run and without a download
//! buffer written; the same bridge must hand a listed offer to the device. The whole path in
//! QEMU is `cargo xtask qemu-campaign` (the same attack, against the real firmware).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan_agent::identity::{DeviceKey as _, DeviceRecord, IdentityFiles, KeyStorage};
use castellan_agent::{Endpoint, PemKey};
use castellan_bridge::protocol::{TufRequest, WireMessage as _};
use castellan_bridge::{Qemu, QemuDevice, SessionConfig};
use castellan_pki::{CaKind, KeyBackend, LdevidKey, Pki};
use castellan_testkit::fleet::stand_in_broker;
use castellan_testkit::tuf_repo::PublishedRepo;
use serde_json::{Value, json};

const SERIAL: &str = "an505-0042";
const CLASS: &str = castellan_bridge::DEVICE_CLASS;

/// What the stand-in server saw.
#[derive(Default)]
struct Seen {
    /// Status reports, in order.
    statuses: Vec<Value>,
    /// TUF requests answered.
    tuf_requests: u64,
}

/// A stand-in QEMU: records its arguments in `runs.log` beside itself and refuses the manifest
/// in the secure partition's words.
fn stand_in_qemu(dir: &Path) -> PathBuf {
    let script = dir.join("qemu-system-arm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\n\
             echo '[secure] update: begin refused: the manifest does not authenticate with the \
             release trust anchor'\nexit 0\n",
            dir.join("runs.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The bridge's state directory of an onboarded device whose factory stored the repository's
/// root: its LDevID (from the fleet's operational CA) and key, the fleet's CA bundle.
fn onboarded_bridge_state(dir: &Path, pki: &Pki, tuf_root: &str) {
    let files = IdentityFiles::of(dir);
    std::fs::create_dir_all(files.dir()).unwrap();
    let identity = files.dir().join("idevid-key.pem");
    PemKey::load_or_generate(&identity).unwrap();
    let operational = PemKey::load_or_generate(&files.operational_key_pem()).unwrap();
    let csr = castellan_agent::identity::build_csr(&operational, SERIAL).unwrap();
    let ldevid = pki.issue_ldevid(LdevidKey::Csr(&csr), SERIAL).unwrap();
    castellan_agent::factory::check_certificate(
        &ldevid.pem,
        SERIAL,
        &operational.public_key(),
        "LDevID",
    )
    .unwrap();
    std::fs::write(files.ldevid(), &ldevid.pem).unwrap();
    std::fs::write(files.ldevid_chain(), pki.chain_pem(CaKind::Operational)).unwrap();
    std::fs::write(files.mqtt_ca(), pki.root_pem()).unwrap();
    files
        .write_record(&DeviceRecord {
            serial: SERIAL.into(),
            device_class: CLASS.into(),
            firmware_version: "1.0.0".into(),
            keys: KeyStorage::PemFile { identity },
        })
        .unwrap();
    castellan_agent::factory::install_tuf_root(&files, tuf_root).unwrap();
}

fn offer(campaign: &str, release: &str, envelope: &[u8]) -> String {
    json!({
        "campaign_id": campaign,
        "release_id": release,
        "version": "2.0.0",
        "manifest": hex::encode(envelope),
        "image_size": 4096,
        "chunk_size": 1024,
        "https": null,
    })
    .to_string()
}

async fn wait_for_status(seen: &Mutex<Seen>, campaign: &str) -> Value {
    for _ in 0..600 {
        if let Some(s) = seen
            .lock()
            .unwrap()
            .statuses
            .iter()
            .find(|s| s["campaign_id"] == campaign && s["state"] == "failed")
        {
            return s.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no failed report for {campaign}: {:?}",
        seen.lock().unwrap().statuses
    );
}

fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_release_not_listed_by_tuf_refused_by_the_qemu_device() {
    let t = tempfile::tempdir().unwrap();
    let pki = Arc::new(Pki::init(&t.path().join("pki"), KeyBackend::Files).unwrap());
    let broker = Arc::new(stand_in_broker(t.path(), &pki).await);
    let tuf = PublishedRepo::publish(&t.path().join("tuf"), CLASS).unwrap();
    let listed = b"a SUIT envelope the class's release team lists".to_vec();
    tuf.list("an505-v1-2.suit", &listed).unwrap();
    // Signed with the release key (the device would accept it), never listed in TUF.
    let unlisted = b"a SUIT envelope signed with a stolen release key".to_vec();

    let state = t.path().join("device/bridge");
    let root = std::fs::read_to_string(t.path().join("tuf/metadata/root.json")).unwrap();
    onboarded_bridge_state(&state, &pki, &root);
    let qemu_dir = t.path().join("device");
    std::fs::write(qemu_dir.join("castellan-flash.bin"), [0xff; 16]).unwrap();
    std::fs::write(qemu_dir.join("castellan-otp.bin"), [0xff; 16]).unwrap();
    let mut qemu = Qemu::new(t.path().join("castellan-rom.elf"), &qemu_dir);
    qemu.program = stand_in_qemu(t.path()).display().to_string();

    // The server's MQTT half: TUF answers from the repository directory, reports recorded.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut events = broker.subscribe_events();
    let (b, s, repo) = (broker.clone(), seen.clone(), t.path().join("tuf"));
    let online = Arc::new(tokio::sync::Notify::new());
    let on = online.clone();
    tokio::spawn(async move {
        while let Some(m) = events.recv().await {
            if m.topic.ends_with("/up/tuf/request") {
                s.lock().unwrap().tuf_requests += 1;
                let request = TufRequest::parse(&m.payload).unwrap();
                let answer = castellan_tuf::mqtt::answer(&repo, &request);
                let topic = format!("dev/{}/down/tuf/response", m.device_id);
                b.publish(&topic, answer.to_payload(), 1).await.unwrap();
            } else if m.topic.ends_with("/up/update/status") {
                let body = serde_json::from_slice(&m.payload).unwrap();
                s.lock().unwrap().statuses.push(body);
            } else if m.topic.ends_with("/status") && m.payload.ends_with(b"true}") {
                on.notify_one();
            }
        }
    });

    let stop = Arc::new(AtomicBool::new(false));
    let cfg = SessionConfig {
        mqtt: Endpoint::parse(&broker.local_addr().to_string()).unwrap(),
        state_dir: state.clone(),
        log: Arc::new(|l: &str| println!("bridge: {l}")),
        stop: stop.clone(),
    };
    let device = QemuDevice::new(qemu);
    let session = tokio::spawn(async move { castellan_bridge::run(&cfg, &device).await });
    tokio::time::timeout(Duration::from_secs(30), online.notified())
        .await
        .expect("the bridge goes online with the device's LDevID");
    let offers = format!("dev/{SERIAL}/down/update/offer");

    // Not listed: refused by the bridge's TUF check, reported like the agent's refusal, and
    // the device never runs: no QEMU run, no download buffer written.
    let body = offer("camp-unlisted", "an505-v1-3", &unlisted);
    broker.publish(&offers, body, 1).await.unwrap();
    let failed = wait_for_status(&seen, "camp-unlisted").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.starts_with("TUF: "), "{reason}");
    assert!(
        reason.contains("not listed") || reason.contains("not found"),
        "{reason}"
    );
    assert_eq!(failed["offset"], 0);
    assert!(
        runs(t.path()).is_empty(),
        "the device ran: {:?}",
        runs(t.path())
    );
    assert!(!qemu_dir.join("download.bin").exists());
    let asked = seen.lock().unwrap().tuf_requests;
    assert!(asked >= 4, "root, timestamp, snapshot, targets: {asked}");

    // Listed but a different envelope under the listed name (digest and length): refused too.
    let mut swapped = listed.clone();
    swapped.push(0);
    let body = offer("camp-swapped", "an505-v1-2", &swapped);
    broker.publish(&offers, body, 1).await.unwrap();
    let failed = wait_for_status(&seen, "camp-swapped").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("TUF: ") && reason.contains("not the one TUF lists"),
        "{reason}"
    );
    assert!(
        runs(t.path()).is_empty(),
        "the device ran: {:?}",
        runs(t.path())
    );

    // Listed: the bridge hands it to the device (one `ota check` run), whose refusal is
    // reported in its own words: the check only ever refuses, the device still decides.
    let body = offer("camp-listed", "an505-v1-2", &listed);
    broker.publish(&offers, body, 1).await.unwrap();
    let failed = wait_for_status(&seen, "camp-listed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("release trust anchor"), "{reason}");
    let ran = runs(t.path());
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(ran[0].contains("ota check"), "{ran:?}");
    assert_eq!(
        std::fs::read(qemu_dir.join("download.bin")).unwrap(),
        castellan_bridge::update_download(&listed, &[])
    );

    stop.store(true, Ordering::SeqCst);
    let report = tokio::time::timeout(Duration::from_secs(30), session)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.offers, 3);
    assert_eq!(report.statuses.len(), 3, "{:?}", report.statuses);
    // The device's TUF client kept what it verified beside its root.
    assert!(state.join("identity/tuf/timestamp.json").exists());
}
