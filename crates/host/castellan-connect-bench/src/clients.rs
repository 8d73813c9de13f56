//! The clients' side of one run against one broker: connect every device (TLS handshake with
//! a client certificate, CONNECT/CONNACK), then publish QoS 1 messages; measure both phases and
//! the broker's memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use castellan_testkit::mqtt_client::MqttClient;
use tokio::sync::Semaphore;

use crate::process::vm_rss_kib;
use crate::{BenchError, BenchOptions, BrokerFigures, bench_err};

pub(crate) async fn run_clients(
    name: &str,
    addr: SocketAddr,
    pid: u32,
    tls: &[(String, Arc<tokio_rustls::rustls::ClientConfig>)],
    opts: &BenchOptions,
) -> Result<BrokerFigures, BenchError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle_kib = vm_rss_kib(pid)?;

    // Connect phase: every client does TCP + TLS + CONNECT/CONNACK, `connect_concurrency` at once.
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(tls.len());
    for (id, config) in tls {
        let (id, config, permits) = (id.clone(), config.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(bench_err)?;
            let c = MqttClient::connect(addr, config, &id, 300).await?;
            Ok::<_, BenchError>((id, c))
        }));
    }
    let joined = tokio::time::timeout(opts.phase_timeout, futures_join(tasks))
        .await
        .map_err(|_| {
            BenchError::Bench(format!(
                "{name}: connect phase exceeded {:?}",
                opts.phase_timeout
            ))
        })?;
    let connect_secs = start.elapsed().as_secs_f64();
    let mut clients = Vec::new();
    let mut failed = 0usize;
    let mut first_error = None;
    for r in joined {
        match r {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    if clients.is_empty() {
        return Err(BenchError::Bench(format!(
            "{name}: no client connected ({})",
            first_error.unwrap_or_default()
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = vm_rss_kib(pid)?;
    let connected = clients.len();

    // Publish phase: all clients publish their QoS 1 messages concurrently.
    let payload = vec![0x5au8; opts.payload_len];
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connected);
    for (id, mut c) in clients {
        let payload = payload.clone();
        let count = opts.msgs_per_client;
        tasks.push(tokio::spawn(async move {
            let topic = format!("dev/{id}/telemetry");
            c.publish_qos1(&topic, &payload, count).await?;
            Ok::<_, BenchError>(c)
        }));
    }
    let joined = tokio::time::timeout(opts.phase_timeout, futures_join(tasks))
        .await
        .map_err(|_| {
            BenchError::Bench(format!(
                "{name}: publish phase exceeded {:?}",
                opts.phase_timeout
            ))
        })?;
    let publish_secs = start.elapsed().as_secs_f64();
    let mut messages = 0usize;
    let mut done = Vec::new();
    for r in joined {
        if let Ok(Ok(c)) = r {
            messages += opts.msgs_per_client;
            done.push(c);
        }
    }
    for c in done {
        let _ = c.disconnect().await;
    }
    let per_sec = |n: usize, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Ok(BrokerFigures {
        broker: name.to_owned(),
        connected,
        failed,
        connect_secs,
        handshakes_per_sec: per_sec(connected, connect_secs),
        messages,
        publish_secs,
        messages_per_sec: per_sec(messages, publish_secs),
        rss_idle_kib,
        rss_connected_kib,
        kib_per_connection: rss_connected_kib.saturating_sub(rss_idle_kib) as f64
            / connected as f64,
    })
}

async fn futures_join<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await);
    }
    out
}
