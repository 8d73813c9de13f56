//! A small MQTT 3.1.1 client over mutual TLS, just what a device needs: CONNECT with a last
//! will, SUBSCRIBE, PUBLISH at QoS 0/1 both ways, PINGREQ, DISCONNECT. No session state survives
//! a connection (clean session): the agent reconnects and re-subscribes after any failure.
//!
//! Packets from the server are parsed in one place ([`decode`]), bounded ([`MAX_PACKET`]) and
//! never trusted: a malformed packet closes the connection with [`AgentError::Mqtt`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::error::{AgentError, MqttError};

/// Largest packet accepted from the server (remaining length), in bytes.
pub const MAX_PACKET: usize = 1 << 20;

/// An application message (received, or to publish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS 0 or 1.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

impl Message {
    /// A QoS 1 message, not retained.
    pub fn qos1(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos: 1,
            retain: false,
        }
    }
}

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Client identifier (the broker requires it to equal the certificate CN).
    pub client_id: String,
    /// Keep-alive interval in seconds.
    pub keep_alive_secs: u16,
    /// Last will, published by the broker if the connection drops without DISCONNECT.
    pub will: Option<Message>,
    /// How long TCP connect, TLS handshake and CONNACK may take together.
    pub connect_timeout: Duration,
}

/// A server address: host (name or IP, also the TLS server name) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `host:port`, `[v6]:port` or `mqtts://host:port`.
    pub fn parse(s: &str) -> Result<Endpoint, AgentError> {
        let rest = s.strip_prefix("mqtts://").unwrap_or(s);
        let bad = || AgentError::InvalidInput(format!("`{s}` is not host:port"));
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A packet from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNACK: return code (0 accepted).
    ConnAck {
        /// The return code.
        code: u8,
    },
    /// PUBLISH.
    Publish {
        /// The message.
        message: Message,
        /// Packet id (QoS 1).
        packet_id: Option<u16>,
    },
    /// PUBACK for our QoS 1 publish.
    PubAck(u16),
    /// SUBACK: packet id and one return code per filter (0x80 refused).
    SubAck {
        /// Packet id.
        packet_id: u16,
        /// Granted QoS or 0x80.
        codes: Vec<u8>,
    },
    /// PINGRESP.
    PingResp,
    /// Anything else a client may receive and can ignore (UNSUBACK, PUBREC…): its type.
    Other(u8),
}

fn malformed(what: &'static str) -> AgentError {
    AgentError::Mqtt(MqttError::Malformed(what))
}

/// Decodes one packet from the start of `buf`: `Ok(None)` when more bytes are needed, else the
/// packet and the bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, AgentError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * (i - 1));
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Err(malformed("remaining length longer than 4 bytes"));
        }
    }
    if len > MAX_PACKET {
        return Err(malformed("packet larger than 1 MiB"));
    }
    let Some(body) = buf.get(i..i + len) else {
        return Ok(None);
    };
    let u16_at = |o: usize| -> Result<u16, AgentError> {
        body.get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| malformed("truncated"))
    };
    let packet = match first >> 4 {
        2 => Packet::ConnAck {
            code: *body.get(1).ok_or_else(|| malformed("short CONNACK"))?,
        },
        3 => {
            let qos = (first >> 1) & 3;
            if qos > 1 {
                return Err(malformed("QoS 2 is not supported"));
            }
            let tlen = usize::from(u16_at(0)?);
            let topic = body
                .get(2..2 + tlen)
                .ok_or_else(|| malformed("topic past the end"))?;
            let topic = std::str::from_utf8(topic)
                .map_err(|_| malformed("topic is not UTF-8"))?
                .to_string();
            let mut o = 2 + tlen;
            let packet_id = if qos > 0 {
                let id = u16_at(o)?;
                o += 2;
                Some(id)
            } else {
                None
            };
            Packet::Publish {
                message: Message {
                    topic,
                    payload: body.get(o..).unwrap_or_default().to_vec(),
                    qos,
                    retain: first & 1 == 1,
                },
                packet_id,
            }
        }
        4 => Packet::PubAck(u16_at(0)?),
        9 => Packet::SubAck {
            packet_id: u16_at(0)?,
            codes: body.get(2..).unwrap_or_default().to_vec(),
        },
        13 => Packet::PingResp,
        t => Packet::Other(t),
    };
    Ok(Some((packet, i + len)))
}

/// Encodes a packet: fixed header byte, remaining length, body.
fn frame(first: u8, body: &[u8]) -> Result<Vec<u8>, AgentError> {
    if body.len() > 268_435_455 {
        return Err(AgentError::Mqtt(MqttError::PacketTooLarge));
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    Ok(out)
}

fn put_bytes(buf: &mut Vec<u8>, s: &[u8]) -> Result<(), AgentError> {
    let len = u16::try_from(s.len()).map_err(|_| AgentError::Mqtt(MqttError::StringTooLong))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s);
    Ok(())
}

/// CONNECT (MQTT 3.1.1, clean session).
pub fn encode_connect(opts: &ConnectOptions) -> Result<Vec<u8>, AgentError> {
    let mut body = Vec::new();
    put_bytes(&mut body, b"MQTT")?;
    body.push(4);
    let mut flags = 0x02u8;
    if let Some(w) = &opts.will {
        flags |= 0x04 | ((w.qos & 1) << 3) | if w.retain { 0x20 } else { 0 };
    }
    body.push(flags);
    body.extend_from_slice(&opts.keep_alive_secs.to_be_bytes());
    put_bytes(&mut body, opts.client_id.as_bytes())?;
    if let Some(w) = &opts.will {
        put_bytes(&mut body, w.topic.as_bytes())?;
        put_bytes(&mut body, &w.payload)?;
    }
    frame(0x10, &body)
}

/// PUBLISH.
pub fn encode_publish(m: &Message, packet_id: u16) -> Result<Vec<u8>, AgentError> {
    let mut body = Vec::with_capacity(m.topic.len() + m.payload.len() + 4);
    put_bytes(&mut body, m.topic.as_bytes())?;
    if m.qos > 0 {
        body.extend_from_slice(&packet_id.to_be_bytes());
    }
    body.extend_from_slice(&m.payload);
    frame(0x30 | ((m.qos & 1) << 1) | u8::from(m.retain), &body)
}

/// SUBSCRIBE to one filter.
pub fn encode_subscribe(filter: &str, qos: u8, packet_id: u16) -> Result<Vec<u8>, AgentError> {
    let mut body = packet_id.to_be_bytes().to_vec();
    put_bytes(&mut body, filter.as_bytes())?;
    body.push(qos & 1);
    frame(0x82, &body)
}

/// One MQTT connection over TLS.
pub struct MqttConnection {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
    next_id: u16,
    inbox: VecDeque<Message>,
    /// When a packet was last sent (for keep-alive pings).
    last_sent: Instant,
    keep_alive: Duration,
}

impl std::fmt::Debug for MqttConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConnection").finish_non_exhaustive()
    }
}

/// How long a QoS 1 publish or a subscription may wait for its acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

impl MqttConnection {
    /// TCP, TLS (server name = the endpoint's host) and CONNECT; fails unless CONNACK accepts.
    pub async fn connect(
        endpoint: &Endpoint,
        tls: Arc<ClientConfig>,
        opts: &ConnectOptions,
    ) -> Result<MqttConnection, AgentError> {
        tokio::time::timeout(
            opts.connect_timeout,
            Self::connect_inner(endpoint, tls, opts),
        )
        .await
        .map_err(|_| AgentError::Timeout("the MQTT connection"))?
    }

    async fn connect_inner(
        endpoint: &Endpoint,
        tls: Arc<ClientConfig>,
        opts: &ConnectOptions,
    ) -> Result<MqttConnection, AgentError> {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| AgentError::network(format!("cannot reach {endpoint}"), e))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| AgentError::InvalidInput(format!("server name {}: {e}", endpoint.host)))?;
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| AgentError::tls(format!("handshake with {endpoint}"), e))?;
        let mut conn = MqttConnection {
            stream,
            buf: Vec::with_capacity(4096),
            next_id: 1,
            inbox: VecDeque::new(),
            last_sent: Instant::now(),
            keep_alive: Duration::from_secs(u64::from(opts.keep_alive_secs.max(1))),
        };
        conn.send(&encode_connect(opts)?).await?;
        let deadline = Instant::now() + opts.connect_timeout;
        match conn.read_packet(deadline).await? {
            Some(Packet::ConnAck { code: 0 }) => Ok(conn),
            Some(Packet::ConnAck { code }) => Err(MqttError::ConnectRefused(code).into()),
            Some(other) => Err(MqttError::ExpectedConnAck(format!("{other:?}")).into()),
            None => Err(AgentError::Timeout("CONNACK")),
        }
    }

    /// Subscribes to `filter`; fails when the broker refuses it (SUBACK 0x80).
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<u8, AgentError> {
        let id = self.packet_id();
        self.send(&encode_subscribe(filter, qos, id)?).await?;
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            match self.read_packet(deadline).await? {
                Some(Packet::SubAck { packet_id, codes }) if packet_id == id => {
                    return match codes.first() {
                        Some(&c) if c <= 1 => Ok(c),
                        _ => Err(MqttError::SubscribeRefused(filter.to_string()).into()),
                    };
                }
                Some(p) => self.stash(p).await?,
                None => return Err(AgentError::Timeout("SUBACK")),
            }
        }
    }

    /// Publishes `m`; at QoS 1 waits for the PUBACK.
    pub async fn publish(&mut self, m: &Message) -> Result<(), AgentError> {
        let id = if m.qos > 0 { self.packet_id() } else { 0 };
        self.send(&encode_publish(m, id)?).await?;
        if m.qos == 0 {
            return Ok(());
        }
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            match self.read_packet(deadline).await? {
                Some(Packet::PubAck(pid)) if pid == id => return Ok(()),
                Some(p) => self.stash(p).await?,
                None => return Err(AgentError::Timeout("PUBACK")),
            }
        }
    }

    /// The next message from the server, waiting at most `wait` (`Ok(None)` when none came).
    /// Sends keep-alive pings as needed.
    pub async fn recv(&mut self, wait: Duration) -> Result<Option<Message>, AgentError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(Some(m));
            }
            if self.last_sent.elapsed() >= self.keep_alive / 2 {
                self.send(&[0xC0, 0]).await?;
            }
            let ping_due = self.last_sent + self.keep_alive / 2;
            let until = deadline.min(ping_due);
            match self.read_packet(until).await? {
                Some(p) => self.stash(p).await?,
                None if Instant::now() >= deadline => return Ok(None),
                None => {}
            }
        }
    }

    /// Puts messages that arrived while waiting for something else back in front of the inbox,
    /// in their order, for the session loop to handle.
    pub(crate) fn requeue(&mut self, held: Vec<Message>) {
        for m in held.into_iter().rev() {
            self.inbox.push_front(m);
        }
    }

    /// Sends DISCONNECT and closes the connection (errors ignored: it is going away).
    pub async fn disconnect(mut self) {
        let _ = self.send(&[0xE0, 0]).await;
        let _ = self.stream.shutdown().await;
    }

    /// Keeps a packet that arrived while waiting for something else.
    async fn stash(&mut self, p: Packet) -> Result<(), AgentError> {
        if let Packet::Publish { message, packet_id } = p {
            if let Some(id) = packet_id {
                let mut ack = vec![0x40, 2];
                ack.extend_from_slice(&id.to_be_bytes());
                self.send(&ack).await?;
            }
            if self.inbox.len() >= 64 {
                self.inbox.pop_front();
            }
            self.inbox.push_back(message);
        }
        Ok(())
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), AgentError> {
        let closed = |e: std::io::Error| AgentError::network("connection lost", e);
        self.stream.write_all(bytes).await.map_err(closed)?;
        self.stream.flush().await.map_err(closed)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// The next packet, or `None` at `deadline`.
    async fn read_packet(&mut self, deadline: Instant) -> Result<Option<Packet>, AgentError> {
        loop {
            if let Some((p, used)) = decode(&self.buf)? {
                self.buf.drain(..used);
                return Ok(Some(p));
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => {
                    return Err(AgentError::network(
                        "the server closed the connection",
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                Ok(Ok(n)) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Ok(Err(e)) => return Err(AgentError::network("connection lost", e)),
            }
        }
    }
}

/// The meaning of a CONNACK return code (MQTT 3.1.1 §3.2.2.3).
pub(crate) fn connack_reason(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_through_the_codec() {
        let m = Message::qos1("dev/a/telemetry", b"{\"x\":1}".to_vec());
        let bytes = encode_publish(&m, 7).unwrap();
        let (p, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            p,
            Packet::Publish {
                message: m,
                packet_id: Some(7)
            }
        );
        // Any prefix is "need more", never an error or a wrong packet.
        for n in 0..bytes.len() {
            assert_eq!(decode(&bytes[..n]).unwrap(), None);
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        assert!(decode(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(decode(&[0x30, 0xff, 0xff, 0xff, 0x7f]).is_err());
        // Topic length past the end of the packet.
        assert!(decode(&[0x30, 0x03, 0x00, 0x10, b'a']).is_err());
        // QoS 2 is refused.
        assert!(decode(&[0x34, 0x04, 0x00, 0x01, b'a', 0x00]).is_err());
    }

    #[test]
    fn connect_carries_the_will_and_client_id() {
        let opts = ConnectOptions {
            client_id: "CSTL-1".into(),
            keep_alive_secs: 30,
            will: Some(Message {
                topic: "dev/CSTL-1/status".into(),
                payload: b"{\"online\":false}".to_vec(),
                qos: 1,
                retain: true,
            }),
            connect_timeout: Duration::from_secs(1),
        };
        let b = encode_connect(&opts).unwrap();
        assert_eq!(b[0], 0x10);
        // flags: clean session, will, will QoS 1, will retain.
        assert_eq!(b[9], 0x02 | 0x04 | 0x08 | 0x20);
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("CSTL-1") && text.contains("dev/CSTL-1/status"));
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:8883").unwrap(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 8883
            }
        );
        assert_eq!(Endpoint::parse("mqtts://[::1]:1").unwrap().host, "::1");
        assert!(Endpoint::parse("nohost").is_err());
        assert!(Endpoint::parse(":1").is_err());
    }
}
