//! The float model the trainer learns: embeddings of the last `k` events, one tanh hidden
//! layer, a softmax over the classes; hand-written forward and backward passes and Adam.
//!
//! Classes: `0..vocab` the known ids, `vocab` "unseen", `vocab + 1` the padding before a trace
//! starts (an input only). The parameter vector is flat, in the model file's tensor order.

/// The shape of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) context: usize,
    pub(crate) embed: usize,
    pub(crate) hidden: usize,
    pub(crate) vocab: usize,
}

impl Shape {
    pub(crate) fn classes(&self) -> usize {
        self.vocab + 1
    }
    pub(crate) fn unseen(&self) -> u16 {
        self.vocab as u16
    }
    pub(crate) fn padding(&self) -> u16 {
        (self.vocab + 1) as u16
    }
    fn inputs(&self) -> usize {
        self.context * self.embed
    }
    /// Offsets of the tensors in the flat parameter vector: embeddings, hidden weights, hidden
    /// biases, output weights, output biases, end.
    pub(crate) fn offsets(&self) -> [usize; 6] {
        let emb = (self.vocab + 2) * self.embed;
        let w1 = self.hidden * self.inputs();
        let b1 = self.hidden;
        let w2 = self.classes() * self.hidden;
        let b2 = self.classes();
        [
            0,
            emb,
            emb + w1,
            emb + w1 + b1,
            emb + w1 + b1 + w2,
            emb + w1 + b1 + w2 + b2,
        ]
    }
    pub(crate) fn params(&self) -> usize {
        self.offsets()[5]
    }
}

/// Per-example buffers, allocated once.
pub(crate) struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    z: Vec<f32>,
    dh: Vec<f32>,
}

impl Scratch {
    pub(crate) fn new(s: &Shape) -> Self {
        Self {
            x: vec![0.0; s.inputs()],
            h: vec![0.0; s.hidden],
            z: vec![0.0; s.classes()],
            dh: vec![0.0; s.hidden],
        }
    }
}

/// Split the flat vector into its five tensors.
fn split(s: &Shape) -> [std::ops::Range<usize>; 5] {
    let o = s.offsets();
    [o[0]..o[1], o[1]..o[2], o[2]..o[3], o[3]..o[4], o[4]..o[5]]
}

/// Negative log-likelihood of `target` after `context`; with `grad`, accumulates the gradient.
pub(crate) fn example(
    s: &Shape,
    p: &[f32],
    context: &[u16],
    target: u16,
    sc: &mut Scratch,
    grad: Option<&mut [f32]>,
) -> f32 {
    let [emb, w1, b1, w2, b2] = split(s);
    let e = s.embed;
    for (slot, &class) in sc.x.chunks_exact_mut(e).zip(context) {
        let row = usize::from(class) * e;
        slot.copy_from_slice(&p[emb.start + row..emb.start + row + e]);
    }
    let n_in = s.inputs();
    for (j, h) in sc.h.iter_mut().enumerate() {
        let row = &p[w1.start + j * n_in..w1.start + (j + 1) * n_in];
        let pre: f32 = row.iter().zip(&sc.x).map(|(a, b)| a * b).sum::<f32>() + p[b1.start + j];
        *h = pre.tanh();
    }
    let hn = s.hidden;
    let mut max = f32::NEG_INFINITY;
    for (c, z) in sc.z.iter_mut().enumerate() {
        let row = &p[w2.start + c * hn..w2.start + (c + 1) * hn];
        *z = row.iter().zip(&sc.h).map(|(a, b)| a * b).sum::<f32>() + p[b2.start + c];
        max = max.max(*z);
    }
    let sum: f32 = sc.z.iter().map(|z| (z - max).exp()).sum();
    let lse = max + sum.ln();
    let loss = lse - sc.z[usize::from(target)];
    let Some(g) = grad else { return loss };
    // Output layer: dz = softmax - onehot.
    sc.dh.iter_mut().for_each(|d| *d = 0.0);
    for c in 0..s.classes() {
        let mut dz = (sc.z[c] - lse).exp();
        if c == usize::from(target) {
            dz -= 1.0;
        }
        g[b2.start + c] += dz;
        let base = w2.start + c * hn;
        for k in 0..hn {
            g[base + k] += dz * sc.h[k];
            sc.dh[k] += dz * p[base + k];
        }
    }
    // Hidden layer through tanh, then into the embeddings of the context.
    for j in 0..hn {
        let da = sc.dh[j] * (1.0 - sc.h[j] * sc.h[j]);
        g[b1.start + j] += da;
        let base = w1.start + j * n_in;
        for (i, (slot, &class)) in sc.x.chunks_exact(e).zip(context).enumerate() {
            let erow = emb.start + usize::from(class) * e;
            for d in 0..e {
                g[base + i * e + d] += da * slot[d];
                g[erow + d] += da * p[base + i * e + d];
            }
        }
    }
    loss
}

/// Adam (Kingma & Ba 2015) over the flat parameter vector.
pub(crate) struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One step with the gradient `g` (already averaged), learning rate `lr`.
    pub(crate) fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for i in 0..p.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g[i] * g[i];
            p[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}
