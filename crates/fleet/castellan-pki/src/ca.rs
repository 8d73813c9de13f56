//! The fleet's certificate authorities and what they issue.
//!
//! ```text
//!                     Root CA (self-signed, 25 y, pathLen 1)
//!                     ├── Manufacturer CA (20 y, pathLen 0) ── IDevIDs   (factory, never expire)
//!                     └── Operational CA  (20 y, pathLen 0) ── LDevIDs   (onboarding, CN = device id)
//!                                                          ├─ service TLS certificate
//!                                                          └─ operator client certificates
//! ```
//!
//! [`Pki::init`] creates the three CAs in a state directory on first run and loads them on
//! every later run (idempotent; a crash between writing a key and its certificate is repaired
//! on the next start). Every leaf gets a random 126-bit serial; the CA, not the CSR, decides the
//! subject and the extensions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

use crate::pkcs11::Pkcs11Token;
use crate::revocation::RevokedCert;
use crate::signer::{SubjectKey, rcgen_signer, write_file_mode};
use crate::x509::{ParsedCertificate, der_to_pem, parse_certificate, verify_csr, verify_signed_by};
use crate::{CaKind, CaSigner, FileKey, PkiError};

/// Where the CA private keys live.
#[derive(Clone, Debug)]
pub enum KeyBackend {
    /// PKCS#8 PEM files in the PKI directory (`<kind>-ca.key.pem`, mode 0600). The default.
    Files,
    /// A PKCS#11 token; the keys are labelled `castellan-<kind>-ca` and generated inside it.
    Pkcs11(Arc<Pkcs11Token>),
}

/// Settings of the PKI. [`PkiConfig::default`] is what `castellan serve` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiConfig {
    /// The organization (O=) in every subject.
    pub organization: String,
    /// Validity of an LDevID, days.
    pub ldevid_validity_days: u32,
    /// Validity of the service's TLS certificate, days.
    pub server_validity_days: u32,
    /// Validity of an operator client certificate, days.
    pub operator_validity_days: u32,
}

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            organization: "Castellan Fleet".into(),
            ldevid_validity_days: 365,
            server_validity_days: 365,
            operator_validity_days: 90,
        }
    }
}

/// A certificate this PKI issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// Serial number, big-endian (no leading zeros).
    pub serial: Vec<u8>,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

impl IssuedCertificate {
    /// The serial as lowercase hex (the registry's form).
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }
}

/// A certificate together with a freshly generated private key (service and operator
/// credentials, which are not produced inside a device).
#[derive(Debug)]
pub struct Credentials {
    /// The certificate.
    pub certificate: IssuedCertificate,
    /// The private key, PKCS#8 PEM (zeroized on drop).
    pub key_pem: zeroize::Zeroizing<String>,
    /// The issuing CA's certificate followed by the root, PEM: append to the leaf to present a
    /// full chain.
    pub chain_pem: String,
}

/// A CRL signed by one of the CAs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    /// DER.
    pub der: Vec<u8>,
    /// PEM (`X509 CRL`).
    pub pem: String,
}

/// The key an LDevID certifies: a CSR from the device (preferred: proves possession) or a bare
/// public key already proven by an attestation token.
#[derive(Clone, Copy, Debug)]
pub enum LdevidKey<'a> {
    /// A DER PKCS#10 request; its self-signature is verified.
    Csr(&'a [u8]),
    /// A P-256 public key, SEC1 or DER SubjectPublicKeyInfo.
    PublicKey(&'a [u8]),
}

/// Who a client certificate (from the broker or the HTTPS API) belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRole {
    /// A device presenting its factory identity (IDevID): only onboarding is allowed.
    Factory {
        /// The device serial (subject serialNumber).
        serial: String,
        /// The device class (subject OU), if present.
        device_class: Option<String>,
    },
    /// An onboarded device presenting its LDevID.
    Device {
        /// The device id (subject CN, the MQTT client id).
        device_id: String,
    },
    /// An operator with a client certificate.
    Operator {
        /// The operator's name (subject CN).
        name: String,
    },
}

/// A client certificate that verified against this PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Who it is.
    pub role: ClientRole,
    /// The certificate (its `serial` is what the revocation check needs).
    pub certificate: ParsedCertificate,
}

const OU_DEVICE: &str = "device";
const OU_OPERATOR: &str = "operator";
const OU_SERVICE: &str = "service";
const OID_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];

struct Ca {
    kind: CaKind,
    cert: ParsedCertificate,
    params: CertificateParams,
    signer: Box<dyn CaSigner>,
}

/// The fleet PKI: three CAs and the operations the service needs.
pub struct Pki {
    dir: PathBuf,
    config: PkiConfig,
    root: Ca,
    manufacturer: Ca,
    operational: Ca,
}

impl core::fmt::Debug for Pki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("root", &self.root.signer.describe())
            .field("manufacturer", &self.manufacturer.signer.describe())
            .field("operational", &self.operational.signer.describe())
            .finish()
    }
}

impl Pki {
    /// Open the PKI in `dir` with default settings, creating the directory and the CAs on
    /// first run.
    pub fn init(dir: &Path, backend: KeyBackend) -> Result<Pki, PkiError> {
        Pki::init_with(dir, backend, PkiConfig::default())
    }

    /// Open the PKI in `dir` with `config`, creating what is missing.
    pub fn init_with(dir: &Path, backend: KeyBackend, config: PkiConfig) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(PkiError::io("PKI directory"))?;
        let root = open_ca(dir, &backend, &config, CaKind::Root, None)?;
        let manufacturer = open_ca(dir, &backend, &config, CaKind::Manufacturer, Some(&root))?;
        let operational = open_ca(dir, &backend, &config, CaKind::Operational, Some(&root))?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            config,
            root,
            manufacturer,
            operational,
        })
    }

    /// The directory holding the CA certificates (and key files with [`KeyBackend::Files`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The certificate of one CA.
    pub fn ca_certificate(&self, kind: CaKind) -> &ParsedCertificate {
        &self.ca(kind).cert
    }

    /// The PEM certificate of one CA.
    pub fn ca_pem(&self, kind: CaKind) -> String {
        self.ca(kind).cert.pem()
    }

    /// The root certificate, PEM: the trust anchor for devices, brokers and operators.
    pub fn root_pem(&self) -> String {
        self.ca_pem(CaKind::Root)
    }

    /// The client-certificate trust bundle for the broker and the API: the manufacturer and
    /// operational CAs followed by the root, PEM.
    pub fn client_ca_bundle_pem(&self) -> String {
        let mut s = self.ca_pem(CaKind::Manufacturer);
        s.push_str(&self.ca_pem(CaKind::Operational));
        s.push_str(&self.root_pem());
        s
    }

    /// The chain to append to a leaf issued by `kind` (that CA, then the root), PEM.
    pub fn chain_pem(&self, kind: CaKind) -> String {
        let mut s = self.ca_pem(kind);
        if kind != CaKind::Root {
            s.push_str(&self.root_pem());
        }
        s
    }

    /// A description of where each CA key lives (for logs).
    pub fn key_locations(&self) -> [(CaKind, String); 3] {
        [
            (CaKind::Root, self.root.signer.describe()),
            (CaKind::Manufacturer, self.manufacturer.signer.describe()),
            (CaKind::Operational, self.operational.signer.describe()),
        ]
    }

    /// Issue an IDevID (IEEE 802.1AR) in the factory from a CSR the device produced.
    ///
    /// The CSR's self-signature is verified; the certificate's subject is
    /// `serialNumber=<serial>, CN=<serial>, OU=<device_class>, O=<organization>`, it never
    /// expires (notAfter 9999-12-31T23:59:59Z, as 802.1AR recommends), keyUsage
    /// digitalSignature, extendedKeyUsage clientAuth.
    pub fn issue_idevid(
        &self,
        csr_der: &[u8],
        serial: &str,
        device_class: &str,
    ) -> Result<IssuedCertificate, PkiError> {
        check_serial(serial)?;
        check_name("device class", device_class)?;
        let csr = verify_csr(csr_der)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::from_oid(&OID_SERIAL_NUMBER), printable(serial)?);
        dn.push(DnType::CommonName, serial);
        dn.push(DnType::OrganizationalUnitName, device_class);
        dn.push(DnType::OrganizationName, self.config.organization.as_str());
        let not_after = never_expires()?;
        let params = leaf_params(
            dn,
            &csr.public_key,
            not_after,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        self.issue(CaKind::Manufacturer, &params, csr.public_key)
    }

    /// Issue an LDevID at onboarding: subject `CN=<device_id>, OU=device, O=<organization>`,
    /// clientAuth, valid for [`PkiConfig::ldevid_validity_days`].
    pub fn issue_ldevid(
        &self,
        key: LdevidKey<'_>,
        device_id: &str,
    ) -> Result<IssuedCertificate, PkiError> {
        check_name("device id", device_id)?;
        let public_key = match key {
            LdevidKey::Csr(der) => verify_csr(der)?.public_key,
            LdevidKey::PublicKey(bytes) => crate::x509::parse_public_key(bytes)?,
        };
        let dn = self.dn(device_id, OU_DEVICE);
        let not_after = days_from_now(self.config.ldevid_validity_days);
        let params = leaf_params(
            dn,
            &public_key,
            not_after,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        self.issue(CaKind::Operational, &params, public_key)
    }

    /// Issue the fleet service's TLS server certificate for `names` (DNS names or IP addresses;
    /// the first is also the CN), with a new P-256 key. Defaults for a local service:
    /// `["localhost", "127.0.0.1"]`.
    pub fn issue_server_cert(&self, names: &[&str]) -> Result<Credentials, PkiError> {
        let first = names.first().ok_or(PkiError::InvalidName {
            what: "server name",
            reason: "at least one DNS name or IP address is needed",
        })?;
        let key = FileKey::generate();
        let public_key = CaSigner::public_key(&key);
        let dn = self.dn(first, OU_SERVICE);
        let not_after = days_from_now(self.config.server_validity_days);
        let mut params = leaf_params(
            dn,
            &public_key,
            not_after,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        for name in names {
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => {
                        check_dns_name(name)?;
                        SanType::DnsName((*name).try_into().map_err(|_| PkiError::InvalidName {
                            what: "server DNS name",
                            reason: "not an IA5 string",
                        })?)
                    }
                });
        }
        let certificate = self.issue(CaKind::Operational, &params, public_key)?;
        Ok(Credentials {
            certificate,
            key_pem: key.to_pkcs8_pem()?,
            chain_pem: self.chain_pem(CaKind::Operational),
        })
    }

    /// Issue an operator client certificate (`CN=<name>, OU=operator`), with a new key; for
    /// tests and tools that talk to the broker as an operator.
    pub fn issue_operator_client_cert(&self, name: &str) -> Result<Credentials, PkiError> {
        check_name("operator name", name)?;
        let key = FileKey::generate();
        let public_key = CaSigner::public_key(&key);
        let dn = self.dn(name, OU_OPERATOR);
        let not_after = days_from_now(self.config.operator_validity_days);
        let params = leaf_params(
            dn,
            &public_key,
            not_after,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let certificate = self.issue(CaKind::Operational, &params, public_key)?;
        Ok(Credentials {
            certificate,
            key_pem: key.to_pkcs8_pem()?,
            chain_pem: self.chain_pem(CaKind::Operational),
        })
    }

    /// A CRL signed by `ca`, listing `revoked` (pass the entries whose certificates that CA
    /// issued), valid for `validity` from now. The CRL number is the current time in
    /// milliseconds, so later CRLs always have larger numbers without any stored counter.
    pub fn crl(
        &self,
        ca: CaKind,
        revoked: &[RevokedCert],
        validity: std::time::Duration,
    ) -> Result<Crl, PkiError> {
        let now = OffsetDateTime::now_utc();
        let next = now + Duration::try_from(validity).unwrap_or(Duration::days(7));
        let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(1);
        let revoked_certs = revoked
            .iter()
            .map(|r| rcgen::RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial),
                revocation_time: OffsetDateTime::from_unix_timestamp(r.revoked_at).unwrap_or(now),
                reason_code: Some(r.reason.to_rcgen()),
                invalidity_date: None,
            })
            .collect();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: next,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: self.ca(ca).params.key_identifier_method.clone(),
        };
        let ca = self.ca(ca);
        let adapter = rcgen_signer(ca.signer.as_ref());
        let issuer = rcgen::Issuer::from_params(&ca.params, &adapter);
        let crl = params.signed_by(&issuer).map_err(|e| adapter.error(e))?;
        let der = crl.der().to_vec();
        Ok(Crl {
            pem: der_to_pem("X509 CRL", &der),
            der,
        })
    }

    /// Verify a client certificate (DER, as the broker or the TLS layer hands it over) against
    /// this PKI at time `now` (Unix seconds) and say whose it is. Revocation is not checked
    /// here: ask the [`crate::RevocationSet`] with `identity.certificate.serial`.
    pub fn identify_client(&self, der: &[u8], now: i64) -> Result<ClientIdentity, PkiError> {
        let cert = parse_certificate(der)?;
        let issuer = [&self.manufacturer, &self.operational]
            .into_iter()
            .find(|ca| ca.cert.subject_der == cert.issuer_der)
            .ok_or(PkiError::UnknownIssuer)?;
        verify_signed_by(&cert, &issuer.cert)?;
        cert.check_validity(now)?;
        if cert.is_ca || !cert.client_auth {
            return Err(PkiError::WrongKeyUsage {
                required: "TLS client authentication",
            });
        }
        let role = match issuer.kind {
            CaKind::Manufacturer => ClientRole::Factory {
                serial: cert
                    .subject_serial_number
                    .clone()
                    .ok_or(PkiError::Malformed {
                        what: "IDevID",
                        reason: "no subject serialNumber",
                    })?,
                device_class: cert.subject_organizational_unit.clone(),
            },
            _ => {
                let cn = cert
                    .subject_common_name
                    .clone()
                    .ok_or(PkiError::Malformed {
                        what: "client certificate",
                        reason: "no subject CN",
                    })?;
                match cert.subject_organizational_unit.as_deref() {
                    Some(OU_DEVICE) => ClientRole::Device { device_id: cn },
                    Some(OU_OPERATOR) => ClientRole::Operator { name: cn },
                    _ => {
                        return Err(PkiError::WrongKeyUsage {
                            required: "device or operator client",
                        });
                    }
                }
            }
        };
        Ok(ClientIdentity {
            role,
            certificate: cert,
        })
    }

    fn ca(&self, kind: CaKind) -> &Ca {
        match kind {
            CaKind::Root => &self.root,
            CaKind::Manufacturer => &self.manufacturer,
            CaKind::Operational => &self.operational,
        }
    }

    fn dn(&self, cn: &str, ou: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationalUnitName, ou);
        dn.push(DnType::OrganizationName, self.config.organization.as_str());
        dn
    }

    fn issue(
        &self,
        kind: CaKind,
        params: &CertificateParams,
        public_key: [u8; 65],
    ) -> Result<IssuedCertificate, PkiError> {
        sign_certificate(self.ca(kind), params, public_key)
    }
}

fn sign_certificate(
    ca: &Ca,
    params: &CertificateParams,
    public_key: [u8; 65],
) -> Result<IssuedCertificate, PkiError> {
    let adapter = rcgen_signer(ca.signer.as_ref());
    let issuer = rcgen::Issuer::from_params(&ca.params, &adapter);
    let cert = params
        .signed_by(&SubjectKey(public_key), &issuer)
        .map_err(|e| adapter.error(e))?;
    let der = cert.der().to_vec();
    let parsed = parse_certificate(&der)?;
    Ok(IssuedCertificate {
        pem: der_to_pem("CERTIFICATE", &der),
        serial: parsed.serial,
        not_after: parsed.not_after,
        der,
    })
}

fn open_ca(
    dir: &Path,
    backend: &KeyBackend,
    config: &PkiConfig,
    kind: CaKind,
    root: Option<&Ca>,
) -> Result<Ca, PkiError> {
    let cert_path = dir.join(format!("{}-ca.pem", kind.name()));
    let cert_exists = cert_path.exists();
    let signer: Box<dyn CaSigner> = match backend {
        KeyBackend::Files => {
            let key_path = dir.join(format!("{}-ca.key.pem", kind.name()));
            if key_path.exists() {
                Box::new(FileKey::load(&key_path)?)
            } else if cert_exists {
                return Err(PkiError::BadCaCertificate {
                    ca: kind,
                    reason: "its key file is missing (restore it from backup; refusing to replace the CA)",
                });
            } else {
                let mut key = FileKey::generate();
                key.save(&key_path)?;
                Box::new(key)
            }
        }
        KeyBackend::Pkcs11(token) => {
            let label = format!("castellan-{}-ca", kind.name());
            if cert_exists {
                Box::new(token.key(&label)?)
            } else {
                Box::new(token.key_or_generate(&label)?)
            }
        }
    };
    let public_key = signer.public_key();
    if cert_exists {
        let pem =
            std::fs::read_to_string(&cert_path).map_err(PkiError::io("CA certificate file"))?;
        let cert =
            crate::x509::parse_certificate_pem(&pem).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "not a PEM X.509 certificate",
            })?;
        if cert.public_key_p256 != Some(public_key) {
            return Err(PkiError::KeyMismatch { ca: kind });
        }
        if let Some(root) = root {
            verify_signed_by(&cert, &root.cert).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "not signed by the root CA",
            })?;
        }
        let params = params_from_cert(&cert, kind)?;
        let ca = Ca {
            kind,
            cert,
            params,
            signer,
        };
        check_issuer_name_reproduced(&ca)?;
        return Ok(ca);
    }
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        match kind {
            CaKind::Root => "Castellan Root CA",
            CaKind::Manufacturer => "Castellan Manufacturer CA",
            CaKind::Operational => "Castellan Operational CA",
        },
    );
    dn.push(DnType::OrganizationName, config.organization.as_str());
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = now - Duration::hours(1);
    params.not_after = now
        + Duration::days(if kind == CaKind::Root {
            25 * 365
        } else {
            20 * 365
        });
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(if kind == CaKind::Root {
        1
    } else {
        0
    }));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(&public_key));
    params.use_authority_key_identifier_extension = root.is_some();
    let adapter = rcgen_signer(signer.as_ref());
    let der = match root {
        None => params
            .self_signed(&adapter)
            .map_err(|e| adapter.error(e))?
            .der()
            .to_vec(),
        Some(root) => sign_certificate(root, &params, public_key)?.der,
    };
    let cert = parse_certificate(&der)?;
    write_file_mode(
        &cert_path,
        cert.pem().as_bytes(),
        0o644,
        "CA certificate file",
    )?;
    Ok(Ca {
        kind,
        cert,
        params,
        signer,
    })
}

/// Rebuild the issuer parameters (name, key identifier, key usages) of a CA from its
/// certificate. Names are rebuilt attribute by attribute with their original string types.
fn params_from_cert(cert: &ParsedCertificate, kind: CaKind) -> Result<CertificateParams, PkiError> {
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::prelude::FromDer as _;
    let bad = |reason| PkiError::BadCaCertificate { ca: kind, reason };
    let (_, x509) = x509_parser::certificate::X509Certificate::from_der(&cert.der)
        .map_err(|_| bad("not a DER certificate"))?;
    let mut dn = DistinguishedName::new();
    for rdn in x509.subject().iter() {
        let mut attrs = rdn.iter();
        let attr = attrs.next().ok_or_else(|| bad("empty name component"))?;
        if attrs.next().is_some() {
            return Err(bad("multi-valued name components are not supported"));
        }
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| bad("name attribute OID too large"))?
            .collect();
        let text = std::str::from_utf8(attr.attr_value().data)
            .map_err(|_| bad("name attribute is not UTF-8"))?;
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_string()),
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| bad("bad PrintableString in name"))?,
            ),
            _ => return Err(bad("name attributes must be UTF8String or PrintableString")),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    let ski = x509
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
        .ok_or_else(|| bad("no subjectKeyIdentifier"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Certificates issued by a loaded CA must carry its subject name byte for byte (TLS stacks
/// match names exactly): issue a throw-away certificate with a throw-away key and compare.
fn check_issuer_name_reproduced(ca: &Ca) -> Result<(), PkiError> {
    let throwaway = FileKey::generate();
    let pk = CaSigner::public_key(&throwaway);
    let adapter = rcgen_signer(&throwaway);
    let issuer = rcgen::Issuer::from_params(&ca.params, &adapter);
    let mut params = CertificateParams::default();
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(&pk));
    params.serial_number = Some(random_serial()?);
    let cert = params
        .signed_by(&SubjectKey(pk), &issuer)
        .map_err(|e| adapter.error(e))?;
    let parsed = parse_certificate(cert.der())?;
    if parsed.issuer_der != ca.cert.subject_der {
        return Err(PkiError::BadCaCertificate {
            ca: ca.kind,
            reason: "its subject name cannot be reproduced exactly in issued certificates",
        });
    }
    Ok(())
}

fn leaf_params(
    dn: DistinguishedName,
    public_key: &[u8; 65],
    not_after: OffsetDateTime,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = OffsetDateTime::now_utc() - Duration::minutes(5);
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(public_key));
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits.
fn key_id(public_key: &[u8; 65]) -> Vec<u8> {
    Sha256::digest(public_key)
        .get(..20)
        .unwrap_or_default()
        .to_vec()
}

/// 16 random bytes, first byte in 0x40..=0x7f: positive, no leading zero, 126 bits of entropy.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn days_from_now(days: u32) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(i64::from(days))
}

fn never_expires() -> Result<OffsetDateTime, PkiError> {
    let date = time::Date::from_calendar_date(9999, time::Month::December, 31)
        .and_then(|d| d.with_hms(23, 59, 59))
        .map_err(|_| PkiError::Encode {
            detail: "the 802.1AR 'no expiry' date".into(),
        })?;
    Ok(date.assume_utc())
}

fn printable(s: &str) -> Result<DnValue, PkiError> {
    Ok(DnValue::PrintableString(s.try_into().map_err(|_| {
        PkiError::InvalidName {
            what: "device serial",
            reason: "not a PrintableString",
        }
    })?))
}

/// Device ids, classes and operator names: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with
/// `.` or `-`. They end up in MQTT topics (`dev/<id>/...`) and file names, so `/ + # \0` and
/// the like are refused.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), PkiError> {
    if name.is_empty() || name.len() > 64 {
        return Err(PkiError::InvalidName {
            what,
            reason: "must be 1 to 64 characters",
        });
    }
    if name.starts_with(['.', '-']) {
        return Err(PkiError::InvalidName {
            what,
            reason: "must not start with '.' or '-'",
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(PkiError::InvalidName {
            what,
            reason: "only letters, digits, '.', '_' and '-' are allowed",
        });
    }
    Ok(())
}

/// Device serials (X.520 serialNumber is a PrintableString, which has no '_'): 1 to 64 of
/// `A-Z a-z 0-9 . : -`.
fn check_serial(serial: &str) -> Result<(), PkiError> {
    if serial.is_empty() || serial.len() > 64 {
        return Err(PkiError::InvalidName {
            what: "device serial",
            reason: "must be 1 to 64 characters",
        });
    }
    if !serial
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-'))
    {
        return Err(PkiError::InvalidName {
            what: "device serial",
            reason: "only letters, digits, '.', ':' and '-' are allowed",
        });
    }
    Ok(())
}

fn check_dns_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidName {
            what: "server DNS name",
            reason: "not a valid host name",
        })
    }
}
