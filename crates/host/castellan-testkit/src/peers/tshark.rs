//! Wireshark's `tshark`: a capture of loopback traffic during a test, and which TCP payloads on
//! the captured ports are not TLS records (the "nothing in clear on the wire" check). Capturing
//! needs root (or capture rights on `dumpcap`), as CI has.
//!
//! ```text
//!  Capture::start(file, ports) ─ tshark -i lo -f "tcp port A or tcp port B" -w file
//!  Capture::stop()             ─ a marker connection to every port, seen by tshark (it has
//!                                caught up with the traffic before it), then SIGINT
//!  analyse(file, ports)        ─ tshark -2 -r file -d tcp.port==A,tls … : TLS frames / clear frames
//! ```

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How to install it.
pub const INSTALL: &str = "apt-get install -y tshark";

/// Fails the test unless `tshark` is on the `PATH`.
#[track_caller]
pub fn require() {
    super::require_tool("tshark", INSTALL);
}

/// A running capture.
pub struct Capture {
    child: Child,
    file: PathBuf,
    ports: Vec<u16>,
    /// The packet lines tshark prints (`-P -l`), in order.
    lines: mpsc::Receiver<String>,
}

impl Capture {
    /// Capture TCP traffic to and from `ports` on the loopback interface into `file` (pcapng);
    /// returns once a probe (a bare TCP connection to the first port, no payload) shows in the
    /// capture. Panics (naming the cause) when it cannot.
    pub fn start(file: &Path, ports: &[u16]) -> Capture {
        require();
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-l", "-P", "-f", &filter, "-w"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tshark: {e}"));
        // Each captured packet is printed on stdout (-P -l): probe until one shows.
        let stdout = child.stdout.take().expect("tshark stdout");
        let stderr = child.stderr.take().expect("tshark stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let said = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        let probe =
            std::net::SocketAddr::from(([127, 0, 0, 1], ports.first().copied().unwrap_or(0)));
        let mut seen = false;
        for _ in 0..100 {
            let _ = std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(200));
            if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                seen = true;
                break;
            }
        }
        if !seen {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tshark captured nothing in 40 s (capture rights? run as root): {}",
                said.join().unwrap_or_default()
            );
        }
        Capture {
            child,
            file: file.to_path_buf(),
            ports: ports.to_vec(),
            lines: rx,
        }
    }

    /// Stop the capture (SIGINT, so the file is complete) and return its path.
    pub fn stop(mut self) -> PathBuf {
        // On a loaded machine tshark may lag the traffic: a marker connection to each port,
        // once printed, shows that everything before it was captured.
        while self.lines.try_recv().is_ok() {}
        for port in self.ports.clone() {
            let marker = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let local = std::net::TcpStream::connect_timeout(&marker, Duration::from_secs(2))
                .ok()
                .and_then(|c| c.local_addr().ok())
                .map(|a| a.port().to_string());
            let Some(local) = local else { continue };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                match self.lines.recv_timeout(Duration::from_millis(200)) {
                    Ok(line) if line.contains(&local) => break,
                    Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.file.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("tshark did not stop within 20 s");
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a capture held on the ports it was analysed for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireReport {
    /// Frames carrying TLS records (or segments of one).
    pub tls_frames: usize,
    /// Frames with a TCP payload that is no TLS record: `frame src->dst protocol`.
    pub clear_frames: Vec<String>,
    /// The captured ports that carried a TCP payload at all.
    pub ports_seen: Vec<u16>,
    /// Retransmitted segments (their bytes were judged on the original frame).
    pub retransmitted_frames: usize,
}

/// `tshark -r file` (`two_pass`: `-2`) with every payload on `ports` decoded as TLS, the frames
/// matching `filter`, the `fields` of each separated by `|`, one frame per line.
fn read_fields(
    file: &Path,
    ports: &[u16],
    two_pass: bool,
    filter: &str,
    fields: &[&str],
) -> String {
    let mut cmd = Command::new("tshark");
    if two_pass {
        cmd.arg("-2");
    }
    cmd.arg("-r").arg(file);
    for p in ports {
        cmd.args(["-d", &format!("tcp.port=={p},tls")]);
    }
    cmd.args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark: {e}"));
    assert!(
        out.status.success(),
        "tshark -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Read `file` decoding every payload on `ports` as TLS (two passes, TCP reassembly on) and
/// sort the frames with a TCP payload into TLS and not TLS.
pub fn analyse(file: &Path, ports: &[u16]) -> WireReport {
    require();
    let fields = [
        "frame.number",
        "tcp.srcport",
        "tcp.dstport",
        "_ws.col.Protocol",
        "tls.record.length",
        "tcp.reassembled_in",
    ];
    let text = read_fields(file, ports, true, "tcp.len > 0", &fields);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    let tls: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| r.get(4).is_some_and(|c| !c.is_empty()))
        .filter_map(|r| r.first().copied())
        .collect();
    // A retransmitted segment is not dissected again (tshark shows it as plain TCP): its bytes
    // were judged on the original frame.
    let resent: std::collections::HashSet<String> = read_fields(
        file,
        ports,
        false,
        "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || \
         tcp.analysis.spurious_retransmission",
        &["frame.number"],
    )
    .lines()
    .map(|l| l.trim().to_string())
    .collect();
    let mut report = WireReport::default();
    for row in &rows {
        let field = |i: usize| row.get(i).copied().unwrap_or("");
        for port in [field(1), field(2)] {
            if let Ok(p) = port.parse::<u16>()
                && ports.contains(&p)
                && !report.ports_seen.contains(&p)
            {
                report.ports_seen.push(p);
            }
        }
        if tls.contains(field(0)) || tls.contains(field(5)) {
            report.tls_frames += 1;
        } else if resent.contains(field(0).trim()) {
            report.retransmitted_frames += 1;
        } else {
            report.clear_frames.push(format!(
                "frame {} {}->{} {}",
                field(0),
                field(1),
                field(2),
                field(3)
            ));
        }
    }
    report.ports_seen.sort_unstable();
    report
}
