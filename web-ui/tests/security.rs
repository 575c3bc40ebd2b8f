//! Access control, CSRF, escaping, body limits and the presigned object endpoint.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::{from_peer, req, TestApp};
use parallax_core::keys::{self, QueueName};
use std::sync::Arc;
use std::time::Duration;
use web_ui::throttle::ManualClock;
use web_ui::{AccessControl, ThrottleConfig, WebConfig};

const TOKEN: &str = "a-long-enough-test-token";

fn token_config() -> WebConfig {
    WebConfig {
        access: AccessControl::Token(TOKEN.to_owned()),
        ..WebConfig::default()
    }
}

async fn chunking_events(app: &TestApp) -> usize {
    app.backends
        .queue(QueueName::Chunking)
        .receiver
        .receive(10)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn user_text_is_escaped_everywhere() {
    let app = TestApp::new().await;
    let evil = "<script>alert(\"x\")</script> & 'quotes'";
    let (id, _) = app.create(evil).await;
    let failed = app
        .seed(
            "<img src=x onerror=alert(1)>",
            parallax_core::model::JobStatus::Failed,
        )
        .await;
    for uri in [
        "/".to_owned(),
        format!("/jobs/{id}"),
        format!("/jobs/{}", failed.job_id),
    ] {
        let r = app.get(&uri).await;
        let html = r.text();
        assert!(!html.contains("<script>alert"), "{uri} shows raw script");
        assert!(!html.contains("<img src=x"), "{uri} shows a raw tag");
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'"),
            "no inline script may run: {csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    }
    let html = app.get(&format!("/jobs/{id}")).await.text();
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'quotes'"),
        "{html}"
    );
    // The API returns the title as data, unchanged.
    let v = app.get(&format!("/api/jobs/{id}")).await.json();
    assert_eq!(v["title"], evil);
}

/// The data of the first `event` that the server-sent event stream at `uri` sends.
async fn first_event(app: &TestApp, uri: &str, event: &str) -> String {
    use futures::StreamExt as _;
    use tower::ServiceExt as _;
    let resp = app
        .app
        .clone()
        .oneshot(req(Method::GET, uri, &[], Body::empty()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    let mut body = resp.into_body().into_data_stream();
    let head = format!("event: {event}\n");
    let mut buf = String::new();
    loop {
        if let Some(block) = buf.find(&head).map(|at| &buf[at..]) {
            if let Some(end) = block.find("\n\n") {
                let data: Vec<&str> = block[..end]
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                return data.join("\n");
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap_or_else(|_| panic!("no {event} event from {uri}"))
            .unwrap_or_else(|| panic!("{uri} ended before a {event} event"))
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_templates_escape_a_hostile_title_on_pages_and_live_fragments() {
    use parallax_core::model::JobStatus;
    let app = TestApp::new().await;
    let title = r#"<script>alert(1)</script>"&'"#;
    let escaped = r#"&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;'"#;
    let converting = app.seed(title, JobStatus::ChunkingComplete).await;
    app.seed(title, JobStatus::Failed).await;
    app.seed(title, JobStatus::Completed).await;
    let id = &converting.job_id;

    let dashboard = app.get("/").await.text();
    let dashboard_fragment = app.get("/?fragment=1").await.text();
    let dashboard_event = first_event(&app, "/events", "dashboard").await;
    for (what, html) in [
        ("dashboard", &dashboard),
        ("dashboard fragment", &dashboard_fragment),
        ("dashboard event", &dashboard_event),
    ] {
        // In progress, failed and completed: each list links the title to its job.
        assert_eq!(
            html.matches(&format!(">{escaped}</a>")).count(),
            3,
            "{what}: {html}"
        );
        assert!(!html.contains("<script>alert"), "{what}: {html}");
    }

    let job_page = app.get(&format!("/jobs/{id}")).await.text();
    let job_fragment = app.get(&format!("/jobs/{id}?fragment=1")).await.text();
    for (what, html) in [("job page", &job_page), ("job fragment", &job_fragment)] {
        assert!(
            html.contains(&format!(r#"<h1 class="job-title">{escaped}</h1>"#)),
            "{what}: {html}"
        );
        assert!(!html.contains("<script>alert"), "{what}: {html}");
    }
}

#[tokio::test]
async fn token_access_guards_pages_and_api_but_not_health_or_signed_objects() {
    let app = TestApp::with_config(token_config()).await;
    let r = app.get("/api/jobs").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    for uri in ["/api/openapi.json", "/api/jobs/x", "/api/jobs/x/download"] {
        assert_eq!(app.get(uri).await.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let r = app
        .json(Method::POST, "/api/jobs", serde_json::json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.get("/jobs/abc?x=1").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fjobs%2Fabc%3Fx%3D1")
    );
    for uri in ["/", "/upload"] {
        assert_eq!(app.get(uri).await.status, StatusCode::SEE_OTHER, "{uri}");
    }
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    let bearer = format!("Bearer {TOKEN}");
    let r = app
        .send(req(
            Method::POST,
            "/api/jobs",
            &[("authorization", &bearer)],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let url = r.json()["upload"]["url"].as_str().unwrap().to_owned();
    // The presigned URL needs no token: its signature is the credential.
    let r = app
        .send(req(Method::PUT, &url, &[], Body::from("data")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app
        .send(req(
            Method::GET,
            "/api/jobs",
            &[("authorization", "Bearer wrong-token-xxxxxxxx")],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn browsers_log_in_with_the_token_and_get_a_session_cookie() {
    let app = TestApp::with_config(token_config()).await;
    let r = app.get("/login?next=/upload").await;
    assert_eq!(r.status, StatusCode::OK);
    let set = r.header("set-cookie").unwrap().to_owned();
    let csrf = set
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    assert!(r
        .text()
        .contains(&format!("name=\"csrf\" value=\"{csrf}\"")));
    let cookie = format!("parallax_csrf={csrf}");
    let form = |token: &str, csrf: &str| format!("token={token}&csrf={csrf}&next=%2Fupload");
    let post = |body: String, cookie: String| {
        req(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &cookie),
            ],
            Body::from(body),
        )
    };
    // Wrong token: back to the form.
    let r = app.send(post(form("nope", &csrf), cookie.clone())).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("location").unwrap().contains("failed=1"));
    assert!(r.header("set-cookie").is_none());
    // Right token without the form's CSRF value: refused.
    let r = app.send(post(form(TOKEN, "forged"), cookie.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Right token: a session cookie that is not the token itself, and a redirect to `next`.
    let r = app.send(post(form(TOKEN, &csrf), cookie.clone())).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/upload"));
    let session = r.header("set-cookie").unwrap().to_owned();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(!session.contains(TOKEN));
    let session = session.split(';').next().unwrap().to_owned();
    let r = app
        .send(req(
            Method::GET,
            "/upload",
            &[("cookie", &session)],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // An open redirect is not possible through `next`.
    let r = app
        .send(post(
            "token=".to_owned() + TOKEN + "&csrf=" + &csrf + "&next=//evil.example",
            cookie,
        ))
        .await;
    assert_eq!(r.header("location"), Some("/"));
}

#[tokio::test]
async fn basic_auth_guards_everything_but_health() {
    let app = TestApp::with_config(WebConfig {
        access: AccessControl::Basic {
            user: "ann".into(),
            password: "s3cret pass".into(),
        },
        ..WebConfig::default()
    })
    .await;
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:s3cret pass")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:guess")
    );
    for (auth, want) in [
        (good.as_str(), StatusCode::OK),
        (bad.as_str(), StatusCode::UNAUTHORIZED),
    ] {
        for uri in ["/", "/api/jobs", "/upload"] {
            let r = app
                .send(req(
                    Method::GET,
                    uri,
                    &[("authorization", auth)],
                    Body::empty(),
                ))
                .await;
            assert_eq!(r.status, want, "{uri}");
        }
    }
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    // A script with basic auth (no cookie, no Origin) needs no CSRF token.
    let r = app
        .send(req(
            Method::POST,
            "/api/jobs",
            &[("authorization", &good)],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn state_changing_requests_from_pages_need_the_csrf_token() {
    let app = TestApp::new().await;
    let r = app.get("/upload").await;
    let set = r.header("set-cookie").unwrap().to_owned();
    assert!(set.contains("SameSite=Strict"));
    let token = set
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    assert!(r
        .text()
        .contains(&format!("<meta name=\"csrf-token\" content=\"{token}\">")));
    let cookie = format!("parallax_csrf={token}");
    let cases: [(&[(&str, &str)], StatusCode); 5] = [
        // Another site posting through the browser: has Origin, no token.
        (&[("origin", "http://evil.example")], StatusCode::FORBIDDEN),
        (&[("cookie", &cookie)], StatusCode::FORBIDDEN),
        (
            &[("cookie", &cookie), ("x-csrf-token", "guess")],
            StatusCode::FORBIDDEN,
        ),
        (
            &[("sec-fetch-site", "cross-site"), ("x-csrf-token", &token)],
            StatusCode::FORBIDDEN,
        ),
        (
            &[
                ("cookie", &cookie),
                ("origin", "http://localhost"),
                ("x-csrf-token", &token),
            ],
            StatusCode::CREATED,
        ),
    ];
    for (headers, want) in cases {
        let r = app
            .send(req(Method::POST, "/api/jobs", headers, Body::empty()))
            .await;
        assert_eq!(r.status, want, "{headers:?}: {}", r.text());
        if want == StatusCode::FORBIDDEN {
            assert_eq!(r.error_code(), "csrf");
        }
    }
    let (id, _) = app.create("x").await;
    for m in [Method::PATCH, Method::DELETE] {
        let r = app
            .send(req(
                m.clone(),
                &format!("/api/jobs/{id}"),
                &[("cookie", &cookie)],
                Body::from("{}"),
            ))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m}");
    }
    assert_eq!(
        app.backends.jobs.get(&id).await.unwrap().unwrap().status,
        parallax_core::model::JobStatus::AwaitingUpload,
        "a refused DELETE cancelled nothing"
    );
}

#[tokio::test]
async fn a_logged_in_browser_session_still_needs_the_csrf_token() {
    let app = TestApp::with_config(token_config()).await;
    let session = format!(
        "parallax_session={}; parallax_csrf=t0k3n",
        AccessControl::session_value(TOKEN)
    );
    let r = app
        .send(req(
            Method::POST,
            "/api/jobs",
            &[("cookie", &session)],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .send(req(
            Method::POST,
            "/api/jobs",
            &[("cookie", &session), ("x-csrf-token", "t0k3n")],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A bearer token is never sent by a browser on its own: no CSRF token needed.
    let bearer = format!("Bearer {TOKEN}");
    let r = app
        .send(req(
            Method::POST,
            "/api/jobs",
            &[("authorization", &bearer), ("origin", "http://x")],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn api_bodies_are_limited() {
    let app = TestApp::new().await;
    let big = format!("{{\"title\": \"{}\"}}", "a".repeat(100 * 1024));
    let r = app
        .send(req(Method::POST, "/api/jobs", &[], Body::from(big)))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn presigned_uploads_are_verified_before_any_byte_is_written() {
    let app = TestApp::new().await;
    let (id, url) = app.create("clip").await;
    let key = keys::source(&id);
    let (path, query) = url.split_once('?').unwrap();
    let presigner = app.state.presigner.clone().unwrap();

    let sig_at = query.find("X-Parallax-Signature=").unwrap() + "X-Parallax-Signature=".len();
    let mut tampered = url.clone().into_bytes();
    let i = path.len() + 1 + sig_at;
    tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_key = url.replace(&id, "00000000-0000-4000-8000-000000000000");
    let expired = format!(
        "/objects/{key}?{}",
        presigner.sign_query("PUT", &key, chrono::Utc::now().timestamp() - 10, None)
    );
    let get_url = app
        .backends
        .storage
        .presign_download(&key, std::time::Duration::from_secs(60), None)
        .await
        .unwrap();
    for (what, u) in [
        ("tampered", tampered.as_str()),
        ("other key", other_key.as_str()),
        ("expired", expired.as_str()),
        ("GET link used to PUT", get_url.as_str()),
        ("no signature", path),
    ] {
        let r = app.send(req(Method::PUT, u, &[], Body::from("evil"))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text());
        assert_eq!(r.error_code(), "bad-signature");
    }
    assert_eq!(
        app.backends.storage.head(&key).await.unwrap(),
        None,
        "nothing written"
    );
    assert_eq!(
        app.backends
            .storage
            .head(&keys::source("00000000-0000-4000-8000-000000000000"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        chunking_events(&app).await,
        0,
        "no event for refused uploads"
    );
    // The PUT link cannot be used to read either.
    let r = app.get(&url).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = app
        .send(req(Method::PUT, &url, &[], Body::from("real bytes")))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.backends.storage.head(&key).await.unwrap(), Some(10));
    assert_eq!(chunking_events(&app).await, 1);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_leave_nothing() {
    let app = TestApp::with_config(WebConfig {
        max_upload_bytes: 1000,
        ..WebConfig::default()
    })
    .await;
    let (id, url) = app.create("big").await;
    let key = keys::source(&id);
    // Announced too large: refused before reading.
    let r = app
        .send(req(
            Method::PUT,
            &url,
            &[("content-length", "1001")],
            Body::from(vec![0u8; 1001]),
        ))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "upload-too-large");
    // Streamed without a length: cut off once past the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![1u8; 300])).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let r = app.send(req(Method::PUT, &url, &[], body)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(app.backends.storage.head(&key).await.unwrap(), None);
    assert_eq!(chunking_events(&app).await, 0);
    // At the limit: accepted.
    let r = app
        .send(req(Method::PUT, &url, &[], Body::from(vec![2u8; 1000])))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.backends.storage.head(&key).await.unwrap(), Some(1000));
}

#[tokio::test]
async fn internal_failures_do_not_leak_details() {
    let app = TestApp::new().await;
    let (_, url) = app.create("clip").await;
    // Break the storage folder: the object directory becomes a plain file.
    let objects = app.backends.path().join("objects");
    std::fs::remove_dir_all(&objects).unwrap();
    std::fs::write(&objects, b"not a folder").unwrap();
    let r = app
        .send(req(Method::PUT, &url, &[], Body::from("bytes")))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.error_code(), "internal");
    let text = r.text();
    let dir = app.backends.path().display().to_string();
    assert!(
        !text.contains(&dir) && !text.contains("objects") && !text.contains("os error"),
        "{text}"
    );
}

/// A throttle of 5 wrong credentials, then 30 s (doubling) on a clock the test moves.
fn throttled(access: AccessControl) -> (WebConfig, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let config = WebConfig {
        access,
        login_throttle: ThrottleConfig {
            max_failures: 5,
            window: Duration::from_secs(600),
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
            max_clients: 100,
            clock: clock.clone(),
        },
        ..WebConfig::default()
    };
    (config, clock)
}

/// A login form post from `peer` (the CSRF cookie and field agree).
fn login_post(token: &str, peer: &str) -> axum::http::Request<Body> {
    from_peer(
        req(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", "parallax_csrf=c5rf"),
            ],
            Body::from(format!("token={token}&csrf=c5rf&next=%2Fupload")),
        ),
        peer,
    )
}

#[tokio::test]
async fn guessing_the_token_at_login_is_locked_out_per_address() {
    let (config, clock) = throttled(AccessControl::Token(TOKEN.to_owned()));
    let app = TestApp::with_config(config).await;
    let attacker = "192.0.2.10:40000";
    let mut statuses = Vec::new();
    for i in 0..50 {
        // Each connection from another port: the address counts, not the port.
        let peer = format!("192.0.2.10:{}", 40000 + i);
        let r = app
            .send(login_post(&format!("guess-{i:04}-xxxxxxxxxxxx"), &peer))
            .await;
        statuses.push(r.status);
        if r.status == StatusCode::SEE_OTHER {
            assert!(r.header("location").unwrap().contains("failed=1"));
            assert!(r.header("set-cookie").is_none());
        } else {
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "attempt {i}");
            assert_eq!(r.header("retry-after"), Some("30"), "attempt {i}");
            assert!(r.header("content-type").unwrap().starts_with("text/html"));
            let html = r.text();
            assert!(
                html.contains("Too many wrong tokens") && html.contains("try again"),
                "{html}"
            );
            assert!(html.contains("30.0 s") || html.contains("30 s"), "{html}");
            assert!(html.contains(r#"name="token""#), "the form is still there");
            assert!(r.header("set-cookie").is_none());
        }
    }
    let locked_from = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("locked out at some point");
    assert_eq!(locked_from, 4, "the fifth wrong token locks: {statuses:?}");
    assert!(statuses[locked_from..]
        .iter()
        .all(|s| *s == StatusCode::TOO_MANY_REQUESTS));

    // While locked, even the right token is not checked; the form page says so too.
    let r = app.send(login_post(TOKEN, attacker)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("set-cookie").is_none());
    let r = app
        .send(from_peer(
            req(Method::GET, "/login?failed=1", &[], Body::empty()),
            attacker,
        ))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("Too many wrong tokens"));

    // Another address is not affected.
    let other = "198.51.100.7:5000";
    let r = app.send(login_post("nope-nope-nope", other)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("location").unwrap().contains("failed=1"));
    let r = app.send(login_post(TOKEN, other)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/upload"));
    assert!(r
        .header("set-cookie")
        .unwrap()
        .contains("parallax_session="));

    // After the back-off the right token works, and resets the count.
    clock.advance(Duration::from_secs(29));
    let r = app.send(login_post(TOKEN, attacker)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("1"));
    clock.advance(Duration::from_secs(1));
    let r = app.send(login_post(TOKEN, attacker)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), Some("/upload"));
    assert!(r
        .header("set-cookie")
        .unwrap()
        .contains("parallax_session="));
    for _ in 0..4 {
        let r = app.send(login_post("wrong-again-xxxx", attacker)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "a success reset the count");
    }
    // Without a success the next lockout is longer.
    let r = app.send(login_post("wrong-again-xxxx", attacker)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("30"));
    clock.advance(Duration::from_secs(30));
    for _ in 0..4 {
        app.send(login_post("wrong-again-xxxx", attacker)).await;
    }
    let r = app.send(login_post("wrong-again-xxxx", attacker)).await;
    assert_eq!(r.header("retry-after"), Some("60"));
}

#[tokio::test]
async fn wrong_bearer_tokens_and_passwords_on_the_api_count_the_same_way() {
    let (config, clock) = throttled(AccessControl::Token(TOKEN.to_owned()));
    let app = TestApp::with_config(config).await;
    let api = |auth: &str, peer: &str| {
        from_peer(
            req(
                Method::GET,
                "/api/jobs",
                &[("authorization", auth)],
                Body::empty(),
            ),
            peer,
        )
    };
    let right = format!("Bearer {TOKEN}");
    let attacker = "[2001:db8:1:2::1]:443";
    for i in 0..4 {
        let r = app.send(api(&format!("Bearer guess-{i}"), attacker)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Another address in the same IPv6 /64 counts as the same client.
    let r = app
        .send(api("Bearer guess-5", "[2001:db8:1:2::99]:443"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "too-many-attempts");
    assert_eq!(r.header("retry-after"), Some("30"));
    let r = app.send(api(&right, attacker)).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "not checked while locked"
    );
    assert_eq!(
        app.send(api(&right, "[2001:db8:1:3::1]:443")).await.status,
        StatusCode::OK,
        "another /64 is not affected"
    );
    // Requests without a token are not counted and still get the usual 401.
    let r = app
        .send(from_peer(
            req(Method::GET, "/api/jobs", &[], Body::empty()),
            attacker,
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    clock.advance(Duration::from_secs(30));
    assert_eq!(app.send(api(&right, attacker)).await.status, StatusCode::OK);

    // Basic auth.
    let (config, clock) = throttled(AccessControl::Basic {
        user: "ann".into(),
        password: "s3cret pass".into(),
    });
    let app = TestApp::with_config(config).await;
    let basic = |pair: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let attacker = "203.0.113.5:1234";
    for i in 0..5 {
        let r = app
            .send(api(&basic(&format!("ann:guess{i}")), attacker))
            .await;
        let want = if i < 4 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(r.status, want, "attempt {i}");
    }
    let r = app.send(api("Basic !!not-base64!!", attacker)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let good = basic("ann:s3cret pass");
    assert_eq!(
        app.send(api(&good, attacker)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.send(api(&good, "203.0.113.6:1234")).await.status,
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(app.send(api(&good, attacker)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_login_form_gets_the_login_page_with_a_message() {
    let app = TestApp::with_config(token_config()).await;
    let cases: [(&str, &str); 4] = [
        ("application/x-www-form-urlencoded", "csrf=c5rf&next=%2F"),
        ("application/x-www-form-urlencoded", ""),
        ("application/json", r#"{"token": "x", "csrf": "c5rf"}"#),
        ("text/plain", "token=x&csrf=c5rf"),
    ];
    for (content_type, body) in cases {
        let r = app
            .send(req(
                Method::POST,
                "/login",
                &[
                    ("content-type", content_type),
                    ("cookie", "parallax_csrf=c5rf"),
                ],
                Body::from(body),
            ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{content_type} {body:?}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        let html = r.text();
        assert!(
            html.contains("could not be read") && html.contains(r#"name="token""#),
            "{html}"
        );
    }
    // No body and no content type at all (no peer address either: the shared bucket).
    let r = app
        .send(req(Method::POST, "/login", &[], Body::empty()))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("could not be read"));
    // A wrong CSRF value: the form again, not a JSON error.
    let r = app
        .send(req(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", "parallax_csrf=other"),
            ],
            Body::from(format!("token={TOKEN}&csrf=c5rf")),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("expired"));
}
