//! The login cookies' attributes, with and without secure cookies.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use web_ui::WebConfig;

use crate::common::{req, TestApp};

async fn login_cookies(secure: bool) -> (String, String) {
    let app = TestApp::with_config(WebConfig {
        access: web_ui::AccessControl::Token("a-token-of-sixteen-chars".to_owned()),
        secure_cookies: secure,
        ..WebConfig::default()
    })
    .await;
    let r = app.get("/login").await;
    assert_eq!(r.status, StatusCode::OK);
    let csrf_cookie = r.header("set-cookie").unwrap().to_owned();
    let csrf = csrf_cookie
        .strip_prefix("parallax_csrf=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let r = app
        .send(req(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &format!("parallax_csrf={csrf}")),
            ],
            Body::from(format!(
                "token=a-token-of-sixteen-chars&csrf={csrf}&next=%2F"
            )),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let session = r.header("set-cookie").unwrap().to_owned();
    assert!(session.starts_with("parallax_session="), "{session}");
    (csrf_cookie, session)
}

#[tokio::test]
async fn login_cookies_are_secure_under_secure_cookies() {
    let (csrf, session) = login_cookies(true).await;
    for c in [&csrf, &session] {
        let attrs: Vec<&str> = c.split(';').map(str::trim).collect();
        assert!(attrs.contains(&"Secure"), "{c}");
        assert!(attrs.contains(&"SameSite=Strict"), "{c}");
        assert!(attrs.contains(&"Path=/"), "{c}");
    }
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("Max-Age=2592000"), "{session}");

    let (csrf, session) = login_cookies(false).await;
    assert!(!csrf.contains("Secure"), "{csrf}");
    assert!(!session.contains("Secure"), "{session}");
}
