//! Serving the operator API over HTTPS: rustls (aws-lc-rs provider, TLS 1.3 and TLS 1.2 with
//! AEAD suites only, as rustls' safe defaults) in front of hyper's HTTP/1.1 and axum's router.
//! The [`FrontDoorLimits`] bound what a slow or flooding client can hold: connections in total
//! and per address, the TLS handshake, the request head (time, which is also the idle time
//! between keep-alive requests, and size) and the request body (time; its size is capped by the
//! router). The remote address is attached to each request (the audit log's "who" for
//! unauthenticated callers).

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

use castellan_broker::RefusalLog;

use crate::ServerError;
use crate::api::RemoteAddr;
use crate::front_door::{ConnectionCaps, ConnectionSlot, FrontDoorLimits};

/// Audit action of refused API connections (caps, TLS, request-head timeouts), aggregated.
pub(crate) const ACTION_API_CONNECT: &str = "api.connect";

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
    limits: FrontDoorLimits,
    refusals: Arc<RefusalLog>,
    mut shutdown: watch::Receiver<bool>,
) {
    let caps = ConnectionCaps::new(
        limits.api_max_connections,
        limits.api_max_connections_per_address,
    );
    let limits = Arc::new(limits);
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
        // Over a cap: closed at once, before any TLS work.
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                refusals.note(ACTION_API_CONNECT, peer.ip(), None, reason);
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let limits = limits.clone();
        let refusals = refusals.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection(tcp, peer, acceptor, router, &limits, &refusals, slot) => {}
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
    limits: &FrontDoorLimits,
    refusals: &RefusalLog,
    _slot: ConnectionSlot,
) {
    let tls = match tokio::time::timeout(limits.api_tls_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = format!("TLS handshake failed: {e}");
            refusals.note(ACTION_API_CONNECT, peer.ip(), None, &reason);
            return;
        }
        Err(_) => {
            refusals.note(
                ACTION_API_CONNECT,
                peer.ip(),
                None,
                "TLS handshake timed out",
            );
            return;
        }
    };
    let body_timeout = limits.api_body_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(|body| axum::body::Body::new(DeadlineBody::new(body, body_timeout)));
        req.extensions_mut().insert(RemoteAddr(peer));
        req.extensions_mut()
            .insert(castellan_console::ClientAddr(peer));
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    // hyper's header timeout also runs while a keep-alive connection waits for its next request.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.api_header_timeout)
        .max_buf_size(limits.api_max_header_bytes.max(8 * 1024))
        .max_headers(limits.api_max_headers)
        .serve_connection(TokioIo::new(tls), service);
    match conn.await {
        Err(e) if e.is_parse_too_large() => {
            refusals.note(
                ACTION_API_CONNECT,
                peer.ip(),
                None,
                "request head too large",
            );
        }
        // A header timeout is also how an idle keep-alive connection ends: not a refusal.
        Err(e) => log::debug!("API connection from {peer}: {e}"),
        Ok(()) => {}
    }
}

/// Bind the API listener.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// A request body that must be received in full before a deadline (a slow-loris body is cut
/// off with an error, which the handler answers as a bad request).
struct DeadlineBody<B> {
    inner: B,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> DeadlineBody<B> {
    fn new(inner: B, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

/// The error of a body that missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the time allowed")]
struct BodyTimedOut;

impl<B> hyper::body::Body for DeadlineBody<B>
where
    B: hyper::body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future as _;
        if self.deadline.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        std::pin::Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
