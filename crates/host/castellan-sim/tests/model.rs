//! Property tests: random operation sequences on `SimFlash` against a plain model of NOR flash
//! rules, and random power cuts that must only touch the range of the operation they hit.

use castellan_hal::{HalError, NorFlash, ReadNorFlash};
use castellan_sim::{FaultPhase, FaultPlan, FlashConfig, SimFlash};
use proptest::prelude::*;

const SIZE: u32 = 4096;
const SECTOR: u32 = 256;

#[derive(Debug, Clone)]
enum Op {
    Write { offset: u32, len: u32, salt: u8 },
    Erase { from: u32, to: u32 },
    Read { offset: u32, len: u32 },
}

/// Offsets and lengths that are mostly aligned and in bounds, sometimes not.
fn op(ws: u32) -> impl Strategy<Value = Op> {
    let units = SIZE / ws;
    let sectors = SIZE / SECTOR;
    let jitter = prop_oneof![8 => Just(0u32), 1 => 0u32..ws.max(2)];
    prop_oneof![
        4 => (0..units + 2, 0u32..6, jitter.clone(), any::<u8>()).prop_map(move |(u, n, j, salt)| {
            Op::Write { offset: u * ws + j, len: n * ws + j, salt }
        }),
        1 => (0..sectors + 1, 0u32..3, jitter.clone()).prop_map(move |(s, n, j)| Op::Erase {
            from: s * SECTOR + j,
            to: (s + n) * SECTOR,
        }),
        2 => (0..SIZE + 8, 0u32..64).prop_map(|(offset, len)| Op::Read { offset, len }),
    ]
}

fn data(len: u32, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// The rules, written as plainly as possible.
struct Model {
    bytes: Vec<u8>,
    written: Vec<bool>,
    ws: u32,
    erased: u8,
}

impl Model {
    fn new(c: FlashConfig) -> Self {
        Model {
            bytes: vec![c.erased_value; SIZE as usize],
            written: vec![false; (SIZE / c.write_size) as usize],
            ws: c.write_size,
            erased: c.erased_value,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Vec<u8>, HalError> {
        match *op {
            Op::Write { offset, len, salt } => {
                if u64::from(offset) + u64::from(len) > u64::from(SIZE) {
                    return Err(HalError::OutOfBounds);
                }
                if offset % self.ws != 0 || len % self.ws != 0 {
                    return Err(HalError::NotAligned);
                }
                let units = (offset / self.ws) as usize..((offset + len) / self.ws) as usize;
                if units.clone().any(|u| self.written[u]) {
                    return Err(HalError::NotErased);
                }
                let d = data(len, salt);
                self.bytes[offset as usize..(offset + len) as usize].copy_from_slice(&d);
                units.for_each(|u| self.written[u] = true);
                Ok(vec![])
            }
            Op::Erase { from, to } => {
                if from > to || to > SIZE {
                    return Err(HalError::OutOfBounds);
                }
                if from % SECTOR != 0 || to % SECTOR != 0 {
                    return Err(HalError::NotAligned);
                }
                self.bytes[from as usize..to as usize].fill(self.erased);
                let units = (from / self.ws) as usize..(to / self.ws) as usize;
                units.for_each(|u| self.written[u] = false);
                Ok(vec![])
            }
            Op::Read { offset, len } => {
                if u64::from(offset) + u64::from(len) > u64::from(SIZE) {
                    return Err(HalError::OutOfBounds);
                }
                Ok(self.bytes[offset as usize..(offset + len) as usize].to_vec())
            }
        }
    }
}

fn run(f: &mut SimFlash, op: &Op) -> Result<Vec<u8>, HalError> {
    match *op {
        Op::Write { offset, len, salt } => f.write(offset, &data(len, salt)).map(|_| vec![]),
        Op::Erase { from, to } => f.erase(from, to).map(|_| vec![]),
        Op::Read { offset, len } => {
            let mut b = vec![0; len as usize];
            f.read(offset, &mut b).map(|_| b)
        }
    }
}

/// Byte range an operation may change.
fn footprint(op: &Op) -> std::ops::Range<usize> {
    match *op {
        Op::Write { offset, len, .. } => offset as usize..(offset + len) as usize,
        Op::Erase { from, to } => from as usize..to as usize,
        Op::Read { .. } => 0..0,
    }
}

fn config_and_ops() -> impl Strategy<Value = (FlashConfig, Vec<Op>)> {
    (0usize..8).prop_flat_map(|i| {
        let c = FlashConfig::matrix(SIZE, SECTOR).nth(i).unwrap();
        (Just(c), proptest::collection::vec(op(c.write_size), 1..40))
    })
}

proptest! {
    #[test]
    fn random_ops_match_the_model((c, ops) in config_and_ops()) {
        let mut f = SimFlash::new(c).unwrap();
        let mut m = Model::new(c);
        for op in &ops {
            prop_assert_eq!(run(&mut f, op), m.apply(op), "{:?} on {:?}", op, c);
            prop_assert_eq!(f.contents(), &m.bytes[..]);
        }
        for (u, w) in m.written.iter().enumerate() {
            prop_assert_eq!(f.is_unit_written(u), *w);
        }
    }

    #[test]
    fn a_cut_only_touches_the_operation_it_hits(
        (c, ops) in config_and_ops(),
        at in 0u64..20,
        phase in prop_oneof![
            Just(FaultPhase::Before), Just(FaultPhase::Torn), Just(FaultPhase::After)
        ],
        seed in any::<u64>(),
    ) {
        let mut f = SimFlash::new(c).unwrap();
        let mut m = Model::new(c);
        f.rail().arm(FaultPlan::new(at, phase).with_seed(seed));
        for op in &ops {
            let before = m.bytes.clone();
            let expected = m.apply(op);
            match run(&mut f, op) {
                Err(HalError::PowerLoss) => {
                    prop_assert!(expected.is_ok(), "a refused op was cut: {:?}", op);
                    let range = footprint(op);
                    let got = f.contents();
                    for (i, (g, b)) in got.iter().zip(&before).enumerate() {
                        // Erases are cut per sector: later sectors may keep old data.
                        let allowed = range.contains(&i);
                        prop_assert!(allowed || g == b, "byte {} outside {:?} changed", i, range);
                    }
                    match phase {
                        FaultPhase::Before if matches!(op, Op::Write { .. }) => {
                            prop_assert_eq!(got, &before[..])
                        }
                        FaultPhase::After if matches!(op, Op::Write { .. }) => {
                            prop_assert_eq!(got, &m.bytes[..])
                        }
                        _ => {}
                    }
                    // Off until power-up.
                    prop_assert_eq!(run(&mut f, &Op::Read { offset: 0, len: 1 }),
                        Err(HalError::PowerLoss));
                    prop_assert!(!f.rail().is_on());
                    return Ok(());
                }
                got => {
                    prop_assert_eq!(got, expected);
                    prop_assert_eq!(f.contents(), &m.bytes[..]);
                }
            }
        }
    }
}
