//! The secure world of a simulated device: one thread that boots the device, starts its secure
//! services and then serves calls through the device's call gate, as the TrustZone call gate
//! does on the hardware. The rest of the agent (MQTT, TLS, the factory station) runs in the
//! normal world and only ever sees call results: public keys, signatures, tokens, never a
//! private key.
//!
//! ```text
//!  normal world (tokio tasks, rustls)                    secure world (one thread)
//!    world.with_gate(|g| g.sign_hash(id, &digest)) ──▶ op + arguments ──▶ simulated NS memory
//!       (SecureGate: castellan_gate_api)                 castellan_gate_api::dispatch (the
//!                                                        firmware's checks) ──▶ SecureServices
//!          ◀──────────── status, outputs ─────────────── (device saved after each call)
//! ```
//!
//! Each call runs on the thread that owns the services, so the services need not be `Send`;
//! the handle is `Clone + Send + Sync` and a call blocks the caller until the answer arrives
//! (a few milliseconds: a TLS handshake's signature, an attestation token). A refused call
//! carries the secure side's reason ([`Refused`], read with the gate's `LastRefusal`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use castellan_boot::{BootReport, Measurement};
use castellan_gate_api::{
    self as gate, Arg, GateError, Op, SecureGate, TOKEN_CAP, UPDATE_BLOCK_CAP, psa, refusal_kind,
};
use castellan_services::{OtpCounterMap, Platform, SecureServices, ServiceError, UpdateStatus};
use castellan_sim::{SimDevice, SimFlash, SimOtp, SimRng};
use castellan_simgate::{OwnedArg, SimNsMemory, SimSecure};

use crate::device;
use crate::error::AgentError;

/// The secure services of a simulated device, owning copies of its flash, fuses and RNG.
pub type SimServices = SecureServices<SimFlash, OtpCounterMap<SimOtp>, SimRng>;

/// The secure side of the device's gate.
type Secure = SimSecure<SimFlash, OtpCounterMap<SimOtp>, SimRng>;

/// A gate call's answer: its status, its outputs and, when it was refused, why (read with
/// `LastRefusal` right after it, before any other call).
type Answer = (i32, Vec<OwnedArg>, Option<gate::Refusal>);

/// A look at the services from outside the gate (a debug probe on the secure world).
type Probe = Box<dyn FnOnce(&mut SimServices) + Send>;

enum Msg {
    /// A gate call: the operation, its arguments, where to send the answer.
    Gate(Op, Vec<OwnedArg>, mpsc::Sender<Answer>),
    Probe(Probe),
    Stop(mpsc::Sender<Result<(), AgentError>>),
}

/// What the boot chain established, as the normal world may know it.
#[derive(Debug, Clone)]
pub struct BootInfo {
    /// The lifecycle state.
    pub lifecycle: castellan_boot::Lifecycle,
    /// The measurements of the boot record, bootloader first.
    pub measurements: Vec<Measurement>,
    /// The attestation public key (SEC1 uncompressed), derived from this boot's CDI_Attest.
    pub iak_public_key: [u8; 65],
    /// True when the running image is confirmed.
    pub confirmed: bool,
}

impl BootInfo {
    /// The measurement of the application (the last entry), if any.
    pub fn application(&self) -> Option<&Measurement> {
        self.measurements.last()
    }

    /// The application's version as `major.minor.revision` (what telemetry reports).
    pub fn firmware_version(&self) -> String {
        self.application()
            .map(|m| {
                let v = m.version;
                format!("{}.{}.{}", v.major, v.minor, v.revision)
            })
            .unwrap_or_else(|| "unknown".into())
    }
}

/// A call the secure side refused: its PSA status and the services' own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The PSA status.
    pub status: i32,
    /// The whole description (the services' error).
    pub text: String,
    /// The reason alone (for an update refusal, without "update refused: ").
    pub reason: String,
    /// For a manifest whose sequence number is not newer than the installed one: offered and
    /// installed sequence numbers.
    pub not_newer: Option<(u64, u64)>,
}

impl Refused {
    /// As an [`AgentError`], with its PSA status.
    pub fn to_error(&self) -> AgentError {
        AgentError::Service(self.clone())
    }
}

/// Handle on the secure world of one simulated device. Dropping the last handle stops the
/// thread (the device was saved after each call).
#[derive(Clone)]
pub struct SecureWorld {
    tx: mpsc::Sender<Msg>,
    boot: std::sync::Arc<BootInfo>,
    dir: PathBuf,
}

impl std::fmt::Debug for SecureWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureWorld")
            .field("dir", &self.dir)
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

/// Why the secure side refused the call that returned `e` (`record`: its refusal record).
fn refused(e: GateError, record: Option<&gate::Refusal>) -> Refused {
    match record {
        Some(r) if r.status == e.status() => Refused {
            status: r.status,
            text: r.text().to_string(),
            reason: r.reason().to_string(),
            not_newer: (r.kind == refusal_kind::UPDATE_NOT_NEWER)
                .then_some((r.values[0], r.values[1])),
        },
        // Refused by the gate's own checks (a length, a range): only the status.
        _ => Refused {
            status: e.status(),
            text: e.name().to_string(),
            reason: e.name().to_string(),
            not_newer: None,
        },
    }
}

/// A service error as an [`AgentError`], with its PSA status.
pub fn service_err(e: ServiceError) -> AgentError {
    let text = e.to_string();
    AgentError::Service(Refused {
        status: e.psa_status(),
        reason: text.clone(),
        text,
        not_newer: None,
    })
}

/// The normal world's gate to a [`SecureWorld`]: every call crosses the device's call gate.
#[derive(Debug)]
pub struct WorldGate<'a> {
    world: &'a SecureWorld,
    gone: bool,
    /// Why the last call was refused (when it was, by a service).
    refusal: Option<gate::Refusal>,
}

impl SecureGate for WorldGate<'_> {
    fn invoke(&mut self, op: Op, args: &mut [Arg<'_>]) -> i32 {
        let (tx, rx) = mpsc::channel();
        let owned = OwnedArg::from_args(args);
        if self.world.tx.send(Msg::Gate(op, owned, tx)).is_err() {
            self.gone = true;
            return psa::ERROR_GENERIC_ERROR;
        }
        match rx.recv() {
            Ok((status, owned, refusal)) => {
                OwnedArg::copy_back(&owned, args);
                self.refusal = refusal;
                status
            }
            Err(_) => {
                self.gone = true;
                psa::ERROR_GENERIC_ERROR
            }
        }
    }
}

impl SecureWorld {
    /// Powers on the device saved in `dir`: runs the boot chain, starts the secure services on
    /// a thread of their own and returns once they serve calls (or why the device does not
    /// boot).
    pub fn start(dir: &Path) -> Result<(SecureWorld, JoinHandle<()>), AgentError> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<BootInfo, AgentError>>();
        let path = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("secure-world".into())
            .spawn(move || serve(&path, &ready_tx, &rx))
            .map_err(|e| AgentError::device("cannot start the secure world", e))?;
        let boot = ready_rx.recv().map_err(|_| AgentError::SecureWorldGone)??;
        Ok((
            SecureWorld {
                tx,
                boot: std::sync::Arc::new(boot),
                dir: dir.to_path_buf(),
            },
            thread,
        ))
    }

    /// Powers on the device in `dir` and detaches the secure-world thread (it ends when the
    /// last handle is dropped).
    pub fn power_on(dir: &Path) -> Result<SecureWorld, AgentError> {
        Self::start(dir).map(|(w, _)| w)
    }

    /// What the boot established.
    pub fn boot_info(&self) -> &BootInfo {
        &self.boot
    }

    /// The device directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device's call gate, from the normal world.
    pub fn gate(&self) -> WorldGate<'_> {
        WorldGate {
            world: self,
            gone: false,
            refusal: None,
        }
    }

    /// Runs `f` over the gate; a refused call comes back as [`Refused`] (with the secure
    /// side's reason) for the caller to act on.
    pub fn refusing<T>(
        &self,
        f: impl FnOnce(&mut WorldGate<'_>) -> Result<T, GateError>,
    ) -> Result<Result<T, Refused>, AgentError> {
        let mut g = self.gate();
        let r = f(&mut g);
        if g.gone {
            return Err(AgentError::SecureWorldGone);
        }
        Ok(r.map_err(|e| refused(e, g.refusal.as_ref())))
    }

    /// Runs `f` over the gate; a refused call is an [`AgentError::Service`] with the secure
    /// side's reason.
    pub fn with_gate<T>(
        &self,
        f: impl FnOnce(&mut WorldGate<'_>) -> Result<T, GateError>,
    ) -> Result<T, AgentError> {
        self.refusing(f)?.map_err(|r| r.to_error())
    }

    /// The detector's state (`None` when the secure side runs no detector).
    pub fn detect_status(&self) -> Result<Option<castellan_gate_api::DetectStatus>, AgentError> {
        match self.refusing(|g| g.detect_status())? {
            Ok(s) => Ok(Some(s)),
            Err(r) if r.status == castellan_gate_api::psa::ERROR_NOT_SUPPORTED => Ok(None),
            Err(r) => Err(r.to_error()),
        }
    }

    /// A signed detection report of the period since the last one (the secure side raises its
    /// counter).
    pub fn detect_report(&self) -> Result<Vec<u8>, AgentError> {
        self.with_gate(|g| {
            let mut out = vec![0u8; castellan_gate_api::DETECT_REPORT_CAP];
            let n = g.detect_report(&mut out)?;
            out.truncate(n);
            Ok(out)
        })
    }

    /// An attestation token over `nonce` (PSA initial attestation).
    pub fn attest_token(&self, nonce: &[u8]) -> Result<Vec<u8>, AgentError> {
        self.with_gate(|g| {
            let mut out = vec![0u8; TOKEN_CAP];
            let n = g.attest_token(nonce, &mut out)?;
            out.truncate(n);
            Ok(out)
        })
    }

    /// The update client's state.
    pub fn update_status(&self) -> Result<UpdateStatus, AgentError> {
        let r = self.with_gate(|g| g.update_status())?;
        castellan_services::gate::update_status_of(&r).ok_or_else(|| {
            AgentError::device_state(format!(
                "the secure services report an unknown update state {}",
                r.state
            ))
        })
    }

    /// Writes `data` at `offset` of the update payload, in blocks the gate takes; the bytes
    /// received so far.
    pub fn update_write(
        &self,
        offset: u64,
        data: &[u8],
    ) -> Result<Result<u32, Refused>, AgentError> {
        self.refusing(|g| {
            let mut received = 0;
            let mut at = offset;
            for block in data.chunks(UPDATE_BLOCK_CAP) {
                let off = u32::try_from(at).unwrap_or(u32::MAX);
                received = g.update_write(off, block)?;
                at += block.len() as u64;
            }
            if data.is_empty() {
                received = g.update_write(u32::try_from(offset).unwrap_or(u32::MAX), &[])?;
            }
            Ok(received)
        })
    }

    /// The running application's image (the primary slot): on the hardware the application
    /// reads its own code without the gate.
    pub fn running_image(&self) -> Result<Option<Vec<u8>>, AgentError> {
        self.call(|svc| {
            let part = svc.config().fwu.map(|f| f.layout.primary)?;
            let mut buf = vec![0u8; part.size as usize];
            part.read(&mut svc.platform_mut().flash, 0, &mut buf).ok()?;
            Some(buf)
        })
    }

    /// A probe on the secure world, outside the gate (as a debugger attached to it): runs `f`
    /// on the secure services and returns its result; the device is saved after it. For tests
    /// and inspection: the normal world goes through [`SecureWorld::gate`].
    pub fn call<T, F>(&self, f: F) -> Result<T, AgentError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SimServices) -> T + Send + 'static,
    {
        let (rtx, rrx) = mpsc::channel();
        let probe: Probe = Box::new(move |svc| {
            let _ = rtx.send(f(svc));
        });
        self.tx
            .send(Msg::Probe(probe))
            .map_err(|_| AgentError::SecureWorldGone)?;
        rrx.recv().map_err(|_| AgentError::SecureWorldGone)
    }

    /// Like [`SecureWorld::call`] for probes that return a service result.
    pub fn service<T, F>(&self, f: F) -> Result<T, AgentError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SimServices) -> Result<T, ServiceError> + Send + 'static,
    {
        self.call(f)?.map_err(service_err)
    }

    /// Saves the device and stops the thread (other handles then get
    /// [`AgentError::SecureWorldGone`]).
    pub fn shut_down(&self) -> Result<(), AgentError> {
        let (rtx, rrx) = mpsc::channel();
        self.tx
            .send(Msg::Stop(rtx))
            .map_err(|_| AgentError::SecureWorldGone)?;
        rrx.recv().map_err(|_| AgentError::SecureWorldGone)?
    }
}

/// The secure-world thread: boot, start the services, serve calls.
fn serve(dir: &Path, ready: &mpsc::Sender<Result<BootInfo, AgentError>>, rx: &mpsc::Receiver<Msg>) {
    let started = start_services(dir);
    let (mut dev, mut secure) = match started {
        Ok((dev, secure, info)) => {
            let _ = ready.send(Ok(info));
            (dev, secure)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // The normal world's memory, where its arguments are laid out for each call.
    let mut mem = SimNsMemory::new();
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Gate(op, mut owned, reply) => {
                let mut args = OwnedArg::as_args(&mut owned);
                let status = castellan_simgate::invoke(&mut secure, &mut mem, op, &mut args);
                drop(args);
                let refusal = (status < 0).then(|| last_refusal(&mut secure, &mut mem));
                let _ = reply.send((status, owned, refusal.flatten()));
            }
            Msg::Probe(probe) => probe(secure.services_mut()),
            Msg::Stop(reply) => {
                let _ = reply.send(save(&mut dev, secure.services()));
                return;
            }
        }
        // A failed save shows up at the next call that needs the state; keep serving.
        let _ = save(&mut dev, secure.services());
    }
    let _ = save(&mut dev, secure.services());
}

/// The refusal record of the call just made (through the gate: `LastRefusal`).
fn last_refusal(secure: &mut Secure, mem: &mut SimNsMemory) -> Option<gate::Refusal> {
    let mut b = [0u8; gate::REFUSAL_SIZE];
    let status = castellan_simgate::invoke(secure, mem, Op::LastRefusal, &mut [Arg::Out(&mut b)]);
    (status >= 0).then(|| gate::Refusal::decode(&b))
}

fn start_services(dir: &Path) -> Result<(SimDevice, Secure, BootInfo), AgentError> {
    let (mut dev, layout) = device::open(dir)?;
    let report = device::boot_device(&mut dev, &layout)?;
    // The boot may have moved images (an update); keep that before anything else.
    dev.save()
        .map_err(|e| AgentError::device("cannot save", e))?;
    let config = device::services_config(&dev, &layout)?;
    let counter =
        OtpCounterMap::castellan(dev.otp.clone()).map_err(|e| AgentError::device("fuse map", e))?;
    let platform = Platform::new(dev.flash.clone(), counter, dev.rng.clone());
    let mut svc =
        SecureServices::from_boot_report(platform, config, &report).map_err(service_err)?;
    // The edge detector over the catalog's model; a device whose storage does not mount runs
    // without it (the detection operations then answer NOT_SUPPORTED).
    let _ = svc.install_detector(castellan_devkit::detect_model::config());
    let info = BootInfo {
        lifecycle: report.lifecycle,
        measurements: report.boot_record.iter().copied().collect(),
        iak_public_key: svc.attestation_public_key(),
        confirmed: report.confirmed,
    };
    Ok((dev, SimSecure::new(svc, gate_boot_info(&report)), info))
}

/// The gate's boot record of what the boot chain reported.
fn gate_boot_info(report: &BootReport) -> gate::BootInfo {
    let v = |m: &Measurement| {
        let v = m.version;
        [
            u32::from(v.major),
            u32::from(v.minor),
            u32::from(v.revision),
            v.build,
        ]
    };
    let mut b = gate::BootInfo::zeroed();
    b.version = v(&report.application);
    b.bootloader_version = v(&report.bootloader);
    b.security_counter = report.application.security_counter.unwrap_or(0);
    b.lifecycle = u32::from(report.lifecycle.psa_value());
    b.confirmed = u32::from(report.confirmed);
    b
}

/// Copies the services' flash, fuses and RNG state back into the device and saves it.
fn save(dev: &mut SimDevice, svc: &SimServices) -> Result<(), AgentError> {
    let p = svc.platform();
    dev.flash = p.flash.clone();
    dev.otp = p.counter.inner().clone();
    dev.rng = p.rng.clone();
    dev.save().map_err(|e| AgentError::device("cannot save", e))
}
