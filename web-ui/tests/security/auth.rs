//! Access control: a token (with a login page and session cookie for browsers) or basic auth
//! guards everything but the health check and signed objects.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use web_ui::{AccessControl, WebConfig};

use crate::common::{req, TestApp};
use crate::{token_config, TOKEN};

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
