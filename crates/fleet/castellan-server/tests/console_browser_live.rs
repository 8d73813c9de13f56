//! The console's releases, campaigns and alerts in a real browser (Chromium headless through
//! chromedriver): a release manager reads a release's checked manifest, creates a campaign
//! through its preview, and follows it live (the page changes without a reload) while
//! simulated devices download and install; an operator acknowledges an alert whose summary
//! carries markup (rendered as text). Screenshots go to `target/console-screenshots/`.

mod common;

use std::time::Duration;

use castellan_server::protocol::UpdateState;
use castellan_store::testing::TestStore;
use castellan_store::{Alert, AlertState, Role};
use castellan_testkit::peers::chromium::{self, ChromeDriver};
use common::browser::*;
use common::update::*;
use fantoccini::{Client, Locator};
use serde_json::json;

const PASSWORD: &str = "release-password-for-tests";
const XSS: &str =
    "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";

async fn account(t: &TestStore, name: &str, role: Role) {
    t.store.create_operator(name, role, 0).await.unwrap();
    let phc = castellan_console::hash_password(PASSWORD).unwrap();
    t.store.set_operator_password(name, &phc, 0).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn fill(c: &Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_chromium_creates_a_campaign_follows_it_live_and_acks_an_alert() {
    let Some((chromium_bin, driver_bin)) = chromium::require_or_skip("console_live") else {
        return;
    };
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let mut devs = Vec::new();
    for (i, s) in ["LIVE-A", "LIVE-B", "LIVE-C"].iter().enumerate() {
        devs.push(f.enroll(s, 60 + i as u64).await);
    }
    let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
    let mut ups = Vec::new();
    for d in &devs {
        ups.push(Updater::connect(&f.server, d).await);
    }
    account(&t, "relman", Role::ReleaseManager).await;
    account(&t, "opsy", Role::Operator).await;
    let now = castellan_store::unix_now();
    t.store
        .raise_alert(&Alert {
            id: "alr-live".into(),
            device_id: Some("LIVE-C".into()),
            device_class: CLASS.into(),
            release: "1.0.0".into(),
            kind: "device".into(),
            severity: "high".into(),
            state: AlertState::Open,
            summary: XSS.into(),
            evidence: json!({"signal": "msg_rate", "value": 240.0, "peers_median": 12.0, "z": 9.1})
                .to_string(),
            raised_at: now,
            updated_at: now,
            updated_by: None,
            probation_until: None,
        })
        .await
        .unwrap();
    let base = format!("https://127.0.0.1:{}", f.server.api_addr().port());
    let driver = ChromeDriver::start(chromium_bin, driver_bin).await.unwrap();
    let c = browser(&driver, "relman").await;
    let page = login(&c, &base, "relman", PASSWORD).await;
    assert!(page.contains("Fleet overview"), "{page}");

    // The release: its manifest decoded, its signature checked again.
    c.goto(&format!("{base}/console/releases/{rid}"))
        .await
        .unwrap();
    text_where(&c, "#signature", |t| t.starts_with("Signature verified")).await;
    expect_text(&c, "#sequence", "2").await;
    screenshot(&c, "release").await;

    // A campaign through its preview.
    click(&c, "#new-campaign").await;
    fill(&c, "canary", "1").await;
    fill(&c, "waves", "100%").await;
    click(&c, "#preview").await;
    expect_text(&c, "#preview-count", "3").await;
    for d in ["LIVE-A", "LIVE-B", "LIVE-C"] {
        text_where(&c, "#preview-devices", |t| t.contains(d)).await;
    }
    screenshot(&c, "campaign-preview").await;
    let (_, none) = f
        .api
        .call("GET", "/api/v1/campaigns", Some(&f.rm), None)
        .await;
    assert_eq!(none, json!([]), "the preview created nothing");
    click(&c, "#confirm").await;
    let title = text_where(&c, "h1", |t| t.starts_with("Campaign cmp-")).await;
    let id = title.trim_start_matches("Campaign ").to_string();
    assert_eq!(f.get(&id).await.devices.len(), 3);

    // Follow it live: the page is not reloaded (a mark set on it stays) while it changes.
    text_where(&c, "#live", |t| t.contains("live")).await;
    c.execute("window.castellanMark = 42;", vec![])
        .await
        .unwrap();
    let phase = |d: &str| format!("tr[data-device=\"{d}\"] [data-field=\"phase\"]");
    let offer = ups[0].expect_offer().await;
    ups[0]
        .status(&id, &rid, UpdateState::Downloading, 0, None)
        .await;
    expect_text(&c, &phase("LIVE-A"), "downloading").await;
    let image = ups[0].install(&mut devs[0], &offer).await;
    assert!(!image.is_empty());
    let r = ups[0].confirm(&mut devs[0], &offer).await;
    assert!(r.updated, "{r:?}");
    expect_text(&c, &phase("LIVE-A"), "updated").await;
    expect_text(&c, "tr.total td[data-count=\"updated\"]", "1").await;
    // The next wave starts: the other devices are offered the release.
    let offer_b = ups[1].expect_offer().await;
    ups[1]
        .status(&id, &rid, UpdateState::Downloading, 0, None)
        .await;
    ups[2].expect_offer().await;
    ups[2]
        .status(&id, &rid, UpdateState::Failed, 0, Some("flash write error"))
        .await;
    expect_text(&c, &phase("LIVE-B"), "downloading").await;
    expect_text(&c, &phase("LIVE-C"), "failed").await;
    text_where(
        &c,
        "tr[data-device=\"LIVE-C\"] [data-field=\"reason\"]",
        |t| !t.is_empty(),
    )
    .await;
    let points = c
        .execute(
            "return document.querySelector('polyline[data-series=\"updated\"]').getAttribute('points')",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(
        points,
        json!("0,160 600,160"),
        "the chart climbed: {points}"
    );
    let mark = c
        .execute("return window.castellanMark;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!(42), "the page changed without a reload");
    assert_eq!(offer_b.campaign_id, id);
    screenshot(&c, "campaign").await;
    c.execute(
        "document.getElementById('phases').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "campaign-chart").await;

    // Pause it, after the confirmation that names the consequence.
    click(&c, "#action-pause").await;
    text_where(&c, "#consequence", |t| {
        t.contains("until the campaign is resumed")
    })
    .await;
    click(&c, "#confirm").await;
    text_where(&c, "#settings [data-field=\"state\"]", |t| t == "paused").await;
    assert_eq!(f.get(&id).await.state, "paused");
    click(&c, "#logout").await;
    text_of(&c, "#login").await;

    // An operator acknowledges the alert; its markup is text.
    login(&c, &base, "opsy", PASSWORD).await;
    c.goto(&format!("{base}/console/alerts")).await.unwrap();
    text_where(&c, "tr[data-alert=\"alr-live\"] .summary", |t| {
        t.contains("<script>")
    })
    .await;
    let injected = c
        .execute(
            "return document.querySelectorAll('main img, main script').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        injected,
        json!(0),
        "attack_xss_in_alert: no element from the summary"
    );
    assert_ne!(c.title().await.unwrap(), "pwned");
    screenshot(&c, "alerts").await;
    click(
        &c,
        "tr[data-alert=\"alr-live\"] a[data-action=\"acknowledge\"]",
    )
    .await;
    text_where(&c, "#consequence", |t| t.contains("under your name")).await;
    click(&c, "#confirm").await;
    expect_text(
        &c,
        "tr[data-alert=\"alr-live\"] [data-field=\"state\"]",
        "acknowledged",
    )
    .await;
    let (_, a) = f
        .api
        .call("GET", "/api/v1/alerts", Some(&f.admin), None)
        .await;
    assert_eq!(
        (a[0]["state"].clone(), a[0]["updated_by"].clone()),
        (json!("acknowledged"), json!("opsy"))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.close().await.unwrap();
    driver.stop().await;
    f.server.shutdown().await;
}
