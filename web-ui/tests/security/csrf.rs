//! State-changing requests from pages need the CSRF token, logged in or not.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use web_ui::AccessControl;

use crate::common::{req, TestApp};
use crate::{token_config, TOKEN};

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
