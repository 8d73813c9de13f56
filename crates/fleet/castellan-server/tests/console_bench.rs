//! The console's device list at 100 and at 10,000 devices: the page's weight (HTML and every
//! asset it links) and its time to interactive in headless Chromium (WebDriver, as the browser
//! tests drive it). A benchmark, not a check: ignored by the test run, run by
//! `cargo xtask bench-console`, which writes the figures into docs/benchmarks.md. The figures
//! also go to `target/console-bench.json`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use castellan_store::testing::TestStore;
use castellan_testkit::peers::chromium::{self, ChromeDriver};
use common::console::*;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Page loads measured per fleet size (after one warm-up load); the median is reported.
const LOADS: usize = 7;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target"),
        PathBuf::from,
    )
}

async fn browser(driver: &ChromeDriver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("acceptInsecureCerts".into(), json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": driver.chromium(), "args": driver.args("bench") }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .unwrap()
}

async fn login(c: &Client, base: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    let name = c.find(Locator::Id("name")).await.unwrap();
    name.send_keys("ops").await.unwrap();
    let pw = c.find(Locator::Id("password")).await.unwrap();
    pw.send_keys(OPS_PASSWORD).await.unwrap();
    let button = c.find(Locator::Id("login")).await.unwrap();
    button.click().await.unwrap();
    for _ in 0..100 {
        if button.text().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the login did not leave the form");
}

/// The same-origin assets a page links (`href="/…"`, `src="/…"`), stylesheets and images.
fn assets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let Some(end) = rest.find('"') else { continue };
            let url = &rest[..end];
            let is_asset = [".css", ".png", ".svg", ".ico", ".woff2"]
                .iter()
                .any(|ext| url.ends_with(ext));
            if url.starts_with('/') && is_asset && !out.iter().any(|u| u == url) {
                out.push(url.to_string());
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Weight and times of the device list's first page with the fleet as it is.
async fn measure(api: &Api, c: &Client, base: &str, cookie: &str) -> Value {
    let path = "/console/devices";
    let (status, _, html) = api.get_raw(path, &[("cookie", cookie)]).await;
    assert_eq!(status, 200);
    let html = String::from_utf8(html).unwrap();
    let mut asset_bytes = 0;
    let linked = assets(&html);
    for url in &linked {
        let (status, _, body) = api.get_raw(url, &[("cookie", cookie)]).await;
        assert_eq!(status, 200, "{url}");
        asset_bytes += body.len();
    }
    let script = "const n = performance.getEntriesByType('navigation')[0]; \
                  return [n.responseEnd, n.domInteractive, n.domContentLoadedEventEnd];";
    let (mut response, mut interactive, mut loaded) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=LOADS {
        c.goto(&format!("{base}{path}")).await.unwrap();
        let t = c.execute(script, vec![]).await.unwrap();
        let ms = |k: usize| t[k].as_f64().unwrap_or(f64::NAN);
        if i > 0 {
            response.push(ms(0));
            interactive.push(ms(1));
            loaded.push(ms(2));
        }
    }
    let rows = c
        .find_all(Locator::Css("table tbody tr"))
        .await
        .map_or(0, |r| r.len());
    json!({
        "html_bytes": html.len(),
        "asset_bytes": asset_bytes,
        "assets": linked,
        "rows": rows,
        "response_end_ms": median(response),
        "dom_interactive_ms": median(interactive),
        "dom_content_loaded_ms": median(loaded),
    })
}

/// The figures as the Markdown table docs/benchmarks.md shows.
fn table(small: &Value, large: &Value, ratios: &Value) -> String {
    let bytes = |f: &Value, k: &str| f[k].as_u64().unwrap_or(0);
    let ms = |f: &Value, k: &str| f[k].as_f64().unwrap_or(f64::NAN);
    let r = |k: &str| ratios[k].as_f64().unwrap_or(f64::NAN);
    format!(
        "| device list, first page | 100 devices | 10,000 devices | ratio 10,000 / 100 |\n\
         |---|---|---|---|\n\
         | HTML + assets (bytes) | {} + {} | {} + {} | **{:.3}** |\n\
         | time to interactive, Chromium `domInteractive` (ms, median of {LOADS}) | {:.1} | {:.1} | **{:.2}** |\n\
         | `DOMContentLoaded` end (ms) | {:.1} | {:.1} | {:.2} |\n",
        bytes(small, "html_bytes"),
        bytes(small, "asset_bytes"),
        bytes(large, "html_bytes"),
        bytes(large, "asset_bytes"),
        r("page_weight"),
        ms(small, "dom_interactive_ms"),
        ms(large, "dom_interactive_ms"),
        r("dom_interactive"),
        ms(small, "dom_content_loaded_ms"),
        ms(large, "dom_content_loaded_ms"),
        r("dom_content_loaded"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: cargo xtask bench-console"]
async fn bench_console_device_list_at_100_and_10000_devices() {
    let (chromium_bin, driver_bin) =
        chromium::installed().expect("Chromium and chromedriver (cargo xtask deps)");
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let base = format!("https://127.0.0.1:{}", server.api_addr().port());
    accounts(&t).await;
    let session = t
        .store
        .create_console_session("ops", castellan_store::unix_now(), 3600)
        .await
        .unwrap();
    let cookie = format!("{}={}", castellan_console::SESSION_COOKIE, session.id);
    let driver = ChromeDriver::start(chromium_bin, driver_bin).await.unwrap();
    let c = browser(&driver).await;
    login(&c, &base).await;

    let mut figures = serde_json::Map::new();
    let mut registered = 0;
    for fleet in [100u32, 10_000] {
        while registered < fleet {
            let d = fake_device(registered, &format!("SN-{registered:05}"));
            t.store.register_device(&d, 1_700_000_000).await.unwrap();
            registered += 1;
        }
        let f = measure(&api, &c, &base, &cookie).await;
        println!("{fleet} devices: {f}");
        figures.insert(fleet.to_string(), f);
    }
    let (small, large) = (&figures["100"], &figures["10000"]);
    let ratio = |k: &str| large[k].as_f64().unwrap() / small[k].as_f64().unwrap();
    let weight =
        |f: &Value| (f["html_bytes"].as_u64().unwrap() + f["asset_bytes"].as_u64().unwrap()) as f64;
    let ratios = json!({
        "page_weight": weight(large) / weight(small),
        "dom_interactive": ratio("dom_interactive_ms"),
        "dom_content_loaded": ratio("dom_content_loaded_ms"),
    });
    println!("ratios 10,000 / 100: {ratios}");
    let table = table(small, large, &ratios);
    println!("{table}");
    std::fs::create_dir_all(target_dir()).unwrap();
    std::fs::write(target_dir().join("console-bench.md"), &table).unwrap();
    figures.insert("ratio_10000_to_100".into(), ratios);
    let out = target_dir().join("console-bench.json");
    std::fs::write(&out, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    println!("written to {}", out.display());
    c.close().await.unwrap();
    driver.stop().await;
    server.shutdown().await;
}
