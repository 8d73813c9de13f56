//! The edge detector in the secure partition (feature `detect`): the gate's sensors
//! (`castellan_gate_api::Sensors`) feed `castellan-detect`'s scorer over a model the platform
//! installs, and the detector signs reports (`castellan-detect-report`) with the attestation
//! key under a monotonic counter kept in trusted storage.
//!
//! ```text
//!  dispatch ──gate entry──▶ Sensors ──event id──▶ Scorer(model) ──window score──▶ max, crossed
//!  AppEvent ──rate limit──▶    │                                                    │
//!  fault / PC sample (firmware) ┘          DetectReport: counter+1 → ITS, then sign ┘
//! ```
//!
//! # How the model is bound to a release
//!
//! [`SecureServices::install_detector`] takes the model's bytes and the SHA-256 digest the
//! device holds from a signed source ([`DetectConfig::expected_digest`]): in the firmware, a
//! constant of the secure image (signed by the release key, verified by the boot chain and
//! measured into every attestation token); on the simulated device, its catalog entry. A model
//! whose digest differs is refused, so non-secure code cannot swap the model for one that
//! finds its behaviour normal. Binding the digest to the SUIT manifest (a component digest the
//! update client checks) is not built yet.
//!
//! # The report counter
//!
//! The counter is raised in trusted storage (namespace `Detect`, replay-protected) before the
//! report is signed: a power loss between the two loses a number, never repeats one, and the
//! fleet sees the lost number as a gap. Each report is one trusted-storage write.

use castellan_detect::{Model, Scorer, model_digest};
use castellan_detect_report::{COUNTERS, Report, encode_report, report_len};
use castellan_gate_api::{DetectStatus, Detector, FaultKind, Op, RateLimit, Sensors, psa};
use castellan_hal::{Flash, MonotonicCounter, RandomSource};

use crate::its::{ItsFlags, Namespace};
use crate::{SecureServices, ServiceError};

/// Trusted-storage uid of the last report's counter (namespace `Detect`).
const ITS_UID_REPORT_COUNTER: u64 = 1;

/// What the platform installs the detector with.
#[derive(Clone, Copy, Debug)]
pub struct DetectConfig {
    /// The model file (`castellan detect train`), in flash or otherwise static memory.
    pub model: &'static [u8],
    /// The model's SHA-256 digest from a signed source (the secure image, the device's
    /// catalog entry): a model with another digest is refused.
    pub expected_digest: [u8; 32],
    /// Alarm threshold on the window score (milli-nats of excess surprise).
    pub alarm_milli: u32,
    /// The application events' rate limit.
    pub rate: RateLimit,
    /// A monotonic millisecond clock (the rate limit's time).
    pub clock: fn() -> u64,
}

/// The detector's state.
pub(crate) struct EdgeDetector {
    scorer: Scorer<'static>,
    digest: [u8; 32],
    alarm_milli: u32,
    sensors: Sensors,
    clock: fn() -> u64,
    /// Events scored since the detector started.
    events: u64,
    /// The first event of the current report period.
    period_first: u64,
    max_window_milli: u32,
    crossed: bool,
    /// The last report's counter.
    last_counter: u64,
}

impl EdgeDetector {
    fn score(&mut self, id: u16) {
        self.scorer.push(id);
        self.events = self.events.saturating_add(1);
        let w = milli(self.scorer.window_score());
        self.max_window_milli = self.max_window_milli.max(w);
        if w >= self.alarm_milli {
            self.crossed = true;
        }
    }
}

/// A score in nats as milli-nats (saturating; NaN as 0).
fn milli(score: f32) -> u32 {
    let m = score * 1000.0;
    if m.is_finite() && m > 0.0 {
        if m >= u32::MAX as f32 {
            u32::MAX
        } else {
            m as u32
        }
    } else {
        0
    }
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> SecureServices<F, C, R> {
    /// Installs the detector: checks the model's digest against the expected one
    /// ([`ServiceError::InvalidSignature`] when it differs), parses it, reads the last report
    /// counter from trusted storage (0 when none; a storage that does not mount fails here).
    pub fn install_detector(&mut self, config: DetectConfig) -> Result<(), ServiceError> {
        self.usable()?;
        let digest = model_digest(config.model);
        if digest != config.expected_digest {
            return Err(ServiceError::InvalidSignature);
        }
        let model = Model::parse(config.model)
            .map_err(|_| ServiceError::InvalidArgument("the detector model does not parse"))?;
        let last_counter = self.read_report_counter()?;
        self.detect = Some(EdgeDetector {
            scorer: Scorer::new(model),
            digest,
            alarm_milli: config.alarm_milli,
            sensors: Sensors::new(config.rate, (config.clock)()),
            clock: config.clock,
            events: 0,
            period_first: 0,
            max_window_milli: 0,
            crossed: false,
            last_counter,
        });
        Ok(())
    }

    /// The detector the gate feeds, when one is installed.
    pub fn detector(&mut self) -> Option<&mut dyn Detector> {
        if self.detect.is_some() {
            Some(self)
        } else {
            None
        }
    }

    /// A fault the firmware's fault handler reports (scored like any event).
    pub fn detect_fault(&mut self, kind: FaultKind) {
        if let Some(d) = self.detect.as_mut() {
            let id = d.sensors.fault(kind);
            d.score(id);
        }
    }

    /// A PC sample of the non-secure world (`pc` in the watched range `base .. base + size`).
    pub fn detect_pc_sample(&mut self, pc: u32, base: u32, size: u32) {
        if let Some(d) = self.detect.as_mut() {
            let id = d.sensors.pc_sample(pc, base, size);
            d.score(id);
        }
    }

    fn read_report_counter(&mut self) -> Result<u64, ServiceError> {
        let its = self.its.as_mut().map_err(|e| *e)?;
        let mut b = [0u8; 8];
        match its.get_in(
            &mut self.platform,
            Namespace::Detect,
            ITS_UID_REPORT_COUNTER,
            0,
            &mut b,
        ) {
            Ok(8) => Ok(u64::from_le_bytes(b)),
            Ok(_) => Err(ServiceError::StorageCorrupt("the detection report counter")),
            Err(ServiceError::DoesNotExist) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Signs the report of the current period into `out`; its length.
    pub fn detect_report(&mut self, out: &mut [u8]) -> Result<usize, ServiceError> {
        self.usable()?;
        let d = self
            .detect
            .as_ref()
            .ok_or(ServiceError::NotSupported("no detector is installed"))?;
        let counter = d
            .last_counter
            .checked_add(1)
            .ok_or(ServiceError::CounterExhausted)?;
        let counters: [u32; COUNTERS] = d.sensors.counters().as_array();
        let report = Report {
            counter,
            first_event: d.period_first,
            events: d.events.saturating_sub(d.period_first),
            score_milli: d.max_window_milli,
            crossed: d.crossed,
            counters,
            model_digest: d.digest,
            instance_id: self.attest.instance_id(),
            alarm_milli: d.alarm_milli,
        };
        let needed = report_len(&report).map_err(|_| ServiceError::Crypto("report size"))?;
        if out.len() < needed {
            return Err(ServiceError::BufferTooSmall { needed });
        }
        let its = self.its.as_mut().map_err(|e| *e)?;
        its.set_in(
            &mut self.platform,
            Namespace::Detect,
            ITS_UID_REPORT_COUNTER,
            &counter.to_le_bytes(),
            ItsFlags::NONE,
        )?;
        let attest = &self.attest;
        let platform = &mut self.platform;
        let mut signer = |tbs: &[u8]| -> Result<[u8; 64], i32> {
            attest.sign_es256(tbs, platform).map_err(|e| e.psa_status())
        };
        let n = encode_report(&report, &mut signer, out)
            .map_err(|_| ServiceError::Crypto("the detection report could not be signed"))?;
        if let Some(d) = self.detect.as_mut() {
            d.last_counter = counter;
            d.period_first = d.events;
            d.max_window_milli = 0;
            d.crossed = false;
        }
        Ok(n)
    }

    /// The detector's state (flags 0 when none is installed).
    pub fn detect_status(&self) -> DetectStatus {
        match &self.detect {
            None => DetectStatus::default(),
            Some(d) => DetectStatus {
                flags: DetectStatus::MODEL | if d.crossed { DetectStatus::CROSSED } else { 0 },
                events: u32::try_from(d.events).unwrap_or(u32::MAX),
                window_milli: milli(d.scorer.window_score()),
                max_window_milli: d.max_window_milli,
                alarm_milli: d.alarm_milli,
                report_counter: d.last_counter,
                counters: d.sensors.counters(),
                model_digest: d.digest,
            },
        }
    }
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> Detector for SecureServices<F, C, R> {
    fn gate_entry(&mut self, op: Op, args: [u32; 4], status: i32) {
        if let Some(d) = self.detect.as_mut() {
            let id = d.sensors.gate_entry(op, args, status);
            d.score(id);
        }
    }

    fn app_event(&mut self, kind: u32, arg: u32) -> Result<(), i32> {
        let d = self.detect.as_mut().ok_or(psa::ERROR_NOT_SUPPORTED)?;
        let now = (d.clock)();
        if let Some(id) = d.sensors.app_event(kind, arg, now)? {
            d.score(id);
        }
        Ok(())
    }

    fn report(&mut self, out: &mut [u8]) -> Result<usize, i32> {
        self.detect_report(out).map_err(|e| e.psa_status())
    }

    fn status(&mut self) -> DetectStatus {
        self.detect_status()
    }
}
