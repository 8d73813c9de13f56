//! The `Digest` hasher over the assembly's block function: a block-level core (state and block
//! count) wrapped by the `digest` crate's buffered hasher, the same construction as
//! `sha2::Sha256`.

use digest::array::Array;
use digest::block_api::{
    Block, BlockSizeUser, Buffer, BufferKindUser, Eager, FixedOutputCore, OutputSizeUser,
    UpdateCore,
};
use digest::consts::{U32, U64};
use digest::{HashMarker, Output, Reset};

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const INITIAL_STATE: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

#[allow(unsafe_code)]
unsafe extern "C" {
    /// OpenSSL's `sha256_block_data_order` (integer path): compresses `num` ≥ 1 consecutive
    /// 64-byte blocks at `data` (any alignment) into the eight state words at `state`.
    fn sha256_block_data_order_nohw(state: *mut u32, data: *const u8, num: usize);
}

/// Compresses every block of `blocks` into `state` (nothing for an empty slice: the assembly
/// processes at least one block per call).
// With the declaration above, the crate's one `unsafe`: the call into the assembly.
#[allow(unsafe_code)]
fn compress(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    if blocks.is_empty() {
        return;
    }
    // Safety: `state` is eight writable words; `blocks` is `blocks.len()` ≥ 1 contiguous
    // 64-byte blocks, exactly what the function reads (it reads words unaligned, which the
    // Armv7-M and Armv8-M Mainline cores allow for normal memory). It keeps no pointer.
    unsafe {
        sha256_block_data_order_nohw(state.as_mut_ptr(), blocks.as_ptr().cast(), blocks.len())
    }
}

/// Block-level SHA-256: the chaining state and the number of blocks compressed so far.
#[derive(Clone)]
pub struct Sha256Core {
    state: [u32; 8],
    blocks: u64,
}

impl Default for Sha256Core {
    fn default() -> Self {
        Sha256Core {
            state: INITIAL_STATE,
            blocks: 0,
        }
    }
}

impl HashMarker for Sha256Core {}

impl BlockSizeUser for Sha256Core {
    type BlockSize = U64;
}

impl BufferKindUser for Sha256Core {
    type BufferKind = Eager;
}

impl OutputSizeUser for Sha256Core {
    type OutputSize = U32;
}

impl UpdateCore for Sha256Core {
    fn update_blocks(&mut self, blocks: &[Block<Self>]) {
        self.blocks = self.blocks.wrapping_add(blocks.len() as u64);
        compress(&mut self.state, Array::cast_slice_to_core(blocks));
    }
}

impl FixedOutputCore for Sha256Core {
    fn finalize_fixed_core(&mut self, buffer: &mut Buffer<Self>, out: &mut Output<Self>) {
        let bit_len =
            8u64.wrapping_mul((buffer.get_pos() as u64).wrapping_add(self.blocks.wrapping_mul(64)));
        let state = &mut self.state;
        buffer.len64_padding_be(bit_len, |block| compress(state, &[block.0]));
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    }
}

impl Reset for Sha256Core {
    fn reset(&mut self) {
        *self = Sha256Core::default();
    }
}

digest::buffer_fixed!(
    /// SHA-256 hasher whose compression runs on OpenSSL's ARMv4 assembly.
    pub struct Sha256(Sha256Core);
    impl: BaseFixedTraits Default Clone HashMarker Reset FixedOutputReset;
);
