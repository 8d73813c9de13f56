//! The records the gate copies out, with an explicit little-endian byte encoding: no side
//! reinterprets a struct's memory. `decode(encode(r)) == r` for every record.
//!
//! ```text
//!  BootInfo (280)      version[4] · security_counter · counter · lifecycle · confirmed · upgrade
//!                      · bootloader_version[4] · digest[32] · text_len · text[192]
//!  UpdateStatus (40)   state · anchor · error(i32) · received · image_size · reserved
//!                      · sequence(u64) · installed_sequence(u64)
//!  ItsSummary (28)     assets · live_bytes · bank_size · active_bank · write_offset · seq · counter
//!  Refusal (288)       status(i32) · kind · values[2](u64) · reason_start · text_len · text[256]
//!  (u32 unless marked; every integer little-endian)
//! ```

/// A little-endian writer over a fixed buffer.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        let end = self.at + b.len();
        if let Some(d) = self.buf.get_mut(self.at..end) {
            d.copy_from_slice(b);
        }
        self.at = end;
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// A little-endian reader over a fixed buffer (reads past the end give zeros).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.buf.get(self.at..self.at + N) {
            out.copy_from_slice(s);
        }
        self.at += N;
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.array())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
    fn words<const N: usize>(&mut self) -> [u32; N] {
        let mut out = [0u32; N];
        for w in &mut out {
            *w = self.u32();
        }
        out
    }
}

/// What the bootloader did about upgrades on this boot ([`BootInfo::upgrade`]).
pub mod upgrade {
    /// Nothing to do.
    pub const NONE: u32 = 0;
    /// A candidate was swapped in for a test run (reverted at the next boot unless accepted).
    pub const INSTALLED_TEST: u32 = 1;
    /// A candidate was swapped in and confirmed at once.
    pub const INSTALLED_PERMANENT: u32 = 2;
    /// An unaccepted test image was swapped back out: the previous image runs again.
    pub const REVERTED: u32 = 3;
    /// A candidate was copied over the primary slot (overwrite-only mode).
    pub const INSTALLED_OVERWRITE: u32 = 4;
    /// The candidate was refused (the reason is in [`super::BootInfo::text`]).
    pub const REFUSED: u32 = 5;
    /// A revert was needed but the previous image is not acceptable.
    pub const REVERT_REFUSED: u32 = 6;

    /// A short name for an upgrade code.
    pub const fn name(code: u32) -> &'static str {
        match code {
            NONE => "none",
            INSTALLED_TEST => "installed for a test run",
            INSTALLED_PERMANENT => "installed permanently",
            REVERTED => "reverted to the previous image",
            INSTALLED_OVERWRITE => "installed (overwrite)",
            REFUSED => "refused",
            REVERT_REFUSED => "revert refused",
            _ => "unknown",
        }
    }
}

/// States of the SUIT update client ([`UpdateStatus::state`]).
pub mod update_state {
    /// No update in progress.
    pub const IDLE: u32 = 0;
    /// A manifest is authenticated; the payload is being received.
    pub const DOWNLOADING: u32 = 1;
    /// Verified and installed: the bootloader swaps it in for a trial at the next reboot.
    pub const STAGED: u32 = 2;
    /// The new image runs on trial: accept keeps it.
    pub const TRIAL: u32 = 3;
    /// The trial image was rejected; the previous image comes back at the next reboot.
    pub const REJECTED: u32 = 4;
    /// The trial image was not accepted and the previous image runs again.
    pub const REVERTED: u32 = 5;
    /// The update failed after its installation ([`super::UpdateStatus::error`]).
    pub const FAILED: u32 = 6;

    /// A short name for a state.
    pub const fn name(s: u32) -> &'static str {
        match s {
            IDLE => "idle",
            DOWNLOADING => "downloading",
            STAGED => "staged for the next boot",
            TRIAL => "trial",
            REJECTED => "rejected",
            REVERTED => "reverted",
            FAILED => "failed",
            _ => "unknown",
        }
    }
}

/// Bytes of text in [`BootInfo`].
pub const BOOT_TEXT_CAP: usize = 192;
/// Encoded size of [`BootInfo`].
pub const BOOT_INFO_SIZE: usize = 4 * 4 + 5 * 4 + 4 * 4 + 32 + 4 + BOOT_TEXT_CAP;

/// What the secure side tells the application about this boot (`BootInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// Running image version: major, minor, revision, build.
    pub version: [u32; 4],
    /// Its security counter.
    pub security_counter: u32,
    /// Anti-rollback counter in OTP after this boot.
    pub counter: u32,
    /// PSA lifecycle (0x3000 = secured).
    pub lifecycle: u32,
    /// 1 when the running image is confirmed; 0 while it is on trial.
    pub confirmed: u32,
    /// [`upgrade`] code.
    pub upgrade: u32,
    /// Bootloader version: major, minor, revision, build.
    pub bootloader_version: [u32; 4],
    /// SHA-256 measurement of the running image.
    pub digest: [u8; 32],
    /// Length of `text`.
    pub text_len: u32,
    /// Why an upgrade was refused (UTF-8).
    pub text: [u8; BOOT_TEXT_CAP],
}

impl BootInfo {
    /// An all-zero record.
    pub const fn zeroed() -> Self {
        BootInfo {
            version: [0; 4],
            security_counter: 0,
            counter: 0,
            lifecycle: 0,
            confirmed: 0,
            upgrade: 0,
            bootloader_version: [0; 4],
            digest: [0; 32],
            text_len: 0,
            text: [0; BOOT_TEXT_CAP],
        }
    }

    /// Sets the refusal text (cut at [`BOOT_TEXT_CAP`] bytes).
    pub fn set_text(&mut self, text: &str) {
        self.text_len = copy_text(&mut self.text, text.as_bytes());
    }

    /// The refusal text.
    pub fn text(&self) -> &str {
        text_of(&self.text, self.text_len)
    }

    /// Its little-endian encoding.
    pub fn encode(&self) -> [u8; BOOT_INFO_SIZE] {
        let mut out = [0u8; BOOT_INFO_SIZE];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        for v in self.version {
            w.u32(v);
        }
        for v in [
            self.security_counter,
            self.counter,
            self.lifecycle,
            self.confirmed,
            self.upgrade,
        ] {
            w.u32(v);
        }
        for v in self.bootloader_version {
            w.u32(v);
        }
        w.bytes(&self.digest);
        w.u32(self.text_len);
        w.bytes(&self.text);
        out
    }

    /// The record `encode` wrote.
    pub fn decode(b: &[u8; BOOT_INFO_SIZE]) -> Self {
        let mut r = Reader { buf: b, at: 0 };
        BootInfo {
            version: r.words(),
            security_counter: r.u32(),
            counter: r.u32(),
            lifecycle: r.u32(),
            confirmed: r.u32(),
            upgrade: r.u32(),
            bootloader_version: r.words(),
            digest: r.array(),
            text_len: r.u32(),
            text: r.array(),
        }
    }
}

/// Encoded size of [`UpdateStatus`].
pub const UPDATE_STATUS_SIZE: usize = 6 * 4 + 2 * 8;

/// The secure partition's SUIT update client, as `UpdateStatus` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateStatus {
    /// [`update_state`] code.
    pub state: u32,
    /// 1 when a release trust anchor is provisioned.
    pub anchor: u32,
    /// PSA status of why the last update failed after its installation (0 if none).
    pub error: i32,
    /// Bytes of the payload received so far (or the resume offset after a reboot).
    pub received: u32,
    /// The image size the pending manifest names (0 when none is downloading).
    pub image_size: u32,
    /// Reserved (0).
    pub reserved: u32,
    /// Sequence number of the pending manifest (0 when none).
    pub sequence: u64,
    /// Sequence number of the installed release (0 before the first update).
    pub installed_sequence: u64,
}

impl UpdateStatus {
    /// An all-zero record.
    pub const fn zeroed() -> Self {
        UpdateStatus {
            state: 0,
            anchor: 0,
            error: 0,
            received: 0,
            image_size: 0,
            reserved: 0,
            sequence: 0,
            installed_sequence: 0,
        }
    }

    /// Its little-endian encoding.
    pub fn encode(&self) -> [u8; UPDATE_STATUS_SIZE] {
        let mut out = [0u8; UPDATE_STATUS_SIZE];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        w.u32(self.state);
        w.u32(self.anchor);
        w.bytes(&self.error.to_le_bytes());
        w.u32(self.received);
        w.u32(self.image_size);
        w.u32(self.reserved);
        w.u64(self.sequence);
        w.u64(self.installed_sequence);
        out
    }

    /// The record `encode` wrote.
    pub fn decode(b: &[u8; UPDATE_STATUS_SIZE]) -> Self {
        let mut r = Reader { buf: b, at: 0 };
        UpdateStatus {
            state: r.u32(),
            anchor: r.u32(),
            error: r.i32(),
            received: r.u32(),
            image_size: r.u32(),
            reserved: r.u32(),
            sequence: r.u64(),
            installed_sequence: r.u64(),
        }
    }
}

/// Encoded size of [`ItsSummary`].
pub const ITS_SUMMARY_SIZE: usize = 7 * 4;

/// Trusted storage's state, as `ItsStatus` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItsSummary {
    /// Live assets, all namespaces.
    pub assets: u32,
    /// Bytes of flash the live entries take.
    pub live_bytes: u32,
    /// Bytes of a bank.
    pub bank_size: u32,
    /// The bank holding the current state (0 or 1).
    pub active_bank: u32,
    /// Offset in the active bank where the next transaction would go.
    pub write_offset: u32,
    /// Sequence number of the newest committed transaction.
    pub seq: u32,
    /// Replay-counter value bound to the newest committed transaction.
    pub counter: u32,
}

impl ItsSummary {
    /// Its little-endian encoding.
    pub fn encode(&self) -> [u8; ITS_SUMMARY_SIZE] {
        let mut out = [0u8; ITS_SUMMARY_SIZE];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        for v in [
            self.assets,
            self.live_bytes,
            self.bank_size,
            self.active_bank,
            self.write_offset,
            self.seq,
            self.counter,
        ] {
            w.u32(v);
        }
        out
    }

    /// The record `encode` wrote.
    pub fn decode(b: &[u8; ITS_SUMMARY_SIZE]) -> Self {
        let [
            assets,
            live_bytes,
            bank_size,
            active_bank,
            write_offset,
            seq,
            counter,
        ] = Reader { buf: b, at: 0 }.words();
        ItsSummary {
            assets,
            live_bytes,
            bank_size,
            active_bank,
            write_offset,
            seq,
            counter,
        }
    }
}

/// Bytes of text in [`Refusal`].
pub const REFUSAL_TEXT_CAP: usize = 256;
/// Encoded size of [`Refusal`].
pub const REFUSAL_SIZE: usize = 4 + 4 + 2 * 8 + 4 + 4 + REFUSAL_TEXT_CAP;

/// What kind of refusal a [`Refusal`] records.
pub mod refusal_kind {
    /// Nothing was refused yet.
    pub const NONE: u32 = 0;
    /// A service refused or failed the call.
    pub const SERVICE: u32 = 1;
    /// The update client refused a manifest, a block or a step.
    pub const UPDATE: u32 = 2;
    /// The update client refused a manifest whose sequence number is not newer than the
    /// installed one (`values` = offered, installed).
    pub const UPDATE_NOT_NEWER: u32 = 3;
}

/// Why the secure side refused the last refused call (`LastRefusal`): its status and the
/// services' own words, so that the normal world can report the reason and not only a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The PSA status the call returned.
    pub status: i32,
    /// [`refusal_kind`] code.
    pub kind: u32,
    /// Values the kind names (0 otherwise).
    pub values: [u64; 2],
    /// Where, in `text`, the reason starts (after the service's own prefix).
    pub reason_start: u32,
    /// Length of `text`.
    pub text_len: u32,
    /// The description (UTF-8).
    pub text: [u8; REFUSAL_TEXT_CAP],
}

impl Refusal {
    /// No refusal.
    pub const fn none() -> Self {
        Refusal {
            status: 0,
            kind: refusal_kind::NONE,
            values: [0; 2],
            reason_start: 0,
            text_len: 0,
            text: [0; REFUSAL_TEXT_CAP],
        }
    }

    /// Sets the description (cut at [`REFUSAL_TEXT_CAP`] bytes, on a character boundary).
    pub fn set_text(&mut self, text: &str, reason_start: usize) {
        let mut n = text.len().min(REFUSAL_TEXT_CAP);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        self.text_len = copy_text(&mut self.text, text.as_bytes().get(..n).unwrap_or(&[]));
        self.reason_start = u32::try_from(reason_start.min(n)).unwrap_or(0);
    }

    /// The whole description.
    pub fn text(&self) -> &str {
        text_of(&self.text, self.text_len)
    }

    /// The reason alone (the description without the service's prefix).
    pub fn reason(&self) -> &str {
        let t = self.text();
        t.get(self.reason_start as usize..).unwrap_or(t)
    }

    /// Its little-endian encoding.
    pub fn encode(&self) -> [u8; REFUSAL_SIZE] {
        let mut out = [0u8; REFUSAL_SIZE];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        w.bytes(&self.status.to_le_bytes());
        w.u32(self.kind);
        w.u64(self.values[0]);
        w.u64(self.values[1]);
        w.u32(self.reason_start);
        w.u32(self.text_len);
        w.bytes(&self.text);
        out
    }

    /// The record `encode` wrote.
    pub fn decode(b: &[u8; REFUSAL_SIZE]) -> Self {
        let mut r = Reader { buf: b, at: 0 };
        Refusal {
            status: r.i32(),
            kind: r.u32(),
            values: [r.u64(), r.u64()],
            reason_start: r.u32(),
            text_len: r.u32(),
            text: r.array(),
        }
    }
}

fn copy_text(dst: &mut [u8], src: &[u8]) -> u32 {
    let n = src.len().min(dst.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    u32::try_from(n).unwrap_or(0)
}

fn text_of(text: &[u8], len: u32) -> &str {
    let n = (len as usize).min(text.len());
    match core::str::from_utf8(text.get(..n).unwrap_or(&[])) {
        Ok(s) => s,
        // A cut in the middle of a character: keep the valid prefix.
        Err(e) => core::str::from_utf8(text.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_info_round_trips() {
        let mut b = BootInfo::zeroed();
        b.version = [1, 2, 3, 4];
        b.security_counter = 5;
        b.counter = 6;
        b.lifecycle = 0x3000;
        b.confirmed = 1;
        b.upgrade = upgrade::REFUSED;
        b.bootloader_version = [9, 8, 7, 0xffff_ffff];
        b.digest = [0xa5; 32];
        b.set_text("signature does not verify");
        let e = b.encode();
        assert_eq!(BootInfo::decode(&e), b);
        assert_eq!(e[..4], 1u32.to_le_bytes());
        assert_eq!(BootInfo::decode(&e).text(), "signature does not verify");
        assert_eq!(
            BootInfo::decode(&BootInfo::zeroed().encode()),
            BootInfo::zeroed()
        );
    }

    #[test]
    fn boot_text_is_cut_at_its_cap() {
        let mut b = BootInfo::zeroed();
        b.set_text(&"x".repeat(500));
        assert_eq!(b.text().len(), BOOT_TEXT_CAP);
    }

    #[test]
    fn update_status_round_trips() {
        let s = UpdateStatus {
            state: update_state::FAILED,
            anchor: 1,
            error: -149,
            received: 4096,
            image_size: 70_000,
            reserved: 0,
            sequence: u64::MAX - 1,
            installed_sequence: 7,
        };
        let e = s.encode();
        assert_eq!(UpdateStatus::decode(&e), s);
        assert_eq!(e[8..12], (-149i32).to_le_bytes());
        assert_eq!(e[24..32], (u64::MAX - 1).to_le_bytes());
    }

    #[test]
    fn its_summary_round_trips() {
        let s = ItsSummary {
            assets: 1,
            live_bytes: 2,
            bank_size: 3,
            active_bank: 1,
            write_offset: 5,
            seq: 6,
            counter: 7,
        };
        assert_eq!(ItsSummary::decode(&s.encode()), s);
    }

    #[test]
    fn refusal_round_trips_and_keeps_its_reason() {
        let mut r = Refusal::none();
        r.status = -133;
        r.kind = refusal_kind::UPDATE_NOT_NEWER;
        r.values = [1, 2];
        r.set_text("update refused: manifest sequence 1 is not newer", 16);
        let d = Refusal::decode(&r.encode());
        assert_eq!(d, r);
        assert_eq!(d.reason(), "manifest sequence 1 is not newer");
        assert_eq!(d.text(), "update refused: manifest sequence 1 is not newer");
    }

    #[test]
    fn refusal_text_is_cut_on_a_character_boundary() {
        let mut r = Refusal::none();
        let long = "é".repeat(REFUSAL_TEXT_CAP);
        r.set_text(&long, 1000);
        assert!(r.text().len() <= REFUSAL_TEXT_CAP);
        assert!(r.text().chars().all(|c| c == 'é'));
        assert_eq!(r.reason(), "");
    }

    #[test]
    fn names() {
        assert_eq!(
            upgrade::name(upgrade::REVERTED),
            "reverted to the previous image"
        );
        assert_eq!(update_state::name(update_state::TRIAL), "trial");
        assert_eq!(update_state::name(99), "unknown");
    }
}
