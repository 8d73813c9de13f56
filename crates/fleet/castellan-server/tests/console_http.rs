//! The console over plain HTTPS, without a browser: its security headers and cookies, the
//! login form's own token, the device list's paging through the API, and the list's weight at
//! 10,000 devices.

mod common;

use castellan_store::testing::TestStore;
use common::console::*;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_carry_a_strict_policy_and_host_only_cookies() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let (status, headers, body) = api.get_raw("/console/login", &[]).await;
    assert_eq!(status, 200);
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = h("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "script only from the console's own files: {csp}"
    );
    assert_eq!(h("x-frame-options"), "DENY");
    let cookie = h("set-cookie");
    assert!(cookie.starts_with("__Host-castellan_login="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !String::from_utf8_lossy(&body).contains("<script"),
        "no script in the page"
    );
    // Without a session every view sends the browser to the login page.
    let (status, headers, _) = api.get_raw("/console/devices", &[]).await;
    assert_eq!(status, 303);
    assert_eq!(headers.get("location").unwrap(), "/console/login");
    // A login POST without the login form's cookie (another site's form) is refused, audited.
    let (status, _, _) = api
        .request_raw(
            "POST",
            "/console/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"name=admin&password=whatever-password&login_token=00".to_vec(),
        )
        .await;
    assert_eq!(status, 403, "attack_login_csrf");
    assert!(audit_has_refusal(&server, "console.login", "login form token").await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_list_api_pages_filters_and_counts_like_the_console() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    for n in 0..30 {
        t.store
            .register_device(&fake_device(n, &format!("SN-{n:04}")), 1_700_000_000)
            .await
            .unwrap();
    }
    t.store.set_quarantined("SIM-0003", true).await.unwrap();
    let bearer = format!("Bearer {admin}");
    let auth = [("authorization", bearer.as_str())];
    let (status, headers, body) = api
        .get_raw(
            "/api/v1/devices?class=sensor-v1&limit=5&offset=5&sort=id&desc=true",
            &auth,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("x-total-count").unwrap(), "22");
    let page: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = page.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["SIM-0022", "SIM-0021", "SIM-0019", "SIM-0018", "SIM-0017"]
    );
    let (status, body) = api
        .call(
            "GET",
            "/api/v1/devices?state=quarantined",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, body[0]["id"].clone()), (200, json!("SIM-0003")));
    let (status, body) = api
        .call("GET", "/api/v1/devices?state=lost", Some(&admin), None)
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = api.call("GET", "/api/v1/devices", Some(&admin), None).await;
    assert_eq!(
        body.as_array().map(Vec::len),
        Some(30),
        "unpaged: the whole registry"
    );
    server.shutdown().await;
}

/// The device list's first page with 100 devices and with 10,000: the same weight (server-side
/// paging). The serving times are printed as a ratio for docs/benchmarks.md, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_list_page_weight_stays_flat_from_100_to_10000_devices() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    accounts(&t).await;
    let now = castellan_store::unix_now();
    let session = t
        .store
        .create_console_session("ops", now, 600)
        .await
        .unwrap();
    let cookie = format!("{}={}", castellan_console::SESSION_COOKIE, session.id);
    let fetch = async |path: &str| {
        let start = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..5 {
            let (status, _, body) = api.get_raw(path, &[("cookie", cookie.as_str())]).await;
            assert_eq!(status, 200);
            bytes = body.len();
        }
        (bytes, start.elapsed() / 5)
    };
    let register = async |from: u32, to: u32| {
        for n in from..to {
            let serial = format!("SN-{n:05}");
            let mut d = fake_device(n, &serial);
            d.id = format!("SIM-{n:05}");
            t.store.register_device(&d, 1_700_000_000).await.unwrap();
        }
    };
    register(0, 100).await;
    fetch("/console/devices").await; // warm-up: first connections, prepared statements
    let (small_bytes, small_time) = fetch("/console/devices").await;
    let (small_search, _) = fetch("/console/devices?q=sn-0004&sort=last_seen&desc=true").await;
    register(100, 10_000).await;
    let (big_bytes, big_time) = fetch("/console/devices").await;
    let (big_search, big_search_time) =
        fetch("/console/devices?q=sn-0004&sort=last_seen&desc=true").await;
    let weight = big_bytes as f64 / small_bytes as f64;
    eprintln!(
        "device list, first page: {small_bytes} B at 100 devices, {big_bytes} B at 10,000 \
         (x{weight:.3}); serving time x{:.2}; a search: {small_search} B -> {big_search} B, \
         serving time x{:.2} of the 100-device list",
        big_time.as_secs_f64() / small_time.as_secs_f64(),
        big_search_time.as_secs_f64() / small_time.as_secs_f64(),
    );
    assert!(
        weight < 1.05,
        "the page weighs the same: {small_bytes} B vs {big_bytes} B"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_behind_an_api_token() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    for n in 0..4 {
        let d = fake_device(n, &format!("SN-{n:04}"));
        t.store.register_device(&d, 1_700_000_000).await.unwrap();
    }
    t.store.set_quarantined("SIM-0002", true).await.unwrap();
    let (status, _, _) = api.get_raw("/metrics", &[]).await;
    assert_eq!(status, 401, "no token, no metrics");
    let bearer = format!("Bearer {admin}");
    let (status, headers, body) = api.get_raw("/metrics", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    let ctype = headers.get("content-type").unwrap().to_str().unwrap();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let text = String::from_utf8(body).unwrap();
    for line in [
        "castellan_devices{state=\"pending\"} 3",
        "castellan_devices{state=\"quarantined\"} 1",
        "castellan_devices_by_class{class=\"gateway-v2\"} 1",
        "castellan_devices_by_firmware{version=\"1.1.0\"} 2",
        "castellan_mqtt_sessions 0",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }
    server.shutdown().await;
}

/// A login through the form without a browser: the login page's token and cookie, then the
/// POST. Returns the status and the session cookie set, if any.
async fn login_raw(api: &Api, name: &str, password: &str, code: &str) -> (u16, Option<String>) {
    let (_, headers, body) = api.get_raw("/console/login", &[]).await;
    let set = headers.get("set-cookie").unwrap().to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_string();
    let token = cookie.split_once('=').unwrap().1.to_string();
    assert!(
        String::from_utf8_lossy(&body).contains(&token),
        "the form carries the token"
    );
    let form = format!("name={name}&password={password}&code={code}&login_token={token}");
    let headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let (status, headers, _) = api
        .request_raw("POST", "/console/login", &headers, form.into_bytes())
        .await;
    let session = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(castellan_console::SESSION_COOKIE))
        .map(str::to_string);
    (status, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_replayed_one_time_code_is_refused() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    accounts(&t).await;
    let secret = castellan_console::new_totp_secret().unwrap();
    t.store
        .set_operator_totp("ops", Some(&secret))
        .await
        .unwrap();
    let (status, session) = login_raw(&api, "ops", OPS_PASSWORD, "").await;
    assert_eq!(
        (status, session),
        (401, None),
        "the password alone is not enough"
    );
    let now = u64::try_from(castellan_store::unix_now()).unwrap();
    let code = castellan_console::totp_code(&secret, now).unwrap();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(login_raw(&api, "ops", OPS_PASSWORD, &wrong).await.0, 401);
    let (status, session) = login_raw(&api, "ops", OPS_PASSWORD, &code).await;
    assert_eq!(status, 303, "password and code");
    assert!(session.is_some());
    let (status, session) = login_raw(&api, "ops", OPS_PASSWORD, &code).await;
    assert_eq!((status, session), (401, None), "the same code twice");
    assert!(audit_has_refusal(&server, "console.login", "already used").await);
    // Accounts without a second factor log in with their password.
    assert_eq!(login_raw(&api, "viewer", VIEWER_PASSWORD, "").await.0, 303);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_revokes_a_device_from_the_console_and_the_broker_refuses_it() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let dev = enrolled(&server, &api, &admin, "CSTL-0951", 95, tmp.path()).await;
    t.store
        .create_operator("boss", castellan_store::Role::Admin, 0)
        .await
        .unwrap();
    let now = castellan_store::unix_now();
    let session = t
        .store
        .create_console_session("boss", now, 600)
        .await
        .unwrap();
    let cookie = format!("{}={}", castellan_console::SESSION_COOKIE, session.id);
    let (status, _, body) = api
        .get_raw(
            "/console/devices/CSTL-0951/revoke",
            &[("cookie", cookie.as_str())],
        )
        .await;
    let page = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("This cannot be undone"),
        "the confirmation names the consequence"
    );
    let form = format!("csrf={}", session.csrf_token);
    let (status, _) = forged_post(
        &api,
        "/console/devices/CSTL-0951/revoke",
        &session.id,
        &form,
    )
    .await;
    assert_eq!(
        status, 303,
        "with its session's CSRF token the action is taken"
    );
    let (_, d) = api
        .call("GET", "/api/v1/devices/CSTL-0951", Some(&admin), None)
        .await;
    assert_eq!(d["revoked"], json!(true), "{d}");
    let (ok, out) = peers::mosquitto_pub(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
        "CSTL-0951",
        "dev/CSTL-0951/status",
        "{}",
    )
    .await;
    assert!(!ok, "the revoked device connected: {out}");
    assert!(audit_has_refusal(&server, "mqtt.connect", "revoked").await);
    let log = audit(&server).await;
    assert!(log.iter().any(|e| e.action == "console.device.revoke"
        && e.actor == "boss"
        && e.reason.contains("revoked")));
    server.shutdown().await;
}

/// A console session of `name`: (cookie header, session id, CSRF token).
async fn session_of(t: &TestStore, name: &str) -> (String, String, String) {
    let s = t
        .store
        .create_console_session(name, castellan_store::unix_now(), 600)
        .await
        .unwrap();
    let cookie = format!("{}={}", castellan_console::SESSION_COOKIE, s.id);
    (cookie, s.id, s.csrf_token)
}

async fn console_page(api: &Api, path: &str, cookie: &str) -> (u16, String) {
    let (status, _, body) = api.get_raw(path, &[("cookie", cookie)]).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_device_page_shows_chains_claims_plots_and_history_and_gates_its_actions() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    enrolled(&server, &api, &admin, "CSTL-0961", 96, tmp.path()).await;
    accounts(&t).await;
    let now = castellan_store::unix_now();
    for (i, temp) in [20.5, 21.0, 23.5].into_iter().enumerate() {
        let payload = json!({ "temp_c": temp, "battery": { "mv": 3300 - i as i64 * 10 } });
        t.store
            .record_telemetry("CSTL-0961", now - 60 + i as i64 * 20, &payload.to_string())
            .await
            .unwrap();
    }
    let (ops, ops_id, ops_csrf) = session_of(&t, "ops").await;
    let (viewer, viewer_id, viewer_csrf) = session_of(&t, "viewer").await;
    let path = "/console/devices/CSTL-0961";

    // A read-only role sees everything it may read, and no action.
    let (status, p) = console_page(&api, path, &viewer).await;
    assert_eq!(status, 200, "{p}");
    assert!(!p.contains("id=\"action-"), "an auditor sees no action");
    for id in [
        "idevid",
        "ldevid",
        "claims",
        "measurements",
        "plots",
        "device-audit",
    ] {
        assert!(p.contains(&format!("id=\"{id}\"")), "#{id} on the page");
    }
    assert!(p.contains("root CA"), "the chains reach the root");
    assert!(p.contains("id=\"idevid-validity\"") && p.contains("id=\"ldevid-validity\""));
    assert!(
        p.contains("onboarding") && p.contains(">match<"),
        "claims matched: {p}"
    );
    assert!(
        !p.contains(">mismatch<"),
        "an honest device matches its reference values"
    );
    assert!(p.contains("<polyline") && p.contains("temp_c") && p.contains("battery.mv"));
    assert!(
        p.contains("id=\"updates-none\""),
        "never part of a campaign"
    );
    // Its forged POST (with its own valid token) is refused by role, audited.
    let form = format!("csrf={viewer_csrf}");
    let (status, body) = forged_post(&api, &format!("{path}/quarantine"), &viewer_id, &form).await;
    assert_eq!(status, 403, "{body}");
    assert!(audit_has_refusal(&server, "console.device.quarantine", "may not quarantine").await);

    // An operator may quarantine; decommission is a decommissioner's, revoke an admin's.
    let (_, p) = console_page(&api, path, &ops).await;
    assert!(p.contains("id=\"action-quarantine\""));
    assert!(!p.contains("id=\"action-revoke\"") && !p.contains("id=\"action-heal\""));
    assert!(
        !p.contains("id=\"action-decommission\""),
        "an operator may not decommission"
    );
    let (decom, decom_id, decom_csrf) = session_of(&t, "decom").await;
    let (_, p) = console_page(&api, path, &decom).await;
    assert!(p.contains("id=\"action-decommission\""));
    let (status, p) = console_page(&api, &format!("{path}/decommission"), &decom).await;
    assert_eq!(status, 200, "{p}");
    assert!(
        p.contains("erases its keys") && p.contains("This cannot be undone"),
        "the confirmation names the consequence: {p}"
    );
    // Without the CSRF token: refused, audited, nothing done.
    let (status, _) = forged_post(&api, &format!("{path}/decommission"), &decom_id, "").await;
    assert_eq!(status, 403, "attack_cross_site_decommission");
    assert!(audit_has_refusal(&server, "console.device.decommission", "CSRF").await);
    let (_, d) = api
        .call("GET", "/api/v1/devices/CSTL-0961", Some(&admin), None)
        .await;
    assert_eq!(d["lifecycle_name"], json!("secured"), "{d}");

    // Quarantined through the console: heal and release are offered, heal's consequence named.
    let form = format!("csrf={ops_csrf}");
    let (status, _) = forged_post(&api, &format!("{path}/quarantine"), &ops_id, &form).await;
    assert_eq!(status, 303);
    let (_, p) = console_page(&api, path, &ops).await;
    assert!(p.contains("id=\"action-heal\"") && p.contains("id=\"action-release\""));
    assert!(!p.contains("id=\"action-quarantine\""));
    let (status, p) = console_page(&api, &format!("{path}/heal"), &ops).await;
    assert_eq!(status, 200);
    assert!(
        p.contains("last good release") && p.contains("reboot-and-reattest"),
        "{p}"
    );
    // Its measurement is the good one and no release was ever rolled out: a reattest is sent.
    let (status, body) = forged_post(&api, &format!("{path}/heal"), &ops_id, &form).await;
    assert_eq!(status, 303, "{body}");
    assert!(
        audit(&server)
            .await
            .iter()
            .any(|e| e.action == "console.device.heal"
                && e.actor == "ops"
                && e.decision == castellan_store::Decision::Allowed
                && e.reason.contains("reboot-and-reattest"))
    );
    // Decommission: recorded, a second decommissioner must approve (the service's default).
    let form = format!("csrf={decom_csrf}");
    let (status, _) = forged_post(&api, &format!("{path}/decommission"), &decom_id, &form).await;
    assert_eq!(status, 303);
    assert!(
        audit(&server)
            .await
            .iter()
            .any(|e| e.action == "console.device.decommission"
                && e.actor == "decom"
                && e.reason.contains("awaiting a second"))
    );
    server.shutdown().await;
}
