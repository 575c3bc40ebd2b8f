//! Guessing credentials is throttled per address, at the login form and on the API alike.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use web_ui::throttle::ManualClock;
use web_ui::{AccessControl, ThrottleConfig, WebConfig};

use crate::common::{from_peer, req, TestApp};
use crate::TOKEN;

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
