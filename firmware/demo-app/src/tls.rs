//! TLS 1.3 with a client certificate over the device's own TCP (command `tls <port>`), the
//! client's key kept in the secure partition.
//!
//! ```text
//!  tls-key: GenerateSigningKey(TLS_KEY_ID) in the secure partition → public key printed
//!           (the host's test CA certifies it)
//!  tls:     TCP 10.0.2.100:<port> → embedded-tls handshake (TLS_AES_128_GCM_SHA256, P-256)
//!           server chain checked against the CA provisioned in trusted storage
//!           CertificateVerify: SHA-256 here, ECDSA in the secure partition (gate SignHash)
//! ```
//!
//! `tls-provision` (a factory step) stores the CA and client certificates in trusted storage
//! ([`crate::trust`]) from the download buffer (0x2830_0000: `CTLS`, then each certificate as a
//! little-endian u32 length and DER); `tls` reads them from trusted storage only. The private
//! key never leaves the secure partition: this side holds only the key id. The handshake's
//! random numbers come from the secure partition (gate `GenerateRandom`).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use castellan_gate::client::{Veneers, power_off};
use castellan_gate::println;
use castellan_gate::{SecureGate as _, psa};
use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Instant};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, NoClock, SignatureScheme, TlsConfig,
    TlsConnection, TlsContext, TlsError, TlsVerifier,
};
use p256_tls::ecdsa::{DerSignature, Signature};
use rand_chacha::ChaCha20Rng;
use rand_core_tls::SeedableRng as _;
use sha2_tls::Digest as _;

use crate::net::FLEET_ADDR;
use crate::trust::{self, CERT_MAX, UID_CA, UID_CLIENT_CERT};

/// The TLS client key's id in the secure partition's keystore (a persistent P-256 signing key,
/// not exportable).
pub const TLS_KEY_ID: u32 = 0x0000_0710;
/// The name the server's certificate must carry.
pub const SERVER_NAME: &str = "fleet.castellan";
/// Where the provisioning step's runner leaves the CA and client certificates.
const DOWNLOAD: usize = 0x2830_0000;

/// `tls-key`: the client key (generated on first use) and its public key.
pub fn key() -> ! {
    match public_key() {
        Ok(k) => {
            crate::print_hex("[app] tls: client public key ", &k);
            power_off(0)
        }
        Err(e) => {
            println!("[app] tls: client key unavailable: {}", e.name());
            power_off(1)
        }
    }
}

/// `tls-provision`: the CA and client certificates the runner left in the download buffer,
/// stored in trusted storage (the CA write-once); later runs read them from there only.
pub fn provision() -> ! {
    let mut ca = [0u8; CERT_MAX];
    let mut cert = [0u8; CERT_MAX];
    let Some((ca_len, cert_len)) = certificates(&mut ca, &mut cert) else {
        println!("[app] tls: no certificates in the download buffer");
        power_off(2)
    };
    match trust::provision(&ca[..ca_len], &cert[..cert_len]) {
        Ok(()) => {
            println!(
                "[app] tls: provisioned in trusted storage: CA certificate ({ca_len} bytes), client certificate ({cert_len} bytes)"
            );
            power_off(0)
        }
        Err(e) => {
            println!("[app] tls: provisioning refused: {e}");
            power_off(1)
        }
    }
}

/// `tls-csr <serial>`: a PKCS#10 request with CN `serial` for the TLS key (generated on first
/// use), signed in the secure partition; printed in hex for the factory.
pub fn csr(serial: &str) -> ! {
    if !castellan_fleet_client::valid_id(serial) {
        println!("[app] tls: the serial is not a device id ([A-Za-z0-9._-]{{1,64}})");
        power_off(1)
    }
    let public = match public_key() {
        Ok(k) => k,
        Err(e) => {
            println!("[app] tls: client key unavailable: {}", e.name());
            power_off(1)
        }
    };
    let mut out = [0u8; castellan_fleet_client::CSR_MAX];
    let r = castellan_fleet_client::build_csr(
        &mut Veneers,
        crate::sha256,
        TLS_KEY_ID,
        &public,
        serial,
        &mut out,
    );
    match r {
        Ok(n) => {
            crate::print_hex("[app] tls: CSR ", &out[..n]);
            power_off(0)
        }
        Err(e) => {
            println!("[app] tls: no CSR for {serial}: {e}");
            power_off(1)
        }
    }
}

/// The provisioned CA and client certificates, read from trusted storage: (CA, client).
pub fn provisioned(
    ca: &mut [u8; CERT_MAX],
    cert: &mut [u8; CERT_MAX],
) -> Result<(usize, usize), trust::TrustError> {
    Ok((
        trust::load(UID_CA, ca)?,
        trust::load(UID_CLIENT_CERT, cert)?,
    ))
}

fn public_key() -> Result<[u8; 65], castellan_gate::GateError> {
    let mut k = [0u8; 65];
    match Veneers.export_public_key(TLS_KEY_ID, &mut k) {
        Ok(_) => return Ok(k),
        Err(e) if e.status() == psa::ERROR_DOES_NOT_EXIST => {}
        Err(e) => return Err(e),
    }
    Veneers.generate_signing_key(TLS_KEY_ID)?;
    Veneers.export_public_key(TLS_KEY_ID, &mut k)?;
    Ok(k)
}

/// The certificates the runner left: (CA, client), both DER, copied out of the buffer.
fn certificates(ca: &mut [u8; CERT_MAX], cert: &mut [u8; CERT_MAX]) -> Option<(usize, usize)> {
    let mut at = DOWNLOAD;
    let read = |a: usize, out: &mut [u8]| {
        for (i, b) in out.iter_mut().enumerate() {
            // Safety: non-secure RAM of this image (the download buffer, 1 MiB from
            // 0x2830_0000); reads stay below 0x2830_0000 + 4 + 2 * (4 + CERT_MAX).
            *b = unsafe { core::ptr::read_volatile((a + i) as *const u8) };
        }
    };
    let mut magic = [0u8; 4];
    read(at, &mut magic);
    if &magic != b"CTLS" {
        return None;
    }
    at += 4;
    let mut lens = [0usize; 2];
    for (n, buf) in [&mut ca[..], &mut cert[..]].into_iter().enumerate() {
        let mut l = [0u8; 4];
        read(at, &mut l);
        let len = u32::from_le_bytes(l) as usize;
        if len == 0 || len > CERT_MAX {
            return None;
        }
        read(at + 4, &mut buf[..len]);
        lens[n] = len;
        at += 4 + len;
    }
    Some((lens[0], lens[1]))
}

/// The gate as embedded-tls's signer: the handshake transcript's CertificateVerify content is
/// hashed here and signed by the secure partition with the session's key id ([`TLS_KEY_ID`]
/// for the IDevID, the fleet client's `LDEVID_KEY_ID` for the LDevID).
struct GateSigner(u32);

impl signature::SignerMut<DerSignature> for GateSigner {
    fn try_sign(&mut self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        let hash: [u8; 32] = sha2_tls::Sha256::digest(msg).into();
        let t0 = free_run();
        let rs = Veneers
            .sign_hash(self.0, &hash)
            .map_err(|_| signature::Error::new())?;
        SIGN_TICKS.store(free_run().wrapping_sub(t0), Ordering::Relaxed);
        let sig = Signature::from_slice(&rs).map_err(|_| signature::Error::new())?;
        Ok(sig.to_der())
    }
}

/// How long the secure partition's signature took, in ticks of [`free_run`].
static SIGN_TICKS: AtomicU32 = AtomicU32::new(0);

/// The LAN9118's free-running counter: 25 MHz of QEMU's virtual clock, so under
/// `-icount shift=0` (one instruction per nanosecond) one tick is 40 instructions.
fn free_run() -> u32 {
    // Safety: a read of the controller's FREE_RUN register, which has no side effect; the
    // window is mapped and open to this world (see `net`), and reading it does not disturb the
    // driver that owns the controller.
    unsafe {
        core::ptr::read_volatile(
            (castellan_lan9118::AN505_NS_BASE + castellan_lan9118::reg::FREE_RUN as usize)
                as *const u32,
        )
    }
}

struct Provider<'a> {
    rng: ChaCha20Rng,
    verifier: CertVerifier<'a, Aes128GcmSha256, NoClock, CERT_MAX>,
    cert: &'a [u8],
    key_id: u32,
}

impl CryptoProvider for Provider<'_> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl embedded_tls::CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<DerSignature>, SignatureScheme), TlsError> {
        Ok((
            GateSigner(self.key_id),
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        Some(Certificate::X509(self.cert))
    }
}

static mut RX: [u8; 16_640] = [0; 16_640];
static mut TX: [u8; 4096] = [0; 4096];
static RECORDS_TAKEN: AtomicBool = AtomicBool::new(false);

/// A TLS 1.3 session over the device's TCP.
pub type Session<'a> = TlsConnection<'a, TcpSocket<'a>, Aes128GcmSha256>;

/// The buffers of one session: the TCP socket's (receive, transmit) and TLS records'
/// (receive, transmit). Sessions one after the other reuse them through [`Buffers::reborrow`].
pub struct Buffers<'b> {
    /// The TCP socket's receive and transmit buffers.
    pub socket: (&'b mut [u8], &'b mut [u8]),
    /// The TLS record buffers (a full 16 KiB record in).
    pub records: (&'b mut [u8], &'b mut [u8]),
}

impl Buffers<'_> {
    /// The same buffers for the next session (the previous one must be gone).
    pub fn reborrow(&mut self) -> Buffers<'_> {
        Buffers {
            socket: (&mut *self.socket.0, &mut *self.socket.1),
            records: (&mut *self.records.0, &mut *self.records.1),
        }
    }
}

/// The TLS record buffers, handed out once per boot (`None` the second time).
pub fn record_buffers() -> Option<(&'static mut [u8], &'static mut [u8])> {
    if RECORDS_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // Safety: the flag above hands the two buffers out once; nothing else names them.
    Some(unsafe {
        (
            &mut *core::ptr::addr_of_mut!(RX),
            &mut *core::ptr::addr_of_mut!(TX),
        )
    })
}

/// What a session presents: the CA the server's chain must lead to, the client certificate,
/// and the id of its key in the secure partition.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The CA certificate (DER), from trusted storage.
    pub ca: &'a [u8],
    /// The client certificate (DER), from trusted storage.
    pub cert: &'a [u8],
    /// The client key's id in the secure partition.
    pub key_id: u32,
}

/// TCP to the forward's `port`, then the TLS 1.3 handshake with the provisioned CA and the
/// client certificate (the CertificateVerify signed in the secure partition with the
/// certificate's key, the random numbers from it). `None` once the failure is printed.
pub async fn connect<'a>(
    stack: Stack<'static>,
    port: u16,
    bufs: Buffers<'a>,
    creds: Credentials<'a>,
) -> Option<Session<'a>> {
    let mut s = TcpSocket::new(stack, bufs.socket.0, bufs.socket.1);
    s.set_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = s.connect((FLEET_ADDR, port)).await {
        println!("[app] tls: connect to {FLEET_ADDR}:{port} failed: {e:?}");
        return None;
    }
    let (rbuf, wbuf) = bufs.records;
    let config = TlsConfig::new().with_server_name(SERVER_NAME);
    let mut tls = TlsConnection::new(s, rbuf, wbuf);
    let provider = Provider {
        rng: ChaCha20Rng::from_seed(crate::random("TLS handshake")),
        verifier: CertVerifier::new(Certificate::X509(creds.ca)),
        cert: creds.cert,
        key_id: creds.key_id,
    };
    let ticks = Instant::now();
    let t0 = free_run();
    if let Err(e) = tls.open(TlsContext::new(&config, provider)).await {
        println!("[app] tls: handshake failed: {e:?}");
        return None;
    }
    println!(
        "[app] tls: TLS 1.3 handshake done (server {SERVER_NAME} verified against the CA from trusted storage, client certificate signed in the secure partition) in {} ms; board counter {} ticks, of which {} in the secure signature",
        ticks.elapsed().as_millis(),
        free_run().wrapping_sub(t0),
        SIGN_TICKS.load(Ordering::Relaxed)
    );
    Some(tls)
}

/// `tls <port>`: TCP to the forward, TLS 1.3 with the client certificate, one line each way.
pub async fn run(stack: Stack<'static>, port: u16) -> bool {
    let mut ca = [0u8; CERT_MAX];
    let mut cert = [0u8; CERT_MAX];
    let (ca_len, cert_len) = match provisioned(&mut ca, &mut cert) {
        Ok(l) => l,
        Err(e) => {
            println!("[app] tls: no CA and client certificate: {e}");
            power_off(2)
        }
    };
    let mut rx = [0u8; 2048];
    let mut tx = [0u8; 2048];
    let Some(records) = record_buffers() else {
        return false;
    };
    let bufs = Buffers {
        socket: (&mut rx, &mut tx),
        records,
    };
    let creds = Credentials {
        ca: &ca[..ca_len],
        cert: &cert[..cert_len],
        key_id: TLS_KEY_ID,
    };
    let Some(mut tls) = connect(stack, port, bufs, creds).await else {
        return false;
    };
    let msg = b"hello over tls from castellan an505\n";
    if tls.write(msg).await.is_err() || tls.flush().await.is_err() {
        println!("[app] tls: send failed");
        return false;
    }
    let mut line = [0u8; 128];
    let mut n = 0;
    while n < line.len() && !line[..n].contains(&b'\n') {
        match tls.read(&mut line[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                println!("[app] tls: receive failed: {e:?}");
                return false;
            }
        }
    }
    let text = core::str::from_utf8(&line[..n]).unwrap_or("(not UTF-8)");
    println!("[app] tls: server answered: {}", text.trim_end());
    let _ = tls.close().await;
    true
}
