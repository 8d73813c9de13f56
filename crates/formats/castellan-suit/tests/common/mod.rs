//! Shared test support: the draft's example envelopes and key, test signing keys, and a mock
//! device implementing `Platform` that records everything the processor asks of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use castellan_suit::builder::{EnvelopeMember, Signer, seal};
use castellan_suit::{
    Command, Component, ComponentId, DeviceIdentity, Envelope, Identifier, Platform, PlatformError,
    Record, Section, TrustAnchor,
};
use p256::pkcs8::DecodePublicKey;
use sha2::Digest;

pub const VENDOR: [u8; 16] = hex_lit("fa6b4a53d5ad5fdfbe9de663e4d41ffe");
pub const CLASS: [u8; 16] = hex_lit("1492af1425695e48bf429b2d51f2ab45");
/// The examples' sample digests (not digests of any real payload) and sizes.
pub const SAMPLE_DIGEST_A: [u8; 32] =
    hex_lit("00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210");
pub const SAMPLE_DIGEST_B: [u8; 32] =
    hex_lit("0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff");
pub const SIZE_A: usize = 34768;
pub const SIZE_B: usize = 76834;

const fn hex_lit<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nib(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex"),
    }
}

fn data_path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The hex blocks of an example file, in order (the last one is the full signed envelope).
pub fn example_blocks(n: usize) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(data_path(&format!("suit_example{n}.txt"))).unwrap();
    let mut blocks = Vec::new();
    let mut parts = text.split("~~~");
    while let Some(_) = parts.next() {
        if let Some(body) = parts.next() {
            let body = body.trim_start_matches('\n');
            if !body.is_empty()
                && body
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c.is_whitespace())
            {
                let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                blocks.push(hex::decode(clean).unwrap());
            }
        }
    }
    blocks
}

/// Example `n`'s signed envelope (with severable elements for example 2).
pub fn example(n: usize) -> Vec<u8> {
    example_blocks(n).pop().unwrap()
}

/// The P-256 key all six examples verify with, read from its PEM file.
pub fn example_anchor() -> TrustAnchor {
    let pem = std::fs::read_to_string(data_path("example_key.pem")).unwrap();
    TrustAnchor::P256(p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).unwrap())
}

pub fn test_p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
}

pub fn test_ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x22; 32])
}

/// Deterministic payloads with the examples' image sizes.
pub fn payload_a() -> Vec<u8> {
    (0..SIZE_A).map(|i| (i * 7 + 3) as u8).collect()
}

pub fn payload_b() -> Vec<u8> {
    (0..SIZE_B).map(|i| (i * 13 + 5) as u8).collect()
}

/// The content of the bstr-wrapped manifest.
pub fn strip_bstr(encoded: &[u8]) -> &[u8] {
    match encoded[0] & 0x1f {
        n @ 0..=23 => &encoded[1..1 + n as usize],
        24 => &encoded[2..],
        25 => &encoded[3..],
        26 => &encoded[5..],
        _ => panic!("unexpected bstr head"),
    }
}

/// Example `n` with its sample digests replaced by the SHA-256 of `payload_a()` / `payload_b()`
/// (same lengths, so nothing else moves), re-signed with the test P-256 key; severable elements
/// are carried over unchanged.
pub fn example_with_real_digests(n: usize) -> Vec<u8> {
    let original = example(n);
    let env = Envelope::parse(&original).unwrap();
    let auth = env.authenticate(&[example_anchor()]).unwrap();
    let mut manifest = strip_bstr(auth.manifest_bytes()).to_vec();
    let real_a: [u8; 32] = sha2::Sha256::digest(payload_a()).into();
    let real_b: [u8; 32] = sha2::Sha256::digest(payload_b()).into();
    replace_all(&mut manifest, &SAMPLE_DIGEST_A, &real_a);
    replace_all(&mut manifest, &SAMPLE_DIGEST_B, &real_b);
    let install = env.severable_element(Section::Install);
    let text = env.severable_element(Section::Text);
    let mut members = Vec::new();
    if let Some(i) = install {
        members.push(EnvelopeMember::Severable(20, i));
    }
    if let Some(t) = text {
        members.push(EnvelopeMember::Severable(23, t));
    }
    let key = test_p256_key();
    seal(&manifest, &members, &[Signer::Es256(&key)])
}

pub fn replace_all(hay: &mut [u8], needle: &[u8], with: &[u8]) -> usize {
    assert_eq!(needle.len(), with.len());
    let mut count = 0;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle {
            hay[i..i + needle.len()].copy_from_slice(with);
            count += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    count
}

pub fn test_anchor() -> TrustAnchor {
    Signer::Es256(&test_p256_key()).trust_anchor()
}

/// A device for tests: components are keyed by their encoded identifier.
#[derive(Default)]
pub struct MockDevice {
    pub vendor_ids: Vec<Vec<u8>>,
    pub class_ids: Vec<Vec<u8>>,
    /// Components the device has, with their current content.
    pub components: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Content being written, committed by `commit_write`.
    pending: BTreeMap<Vec<u8>, Vec<u8>>,
    pub slots: BTreeMap<Vec<u8>, u64>,
    pub remote: BTreeMap<String, Vec<u8>>,
    pub capacity: u64,
    /// URIs whose fetch started (offset 0), in order.
    pub fetches: Vec<String>,
    /// Total bytes handed to `write_component`.
    pub bytes_written: u64,
    /// Total bytes returned by `fetch`.
    pub bytes_fetched: u64,
    pub commits: Vec<(usize, u64)>,
    pub aborts: Vec<usize>,
    pub invoked: Vec<(usize, Option<Vec<u8>>)>,
    pub swaps: Vec<(usize, usize)>,
    pub records: Vec<Record>,
    /// After this component is committed, its content is replaced (an attacker with write
    /// access to storage).
    pub replace_after_commit: Option<(Vec<u8>, Vec<u8>)>,
}

pub fn id(segments: &[&[u8]]) -> Vec<u8> {
    castellan_suit::builder::component_id(segments)
}

impl MockDevice {
    /// A device of the examples' vendor and class with the given components (empty content).
    pub fn new(components: &[&[&[u8]]]) -> Self {
        let mut d = MockDevice {
            vendor_ids: vec![VENDOR.to_vec()],
            class_ids: vec![CLASS.to_vec()],
            capacity: 1 << 20,
            ..Default::default()
        };
        for c in components {
            d.components.insert(id(c), Vec::new());
        }
        d
    }

    pub fn with_content(mut self, component: &[&[u8]], content: Vec<u8>) -> Self {
        self.components.insert(id(component), content);
        self
    }

    pub fn with_remote(mut self, uri: &str, content: Vec<u8>) -> Self {
        self.remote.insert(uri.into(), content);
        self
    }

    pub fn content(&self, component: &[&[u8]]) -> &[u8] {
        &self.components[&id(component)]
    }

    /// "section command[component] ok|error" lines, for asserting what ran.
    pub fn trace(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| {
                let cmd = match r.command {
                    Command::Condition(c) => c.name(),
                    Command::Directive(d) => d.name(),
                };
                let result = match r.result {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("{e:?}"),
                };
                format!("{} {cmd}[{}] {result}", r.section.name(), r.component)
            })
            .collect()
    }

    /// How many trace lines mention `command` (e.g. "condition-abort").
    pub fn count_in_trace(&self, command: &str) -> usize {
        self.trace().iter().filter(|l| l.contains(command)).count()
    }

    fn key(c: &Component<'_>) -> Vec<u8> {
        c.id.encoded().to_vec()
    }
}

impl Platform for MockDevice {
    fn has_component(&self, id: &ComponentId<'_>) -> bool {
        self.components.contains_key(id.encoded())
    }

    fn identifier_matches(&self, _component: &Component<'_>, id: Identifier<'_>) -> bool {
        let vendors: Vec<&[u8]> = self.vendor_ids.iter().map(Vec::as_slice).collect();
        let classes: Vec<&[u8]> = self.class_ids.iter().map(Vec::as_slice).collect();
        DeviceIdentity {
            vendor_ids: &vendors,
            class_ids: &classes,
            ..Default::default()
        }
        .matches(id)
    }

    fn component_slot(&self, component: &Component<'_>) -> Option<u64> {
        self.slots.get(&Self::key(component)).copied()
    }

    fn capacity(&self, _component: &Component<'_>) -> u64 {
        self.capacity
    }

    fn read_component(
        &mut self,
        component: &Component<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, PlatformError> {
        let data = self
            .components
            .get(&Self::key(component))
            .ok_or(PlatformError::Storage)?;
        let rest = data.get(offset as usize..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn begin_write(&mut self, component: &Component<'_>) -> Result<(), PlatformError> {
        self.pending.insert(Self::key(component), Vec::new());
        Ok(())
    }

    fn write_component(
        &mut self,
        component: &Component<'_>,
        offset: u64,
        data: &[u8],
    ) -> Result<(), PlatformError> {
        let buf = self
            .pending
            .get_mut(&Self::key(component))
            .ok_or(PlatformError::Storage)?;
        assert_eq!(buf.len() as u64, offset, "writes are sequential");
        buf.extend_from_slice(data);
        self.bytes_written += data.len() as u64;
        Ok(())
    }

    fn commit_write(&mut self, component: &Component<'_>, len: u64) -> Result<(), PlatformError> {
        let k = Self::key(component);
        let data = self.pending.remove(&k).ok_or(PlatformError::Storage)?;
        assert_eq!(data.len() as u64, len);
        self.components.insert(k.clone(), data);
        self.commits.push((component.index, len));
        if let Some((target, replacement)) = &self.replace_after_commit {
            if *target == k {
                self.components.insert(k, replacement.clone());
            }
        }
        Ok(())
    }

    fn abort_write(&mut self, component: &Component<'_>) {
        self.pending.remove(&Self::key(component));
        self.aborts.push(component.index);
    }

    fn fetch(&mut self, uri: &str, offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        if offset == 0 {
            self.fetches.push(uri.to_string());
        }
        let data = self.remote.get(uri).ok_or(PlatformError::FetchFailed)?;
        let rest = data.get(offset as usize..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.bytes_fetched += n as u64;
        Ok(n)
    }

    fn swap(
        &mut self,
        component: &Component<'_>,
        source: &Component<'_>,
    ) -> Result<(), PlatformError> {
        let a = self
            .components
            .remove(&Self::key(component))
            .ok_or(PlatformError::Storage)?;
        let b = self
            .components
            .remove(&Self::key(source))
            .ok_or(PlatformError::Storage)?;
        self.components.insert(Self::key(component), b);
        self.components.insert(Self::key(source), a);
        self.swaps.push((component.index, source.index));
        Ok(())
    }

    fn invoke(
        &mut self,
        component: &Component<'_>,
        args: Option<&[u8]>,
    ) -> Result<(), PlatformError> {
        self.invoked
            .push((component.index, args.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn record(&mut self, record: &Record) {
        self.records.push(*record);
    }
}
