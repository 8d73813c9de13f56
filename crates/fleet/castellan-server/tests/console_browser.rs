//! The operator console in a real browser: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver). An operator logs in (a session id planted before login is not
//! adopted), sees the fleet, pages the device list, opens a device whose telemetry carries
//! markup (rendered as text), quarantines it after a confirmation (the API shows it
//! quarantined, the broker gives it only the update channel), reads the audit trail, logs out;
//! a read-only account sees no actions and its forged POSTs are refused, a POST without the
//! session's CSRF token is refused, and guessing a password locks the account. Screenshots of
//! the views go to `target/console-screenshots/`.

mod common;

use std::time::Duration;

use castellan_store::testing::TestStore;
use castellan_testkit::peers::chromium::{self, ChromeDriver};
use common::browser::*;
use common::console::*;
use common::*;
use fantoccini::Locator;
use serde_json::json;

const XSS_FIRMWARE: &str = "<svg onload=alert(1)>";
const XSS_NOTE: &str =
    "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_chromium_logs_in_shows_the_fleet_and_quarantines_a_device() {
    let Some((chromium_bin, driver_bin)) = chromium::require_or_skip("console_in_chromium") else {
        return;
    };
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let base = format!("https://127.0.0.1:{}", server.api_addr().port());
    accounts(&t).await;

    // One real device, onboarded, whose telemetry carries markup; 120 registered ones.
    let dev = enrolled(&server, &api, &admin, "CSTL-0901", 91, tmp.path()).await;
    let (mut s, _) = ldevid_session(&server, &dev, &["dev/CSTL-0901/cmd/#"]).await;
    let telemetry = json!({ "firmware": XSS_FIRMWARE, "note": XSS_NOTE, "temp_c": 21.5 });
    s.publish("dev/CSTL-0901/telemetry", &telemetry.to_string())
        .await;
    for _ in 0..100 {
        if !t
            .store
            .latest_telemetry("CSTL-0901", 1)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.quit().await;
    for n in 0..120 {
        let serial = if n == 7 {
            "<b>SN</b><script>x</script>".to_string()
        } else {
            format!("SN-{n:04}")
        };
        t.store
            .register_device(&fake_device(n, &serial), 1_700_000_000)
            .await
            .unwrap();
    }

    let driver = ChromeDriver::start(chromium_bin, driver_bin).await.unwrap();
    let c = browser(&driver, "ops").await;

    // Session fixation: an id planted before login is not adopted.
    c.goto(&format!("{base}/console/login")).await.unwrap();
    let planted = "ab".repeat(32);
    let plant = format!(
        "document.cookie = '{}={planted}; Path=/; Secure; SameSite=Strict'",
        castellan_console::SESSION_COOKIE
    );
    c.execute(&plant, vec![]).await.unwrap();
    assert_eq!(session_cookie(&c).await.as_deref(), Some(planted.as_str()));
    let page = login(&c, &base, "ops", OPS_PASSWORD).await;
    assert!(page.contains("Fleet overview"), "{page}");
    let session = session_cookie(&c).await.unwrap();
    assert_ne!(
        session, planted,
        "attack_session_fixation: a fresh id at login"
    );
    assert_eq!(session.len(), 64);
    assert!(
        t.store
            .console_session(&planted, castellan_store::unix_now(), 600)
            .await
            .unwrap()
            .is_none()
    );

    // The overview counts the fleet.
    expect_text(&c, "#total .n", "121").await;
    expect_text(&c, "#state-pending .n", "120").await;
    assert!(
        text_of(&c, "#chart-firmware").await.contains(XSS_FIRMWARE),
        "markup as SVG text"
    );
    screenshot(&c, "overview").await;

    // The list: server-side paging and filtering.
    c.goto(&format!("{base}/console/devices")).await.unwrap();
    expect_text(&c, "#count", "121 devices · page 1 of 3").await;
    text_where(&c, "#devices", |t| {
        t.contains("<b>SN</b><script>x</script>")
    })
    .await;
    c.find(Locator::Id("next"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    expect_text(&c, "#count", "121 devices · page 2 of 3").await;
    c.goto(&format!("{base}/console/devices?class=gateway-v2"))
        .await
        .unwrap();
    expect_text(&c, "#count", "30 devices · page 1 of 1").await;
    c.goto(&format!("{base}/console/devices")).await.unwrap();
    screenshot(&c, "devices").await;

    // The device page: device-supplied markup is text, never markup.
    c.goto(&format!("{base}/console/devices/CSTL-0901"))
        .await
        .unwrap();
    let shown = text_of(&c, "#telemetry").await;
    assert!(
        shown.contains("<script>document.title='pwned'</script>"),
        "{shown}"
    );
    let injected = c
        .execute(
            "return document.querySelectorAll('main img, main script, main svg[onload]').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        injected,
        json!(0),
        "attack_xss_in_telemetry: no element from device text"
    );
    assert_ne!(c.title().await.unwrap(), "pwned");
    expect_text(&c, "#state", "onboarded").await;
    let validity = text_of(&c, "#idevid-validity").await;
    assert!(
        validity.starts_with("expires in"),
        "the IDevID's validity: {validity}"
    );
    assert!(
        text_of(&c, "#idevid").await.contains("CSTL-0901"),
        "its subject names the device"
    );
    // Both chains reach the root; the telemetry's number is plotted, server-drawn SVG.
    for chain in ["#idevid", "#ldevid"] {
        let shown = text_of(&c, chain).await;
        assert!(
            shown.contains("root CA") && shown.contains("issuing CA"),
            "{chain}: {shown}"
        );
    }
    assert!(
        text_of(&c, "#ldevid-validity")
            .await
            .starts_with("expires in")
    );
    let plotted = c
        .execute(
            "return [...document.querySelectorAll('#plots svg.plot polyline, #plots svg.plot circle')].length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(plotted, json!(1), "one numeric field (temp_c), one plot");
    assert!(text_of(&c, "#plots").await.contains("temp_c"));
    assert!(text_of(&c, "#claims").await.contains("secured"));
    text_where(&c, "#measurements", |t| {
        t.contains("match") && !t.contains("mismatch")
    })
    .await;
    screenshot(&c, "device").await;

    // Quarantine, after a confirmation that names the consequence.
    c.find(Locator::Id("action-quarantine"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_where(&c, "#consequence", |t| {
        t.contains("only use the update channel")
    })
    .await;
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    expect_text(&c, "#state", "quarantined").await;
    let (status, body) = api
        .call("GET", "/api/v1/devices/CSTL-0901", Some(&admin), None)
        .await;
    assert_eq!(
        (status, body["quarantined"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let (s, codes) = ldevid_session(
        &server,
        &dev,
        &["dev/CSTL-0901/cmd/#", "dev/CSTL-0901/down/update/#"],
    )
    .await;
    assert_eq!(
        codes,
        json!([128, 1]),
        "the broker applies the quarantine policy"
    );
    s.quit().await;

    // A POST without the session's CSRF token is refused, and audited.
    let target = "/console/devices/CSTL-0901/release";
    let (status, _) = forged_post(&api, target, &session, "").await;
    assert_eq!(status, 403, "attack_csrf: no token");
    let (status, _) =
        forged_post(&api, target, &session, &format!("csrf={}", "00".repeat(32))).await;
    assert_eq!(status, 403, "attack_csrf: wrong token");
    let (_, body) = api
        .call("GET", "/api/v1/devices/CSTL-0901", Some(&admin), None)
        .await;
    assert_eq!(body["quarantined"], json!(true), "nothing was released");

    c.goto(&format!("{base}/console/audit")).await.unwrap();
    // The ops role may not read the audit log: the API's table says so.
    text_where(&c, "#error", |t| t.contains("may not read the audit log")).await;
    let audit = audit(&server).await;
    let quarantined = audit.iter().any(|e| {
        e.action == "console.device.quarantine"
            && e.actor == "ops"
            && e.decision == castellan_store::Decision::Allowed
    });
    assert!(quarantined, "the action is audited with its operator");
    assert!(audit_has_refusal(&server, "console.device.release", "CSRF token").await);
    assert!(
        audit
            .iter()
            .any(|e| e.action == "console.login" && e.actor == "ops")
    );

    // Logout ends the session on the server.
    c.goto(&format!("{base}/console/")).await.unwrap();
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_of(&c, "#login").await;
    assert!(
        t.store
            .console_session(&session, castellan_store::unix_now(), 600)
            .await
            .unwrap()
            .is_none()
    );
    c.close().await.unwrap();

    driver.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_chromium_hides_actions_from_a_read_only_role_and_locks_out_guessers() {
    let Some((chromium_bin, driver_bin)) = chromium::require_or_skip("console_read_only") else {
        return;
    };
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let base = format!("https://127.0.0.1:{}", server.api_addr().port());
    accounts(&t).await;
    for n in 0..3 {
        let d = fake_device(n, &format!("SN-{n:04}"));
        t.store.register_device(&d, 1_700_000_000).await.unwrap();
    }
    let driver = ChromeDriver::start(chromium_bin, driver_bin).await.unwrap();

    // A read-only account: no actions shown, the action refused even with its own token.
    let v = browser(&driver, "viewer").await;
    assert!(
        login(&v, &base, "viewer", VIEWER_PASSWORD)
            .await
            .contains("Fleet overview")
    );
    v.goto(&format!("{base}/console/devices/SIM-0001"))
        .await
        .unwrap();
    expect_text(&v, "#state", "pending").await;
    assert!(
        v.find(Locator::Id("actions")).await.is_err(),
        "no actions for the auditor role"
    );
    v.goto(&format!("{base}/console/audit")).await.unwrap();
    text_where(&v, "#chain", |t| t.starts_with("Chain intact")).await;
    screenshot(&v, "audit").await;
    let csrf = v
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let viewer_session = session_cookie(&v).await.unwrap();
    let (status, body) = forged_post(
        &api,
        "/console/devices/SIM-0001/quarantine",
        &viewer_session,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("role auditor may not quarantine"), "{body}");
    // The refusal is in the device's own trail and found by the audit search.
    v.goto(&format!("{base}/console/devices/SIM-0001"))
        .await
        .unwrap();
    text_where(&v, "#device-audit", |t| {
        t.contains("console.device.quarantine") && t.contains("refused")
    })
    .await;
    v.goto(&format!(
        "{base}/console/audit?actor=viewer&outcome=refused&action=console."
    ))
    .await
    .unwrap();
    let found = text_of(&v, "#audit").await;
    assert!(found.contains("may not quarantine"), "{found}");
    assert!(
        !found.contains("console.login"),
        "only the refusals: {found}"
    );
    v.goto(&format!("{base}/console/devices/SIM-0001/revoke"))
        .await
        .unwrap();
    text_where(&v, "#error", |t| t.contains("may not revoke")).await;
    v.close().await.unwrap();

    // Guessing a password locks the account; the right password is then refused too.
    let g = browser(&driver, "guesser").await;
    for i in 0..5 {
        let page = login(&g, &base, "locky", &format!("wrong-guess-{i}")).await;
        assert!(
            page.contains("Wrong operator name, password or one-time code"),
            "{page}"
        );
    }
    let page = login(&g, &base, "locky", OPS_PASSWORD).await;
    assert!(page.contains("locked"), "attack_password_guessing: {page}");
    assert!(session_cookie(&g).await.is_none());
    assert!(audit_has_refusal(&server, "console.login.lockout", "5 failed logins").await);
    g.close().await.unwrap();
    driver.stop().await;
    server.shutdown().await;
}
