//! The detector's sensors in the secure world (`no_std`, no heap, no panics): every gate entry,
//! every application event, refused pointer, fault and PC sample becomes one event id of a
//! fixed vocabulary, and [`Sensors`] keeps the counters a detection report carries.
//!
//! ```text
//!  event id (u16)
//!  0    .. 1024   gate entry      op id × 16 + size class × 4 + result class
//!  1024 .. 1072   application     1024 + kind × 8 + argument class (size class, sensor, topic)
//!  1100           application-event flood (the rate limiter's own event)
//!  1104 .. 1112   fault           1104 + fault kind
//!  1120 .. 1136   PC sample       1120 + region (the sampled PC's 1/16 of the watched range)
//! ```
//!
//! The dispatcher ([`crate::dispatch`]) reports every gate entry to the platform's
//! [`Detector`] after the call ran (the non-secure side cannot skip it: the report is in the
//! secure code path of every call). Application events (`AppEvent`, op 27) pass a token
//! bucket: beyond its burst, events are counted but not scored one by one, and the first event
//! of each flood is scored as [`APP_FLOOD`], so a flood cannot dilute the trace and is itself
//! an event.

use crate::{Op, Reg, psa};

/// First id of the gate entries.
pub const GATE_BASE: u16 = 0;
/// First id of the application events.
pub const APP_BASE: u16 = 1024;
/// The id scored once per flood of application events.
pub const APP_FLOOD: u16 = 1100;
/// First id of the faults.
pub const FAULT_BASE: u16 = 1104;
/// First id of the PC samples.
pub const PC_BASE: u16 = 1120;
/// Regions the PC sampler tells apart.
pub const PC_REGIONS: u32 = 16;

/// Kinds of application event (`AppEvent`'s first argument).
pub mod app_kind {
    /// A network send of `arg` bytes.
    pub const NET_SEND: u32 = 1;
    /// A network receive of `arg` bytes.
    pub const NET_RECV: u32 = 2;
    /// A read of sensor `arg`.
    pub const SENSOR_READ: u32 = 3;
    /// A flash write of `arg` bytes.
    pub const FLASH_WRITE: u32 = 4;
    /// A message on topic id `arg` (the application's own numbering).
    pub const TOPIC: u32 = 5;
    /// The largest kind.
    pub const MAX: u32 = 5;
}

/// Kinds of fault the firmware reports ([`Sensors::fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum FaultKind {
    /// HardFault.
    Hard = 0,
    /// MemManage (MPU violation).
    MemManage = 1,
    /// BusFault.
    Bus = 2,
    /// UsageFault.
    Usage = 3,
    /// SecureFault (a non-secure access to secure memory).
    Secure = 4,
    /// A watchdog reset.
    Watchdog = 5,
}

/// Size class of a length: 0 for none, 1 up to 64 bytes, 2 up to 512, 3 beyond.
pub const fn size_class(len: u32) -> u16 {
    match len {
        0 => 0,
        1..=64 => 1,
        65..=512 => 2,
        _ => 3,
    }
}

/// Result class of a gate status: 0 success, 1 refused pointer, 2 refused length or buffer,
/// 3 any other error.
pub const fn result_class(status: i32) -> u16 {
    if status >= 0 {
        0
    } else if status == psa::ERROR_PROGRAMMER_ERROR {
        1
    } else if status == psa::ERROR_INVALID_ARGUMENT || status == psa::ERROR_BUFFER_TOO_SMALL {
        2
    } else {
        3
    }
}

/// The event id of a gate entry: `op` with registers `args` returned `status`.
pub fn gate_event(op: Op, args: [u32; 4], status: i32) -> u16 {
    let mut len = 0u32;
    for (reg, value) in op.regs().iter().zip(args) {
        if matches!(reg, Reg::InLen | Reg::OutCap) {
            len = len.max(value);
        }
        if let Reg::OutFixed(n) = reg {
            len = len.max(u32::try_from(*n).unwrap_or(u32::MAX));
        }
    }
    let op = (op.id() & 0x3f) as u16;
    GATE_BASE + op * 16 + size_class(len) * 4 + result_class(status)
}

/// The event id of an application event, `None` for an unknown kind.
pub fn app_event(kind: u32, arg: u32) -> Option<u16> {
    if kind == 0 || kind > app_kind::MAX {
        return None;
    }
    let class = match kind {
        app_kind::SENSOR_READ | app_kind::TOPIC => (arg & 7) as u16,
        _ => size_class(arg),
    };
    Some(APP_BASE + (kind as u16) * 8 + class)
}

/// The counters a detection report carries, since the device started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Gate entries seen.
    pub gate_entries: u32,
    /// Gate entries whose pointer was refused.
    pub refused_pointers: u32,
    /// Gate entries refused otherwise (argument, state, service error).
    pub refused_calls: u32,
    /// Application events accepted and scored.
    pub app_events: u32,
    /// Application events beyond the rate limit (counted, not scored one by one).
    pub app_flooded: u32,
    /// Floods (each one scored as [`APP_FLOOD`]).
    pub floods: u32,
    /// Faults reported.
    pub faults: u32,
    /// PC samples taken.
    pub pc_samples: u32,
}

impl Counters {
    /// Number of counters.
    pub const LEN: usize = 8;

    /// The counters in report order.
    pub fn as_array(&self) -> [u32; Self::LEN] {
        [
            self.gate_entries,
            self.refused_pointers,
            self.refused_calls,
            self.app_events,
            self.app_flooded,
            self.floods,
            self.faults,
            self.pc_samples,
        ]
    }

    /// The counters from [`Counters::as_array`]'s order.
    pub fn from_array(a: [u32; Self::LEN]) -> Self {
        let [
            gate_entries,
            refused_pointers,
            refused_calls,
            app_events,
            app_flooded,
            floods,
            faults,
            pc_samples,
        ] = a;
        Counters {
            gate_entries,
            refused_pointers,
            refused_calls,
            app_events,
            app_flooded,
            floods,
            faults,
            pc_samples,
        }
    }
}

/// The application events' rate limit: a burst of `burst` events, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed back to back.
    pub burst: u32,
    /// Events allowed per second on average.
    pub per_second: u32,
}

impl RateLimit {
    /// 32 back to back, 16 per second: a sensor node's normal pace with room to spare.
    pub const DEFAULT: RateLimit = RateLimit {
        burst: 32,
        per_second: 16,
    };
}

/// The sensors' state: counters and the application events' token bucket.
#[derive(Clone, Copy, Debug)]
pub struct Sensors {
    counters: Counters,
    limit: RateLimit,
    /// Tokens × 1000 (so a refill of a few milliseconds counts).
    tokens_milli: u64,
    last_ms: u64,
    flooding: bool,
}

impl Sensors {
    /// Sensors with a full bucket at time `now_ms`.
    pub fn new(limit: RateLimit, now_ms: u64) -> Self {
        Sensors {
            counters: Counters::default(),
            limit,
            tokens_milli: u64::from(limit.burst) * 1000,
            last_ms: now_ms,
            flooding: false,
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A gate entry: its event id, counted.
    pub fn gate_entry(&mut self, op: Op, args: [u32; 4], status: i32) -> u16 {
        let c = &mut self.counters;
        c.gate_entries = c.gate_entries.saturating_add(1);
        match result_class(status) {
            0 => {}
            1 => c.refused_pointers = c.refused_pointers.saturating_add(1),
            _ => c.refused_calls = c.refused_calls.saturating_add(1),
        }
        gate_event(op, args, status)
    }

    /// An application event at `now_ms`: the id to score (`Ok(None)` while a flood goes on),
    /// `Err(INVALID_ARGUMENT)` for an unknown kind.
    pub fn app_event(&mut self, kind: u32, arg: u32, now_ms: u64) -> Result<Option<u16>, i32> {
        let id = app_event(kind, arg).ok_or(psa::ERROR_INVALID_ARGUMENT)?;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let cap = u64::from(self.limit.burst) * 1000;
        let refill = elapsed.saturating_mul(u64::from(self.limit.per_second));
        self.tokens_milli = self.tokens_milli.saturating_add(refill).min(cap);
        let c = &mut self.counters;
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            self.flooding = false;
            c.app_events = c.app_events.saturating_add(1);
            return Ok(Some(id));
        }
        c.app_flooded = c.app_flooded.saturating_add(1);
        if self.flooding {
            return Ok(None);
        }
        self.flooding = true;
        c.floods = c.floods.saturating_add(1);
        Ok(Some(APP_FLOOD))
    }

    /// A fault the firmware's handler reports: its event id, counted.
    pub fn fault(&mut self, kind: FaultKind) -> u16 {
        self.counters.faults = self.counters.faults.saturating_add(1);
        FAULT_BASE + kind as u16
    }

    /// A PC sample (`pc` in the watched range `base .. base + size`; outside it counts as the
    /// last region): its event id, counted.
    pub fn pc_sample(&mut self, pc: u32, base: u32, size: u32) -> u16 {
        self.counters.pc_samples = self.counters.pc_samples.saturating_add(1);
        let step = (size / PC_REGIONS).max(1);
        let region = match pc.checked_sub(base) {
            Some(off) if off < size => (off / step).min(PC_REGIONS - 1),
            _ => PC_REGIONS - 1,
        };
        PC_BASE + region as u16
    }
}

/// The detector behind the gate: the platform's (secure) sensors, scorer and report signer,
/// fed by the dispatcher. A platform without one returns `None` from
/// [`crate::GateBackend::detector`], and the detection operations return `NOT_SUPPORTED`.
pub trait Detector {
    /// A gate entry: `op` with registers `args` returned `status` ([`Sensors::gate_entry`],
    /// then scored).
    fn gate_entry(&mut self, op: Op, args: [u32; 4], status: i32);
    /// An application event ([`Sensors::app_event`], then scored unless a flood goes on);
    /// `Err(INVALID_ARGUMENT)` for an unknown kind.
    fn app_event(&mut self, kind: u32, arg: u32) -> Result<(), i32>;
    /// Produces a signed detection report into `out`; its length.
    fn report(&mut self, out: &mut [u8]) -> Result<usize, i32>;
    /// The detector's state.
    fn status(&mut self) -> DetectStatus;
}

/// Encoded size of [`DetectStatus`].
pub const DETECT_STATUS_SIZE: usize = 4 * 5 + 8 + 4 * Counters::LEN + 32;

/// Longest detection report the gate returns.
pub const DETECT_REPORT_CAP: usize = 384;

/// The detector's state, as `DetectStatus` (op 29) reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectStatus {
    /// Bit 0: a model runs; bit 1: the alarm threshold was crossed since the last report.
    pub flags: u32,
    /// Events scored since the device started.
    pub events: u32,
    /// The current window score (milli-nats of excess surprise).
    pub window_milli: u32,
    /// The highest window score since the last report.
    pub max_window_milli: u32,
    /// The alarm threshold on the window score.
    pub alarm_milli: u32,
    /// The last report's counter (0: none yet).
    pub report_counter: u64,
    /// The sensors' counters.
    pub counters: Counters,
    /// SHA-256 of the model.
    pub model_digest: [u8; 32],
}

impl DetectStatus {
    /// Flag: a model runs.
    pub const MODEL: u32 = 1;
    /// Flag: the alarm threshold was crossed since the last report.
    pub const CROSSED: u32 = 2;

    /// True when the alarm threshold was crossed since the last report.
    pub fn crossed(&self) -> bool {
        self.flags & Self::CROSSED != 0
    }

    /// Its little-endian encoding.
    pub fn encode(&self) -> [u8; DETECT_STATUS_SIZE] {
        let mut out = [0u8; DETECT_STATUS_SIZE];
        let mut at = 0;
        let mut put = |b: &[u8]| {
            if let Some(d) = out.get_mut(at..at + b.len()) {
                d.copy_from_slice(b);
            }
            at += b.len();
        };
        for v in [
            self.flags,
            self.events,
            self.window_milli,
            self.max_window_milli,
            self.alarm_milli,
        ] {
            put(&v.to_le_bytes());
        }
        put(&self.report_counter.to_le_bytes());
        for v in self.counters.as_array() {
            put(&v.to_le_bytes());
        }
        put(&self.model_digest);
        out
    }

    /// The record `encode` wrote.
    pub fn decode(b: &[u8; DETECT_STATUS_SIZE]) -> Self {
        let mut at = 0;
        let mut take = |n: usize| {
            let s = b.get(at..at + n).unwrap_or_default();
            at += n;
            s
        };
        let mut u32s = [0u32; 5];
        for v in &mut u32s {
            *v = u32::from_le_bytes(take(4).try_into().unwrap_or_default());
        }
        let report_counter = u64::from_le_bytes(take(8).try_into().unwrap_or_default());
        let mut counters = [0u32; Counters::LEN];
        for v in &mut counters {
            *v = u32::from_le_bytes(take(4).try_into().unwrap_or_default());
        }
        let model_digest = take(32).try_into().unwrap_or_default();
        let [flags, events, window_milli, max_window_milli, alarm_milli] = u32s;
        DetectStatus {
            flags,
            events,
            window_milli,
            max_window_milli,
            alarm_milli,
            report_counter,
            counters: Counters::from_array(counters),
            model_digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_stay_in_their_ranges() {
        for op in Op::ALL {
            for len in [0u32, 1, 64, 65, 512, 513, u32::MAX] {
                for status in [0, 5, psa::ERROR_PROGRAMMER_ERROR, psa::ERROR_GENERIC_ERROR] {
                    let id = gate_event(*op, [len; 4], status);
                    assert!(id < APP_BASE, "{op:?}");
                }
            }
        }
        for kind in 1..=app_kind::MAX {
            for arg in [0, 1, 7, 100, 4096, u32::MAX] {
                let id = app_event(kind, arg).unwrap();
                assert!((APP_BASE..APP_FLOOD).contains(&id));
            }
        }
        assert_eq!(app_event(0, 1), None);
        assert_eq!(app_event(app_kind::MAX + 1, 1), None);
    }

    #[test]
    fn a_refused_pointer_is_its_own_event() {
        let mut s = Sensors::new(RateLimit::DEFAULT, 0);
        let ok = s.gate_entry(Op::ItsGet, [1, 0x2000_0000, 64, 0], 10);
        let refused = s.gate_entry(
            Op::ItsGet,
            [1, 0x1000_0000, 64, 0],
            psa::ERROR_PROGRAMMER_ERROR,
        );
        assert_ne!(ok, refused);
        assert_eq!(s.counters().refused_pointers, 1);
        assert_eq!(s.counters().gate_entries, 2);
    }

    #[test]
    fn attack_application_event_flood_is_itself_an_event() {
        let mut s = Sensors::new(RateLimit::DEFAULT, 0);
        let mut scored = 0;
        let mut floods = 0;
        for _ in 0..10_000 {
            match s.app_event(app_kind::NET_SEND, 100, 5).unwrap() {
                Some(APP_FLOOD) => floods += 1,
                Some(_) => scored += 1,
                None => {}
            }
        }
        // The burst is scored, the rest is one flood event: the trace is not diluted.
        assert_eq!(scored, RateLimit::DEFAULT.burst);
        assert_eq!(floods, 1);
        let c = s.counters();
        assert_eq!(c.app_flooded, 10_000 - RateLimit::DEFAULT.burst);
        assert_eq!(c.floods, 1);
        // After a quiet second the bucket has refilled: normal events score again.
        assert_ne!(
            s.app_event(app_kind::NET_SEND, 100, 1005).unwrap(),
            Some(APP_FLOOD)
        );
    }

    #[test]
    fn pc_samples_and_faults_are_counted() {
        let mut s = Sensors::new(RateLimit::DEFAULT, 0);
        assert_eq!(s.pc_sample(0x1000, 0x1000, 0x1000), PC_BASE);
        assert_eq!(s.pc_sample(0x1fff, 0x1000, 0x1000), PC_BASE + 15);
        assert_eq!(s.pc_sample(0, 0x1000, 0x1000), PC_BASE + 15);
        assert_eq!(s.pc_sample(5, 0, 0), PC_BASE + 15);
        assert_eq!(s.fault(FaultKind::Secure), FAULT_BASE + 4);
        assert_eq!(s.counters().pc_samples, 4);
        assert_eq!(s.counters().faults, 1);
    }

    #[test]
    fn status_round_trips() {
        let s = DetectStatus {
            flags: 3,
            events: 7,
            window_milli: 1,
            max_window_milli: 2,
            alarm_milli: 3,
            report_counter: u64::MAX - 1,
            counters: Counters::from_array([1, 2, 3, 4, 5, 6, 7, 8]),
            model_digest: [9; 32],
        };
        assert_eq!(DetectStatus::decode(&s.encode()), s);
    }
}
