//! The gate's operations: one id per operation ([`Op`]), what each of its four 32-bit argument
//! registers holds ([`Reg`]) and the caps the secure side enforces.
//!
//! ```text
//!  op                     r0          r1          r2          r3          result (≥ 0)
//!  ConsoleWrite           text ▷      len ≤ 4096                          0
//!  Command                out ◁       cap                                 length
//!  BootInfo               out ◁       size = 280                          0
//!  AttestToken            nonce ▷     32|48|64    out ◁       cap         length ≤ 1024
//!  AttestPublicKey        out ◁       cap                                 65
//!  FwuStart               size                                            0
//!  FwuWrite               offset      data ▷      len ≤ 256               0
//!  FwuInstall             permanent                                       0
//!  FwuAccept                                                              0
//!  ItsSet                 uid         data ▷      len ≤ 512               0
//!  ItsGet                 uid         out ◁       cap                     length
//!  UpdateAnchor           key ▷       len = 65                            0
//!  UpdateBegin            envelope ▷  len ≤ 1024  now (unix s, 0 = ?)     resume offset
//!  UpdateWrite            offset      data ▷      len ≤ 1024              bytes received
//!  UpdateFinish                                                           1 (reboot)
//!  UpdateCancel                                                           0
//!  UpdateStatus           out ◁       size = 40                           0
//!  SystemReset                                                            (does not return)
//!  PowerOff               code                                            (does not return)
//!  ItsStatus              out ◁       size = 28                           0
//!  IdentityKey            out ◁       cap                                 65
//!  ExportPublicKey        key id      out ◁       cap                     length
//!  SignHash               key id      hash ▷      len = 32    sig ◁ (64)  64
//!  DestroyKey             key id                                          0
//!  GenerateSigningKey     key id                                          0
//!  LastRefusal            out ◁       size = 288                          0
//!  AppEvent               kind        arg                                 0
//!  DetectReport           out ◁       cap                                 length ≤ 384
//!  DetectStatus           out ◁       size = 92                           0
//!  GenerateRandom         out ◁       1 ≤ cap ≤ 256                       cap (all filled)
//!  (▷ read by the secure side, ◁ written by it; every pointer is checked before use)
//! ```

/// Largest attestation token the gate returns.
pub const TOKEN_CAP: usize = 1024;
/// Nonce lengths the attestation service takes (PSA: 32, 48 or 64 bytes).
pub const NONCE_LENS: [usize; 3] = [32, 48, 64];
/// Largest nonce.
pub const NONCE_MAX: usize = 64;
/// Largest SUIT envelope `UpdateBegin` takes (it is copied into secure memory whole).
pub const ENVELOPE_CAP: usize = 1024;
/// Largest block `UpdateWrite` takes in one call.
pub const UPDATE_BLOCK_CAP: usize = 1024;
/// Largest chunk `FwuWrite` takes in one call.
pub const FWU_CHUNK: usize = 256;
/// Largest asset `ItsSet` / `ItsGet` move in one call.
pub const ITS_CHUNK: usize = 512;
/// Longest text `ConsoleWrite` takes in one call.
pub const CONSOLE_MAX: usize = 4096;
/// Most random bytes `GenerateRandom` returns in one call.
pub const RANDOM_CAP: usize = 256;
/// Length of a release trust anchor (`UpdateAnchor`): a P-256 public key, SEC1 uncompressed.
pub const TRUST_ANCHOR_LEN: usize = 65;
/// Length of a public key the gate returns (P-256, SEC1 uncompressed).
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of the hash `SignHash` signs (SHA-256).
pub const HASH_LEN: usize = 32;
/// Length of the signature `SignHash` returns (ECDSA P-256, `r ‖ s`).
pub const SIGNATURE_LEN: usize = 64;

/// What one argument register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// Not used.
    Unused,
    /// A plain integer.
    Int,
    /// The address of input the secure side reads; the length is the next register.
    In,
    /// The length of the input before it.
    InLen,
    /// The address of an output buffer the secure side writes; its capacity is the next
    /// register.
    Out,
    /// The capacity of the output buffer before it.
    OutCap,
    /// The address of an output buffer of a fixed size the operation names.
    OutFixed(usize),
}

macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident = $id:literal, $label:literal, [$($reg:expr),* $(,)?];)*) => {
        /// A gate operation. Its id is the ABI: ids are stable and never reused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u32)]
        pub enum Op {
            $($(#[$doc])* $name = $id,)*
        }

        impl Op {
            /// Every operation, in id order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];

            /// The operation with this id.
            pub const fn from_id(id: u32) -> Option<Op> {
                match id {
                    $($id => Some(Op::$name),)*
                    _ => None,
                }
            }

            /// A short name, for logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Op::$name => $label,)*
                }
            }

            /// What its four argument registers hold.
            pub const fn regs(self) -> [Reg; 4] {
                // Evaluated at compile time only (below): more than four registers fails the
                // build, not a call.
                #[allow(clippy::indexing_slicing)]
                const fn pad<const N: usize>(r: [Reg; N]) -> [Reg; 4] {
                    let mut out = [Reg::Unused; 4];
                    let mut i = 0;
                    while i < N {
                        out[i] = r[i];
                        i += 1;
                    }
                    out
                }
                match self {
                    $(Op::$name => {
                        const REGS: [Reg; 4] = pad([$($reg),*]);
                        REGS
                    })*
                }
            }
        }
    };
}

use Reg::{In, InLen, Int, Out, OutCap, OutFixed};

ops! {
    /// Writes text on the device console.
    ConsoleWrite = 1, "console write", [In, InLen];
    /// The operator's command line for this run.
    Command = 2, "command", [Out, OutCap];
    /// What booted ([`crate::BootInfo`]).
    BootInfo = 3, "boot info", [Out, OutCap];
    /// An attestation token over a nonce (PSA initial attestation).
    AttestToken = 4, "attestation token", [In, InLen, Out, OutCap];
    /// The attestation public key.
    AttestPublicKey = 5, "attestation public key", [Out, OutCap];
    /// Starts a raw candidate image of `size` bytes.
    FwuStart = 6, "fwu start", [Int];
    /// Writes a chunk of the raw candidate at `offset`.
    FwuWrite = 7, "fwu write", [Int, In, InLen];
    /// Requests the candidate's installation (`permanent` ≠ 0: no test run).
    FwuInstall = 8, "fwu install", [Int];
    /// Accepts the running (trial) image.
    FwuAccept = 9, "accept", [];
    /// `psa_its_set` for asset `uid`.
    ItsSet = 10, "its set", [Int, In, InLen];
    /// `psa_its_get` for asset `uid`.
    ItsGet = 11, "its get", [Int, Out, OutCap];
    /// Provisions the release trust anchor (write-once).
    UpdateAnchor = 12, "trust anchor", [In, InLen];
    /// Starts or resumes an update from a SUIT envelope; `now` is unix seconds (0: unknown).
    UpdateBegin = 13, "begin", [In, InLen, Int];
    /// Writes the next payload block at `offset`.
    UpdateWrite = 14, "payload", [Int, In, InLen];
    /// Verifies the payload and installs it for a trial run.
    UpdateFinish = 15, "finish", [];
    /// Abandons the update in progress.
    UpdateCancel = 16, "cancel", [];
    /// The update client's state ([`crate::UpdateStatus`]).
    UpdateStatus = 17, "update status", [Out, OutCap];
    /// Resets the device.
    SystemReset = 18, "system reset", [];
    /// Powers the (emulated) device off with `code`.
    PowerOff = 19, "power off", [Int];
    /// `psa_its` status of the trusted storage ([`crate::ItsSummary`]).
    ItsStatus = 20, "its status", [Out, OutCap];
    /// Generates the device identity key if it does not exist; returns its public key.
    IdentityKey = 21, "identity key", [Out, OutCap];
    /// `psa_export_public_key` of key `id`.
    ExportPublicKey = 22, "export public key", [Int, Out, OutCap];
    /// `psa_sign_hash` (ECDSA P-256 SHA-256) of a SHA-256 hash with key `id`.
    SignHash = 23, "sign hash", [Int, In, InLen, OutFixed(SIGNATURE_LEN)];
    /// `psa_destroy_key` of key `id`.
    DestroyKey = 24, "destroy key", [Int];
    /// `psa_generate_key`: a persistent P-256 signing key (sign and verify, ECDSA SHA-256,
    /// not exportable) under `id`.
    GenerateSigningKey = 25, "generate signing key", [Int];
    /// Why the last refused call was refused ([`crate::Refusal`]).
    LastRefusal = 26, "last refusal", [Out, OutCap];
    /// An application event for the detector (`kind`: [`crate::app_kind`], `arg`: its size,
    /// sensor or topic id), rate-limited.
    AppEvent = 27, "app event", [Int, Int];
    /// A signed detection report (COSE_Sign1, `castellan-detect-report`).
    DetectReport = 28, "detection report", [Out, OutCap];
    /// The detector's state ([`crate::DetectStatus`]).
    DetectStatus = 29, "detection status", [Out, OutCap];
    /// `psa_generate_random`: fills the whole output buffer (1 to [`RANDOM_CAP`] bytes) from
    /// the secure partition's random source.
    GenerateRandom = 30, "generate random", [Out, OutCap];
}

impl Op {
    /// Its id (the value in the ABI).
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// True when one of its registers is an address.
    pub fn takes_pointer(self) -> bool {
        self.regs()
            .iter()
            .any(|r| matches!(r, Reg::In | Reg::Out | Reg::OutFixed(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        for (i, a) in Op::ALL.iter().enumerate() {
            assert_eq!(Op::from_id(a.id()), Some(*a));
            for b in Op::ALL.iter().skip(i + 1) {
                assert_ne!(a.id(), b.id(), "{a:?} and {b:?}");
            }
        }
        assert_eq!(Op::from_id(0), None);
        assert_eq!(Op::from_id(1000), None);
    }

    #[test]
    fn ids_are_stable() {
        // The ABI: changing one of these breaks every built non-secure application.
        let expected: [(Op, u32); 30] = [
            (Op::ConsoleWrite, 1),
            (Op::Command, 2),
            (Op::BootInfo, 3),
            (Op::AttestToken, 4),
            (Op::AttestPublicKey, 5),
            (Op::FwuStart, 6),
            (Op::FwuWrite, 7),
            (Op::FwuInstall, 8),
            (Op::FwuAccept, 9),
            (Op::ItsSet, 10),
            (Op::ItsGet, 11),
            (Op::UpdateAnchor, 12),
            (Op::UpdateBegin, 13),
            (Op::UpdateWrite, 14),
            (Op::UpdateFinish, 15),
            (Op::UpdateCancel, 16),
            (Op::UpdateStatus, 17),
            (Op::SystemReset, 18),
            (Op::PowerOff, 19),
            (Op::ItsStatus, 20),
            (Op::IdentityKey, 21),
            (Op::ExportPublicKey, 22),
            (Op::SignHash, 23),
            (Op::DestroyKey, 24),
            (Op::GenerateSigningKey, 25),
            (Op::LastRefusal, 26),
            (Op::AppEvent, 27),
            (Op::DetectReport, 28),
            (Op::DetectStatus, 29),
            (Op::GenerateRandom, 30),
        ];
        assert_eq!(Op::ALL.len(), expected.len());
        for (op, id) in expected {
            assert_eq!(op.id(), id, "{op:?}");
        }
    }

    #[test]
    fn layouts_pair_every_pointer_with_its_length() {
        for op in Op::ALL {
            let regs = op.regs();
            for (i, r) in regs.iter().enumerate() {
                let next = regs.get(i + 1).copied();
                match r {
                    Reg::In => assert_eq!(next, Some(Reg::InLen), "{op:?}"),
                    Reg::Out => assert_eq!(next, Some(Reg::OutCap), "{op:?}"),
                    Reg::InLen => assert_eq!(regs[i - 1], Reg::In, "{op:?}"),
                    Reg::OutCap => assert_eq!(regs[i - 1], Reg::Out, "{op:?}"),
                    _ => {}
                }
            }
        }
    }
}
