//! Fuzz target for the SUIT envelope parser, authentication, `describe` and the manifest
//! processor (crate `castellan_suit`, default feature `std`).
//!
//! Each input is used twice: as a whole envelope (parser and authentication must refuse it
//! without panicking), and as manifest bytes that the target signs with its own trusted key, so
//! the manifest decoder and the command interpreter see arbitrary authenticated input.
#![no_main]

use castellan_suit::builder::{Ed25519SigningKey, Signer, seal};
use castellan_suit::{
    Component, ComponentId, Identifier, Platform, PlatformError, Procedure, Processor,
    authenticate, describe,
};

/// A device that says yes to every identity and serves a small fixed payload, so that fuzzed
/// manifests get as deep into the interpreter as possible.
struct FuzzDevice {
    content: [u8; 64],
    written: u64,
}

impl Platform for FuzzDevice {
    fn has_component(&self, _id: &ComponentId<'_>) -> bool {
        true
    }

    fn identifier_matches(&self, _c: &Component<'_>, _id: Identifier<'_>) -> bool {
        true
    }

    fn component_slot(&self, _c: &Component<'_>) -> Option<u64> {
        Some(0)
    }

    fn capacity(&self, _c: &Component<'_>) -> u64 {
        4096
    }

    fn read_component(
        &mut self,
        _c: &Component<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, PlatformError> {
        let rest = self.content.get(offset as usize..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn begin_write(&mut self, _c: &Component<'_>) -> Result<(), PlatformError> {
        self.written = 0;
        Ok(())
    }

    fn write_component(
        &mut self,
        _c: &Component<'_>,
        _offset: u64,
        data: &[u8],
    ) -> Result<(), PlatformError> {
        self.written += data.len() as u64;
        assert!(self.written <= 4096, "a transfer never writes beyond the capacity");
        Ok(())
    }

    fn commit_write(&mut self, _c: &Component<'_>, len: u64) -> Result<(), PlatformError> {
        assert_eq!(len, self.written);
        Ok(())
    }

    fn fetch(&mut self, _uri: &str, offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        // An endless resource: the processor must stop on its own.
        let _ = offset;
        buf.fill(0x5a);
        Ok(buf.len())
    }

    fn swap(&mut self, _c: &Component<'_>, _s: &Component<'_>) -> Result<(), PlatformError> {
        Ok(())
    }

    fn invoke(&mut self, _c: &Component<'_>, _args: Option<&[u8]>) -> Result<(), PlatformError> {
        Ok(())
    }
}

fn run(envelope: &[u8], anchors: &[castellan_suit::TrustAnchor]) {
    let _ = describe(envelope);
    if let Ok(manifest) = authenticate(envelope, anchors) {
        for procedure in [Procedure::Update, Procedure::Invoke] {
            let mut dev = FuzzDevice {
                content: [0xa5; 64],
                written: 0,
            };
            let _ = Processor::new(&mut dev, 0).process(&manifest, procedure);
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = Ed25519SigningKey::from_bytes(&[7u8; 32]);
    let signer = Signer::EdDsa(&key);
    let anchors = [signer.trust_anchor()];
    run(data, &anchors);
    run(&seal(data, &[], &[signer]), &anchors);
});
