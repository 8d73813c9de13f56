//! The fleet's certificate authorities and what they issue.
//!
//! ```text
//!   Root CA (self-signed, 25 y, pathLen 1)              offline: never a client trust anchor
//!   ├── Manufacturer CA (20 y, pathLen 0) ── IDevIDs    (factory; onboarding only)
//!   ├── Operational CA  (20 y, pathLen 0) ── LDevIDs    (onboarding, CN = device id)
//!   │                                     ├─ service TLS certificate
//!   │                                     └─ operator client certificates
//!   └── Service CA      (20 y, pathLen 0) ── service identities (svc:<name>), key offline
//! ```
//!
//! [`Pki::init`] creates the whole hierarchy, every key included, in one directory and loads it
//! on every later run (idempotent; a crash between writing a key and its certificate is
//! repaired on the next run): the offline ceremony (`castellan pki init`) and the embedded
//! demo. [`Pki::open_online`] is what the running service opens: the root as its certificate
//! only (it refuses a root key in reach), the operational CA with its key, the manufacturer CA
//! with its key only when this service runs the factory, the service CA as its certificate,
//! and the operational CAs rotated out but still trusted until retired ([`ceremony`]). Every
//! leaf gets a random 126-bit serial; the CA, not the CSR, decides the subject and the
//! extensions.

pub mod ceremony;
mod identify;
mod leaf;
mod names;
mod online;
mod open;
mod types;

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::revocation::RevokedCert;
use crate::signer::rcgen_signer;
use crate::x509::{ParsedCertificate, der_to_pem, verify_csr};
use crate::{CaKind, CaSigner, FileKey, PkiError};

use leaf::{days_from_now, leaf_params, never_expires, sign_certificate};

use names::{check_dns_name, check_name, check_serial, printable};
use open::{KeyRule, open_ca};
pub use types::{
    ClientIdentity, ClientRole, Credentials, Crl, IssuedCertificate, KeyBackend, LdevidKey,
    PkiConfig,
};

const OU_DEVICE: &str = "device";
const OU_OPERATOR: &str = "operator";
const OU_SERVICE: &str = "service";
/// The CN prefix of a service identity (the broker's `svc:` identities).
const SERVICE_CN_PREFIX: &str = "svc:";
const OID_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];

struct Ca {
    kind: CaKind,
    cert: ParsedCertificate,
    params: CertificateParams,
    /// `None`: only the certificate is held here (the key is offline, or at the factory).
    signer: Option<Box<dyn CaSigner>>,
}

impl Ca {
    fn describe_key(&self) -> String {
        self.signer
            .as_ref()
            .map_or_else(|| "not held here (offline)".to_string(), |s| s.describe())
    }
}

/// The fleet PKI: the root, three issuing CAs, and the operations the service needs.
pub struct Pki {
    dir: PathBuf,
    config: PkiConfig,
    root: Ca,
    manufacturer: Ca,
    operational: Ca,
    service: Ca,
    /// Operational CAs rotated out, still trusted for the LDevIDs they issued until retired.
    previous_operational: Vec<ParsedCertificate>,
}

impl core::fmt::Debug for Pki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("root", &self.root.describe_key())
            .field("manufacturer", &self.manufacturer.describe_key())
            .field("operational", &self.operational.describe_key())
            .field("service", &self.service.describe_key())
            .finish()
    }
}

impl Pki {
    /// Open the whole hierarchy in `dir` with default settings, every key included, creating
    /// the directory and the CAs on first run (the offline ceremony, or the embedded demo).
    pub fn init(dir: &Path, backend: KeyBackend) -> Result<Pki, PkiError> {
        Pki::init_with(dir, backend, PkiConfig::default())
    }

    /// Open the whole hierarchy in `dir` with `config`, creating what is missing.
    pub fn init_with(dir: &Path, backend: KeyBackend, config: PkiConfig) -> Result<Pki, PkiError> {
        Pki::init_rules(dir, backend, config, KeyRule::Create)
    }

    /// [`Pki::init_with`], the operational CA's key opened with `operational` (the offline
    /// side allows it to live in the service's token: [`ceremony::sign_operational_csr`]).
    fn init_rules(
        dir: &Path,
        backend: KeyBackend,
        config: PkiConfig,
        operational: KeyRule,
    ) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(PkiError::io("PKI directory"))?;
        let rule = KeyRule::Create;
        let root = open_ca(dir, &backend, &config, CaKind::Root, None, rule)?;
        let open = |kind, rule| open_ca(dir, &backend, &config, kind, Some(&root), rule);
        let manufacturer = open(CaKind::Manufacturer, rule)?;
        let operational = open(CaKind::Operational, operational)?;
        let service = open(CaKind::Service, rule)?;
        Pki::assemble(dir, config, root, [manufacturer, operational, service])
    }

    /// The PKI of `dir` from its root and its issuing CAs (manufacturer, operational,
    /// service), with the operational CAs rotated out that `dir` still holds.
    fn assemble(
        dir: &Path,
        config: PkiConfig,
        root: Ca,
        [manufacturer, operational, service]: [Ca; 3],
    ) -> Result<Pki, PkiError> {
        let previous_operational = online::previous_cas(dir, CaKind::Operational, &root)?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            config,
            root,
            manufacturer,
            operational,
            service,
            previous_operational,
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

    /// The client-certificate trust bundle for the broker: the issuing CAs (manufacturer,
    /// operational, the operational CAs rotated out but not retired, service), PEM. Not the
    /// root: a certificate the root signed directly is no client of the fleet.
    pub fn client_ca_bundle_pem(&self) -> String {
        let mut s = self.ca_pem(CaKind::Manufacturer);
        s.push_str(&self.ca_pem(CaKind::Operational));
        for previous in &self.previous_operational {
            s.push_str(&previous.pem());
        }
        s.push_str(&self.ca_pem(CaKind::Service));
        s
    }

    /// The operational CAs rotated out and still trusted for the LDevIDs they issued.
    pub fn previous_operational_cas(&self) -> &[ParsedCertificate] {
        &self.previous_operational
    }

    /// Whether this PKI holds the private key of `kind` (it can issue with it).
    pub fn holds_key(&self, kind: CaKind) -> bool {
        self.ca(kind).signer.is_some()
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
    pub fn key_locations(&self) -> [(CaKind, String); 4] {
        [
            (CaKind::Root, self.root.describe_key()),
            (CaKind::Manufacturer, self.manufacturer.describe_key()),
            (CaKind::Operational, self.operational.describe_key()),
            (CaKind::Service, self.service.describe_key()),
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
        let days = self.config.operator_validity_days;
        self.issue_client_credentials(CaKind::Operational, name, OU_OPERATOR, days)
    }

    /// Issue a service identity's client certificate (`CN=svc:<name>, OU=service`), with a new
    /// key, from the service CA: the fleet-wide MQTT role. Needs the service CA's key, which is
    /// kept offline (`castellan pki issue-service`).
    pub fn issue_service_client_cert(&self, name: &str) -> Result<Credentials, PkiError> {
        check_name("service name", name)?;
        let cn = format!("{SERVICE_CN_PREFIX}{name}");
        let days = self.config.service_validity_days;
        self.issue_client_credentials(CaKind::Service, &cn, OU_SERVICE, days)
    }

    /// A client certificate `CN=<cn>, OU=<ou>` from `kind`, with a new key.
    fn issue_client_credentials(
        &self,
        kind: CaKind,
        cn: &str,
        ou: &str,
        days: u32,
    ) -> Result<Credentials, PkiError> {
        if self.ca(kind).signer.is_none() {
            return Err(PkiError::CaKeyOffline { ca: kind });
        }
        let key = FileKey::generate();
        let public_key = CaSigner::public_key(&key);
        let params = leaf_params(
            self.dn(cn, ou),
            &public_key,
            days_from_now(days),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let certificate = self.issue(kind, &params, public_key)?;
        Ok(Credentials {
            certificate,
            key_pem: key.to_pkcs8_pem()?,
            chain_pem: self.chain_pem(kind),
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
        let signer = ca
            .signer
            .as_deref()
            .ok_or(PkiError::CaKeyOffline { ca: ca.kind })?;
        let adapter = rcgen_signer(signer);
        let issuer = rcgen::Issuer::from_params(&ca.params, &adapter);
        let crl = params.signed_by(&issuer).map_err(|e| adapter.error(e))?;
        let der = crl.der().to_vec();
        Ok(Crl {
            pem: der_to_pem("X509 CRL", &der),
            der,
        })
    }

    /// Sign a fleet command to a device (the decommission command) with the operational CA's
    /// key: ECDSA P-256 over SHA-256, `r || s`. The device holds the root from its factory
    /// chain and pins the name of the CA that issued its LDevID, so this is the key it can
    /// check without anything new provisioned (`docs/response.md`).
    ///
    /// Domain separation: `message` must start with `castellan/` (the command's domain tag),
    /// so it can never be the DER of a certificate, CRL or CSR (those start with a SEQUENCE,
    /// 0x30), and nothing this CA signs as X.509 can pass for a command.
    pub fn sign_command(&self, message: &[u8]) -> Result<[u8; 64], PkiError> {
        if !message.starts_with(b"castellan/") {
            return Err(PkiError::Malformed {
                what: "command",
                reason: "a command must start with its castellan/ domain tag",
            });
        }
        let ca = self.ca(CaKind::Operational);
        let signer = ca
            .signer
            .as_deref()
            .ok_or(PkiError::CaKeyOffline { ca: ca.kind })?;
        signer.sign(message)
    }

    fn ca(&self, kind: CaKind) -> &Ca {
        match kind {
            CaKind::Root => &self.root,
            CaKind::Manufacturer => &self.manufacturer,
            CaKind::Operational => &self.operational,
            CaKind::Service => &self.service,
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
