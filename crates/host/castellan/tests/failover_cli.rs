//! Two `castellan serve` processes on one database (SQLite file and PostgreSQL): the first
//! holds the once-only duties' leases; killed with SIGKILL, it gives nothing up, and the second
//! takes every duty over once the leases expire, auditing each takeover. A clean stop gives the
//! leases up.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use castellan_store::Store;
use castellan_store::testing::{TestStore, each_backend};

const DUTIES: [&str; 3] = ["analysis", "campaigns", "tuf-resign"];

/// `castellan serve` named `name` on free loopback ports, its leases lasting 2 s; returns once
/// it says it runs.
fn serve(state: &Path, database: &str, name: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["serve", "--mqtt", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .args([
            "--database",
            database,
            "--instance-name",
            name,
            "--lease-ttl",
            "2",
        ])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    while let Some(Ok(line)) = lines.next() {
        out.push_str(&line);
        out.push('\n');
        if line.contains("Ctrl-C") {
            assert!(out.contains(&format!("instance     {name}")), "{out}");
            // Keep reading, so what it prints when it stops finds its pipe open.
            std::thread::spawn(move || lines.for_each(drop));
            return child;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("castellan serve {name} did not start: {out}");
}

/// The reasons of the `lease.takeover` entries naming `lease`.
async fn takeovers(store: &Store, lease: &str) -> Vec<String> {
    store
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "lease.takeover" && e.target == lease)
        .map(|e| format!("{}: {}", e.actor, e.reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_duties_are_taken_over_by_the_survivor() {
    each_backend(async |t: &TestStore| {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        castellan_testkit::fleet::hand_over_pki(&one);
        castellan_testkit::fleet::pki::copy_tree(&one.join("pki"), &two.join("pki"));
        let database = t.location.clone();
        let mut first = serve(&one, &database, "one");
        let mut second = serve(&two, &database, "two");
        for lease in t.store.leases().await.unwrap() {
            assert_eq!(lease.holder, "one", "{lease:?}");
        }

        first.kill().unwrap(); // SIGKILL: no clean stop, the leases stay until they expire
        first.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        for duty in DUTIES {
            loop {
                let found = takeovers(&t.store, duty).await;
                if let [only] = found.as_slice() {
                    assert_eq!(
                        only,
                        "two: epoch 2 taken over from one (epoch 1), which let it expire"
                    );
                    break;
                }
                assert!(found.is_empty(), "{duty}: {found:?}");
                assert!(Instant::now() < deadline, "{duty} was not taken over");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        // A clean stop gives the leases up at once.
        let pid = second.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert!(second.wait().unwrap().success());
        for lease in t.store.leases().await.unwrap() {
            assert_eq!(
                (lease.holder.as_str(), lease.expires_at),
                ("two", 0),
                "{lease:?}"
            );
        }
    })
    .await;
}
