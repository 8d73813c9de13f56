//! The benchmark's broker child: our broker served from a process of its own, so that its
//! memory is measured the same way as Mosquitto's.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use castellan_broker::{AllowAllVerified, Broker, BrokerConfig, NoAudit};

use crate::CHILD_ARG;

/// In a binary that runs [`crate::bench_connect`]: if this process was started as the benchmark's broker
/// child, serve the broker until stdin closes and return the exit code; otherwise return `None`.
pub fn run_child_if_requested() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_ARG) {
        return None;
    }
    let [_, _, cert, key, ca] = args.as_slice() else {
        eprintln!("usage: {CHILD_ARG} <server.pem> <server.key> <ca.pem>");
        return Some(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("benchmark broker: {e}");
            return Some(1);
        }
    };
    let code = rt.block_on(async {
        let mut config = BrokerConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            cert,
            key,
            ca,
            Arc::new(AllowAllVerified),
            Arc::new(NoAudit),
        );
        // Every benchmark client connects from 127.0.0.1: the per-address cap would measure
        // itself, not the broker.
        config.max_connections_per_address = usize::MAX;
        let handle = match Broker::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("benchmark broker: {e}");
                return 1;
            }
        };
        println!("LISTENING {}", handle.local_addr().port());
        let _ = std::io::stdout().flush();
        // Serve until the parent closes our stdin (or dies).
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        handle.shutdown().await;
        0
    });
    Some(code)
}
