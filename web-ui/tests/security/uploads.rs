//! Body limits, the presigned object endpoint's checks and what failures tell a client.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use parallax_core::keys::{self, QueueName};
use web_ui::WebConfig;

use crate::common::{req, TestApp};

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
