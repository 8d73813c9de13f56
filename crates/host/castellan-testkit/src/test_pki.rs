//! A throwaway PKI for the broker's tests, the server's connection tests and the connect
//! benchmark: a self-signed CA (ECDSA P-256)
//! that issues a server certificate for the loopback addresses and client certificates whose CN is
//! a device id or `svc:<name>`, written as PEM files into a directory.
//!
//! Not the fleet PKI (that one lives in the server, with its root, manufacturer and operational
//! CAs): nothing here is meant to protect anything.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm,
    SigningKey,
};

/// Why the throwaway PKI could not issue a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestPkiError {
    /// Key generation, encoding or writing a PEM file failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
    /// Serial in the form the broker reports it (`castellan_broker::PeerCert::serial_hex`:
    /// lowercase hex without leading zeros).
    pub serial_hex: String,
}

/// Options of a client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCertOptions {
    /// Subject organization (O).
    pub organization: Option<String>,
    /// Issue a certificate whose validity ended in 2001.
    pub expired: bool,
    /// Leave the CN out of the subject (only O is set).
    pub without_cn: bool,
    /// The serial number (big-endian), instead of a fresh unique one: a forged certificate
    /// that copies a genuine one's serial.
    pub serial: Option<Vec<u8>>,
    /// Appended to the file names, so that a second certificate of the same CN does not
    /// overwrite the first one's files.
    pub file_suffix: Option<String>,
    /// Subject organizational unit (OU), e.g. `device` as on an LDevID.
    pub organizational_unit: Option<String>,
    /// Subject serialNumber attribute (2.5.4.5), as on an IDevID.
    pub subject_serial: Option<String>,
}

/// A self-signed CA that writes what it issues into a directory.
pub struct TestPki {
    dir: PathBuf,
    name: String,
    ca_pem: PathBuf,
    issuer: Issuer<'static, EcKey>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An ECDSA P-256 key from aws-lc-rs that rcgen can sign with.
struct EcKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl EcKey {
    fn generate() -> Result<Self, TestPkiError> {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(pki_err)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref())
            .map_err(pki_err)?;
        Ok(Self {
            pair,
            pkcs8: doc.as_ref().to_vec(),
        })
    }

    /// Subject key identifier: the first 20 bytes of SHA-256 over the public key (RFC 7093 §2).
    fn key_id(&self) -> KeyIdMethod {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.der_bytes());
        KeyIdMethod::PreSpecified(d.as_ref().iter().take(20).copied().collect())
    }

    fn from_pkcs8_pem(pem: &str) -> Result<Self, TestPkiError> {
        let b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(pki_err)?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).map_err(pki_err)?;
        Ok(Self { pair, pkcs8 })
    }

    fn pkcs8_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }
}

impl PublicKeyData for EcKey {
    fn der_bytes(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for EcKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

static SERIAL_COUNTER: AtomicU64 = AtomicU64::new(1);

fn pki_err(e: impl std::fmt::Display) -> TestPkiError {
    TestPkiError::Generate(e.to_string())
}

/// A serial unique within this process run (time, process id and a counter): 16 bytes, positive.
fn next_serial() -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    let count = SERIAL_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = Vec::with_capacity(16);
    s.extend_from_slice(&(nanos ^ (u64::from(std::process::id()) << 32)).to_be_bytes());
    s.extend_from_slice(&count.to_be_bytes());
    if let Some(first) = s.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    s
}

impl TestPki {
    /// Creates the CA `name` and writes its certificate to `<dir>/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Result<Self, TestPkiError> {
        std::fs::create_dir_all(dir).map_err(pki_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Castellan test");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from_slice(&next_serial()));
        let key = EcKey::generate()?;
        params.key_identifier_method = key.key_id();
        let cert = params.self_signed(&key).map_err(pki_err)?;
        let ca_pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_pem, cert.pem()).map_err(pki_err)?;
        Ok(Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            ca_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from existing files: its certificate (PEM) and its ECDSA P-256 key (PKCS#8 PEM).
    /// For attack tests that mint certificates with a real CA of the system under test (a
    /// trusted CA that should not be able to issue that identity).
    pub fn from_ca_files(
        dir: &Path,
        name: &str,
        ca_cert_pem: &Path,
        ca_key_pem: &Path,
    ) -> Result<Self, TestPkiError> {
        std::fs::create_dir_all(dir).map_err(pki_err)?;
        let cert = std::fs::read_to_string(ca_cert_pem).map_err(pki_err)?;
        let key = EcKey::from_pkcs8_pem(&std::fs::read_to_string(ca_key_pem).map_err(pki_err)?)?;
        let issuer = Issuer::from_ca_cert_pem(&cert, key).map_err(pki_err)?;
        Ok(Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            ca_pem: ca_cert_pem.to_owned(),
            issuer,
        })
    }

    /// The CA certificate (PEM file).
    pub fn ca_pem(&self) -> &Path {
        &self.ca_pem
    }

    /// Issues the server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub fn issue_server(&self, file_stem: &str) -> Result<CertFiles, TestPkiError> {
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
                .map_err(pki_err)?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "castellan broker");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params, file_stem)
    }

    /// Issues a client certificate with CN `common_name` (a device id, or `svc:<name>`).
    pub fn issue_client(&self, common_name: &str) -> Result<CertFiles, TestPkiError> {
        self.issue_client_with(common_name, &ClientCertOptions::default())
    }

    /// Issues a client certificate with options.
    pub fn issue_client_with(
        &self,
        common_name: &str,
        opts: &ClientCertOptions,
    ) -> Result<CertFiles, TestPkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if !opts.without_cn {
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
        }
        if let Some(o) = &opts.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &opts.organizational_unit {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, ou.as_str());
        }
        if let Some(serial) = &opts.subject_serial {
            // id-at-serialNumber, a PrintableString.
            let oid = [2, 5, 4, 5];
            params.distinguished_name.push(
                DnType::from_oid(&oid),
                rcgen::DnValue::PrintableString(
                    serial
                        .as_str()
                        .try_into()
                        .map_err(|_| TestPkiError::Generate("serialNumber not printable".into()))?,
                ),
            );
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if opts.expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let stem: String = common_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let suffix = opts.file_suffix.as_deref().unwrap_or("");
        if let Some(serial) = &opts.serial {
            params.serial_number = Some(SerialNumber::from_slice(serial));
        }
        self.issue(params, &format!("{}-{stem}{suffix}", self.name))
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        file_stem: &str,
    ) -> Result<CertFiles, TestPkiError> {
        let serial = match &params.serial_number {
            Some(chosen) => chosen.to_bytes(),
            None => next_serial(),
        };
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        let key = EcKey::generate()?;
        params.key_identifier_method = key.key_id();
        let cert = params.signed_by(&key, &self.issuer).map_err(pki_err)?;
        let cert_path = self.dir.join(format!("{file_stem}.pem"));
        let key_path = self.dir.join(format!("{file_stem}.key"));
        std::fs::write(&cert_path, cert.pem()).map_err(pki_err)?;
        std::fs::write(&key_path, key.pkcs8_pem()).map_err(pki_err)?;
        Ok(CertFiles {
            cert: cert_path,
            key: key_path,
            // Without leading zeros, as the broker reports it.
            serial_hex: match hex::encode(&serial).trim_start_matches('0') {
                "" => "0".to_string(),
                trimmed => trimmed.to_string(),
            },
        })
    }
}
