//! A minimal MQTT 3.1.1 client over mutual TLS (tokio-rustls), just enough for the connect
//! benchmark, connection-storm and smoke tests: CONNECT/CONNACK, QoS 1 PUBLISH/PUBACK with a send window,
//! DISCONNECT. Not a general client: no subscriptions, no retries, no session state.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Why the test client failed (TLS setup, connection, or the broker's answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MqttClientError {
    /// The TLS configuration, the connection or an MQTT exchange failed.
    #[error("MQTT test client: {0}")]
    Failed(String),
}

/// Most QoS 1 publishes in flight per client before waiting for a PUBACK.
const SEND_WINDOW: usize = 32;

fn client_err(e: impl std::fmt::Display) -> MqttClientError {
    MqttClientError::Failed(e.to_string())
}

/// A rustls client configuration (aws-lc-rs, TLS 1.2/1.3) that trusts `ca_pem` and presents the
/// certificate chain `cert_pem` with key `key_pem`.
pub fn tls_config(
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<Arc<ClientConfig>, MqttClientError> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).map_err(client_err)? {
        roots.add(c.map_err(client_err)?).map_err(client_err)?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
        .map_err(client_err)?
        .collect::<Result<_, _>>()
        .map_err(client_err)?;
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(client_err)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(client_err)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(client_err)?;
    Ok(Arc::new(config))
}

/// One MQTT 3.1.1 connection over TLS.
pub struct MqttClient {
    stream: TlsStream<TcpStream>,
    next_packet_id: u16,
}

impl std::fmt::Debug for MqttClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttClient").finish_non_exhaustive()
    }
}

impl MqttClient {
    /// Opens TCP, does the TLS handshake (server name `localhost`), sends CONNECT (clean session)
    /// and waits for a successful CONNACK.
    pub async fn connect(
        addr: SocketAddr,
        tls: Arc<ClientConfig>,
        client_id: &str,
        keep_alive_secs: u16,
    ) -> Result<Self, MqttClientError> {
        let tcp = TcpStream::connect(addr).await.map_err(client_err)?;
        tcp.set_nodelay(true).map_err(client_err)?;
        let name = ServerName::try_from("localhost").map_err(client_err)?;
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(client_err)?;
        let mut client = Self {
            stream,
            next_packet_id: 1,
        };
        let mut body = Vec::with_capacity(16 + client_id.len());
        put_str(&mut body, "MQTT")?;
        body.push(4); // protocol level 3.1.1
        body.push(0x02); // clean session
        body.extend_from_slice(&keep_alive_secs.to_be_bytes());
        put_str(&mut body, client_id)?;
        client.write_packet(0x10, &body).await?;
        let (kind, ack) = client.read_packet().await?;
        match (kind >> 4, ack.as_slice()) {
            (2, [_, 0]) => Ok(client),
            (2, [_, rc]) => Err(MqttClientError::Failed(format!(
                "CONNACK refused, return code {rc}"
            ))),
            _ => Err(MqttClientError::Failed(format!(
                "expected CONNACK, got packet type {}",
                kind >> 4
            ))),
        }
    }

    /// Publishes `count` QoS 1 messages to `topic` and waits until every one is acknowledged.
    pub async fn publish_qos1(
        &mut self,
        topic: &str,
        payload: &[u8],
        count: usize,
    ) -> Result<(), MqttClientError> {
        let mut sent = 0usize;
        let mut acked = 0usize;
        while acked < count {
            while sent < count && sent - acked < SEND_WINDOW {
                let pid = self.next_packet_id;
                self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
                let mut body = Vec::with_capacity(4 + topic.len() + payload.len());
                put_str(&mut body, topic)?;
                body.extend_from_slice(&pid.to_be_bytes());
                body.extend_from_slice(payload);
                self.write_packet(0x32, &body).await?;
                sent += 1;
            }
            let (kind, _) = self.read_packet().await?;
            if kind >> 4 != 4 {
                return Err(MqttClientError::Failed(format!(
                    "expected PUBACK, got packet type {}",
                    kind >> 4
                )));
            }
            acked += 1;
        }
        Ok(())
    }

    /// Sends DISCONNECT and closes the TLS stream.
    pub async fn disconnect(mut self) -> Result<(), MqttClientError> {
        self.write_packet(0xE0, &[]).await?;
        self.stream.shutdown().await.map_err(client_err)
    }

    async fn write_packet(&mut self, first: u8, body: &[u8]) -> Result<(), MqttClientError> {
        let mut buf = Vec::with_capacity(body.len() + 5);
        buf.push(first);
        let mut len = body.len();
        if len > 268_435_455 {
            return Err(MqttClientError::Failed("packet too large".into()));
        }
        loop {
            let mut byte = (len % 128) as u8;
            len /= 128;
            if len > 0 {
                byte |= 0x80;
            }
            buf.push(byte);
            if len == 0 {
                break;
            }
        }
        buf.extend_from_slice(body);
        self.stream.write_all(&buf).await.map_err(client_err)?;
        self.stream.flush().await.map_err(client_err)
    }

    async fn read_packet(&mut self) -> Result<(u8, Vec<u8>), MqttClientError> {
        let first = self.stream.read_u8().await.map_err(client_err)?;
        let mut len = 0usize;
        let mut shift = 0u32;
        loop {
            let b = self.stream.read_u8().await.map_err(client_err)?;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 21 {
                return Err(MqttClientError::Failed("malformed remaining length".into()));
            }
        }
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(client_err)?;
        Ok((first, body))
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) -> Result<(), MqttClientError> {
    let len =
        u16::try_from(s.len()).map_err(|_| MqttClientError::Failed("string too long".into()))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
    Ok(())
}
