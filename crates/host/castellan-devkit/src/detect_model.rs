//! The simulated devices' detector model and its installation: a small model over the gate's
//! event vocabulary (`castellan_gate_api::sensor`) in which every successful gate entry, every
//! ordinary service error and every application event is ordinary, and anything else (a
//! refused pointer, a refused argument, an application-event flood, a fault) is surprising.
//!
//! It is built by hand (output biases only: the prediction does not depend on the context),
//! not trained: the simulated devices have no recorded normal traces yet. A device class with
//! traces ships a model from `castellan detect train` the same way: its bytes with the device,
//! its SHA-256 digest from the signed source (here, this catalog).

use std::sync::OnceLock;
use std::time::Instant;

use castellan_detect::{Dimensions, ModelParts, Scales, encode, encoded_len, model_digest};
use castellan_gate_api::{Op, RateLimit, app_kind, sensor};
use castellan_services::DetectConfig;

/// Events in the sliding window.
pub const WINDOW: u16 = 8;
/// The alarm threshold on the window score (milli-nats): one foreign event in a window of
/// eight crosses it.
pub const ALARM_MILLI: u32 = 1000;

/// The vocabulary: gate entries that succeeded or failed in a service (result classes 0 and
/// 3) of every operation and size class, and every application event.
pub fn vocabulary() -> Vec<u16> {
    let mut ids = Vec::new();
    for op in Op::ALL {
        for size in 0..4u16 {
            for result in [0u16, 3] {
                ids.push(sensor::GATE_BASE + (op.id() as u16 & 0x3f) * 16 + size * 4 + result);
            }
        }
    }
    for kind in 1..=app_kind::MAX {
        for class in 0..8u16 {
            ids.push(sensor::APP_BASE + kind as u16 * 8 + class);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The model's bytes.
pub fn model_bytes() -> Vec<u8> {
    let ids = vocabulary();
    let v = ids.len() as u16;
    let dims = Dimensions {
        context: 1,
        embed: 1,
        hidden: 1,
        vocab: v,
        window: WINDOW,
    };
    let n = usize::from(v);
    // Known classes bias 0, the unseen class −10 nats: a known event costs ln(V), an unseen
    // one about 10 nats more.
    let mut output_bias = vec![0i16; n + 1];
    output_bias[n] = -1000;
    let parts = ModelParts {
        dims,
        scales: Scales {
            embed: 1.0,
            hidden_weights: 1.0,
            hidden_bias: 1.0,
            output_weights: 1.0,
            output_bias: 0.01,
            surprise_cap: 20.0,
            threshold: (n as f32).ln() + 0.5,
        },
        ids: &ids,
        embeddings: &vec![0i8; n + 2],
        hidden_weights: &[0i8],
        hidden_bias: &[0i16],
        output_weights: &vec![0i8; n + 1],
        output_bias: &output_bias,
    };
    let mut out = vec![0u8; encoded_len(&dims)];
    let len = encode(&parts, &mut out).expect("the simulated devices' model encodes");
    out.truncate(len);
    out
}

/// The model, built once for the process (static: the services borrow it as a device's flash).
pub fn model() -> &'static [u8] {
    static MODEL: OnceLock<Vec<u8>> = OnceLock::new();
    MODEL.get_or_init(model_bytes)
}

/// Milliseconds since the process started (the simulated devices' monotonic clock).
pub fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The detector configuration of a simulated device: this model, its digest (the catalog is
/// the signed source on the host), the alarm threshold and the default rate limit.
pub fn config() -> DetectConfig {
    DetectConfig {
        model: model(),
        expected_digest: model_digest(model()),
        alarm_milli: ALARM_MILLI,
        rate: RateLimit::DEFAULT,
        clock: clock_ms,
    }
}
