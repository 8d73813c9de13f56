//! `castellan-broker-bench [CLIENTS] [MSGS_PER_CLIENT]`: the connect benchmark, our embedded broker
//! against Mosquitto with the same certificates, printed side by side (defaults: 500 clients, 20
//! QoS 1 messages each). Loopback only.

fn main() {
    // This binary is also the benchmark's broker child.
    if let Some(code) = castellan_connect_bench::run_child_if_requested() {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = castellan_connect_bench::BenchOptions::default();
    let parse = |s: &String, what: &str| -> usize {
        s.parse().unwrap_or_else(|_| {
            eprintln!("{what} must be a number, got {s:?}");
            std::process::exit(2)
        })
    };
    if let Some(n) = args.first() {
        opts.clients = parse(n, "CLIENTS");
    }
    if let Some(m) = args.get(1) {
        opts.msgs_per_client = parse(m, "MSGS_PER_CLIENT");
    }
    match castellan_connect_bench::bench_connect_with(&opts) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("castellan-broker-bench: {e}");
            std::process::exit(1);
        }
    }
}
