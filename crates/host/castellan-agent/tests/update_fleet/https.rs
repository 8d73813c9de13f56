//! The small HTTPS servers of the update tests: image ranges with a bearer token, and a
//! directory of files (the TUF metadata), with server certificates of the fleet's PKI.

use std::sync::{Arc, Mutex};

use castellan_agent::update::protocol::HttpsSource;
use castellan_pki::Pki;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A TLS acceptor with a server certificate of the fleet's PKI (the agent trusts its CA).
pub fn tls_acceptor(pki: &Pki) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    let creds = pki.issue_server_cert(&["localhost", "127.0.0.1"]).unwrap();
    let certs = castellan_agent::tls::certificates_from_pem(&format!(
        "{}{}",
        creds.certificate.pem, creds.chain_pem
    ))
    .unwrap();
    let key = PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A static HTTPS server of a directory's files (`GET /<name>`), for the TUF metadata.
pub async fn serve_dir(pki: &Pki, dir: std::path::PathBuf) -> String {
    let acceptor = tls_acceptor(pki);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, dir) = (acceptor.clone(), dir.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(head) = read_head(&mut tls).await else {
                    return;
                };
                let name = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.rsplit('/').next())
                    .unwrap_or_default()
                    .to_string();
                let (status, body) = match std::fs::read(dir.join(&name)) {
                    Ok(b) if !name.is_empty() && !name.starts_with('.') => ("200 OK", b),
                    _ => ("404 Not Found", Vec::new()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://127.0.0.1:{}/tuf/metadata", addr.port())
}

/// The head of an HTTP request (up to the blank line), or `None` if the peer went away.
async fn read_head(tls: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).to_string())
}

/// The requests a [`RangeServer`] received: `Range` header (if any) and whether the token was
/// right.
pub type RangeLog = Arc<Mutex<Vec<(Option<String>, bool)>>>;

/// A tiny HTTPS server for range requests of one image with one bearer token.
pub struct RangeServer {
    pub url: String,
    pub token: String,
    /// `Range` headers received (and `None` for a request without one), with whether the
    /// token was right.
    pub requests: RangeLog,
}

impl RangeServer {
    pub async fn start(pki: &Pki, image: Vec<u8>, token: &str) -> RangeServer {
        let acceptor = tls_acceptor(pki);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: RangeLog = Arc::default();
        let (log, token_s, image) = (requests.clone(), token.to_string(), Arc::new(image));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, log, token, image) = (
                    acceptor.clone(),
                    log.clone(),
                    token_s.clone(),
                    image.clone(),
                );
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Some(head) = read_head(&mut tls).await else {
                        return;
                    };
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_string())
                        })
                    };
                    let authorized = header("authorization") == Some(format!("Bearer {token}"));
                    let range = header("range");
                    log.lock().unwrap().push((range.clone(), authorized));
                    let size = image.len() as u64;
                    let (status, extra, body): (&str, String, Vec<u8>) = if !authorized {
                        ("401 Unauthorized", String::new(), Vec::new())
                    } else if let Some((a, b)) = range
                        .as_deref()
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.split_once('-'))
                        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                        .filter(|(a, b)| a <= b && *a < size)
                    {
                        let b = b.min(size - 1);
                        (
                            "206 Partial Content",
                            format!("Content-Range: bytes {a}-{b}/{size}\r\n"),
                            image[a as usize..=b as usize].to_vec(),
                        )
                    } else {
                        (
                            "416 Range Not Satisfiable",
                            format!("Content-Range: bytes */{size}\r\n"),
                            Vec::new(),
                        )
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.write_all(&body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        RangeServer {
            url: format!(
                "https://127.0.0.1:{}/api/v1/updates/c-https/image",
                addr.port()
            ),
            token: token.to_string(),
            requests,
        }
    }

    pub fn source(&self) -> HttpsSource {
        HttpsSource {
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }
}
