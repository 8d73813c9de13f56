//! The secure world of a simulated device: one thread that boots the device, starts its secure
//! services and then serves calls through a narrow gate, as the TrustZone call gate does on the
//! hardware. The rest of the agent (MQTT, TLS, the factory station) runs in the normal world
//! and only ever sees call results: public keys, signatures, tokens, never a private key.
//!
//! ```text
//!  normal world (tokio tasks, rustls)            secure world (one thread)
//!    SecureWorld::call(|svc| svc.sign_hash(..)) ──▶ SecureServices<SimFlash, OtpCounterMap, SimRng>
//!          ◀────────────── result ──────────────── (device saved to its directory after each call)
//! ```
//!
//! Each call runs on the thread that owns the services, so the services need not be `Send`;
//! the handle is `Clone + Send + Sync` and a call blocks the caller until the answer arrives
//! (a few milliseconds: a TLS handshake's signature, an attestation token).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use castellan_boot::Measurement;
use castellan_services::{OtpCounterMap, Platform, SecureServices, ServiceError};
use castellan_sim::{SimDevice, SimFlash, SimOtp, SimRng};

use crate::device;
use crate::error::AgentError;

/// The secure services of a simulated device, owning copies of its flash, fuses and RNG.
pub type SimServices = SecureServices<SimFlash, OtpCounterMap<SimOtp>, SimRng>;

/// A unit of work for the secure world.
type Job = Box<dyn FnOnce(&mut SimServices) + Send>;

enum Msg {
    Call(Job),
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

/// A service error as an [`AgentError`], with its PSA status.
pub fn service_err(e: ServiceError) -> AgentError {
    AgentError::Service(format!("{e} (PSA status {})", e.psa_status()))
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
            .map_err(|e| AgentError::Device(format!("cannot start the secure world: {e}")))?;
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

    /// Runs `f` on the secure services and returns its result; the device is saved after it.
    pub fn call<T, F>(&self, f: F) -> Result<T, AgentError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SimServices) -> T + Send + 'static,
    {
        let (rtx, rrx) = mpsc::channel();
        let job: Job = Box::new(move |svc| {
            let _ = rtx.send(f(svc));
        });
        self.tx
            .send(Msg::Call(job))
            .map_err(|_| AgentError::SecureWorldGone)?;
        rrx.recv().map_err(|_| AgentError::SecureWorldGone)
    }

    /// Like [`SecureWorld::call`] for calls that return a service result.
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
    let (mut dev, mut svc) = match started {
        Ok((dev, svc, info)) => {
            let _ = ready.send(Ok(info));
            (dev, svc)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Call(job) => {
                job(&mut svc);
                // A failed save shows up at the next call that needs the state; keep serving.
                let _ = save(&mut dev, &svc);
            }
            Msg::Stop(reply) => {
                let _ = reply.send(save(&mut dev, &svc));
                return;
            }
        }
    }
    let _ = save(&mut dev, &svc);
}

fn start_services(dir: &Path) -> Result<(SimDevice, SimServices, BootInfo), AgentError> {
    let (mut dev, layout) = device::open(dir)?;
    let report = device::boot_device(&mut dev, &layout)?;
    // The boot may have moved images (an update); keep that before anything else.
    dev.save()
        .map_err(|e| AgentError::Device(format!("cannot save: {e}")))?;
    let config = device::services_config(&dev, &layout)?;
    let counter = OtpCounterMap::castellan(dev.otp.clone())
        .map_err(|e| AgentError::Device(format!("fuse map: {e:?}")))?;
    let platform = Platform::new(dev.flash.clone(), counter, dev.rng.clone());
    let svc = SecureServices::from_boot_report(platform, config, &report).map_err(service_err)?;
    let info = BootInfo {
        lifecycle: report.lifecycle,
        measurements: report.boot_record.iter().copied().collect(),
        iak_public_key: svc.attestation_public_key(),
        confirmed: report.confirmed,
    };
    Ok((dev, svc, info))
}

/// Copies the services' flash, fuses and RNG state back into the device and saves it.
fn save(dev: &mut SimDevice, svc: &SimServices) -> Result<(), AgentError> {
    let p = svc.platform();
    dev.flash = p.flash.clone();
    dev.otp = p.counter.inner().clone();
    dev.rng = p.rng.clone();
    dev.save()
        .map_err(|e| AgentError::Device(format!("cannot save: {e}")))
}
