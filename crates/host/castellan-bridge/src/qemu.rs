//! Running the QEMU device: one short `qemu-system-arm -machine mps2-an505` process per
//! operator command, as a gateway would power-cycle or poke a constrained device.
//!
//! ```text
//!  bridge ── -append "<command>" ──────────────────▶ secure partition ─ csl_command ─▶ demo app
//!         ── -device loader,file=download.bin ─────▶ non-secure RAM 0x2830_0000 (the download)
//!         ◀─ console lines (semihosting stdout) ───  "[app] …", "[secure] …", "[bootloader] …"
//!  device dir: castellan-flash.bin, castellan-otp.bin, castellan-entropy.bin (persist: the
//!  firmware's resets re-run the whole chain on the same files; so does the next process)
//! ```
//!
//! Each run has a time limit; a run that exceeds it is killed. Lines are handed to a callback
//! as they arrive, so the caller can report progress (`installing`, `rebooting`) while the run
//! goes on.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{BridgeError, write};

/// Where the demo application finds the download (non-secure RAM).
pub const DOWNLOAD_ADDR: u32 = 0x2830_0000;
/// Bytes available for the download (up to the end of non-secure RAM).
pub const DOWNLOAD_CAP: usize = 0x10_0000;
/// How long one run may take by default (several boots, a swap and a verification included).
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// A QEMU device: the ROM stage ELF QEMU starts from, and the directory with its flash, OTP and
/// entropy files.
#[derive(Debug, Clone)]
pub struct Qemu {
    /// The ROM stage ELF (`-kernel`).
    pub rom: PathBuf,
    /// The device directory (QEMU's working directory: the semihosted files live here).
    pub dir: PathBuf,
    /// Time limit of one run.
    pub timeout: Duration,
    /// The QEMU program (`qemu-system-arm`).
    pub program: String,
    /// Arguments added to every run (the device's network: `-nic user,…,restrict=on,guestfwd=…`
    /// when it speaks for itself; none by default).
    pub extra_args: Vec<String>,
}

/// What one run printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Every console line, in order (QEMU's own stderr lines last).
    pub lines: Vec<String>,
    /// Exit status (the firmware's `power_off` code, or the platform's halt code).
    pub status: Option<i32>,
}

impl RunOutput {
    /// The last `n` lines, for error messages.
    pub fn tail(&self, n: usize) -> String {
        tail(&self.lines, n)
    }

    /// The rest of the first line that starts with `prefix`.
    pub fn after(&self, prefix: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| l.strip_prefix(prefix))
    }

    /// True when some line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
}

pub(crate) fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Qemu {
    /// A device started from `rom`, with its files in `dir`, and the default time limit.
    pub fn new(rom: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Qemu {
        Qemu {
            rom: rom.into(),
            dir: dir.into(),
            timeout: DEFAULT_RUN_TIMEOUT,
            program: "qemu-system-arm".into(),
            extra_args: Vec::new(),
        }
    }

    /// Checks that QEMU and the device files are there (a clear error instead of a failed run).
    pub fn check(&self) -> Result<(), BridgeError> {
        for f in [
            self.rom.clone(),
            self.dir.join("castellan-flash.bin"),
            self.dir.join("castellan-otp.bin"),
        ] {
            if !f.exists() {
                return Err(BridgeError::InvalidInput(format!(
                    "{} does not exist (build and provision the firmware with `cargo xtask qemu-test` first)",
                    f.display()
                )));
            }
        }
        match Command::new(&self.program).arg("--version").output() {
            Ok(o) if o.status.success() => Ok(()),
            _ => Err(BridgeError::InvalidInput(format!(
                "{} is not installed (apt-get install qemu-system-arm, or `cargo xtask qemu-test` as root)",
                self.program
            ))),
        }
    }

    /// Boots the device with the operator command `command` and, when given, `download` placed
    /// in the download buffer; calls `on_line` with every console line as it arrives.
    pub fn run(
        &self,
        command: &str,
        download: Option<&[u8]>,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunOutput, BridgeError> {
        let mut c = Command::new(&self.program);
        c.current_dir(&self.dir)
            .args(["-machine", "mps2-an505", "-cpu", "cortex-m33", "-nographic"])
            .args(["-monitor", "none", "-serial", "null"])
            // No `userspace=on`: the unprivileged application cannot semihost.
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(&self.rom)
            .args(["-append", command])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(blob) = download {
            if blob.len() > DOWNLOAD_CAP {
                return Err(BridgeError::InvalidInput(format!(
                    "the download is {} bytes; the device's buffer holds {DOWNLOAD_CAP}",
                    blob.len()
                )));
            }
            let file = self.dir.join("download.bin");
            write(&file, blob)?;
            c.arg("-device").arg(format!(
                "loader,file={},addr={DOWNLOAD_ADDR:#x},force-raw=on",
                file.display()
            ));
        }
        let mut child = c.spawn().map_err(|source| BridgeError::Io {
            path: PathBuf::from(&self.program),
            source,
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let deadline = Instant::now() + self.timeout;
        let mut lines = Vec::new();
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    on_line(&line);
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if timed_out {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|source| BridgeError::Io {
            path: PathBuf::from(&self.program),
            source,
        })?;
        let _ = reader.join();
        // Lines that arrived between the deadline and the kill.
        while let Ok(line) = rx.try_recv() {
            on_line(&line);
            lines.push(line);
        }
        let err = err_reader.join().unwrap_or_default();
        lines.extend(err.lines().map(str::to_string));
        if timed_out {
            return Err(BridgeError::QemuTimeout {
                command: command.to_string(),
                tail: tail(&lines, 12),
            });
        }
        Ok(RunOutput {
            lines,
            status: status.code(),
        })
    }

    /// [`Qemu::run`] without a line callback.
    pub fn run_quiet(
        &self,
        command: &str,
        download: Option<&[u8]>,
    ) -> Result<RunOutput, BridgeError> {
        self.run(command, download, &mut |_| {})
    }

    /// The device directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
