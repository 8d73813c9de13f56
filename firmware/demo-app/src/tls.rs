//! TLS 1.3 with a client certificate over the device's own TCP (command `tls <port>`), the
//! client's key kept in the secure partition.
//!
//! ```text
//!  tls-key: GenerateSigningKey(TLS_KEY_ID) in the secure partition → public key printed
//!           (the host's test CA certifies it)
//!  tls:     TCP 10.0.2.100:<port> → embedded-tls handshake (TLS_AES_128_GCM_SHA256, P-256)
//!           server chain checked against the CA the runner left in the download buffer
//!           CertificateVerify: SHA-256 here, ECDSA in the secure partition (gate SignHash)
//! ```
//!
//! The download buffer (0x2830_0000) holds `CTLS`, then the CA certificate and the client
//! certificate, each as a little-endian u32 length and DER. The private key never leaves the
//! secure partition: this side holds only the key id.

use core::sync::atomic::{AtomicU32, Ordering};

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

/// The TLS client key's id in the secure partition's keystore (a persistent P-256 signing key,
/// not exportable).
pub const TLS_KEY_ID: u32 = 0x0000_0710;
/// The name the server's certificate must carry.
pub const SERVER_NAME: &str = "fleet.castellan";
/// Where the runner leaves the CA and client certificates.
const DOWNLOAD: usize = 0x2830_0000;
/// Largest certificate accepted from the download buffer.
const CERT_MAX: usize = 2048;

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
/// hashed here and signed by the secure partition with [`TLS_KEY_ID`].
struct GateSigner;

impl signature::SignerMut<DerSignature> for GateSigner {
    fn try_sign(&mut self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        let hash: [u8; 32] = sha2_tls::Sha256::digest(msg).into();
        let t0 = free_run();
        let rs = Veneers
            .sign_hash(TLS_KEY_ID, &hash)
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
        Ok((GateSigner, SignatureScheme::EcdsaSecp256r1Sha256))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        Some(Certificate::X509(self.cert))
    }
}

/// The handshake's random seed, until the gate offers random bytes: the hash of a signature
/// by the secure partition with the TLS key over this boot's measurement, its boot count from
/// trusted storage and the tick count. RFC 6979 makes the signature a keyed function of the
/// message: unpredictable without the key, and different every boot (the boot count).
fn rng_seed(seed: u64) -> [u8; 32] {
    let mut boots = [0u8; 4];
    let _ = Veneers.its_get(crate::UID_BOOT_COUNT, &mut boots);
    let mut h = sha2_tls::Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(boots);
    h.update(Instant::now().as_ticks().to_le_bytes());
    let d: [u8; 32] = h.finalize().into();
    match Veneers.sign_hash(TLS_KEY_ID, &d) {
        Ok(sig) => sha2_tls::Sha256::digest(sig).into(),
        Err(_) => d,
    }
}

static mut RX: [u8; 16_640] = [0; 16_640];
static mut TX: [u8; 4096] = [0; 4096];

/// `tls <port>`: TCP to the forward, TLS 1.3 with the client certificate, one line each way.
pub async fn run(stack: Stack<'static>, seed: u64, port: u16) -> bool {
    let mut ca = [0u8; CERT_MAX];
    let mut cert = [0u8; CERT_MAX];
    let Some((ca_len, cert_len)) = certificates(&mut ca, &mut cert) else {
        println!("[app] tls: no certificates in the download buffer");
        power_off(2)
    };
    let mut rx = [0u8; 2048];
    let mut tx = [0u8; 2048];
    let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
    s.set_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = s.connect((FLEET_ADDR, port)).await {
        println!("[app] tls: connect to {FLEET_ADDR}:{port} failed: {e:?}");
        return false;
    }
    // Safety: the record buffers are used by this one call only (the command runs once per
    // boot, and nothing else names them).
    let (rbuf, wbuf) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(RX),
            &mut *core::ptr::addr_of_mut!(TX),
        )
    };
    let config = TlsConfig::new().with_server_name(SERVER_NAME);
    let mut tls = TlsConnection::new(s, rbuf, wbuf);
    let provider = Provider {
        rng: ChaCha20Rng::from_seed(rng_seed(seed)),
        verifier: CertVerifier::new(Certificate::X509(&ca[..ca_len])),
        cert: &cert[..cert_len],
    };
    let ticks = Instant::now();
    let t0 = free_run();
    if let Err(e) = tls.open(TlsContext::new(&config, provider)).await {
        println!("[app] tls: handshake failed: {e:?}");
        return false;
    }
    println!(
        "[app] tls: TLS 1.3 handshake done (server {SERVER_NAME} verified against the CA, client certificate signed in the secure partition) in {} ms; board counter {} ticks, of which {} in the secure signature",
        ticks.elapsed().as_millis(),
        free_run().wrapping_sub(t0),
        SIGN_TICKS.load(Ordering::Relaxed)
    );
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
