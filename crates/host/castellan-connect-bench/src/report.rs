//! The benchmark's figures for each broker and the side-by-side table printed from them.

/// Figures for one broker.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerFigures {
    /// Broker name and version.
    pub broker: String,
    /// Clients that completed TLS + CONNACK.
    pub connected: usize,
    /// Clients that failed to connect.
    pub failed: usize,
    /// Wall time to connect all clients, seconds.
    pub connect_secs: f64,
    /// Completed connections (TLS handshake + MQTT CONNECT/CONNACK) per second.
    pub handshakes_per_sec: f64,
    /// QoS 1 messages acknowledged.
    pub messages: usize,
    /// Wall time of the publish phase, seconds.
    pub publish_secs: f64,
    /// Acknowledged QoS 1 messages per second.
    pub messages_per_sec: f64,
    /// Broker VmRSS before any client, KiB.
    pub rss_idle_kib: u64,
    /// Broker VmRSS with all clients connected, KiB.
    pub rss_connected_kib: u64,
    /// (connected − idle RSS) / connected clients, KiB.
    pub kib_per_connection: f64,
}

/// Both brokers' figures from one run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Clients per broker.
    pub clients: usize,
    /// Messages per client.
    pub msgs_per_client: usize,
    /// Payload size in bytes.
    pub payload_len: usize,
    /// Our broker (rmqtt with the Castellan hooks).
    pub castellan: BrokerFigures,
    /// Mosquitto from the Debian package.
    pub mosquitto: BrokerFigures,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (c, m) = (&self.castellan, &self.mosquitto);
        writeln!(
            f,
            "connect benchmark: {} clients, mutual TLS (ECDSA P-256), MQTT 3.1.1, {} QoS 1 messages of {} bytes each, loopback",
            self.clients, self.msgs_per_client, self.payload_len
        )?;
        writeln!(
            f,
            "{:<26} {:>20} {:>20} {:>10}",
            "", c.broker, m.broker, "ratio"
        )?;
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".into()
            }
        };
        let mut row = |name: &str, a: f64, b: f64, prec: usize| {
            writeln!(
                f,
                "{name:<26} {a:>20.prec$} {b:>20.prec$} {:>10}",
                ratio(a, b)
            )
        };
        row(
            "handshakes/s",
            c.handshakes_per_sec,
            m.handshakes_per_sec,
            1,
        )?;
        row("connect all (s)", c.connect_secs, m.connect_secs, 3)?;
        row(
            "messages/s (QoS 1)",
            c.messages_per_sec,
            m.messages_per_sec,
            1,
        )?;
        row("publish all (s)", c.publish_secs, m.publish_secs, 3)?;
        row(
            "broker RSS idle (MiB)",
            c.rss_idle_kib as f64 / 1024.0,
            m.rss_idle_kib as f64 / 1024.0,
            1,
        )?;
        row(
            "broker RSS loaded (MiB)",
            c.rss_connected_kib as f64 / 1024.0,
            m.rss_connected_kib as f64 / 1024.0,
            1,
        )?;
        row(
            "KiB per connection",
            c.kib_per_connection,
            m.kib_per_connection,
            1,
        )?;
        row("failed connections", c.failed as f64, m.failed as f64, 0)?;
        write!(f, "ratio = castellan / mosquitto")
    }
}
