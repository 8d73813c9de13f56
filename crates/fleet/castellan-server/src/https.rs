//! Serving the operator API over HTTPS: rustls (aws-lc-rs provider, TLS 1.3 and TLS 1.2 with
//! AEAD suites only, as rustls' safe defaults) in front of hyper's HTTP/1.1 and axum's router.
//! Each connection gets 10 s for its TLS handshake; the remote address is attached to each
//! request (the audit log's "who" for unauthenticated callers).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::ServerError;
use crate::api::RemoteAddr;

/// A TLS acceptor for the certificate chain and key in these PEM files.
pub(crate) fn acceptor(cert_pem: &Path, key_pem: &Path) -> Result<TlsAcceptor, ServerError> {
    let file = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerError::TlsFile { path, source }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
        .map_err(file(cert_pem))?
        .collect::<Result<_, _>>()
        .map_err(file(cert_pem))?;
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(file(key_pem))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ServerError::Tls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(ServerError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accept connections until `shutdown` turns true; open connections are closed then too.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("API accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection(tcp, peer, acceptor, router) => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
) {
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            log::info!("API TLS handshake from {peer} refused: {e}");
            return;
        }
        Err(_) => {
            log::info!("API TLS handshake from {peer} timed out");
            return;
        }
    };
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(RemoteAddr(peer));
            let mut router = router.clone();
            async move { router.call(req).await }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(tls), service);
    if let Err(e) = conn.await {
        log::debug!("API connection from {peer}: {e}");
    }
}

/// Bind the API listener.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}
