//! The console's release, campaign and alert views over HTTPS, without a browser: what each
//! role sees and may do, forged POSTs (no CSRF token, or a role that may not) refused and
//! audited, markup in a release's notes and an alert's summary rendered inert, a campaign
//! created through its preview and followed on the live stream while a device updates, and the
//! caps on live streams.

mod common;

use std::time::Duration;

use castellan_server::protocol::UpdateState;
use castellan_store::testing::TestStore;
use castellan_store::{Alert, AlertState, Role};
use common::console::forged_post;
use common::update::*;
use common::*;
use http_body_util::BodyExt as _;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};

const XSS: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>";

/// A console session of a new account `name` with `role`: (cookie header, CSRF token).
async fn session(t: &TestStore, name: &str, role: Role) -> (String, String, String) {
    t.store.create_operator(name, role, 0).await.unwrap();
    let s = t
        .store
        .create_console_session(name, castellan_store::unix_now(), 3600)
        .await
        .unwrap();
    let cookie = format!("{}={}", castellan_console::SESSION_COOKIE, s.id);
    (cookie, s.id, s.csrf_token)
}

async fn page(api: &Api, path: &str, cookie: &str) -> (u16, String) {
    let (status, _, body) = api.get_raw(path, &[("cookie", cookie)]).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A server-sent-events stream read frame by frame.
struct Events {
    body: hyper::body::Incoming,
    buf: String,
}

impl Events {
    async fn open(api: &Api, path: &str, cookie: &str) -> Result<Events, (u16, String)> {
        let tcp = tokio::net::TcpStream::connect(api.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(api.tls())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .uri(path)
            .header("host", "localhost")
            .header("cookie", cookie)
            .header("accept", "text/event-stream")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        if status != 200 {
            let b = resp.into_body().collect().await.unwrap().to_bytes();
            return Err((status, String::from_utf8_lossy(&b).into_owned()));
        }
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Ok(Events {
            body: resp.into_body(),
            buf: String::new(),
        })
    }

    /// The next event (name, data), waiting at most `secs`.
    async fn next(&mut self, secs: u64) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if data.is_empty() && name == "message" {
                    continue; // keep-alive comment
                }
                return Some((name, data));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Wait (up to `secs`) for an event `name` whose JSON satisfies `pred`.
    async fn wait(&mut self, name: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some((n, data)) = self.next(left.as_secs().max(1)).await else {
                panic!("no {name} event as expected within {secs} s");
            };
            if n == name {
                let v: Value = serde_json::from_str(&data).unwrap();
                if pred(&v) {
                    return v;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {name} event as expected"
            );
        }
    }
}

async fn audited(f: &Fleet, action: &str, allowed: bool, needle: &str) -> bool {
    audit(&f.server).await.iter().any(|e| {
        e.action == action
            && (e.decision == castellan_store::Decision::Allowed) == allowed
            && e.reason.contains(needle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_manager_previews_creates_follows_and_pauses_a_campaign() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let mut devs = Vec::new();
    for (i, s) in ["CON-A", "CON-B", "CON-C"].iter().enumerate() {
        devs.push(f.enroll(s, 40 + i as u64).await);
    }
    // A release whose notes carry markup.
    let image = f.kit.image(v(2, 0, 0), 1, b"release 2");
    let manifest = f.kit.manifest(CLASS, 2, &image);
    let mut body = release_body(CLASS, "2.0.0", &image, &manifest);
    body["notes"] = json!(XSS);
    let (status, rel) = f
        .api
        .call("POST", "/api/v1/releases", Some(&f.rm), Some(&body))
        .await;
    assert_eq!(status, 201, "{rel}");
    let rid = rel["release_id"].as_str().unwrap().to_string();
    let (rm, rm_id, rm_csrf) = session(&t, "relman", Role::ReleaseManager).await;
    let (aud, _, aud_csrf) = session(&t, "aud", Role::Auditor).await;

    // Releases: the list, and the manifest decoded with the signature checked again.
    let (status, list) = page(&f.api, "/console/releases", &rm).await;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains(&rid));
    let (status, p) = page(&f.api, &format!("/console/releases/{rid}"), &rm).await;
    assert_eq!(status, 200, "{p}");
    assert!(p.contains("Signature verified"), "{p}");
    assert!(
        p.contains(rel["image_sha256"].as_str().unwrap()),
        "the digest"
    );
    assert!(p.contains(rel["signer_id"].as_str().unwrap()), "the signer");
    assert!(!p.contains("<script>document"), "notes markup is escaped");
    assert!(p.contains("&lt;script&gt;"), "and shown as text");

    // The preview lists the devices it would reach, and creates nothing.
    let q = format!("/console/campaigns/preview?release_id={rid}&canary=1&waves=100%25");
    let (status, p) = page(&f.api, &q, &rm).await;
    assert_eq!(status, 200, "{p}");
    for d in ["CON-A", "CON-B", "CON-C"] {
        assert!(
            p.contains(&format!("data-device=\"{d}\"")),
            "{d} in the preview"
        );
    }
    assert!(p.contains("id=\"preview-count\">3<"), "{p}");
    let (_, none) = f
        .api
        .call("GET", "/api/v1/campaigns", Some(&f.rm), None)
        .await;
    assert_eq!(none, json!([]), "a preview creates nothing");
    // Hostile settings are the service's typed refusal on the form, as text.
    let bad =
        format!("/console/campaigns/preview?release_id={rid}&waves=%3Cscript%3Ex%3C%2Fscript%3E");
    let (status, p) = page(&f.api, &bad, &rm).await;
    assert_eq!(status, 200, "{p}");
    assert!(
        p.contains("id=\"error\"") && p.contains("&lt;script&gt;x"),
        "{p}"
    );
    assert_eq!(p.matches("<script").count(), 1, "only the live script: {p}");
    let bad = format!("/console/campaigns/preview?release_id={rid}&canary=99999999999");
    let (status, p) = page(&f.api, &bad, &rm).await;
    assert!(
        status == 200 && p.contains("canary must be a whole number"),
        "{p}"
    );
    // An auditor can neither preview nor create.
    assert_eq!(page(&f.api, &q, &aud).await.0, 403);
    let form = format!("release_id={rid}&canary=1&waves=100%25");
    let aud_id = aud.split_once('=').unwrap().1;
    let (status, _) = forged_post(
        &f.api,
        "/console/campaigns",
        aud_id,
        &format!("{form}&csrf={aud_csrf}"),
    )
    .await;
    assert_eq!(status, 403, "a role that may not create is refused");
    // A forged POST without the CSRF token is refused and audited.
    let (status, _) = forged_post(&f.api, "/console/campaigns", &rm_id, &form).await;
    assert_eq!(status, 403);
    assert!(audited(&f, "console.campaign.create", false, "CSRF").await);
    assert!(audited(&f, "console.campaign.create", false, "may not create").await);
    let (_, none) = f
        .api
        .call("GET", "/api/v1/campaigns", Some(&f.rm), None)
        .await;
    assert_eq!(none, json!([]));

    // Follow the live stream while the campaign is created and its canary downloads.
    let mut ups = Vec::new();
    for d in &devs {
        ups.push(Updater::connect(&f.server, d).await);
    }
    let (status, _) = forged_post(
        &f.api,
        "/console/campaigns",
        &rm_id,
        &format!("{form}&csrf={rm_csrf}"),
    )
    .await;
    assert_eq!(status, 303, "created with the session's CSRF token");
    let (_, all) = f
        .api
        .call("GET", "/api/v1/campaigns", Some(&f.rm), None)
        .await;
    let id = all[0]["campaign_id"].as_str().unwrap().to_string();
    assert_eq!(all[0]["devices"].as_array().unwrap().len(), 3);
    assert!(audited(&f, "console.campaign.create", true, &id).await);
    let mut live = Events::open(&f.api, &format!("/console/events?campaign={id}"), &rm)
        .await
        .unwrap();
    live.wait("campaign", 10, |c| c["campaign_id"] == json!(id))
        .await;
    let offer = ups[0].expect_offer().await;
    ups[0]
        .status(&id, &rid, UpdateState::Downloading, 0, None)
        .await;
    let c = live
        .wait("campaign", 15, |c| {
            c["devices"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["phase"] == json!("downloading")))
        })
        .await;
    assert_eq!(c["counts"][2], json!(1), "one downloading: {c}");
    assert_eq!(offer.campaign_id, id);

    // The campaign page: phases, chart, and the actions of a release manager only.
    let (status, p) = page(&f.api, &format!("/console/campaigns/{id}"), &rm).await;
    assert_eq!(status, 200, "{p}");
    assert!(p.contains("id=\"chart\"") && p.contains("data-series=\"updated\""));
    assert!(p.contains("id=\"action-pause\"") && p.contains("id=\"action-abort\""));
    let (status, p) = page(&f.api, &format!("/console/campaigns/{id}"), &aud).await;
    assert_eq!(status, 200);
    assert!(!p.contains("action-pause"), "an auditor sees no action");
    // Pause: the confirmation names the consequence; the POST needs the token and the role.
    let (status, p) = page(&f.api, &format!("/console/campaigns/{id}/pause"), &rm).await;
    assert_eq!(status, 200);
    assert!(p.contains("until the campaign is resumed"), "{p}");
    let path = format!("/console/campaigns/{id}/pause");
    assert_eq!(forged_post(&f.api, &path, &rm_id, "csrf=").await.0, 403);
    assert_eq!(
        forged_post(&f.api, &path, aud_id, &format!("csrf={aud_csrf}"))
            .await
            .0,
        403
    );
    assert_eq!(f.get(&id).await.state, "running");
    assert_eq!(
        forged_post(&f.api, &path, &rm_id, &format!("csrf={rm_csrf}"))
            .await
            .0,
        303
    );
    assert_eq!(f.get(&id).await.state, "paused");
    live.wait("campaign", 10, |c| c["state"] == json!("paused"))
        .await;
    assert!(audited(&f, "console.campaign.pause", true, "now paused").await);
    assert!(audited(&f, "console.campaign.pause", false, "CSRF").await);
    // A rollback names the release with the previous image; without one it is refused.
    let (status, p) = page(&f.api, &format!("/console/campaigns/{id}/rollback"), &rm).await;
    assert!(
        status == 200 && p.contains("puts the previous image back"),
        "{p}"
    );
    let rollback = format!("/console/campaigns/{id}/rollback");
    let (status, why) = forged_post(&f.api, &rollback, &rm_id, &format!("csrf={rm_csrf}")).await;
    assert_eq!(status, 409, "{why}");
    assert!(audited(&f, "console.campaign.rollback", false, "needs a release").await);
    assert_eq!(f.get(&id).await.state, "paused", "nothing changed");
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_show_evidence_inert_and_only_operators_acknowledge_them() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let now = castellan_store::unix_now();
    t.store
        .raise_alert(&Alert {
            id: "alr-0001".into(),
            device_id: Some("SIM-0001".into()),
            device_class: CLASS.into(),
            release: "1.0.0".into(),
            kind: "device".into(),
            severity: "high".into(),
            state: AlertState::Open,
            summary: XSS.into(),
            evidence: json!({"signal": XSS, "z": 7.5}).to_string(),
            raised_at: now,
            updated_at: now,
            updated_by: None,
            probation_until: None,
        })
        .await
        .unwrap();
    let (ops, ops_id, ops_csrf) = session(&t, "opsy", Role::Operator).await;
    let (aud, aud_id, aud_csrf) = session(&t, "aud", Role::Auditor).await;
    let (status, p) = page(&f.api, "/console/alerts", &ops).await;
    assert_eq!(status, 200, "{p}");
    assert!(
        p.contains("data-alert=\"alr-0001\"") && p.contains("7.5"),
        "{p}"
    );
    assert!(
        !p.contains("<script>document") && !p.contains("<img src=x"),
        "inert"
    );
    assert!(p.contains("/console/alerts/alr-0001/acknowledge"));
    let (_, p) = page(&f.api, "/console/alerts", &aud).await;
    assert!(
        !p.contains("/console/alerts/alr-0001/acknowledge"),
        "no action for an auditor"
    );

    let mut live = Events::open(&f.api, "/console/events", &ops).await.unwrap();
    live.wait("alert", 10, |a| a["state"] == json!("open"))
        .await;
    // The stream is filtered by role: a release manager may not read alerts, gets none.
    let (rm, _, _) = session(&t, "relman", Role::ReleaseManager).await;
    assert_eq!(page(&f.api, "/console/alerts", &rm).await.0, 403);
    let mut rm_live = Events::open(&f.api, "/console/events", &rm).await.unwrap();
    let mut names = Vec::new();
    while let Some((name, _)) = rm_live.next(3).await {
        names.push(name);
    }
    assert!(!names.contains(&"alert".to_string()), "{names:?}");
    drop(rm_live);
    let path = "/console/alerts/alr-0001/acknowledge";
    assert_eq!(
        forged_post(&f.api, path, &ops_id, "").await.0,
        403,
        "no token"
    );
    assert_eq!(
        forged_post(&f.api, path, &aud_id, &format!("csrf={aud_csrf}"))
            .await
            .0,
        403,
        "an auditor may not"
    );
    let (_, a) = f
        .api
        .call("GET", "/api/v1/alerts", Some(&f.admin), None)
        .await;
    assert_eq!(a[0]["state"], json!("open"));
    assert_eq!(
        forged_post(&f.api, path, &ops_id, &format!("csrf={ops_csrf}"))
            .await
            .0,
        303
    );
    let (_, a) = f
        .api
        .call("GET", "/api/v1/alerts", Some(&f.admin), None)
        .await;
    assert_eq!(a[0]["state"], json!("acknowledged"));
    assert_eq!(a[0]["updated_by"], json!("opsy"));
    live.wait("alert", 10, |a| a["state"] == json!("acknowledged"))
        .await;
    assert!(
        audited(
            &f,
            "console.alert.acknowledge",
            true,
            "acknowledged by opsy"
        )
        .await
    );
    assert!(audited(&f, "console.alert.acknowledge", false, "CSRF").await);
    assert!(audited(&f, "console.alert.acknowledge", false, "may not").await);
    // Resolved, it stays resolved: a second resolve is the service's refusal, audited.
    let resolve = "/console/alerts/alr-0001/resolve";
    let token = format!("csrf={ops_csrf}");
    assert_eq!(forged_post(&f.api, resolve, &ops_id, &token).await.0, 303);
    assert_eq!(forged_post(&f.api, resolve, &ops_id, &token).await.0, 409);
    let (_, p) = page(&f.api, "/console/alerts?state=resolved", &ops).await;
    assert!(
        p.contains("data-alert=\"alr-0001\"") && !p.contains(resolve),
        "{p}"
    );
    assert!(audited(&f, "console.alert.resolve", false, "stays resolved").await);
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped_per_session_and_end_with_the_session() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let (ops, ops_id, _) = session(&t, "opsy", Role::Operator).await;
    // The one script is a file the binary serves; pages load it and carry no inline script.
    let (status, headers, js) = f.api.get_raw("/console/static/live.js", &[]).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(String::from_utf8_lossy(&js).contains("/console/events"));
    let (_, p) = page(&f.api, "/console/", &ops).await;
    assert!(
        p.contains("<script src=\"/console/static/live.js\" defer>"),
        "{p}"
    );
    assert_eq!(p.matches("<script").count(), 1, "no inline script");
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(Events::open(&f.api, "/console/events", &ops).await.unwrap());
    }
    let (status, why) = match Events::open(&f.api, "/console/events", &ops).await {
        Err(e) => e,
        Ok(_) => panic!("a fifth stream of one session was accepted"),
    };
    assert_eq!(status, 429);
    assert!(why.contains("4 live streams"), "{why}");
    // Without a session there is no stream.
    let none = Events::open(&f.api, "/console/events", "x=y").await;
    assert!(matches!(none, Err((303, _))));
    // A stream ends when its session ends (logout elsewhere).
    t.store.end_console_session(&ops_id).await.unwrap();
    let mut first = open.remove(0);
    let (name, why) = loop {
        let e = first.next(10).await.expect("the stream ends");
        if e.0 == "end" {
            break e;
        }
    };
    assert_eq!((name.as_str(), why.as_str()), ("end", "session"));
    drop(open);
    f.server.shutdown().await;
}
