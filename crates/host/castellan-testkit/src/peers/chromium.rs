//! Debian's Chromium, headless, driven through `chromedriver` (WebDriver) on a loopback port:
//! the operator console's browser tests.
//!
//! The browser runs with a fresh profile per session and everything that would reach outside
//! the machine turned off. It accepts the test service's certificate with
//! `--ignore-certificate-errors` (tests only: the throwaway CA of a test is not worth an NSS
//! database per run); the console's `Secure` and `__Host-` cookies still apply, the origin
//! being `https`.
//!
//! Outside CI a machine without Chromium skips the browser tests with a message saying so; in
//! CI (`CI` or `CASTELLAN_REQUIRE_BROWSER` set, as `cargo xtask ci` does) a missing browser
//! fails them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How to install the browser and its driver.
pub const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// The Chromium binary and chromedriver, if both are installed.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())?;
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())?;
    Some((chromium, driver))
}

/// Whether this run must have the browser (CI).
pub fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("CASTELLAN_REQUIRE_BROWSER").is_some()
}

/// The browser and driver, or `None` after printing why the test is skipped (outside CI only;
/// in CI a missing browser fails the test).
#[track_caller]
pub fn require_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match installed() {
        Some(found) => Some(found),
        None if required() => super::missing("Chromium and chromedriver", "not installed", INSTALL),
        None => {
            eprintln!(
                "SKIPPED {test}: Chromium and chromedriver are not installed (install them with: \
                 {INSTALL}; in CI this test fails instead)"
            );
            None
        }
    }
}

/// A running chromedriver on a loopback port, with the arguments for a fresh headless browser.
pub struct ChromeDriver {
    child: Child,
    port: u16,
    chromium: PathBuf,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    /// Start chromedriver on a free loopback port and wait until it listens.
    pub async fn start(chromium: PathBuf, driver: PathBuf) -> std::io::Result<ChromeDriver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(ChromeDriver {
                    child,
                    port,
                    chromium,
                    profile: tempfile::tempdir()?,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(std::io::Error::other(
            "chromedriver did not listen within 10 s",
        ))
    }

    /// The WebDriver URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Chromium binary.
    pub fn chromium(&self) -> &std::path::Path {
        &self.chromium
    }

    /// Chromium's arguments for one session: headless, a fresh profile directory named
    /// `session`, nothing reaching outside the machine, the test service's certificate
    /// accepted.
    pub fn args(&self, session: &str) -> Vec<String> {
        let profile = self.profile.path().join(session);
        vec![
            "--headless".into(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            "--ignore-certificate-errors".into(),
            format!("--user-data-dir={}", profile.display()),
        ]
    }

    /// Stop chromedriver.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
