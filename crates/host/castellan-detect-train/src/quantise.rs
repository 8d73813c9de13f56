//! From the float model to the device's int8 model file (per-tensor symmetric scales).

use castellan_detect::{Dimensions, ModelError, ModelParts, Scales, encode, encoded_len};

use crate::net::Shape;

fn scale_of(values: &[f32], levels: f32) -> f32 {
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    max.max(1e-6) / levels
}

fn to_i8(values: &[f32]) -> (Vec<i8>, f32) {
    let scale = scale_of(values, 127.0);
    let q = values
        .iter()
        .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scale)
}

fn to_i16(values: &[f32]) -> (Vec<i16>, f32) {
    let scale = scale_of(values, 32767.0);
    let q = values
        .iter()
        .map(|v| (v / scale).round().clamp(-32767.0, 32767.0) as i16)
        .collect();
    (q, scale)
}

/// Encode the float parameters as a model file.
pub(crate) fn quantise(
    shape: &Shape,
    window: u16,
    surprise_cap: f32,
    threshold: f32,
    ids: &[u16],
    params: &[f32],
) -> Result<Vec<u8>, ModelError> {
    let o = shape.offsets();
    let (embeddings, s_emb) = to_i8(&params[o[0]..o[1]]);
    let (hidden_weights, s_w1) = to_i8(&params[o[1]..o[2]]);
    let (hidden_bias, s_b1) = to_i16(&params[o[2]..o[3]]);
    let (output_weights, s_w2) = to_i8(&params[o[3]..o[4]]);
    let (output_bias, s_b2) = to_i16(&params[o[4]..o[5]]);
    let narrow = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
    let dims = Dimensions {
        context: u8::try_from(shape.context).unwrap_or(u8::MAX),
        embed: u8::try_from(shape.embed).unwrap_or(u8::MAX),
        hidden: narrow(shape.hidden),
        vocab: narrow(shape.vocab),
        window,
    };
    let parts = ModelParts {
        dims,
        scales: Scales {
            embed: s_emb,
            hidden_weights: s_w1,
            hidden_bias: s_b1,
            output_weights: s_w2,
            output_bias: s_b2,
            surprise_cap,
            threshold,
        },
        ids,
        embeddings: &embeddings,
        hidden_weights: &hidden_weights,
        hidden_bias: &hidden_bias,
        output_weights: &output_weights,
        output_bias: &output_bias,
    };
    let mut out = vec![0u8; encoded_len(&dims)];
    let n = encode(&parts, &mut out)?;
    out.truncate(n);
    Ok(out)
}
