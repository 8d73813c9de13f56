//! The browser tests' helpers: a Chromium session through chromedriver, waiting for an
//! element's text, the login form, the session cookie and screenshots (written to
//! `target/console-screenshots/`).

use std::path::PathBuf;
use std::time::Duration;

use castellan_testkit::peers::chromium::ChromeDriver;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target"),
        PathBuf::from,
    );
    target.join("console-screenshots")
}

pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("console-{name}.png")), png).unwrap();
}

pub async fn browser(driver: &ChromeDriver, session: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("acceptInsecureCerts".into(), json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": driver.chromium(), "args": driver.args(session) }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .unwrap()
}

/// The text of the first element matching `css`, waiting (up to 10 s) for it to exist and
/// for `accept` to hold (a click's navigation may still be under way).
pub async fn text_where(c: &Client, css: &str, accept: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if accept(&t) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{css}: last text {last:?}; the page: {}",
        c.source().await.unwrap_or_default()
    )
}

pub async fn text_of(c: &Client, css: &str) -> String {
    text_where(c, css, |_| true).await
}

/// Wait until the element's text is `expected`.
pub async fn expect_text(c: &Client, css: &str, expected: &str) {
    text_where(c, css, |t| t == expected).await;
}

/// Fill the login form and submit it; returns the text of the page it leads to.
pub async fn login(c: &Client, base: &str, name: &str, password: &str) -> String {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    let pw = c.find(Locator::Id("password")).await.unwrap();
    pw.send_keys(password).await.unwrap();
    let button = c.find(Locator::Id("login")).await.unwrap();
    button.click().await.unwrap();
    // The click returns before the answer is loaded: wait until the form's page is gone (its
    // button goes stale), so that the text read is the answer's, not the form's.
    for _ in 0..100 {
        if button.text().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text_of(c, "body").await
}

pub async fn session_cookie(c: &Client) -> Option<String> {
    c.get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name() == castellan_console::SESSION_COOKIE)
        .map(|k| k.value().to_string())
}
