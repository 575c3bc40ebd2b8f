//! The upload and `PATCH /api/jobs/{id}`: a stored upload moves the job to uploaded, never
//! backwards, with the upload time in either form.

use axum::http::{Method, StatusCode};
use chrono::Utc;
use parallax_core::keys::QueueName;
use parallax_core::model::{JobStatus, JobUpdate};
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn upload_then_patch_moves_the_job_to_uploaded() {
    let app = TestApp::new().await;
    let (id, url) = app.create("clip").await;
    let r = app
        .json(
            Method::PATCH,
            &format!("/api/jobs/{id}"),
            json!({"uploaded_at": Utc::now()}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "PATCH before the upload: {}",
        r.text()
    );
    assert_eq!(r.error_code(), "not-uploaded");

    let r = app.put_bytes(&url, vec![7u8; 12_345]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = app
        .backends
        .queue(QueueName::Chunking)
        .receiver
        .receive(10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "one storage event starts the chunking");
    assert!(events[0].body.contains(&id));

    let r = app
        .json(
            Method::PATCH,
            &format!("/api/jobs/{id}"),
            json!({"title": "My clip", "uploaded_at": Utc::now(), "source_file_size_bytes": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "uploaded");
    assert_eq!(v["title"], "My clip");
    assert_eq!(v["source_file_size_bytes"], 12_345, "the stored size wins");
}

#[tokio::test]
async fn patch_never_moves_the_status_backwards() {
    let app = TestApp::new().await;
    let (id, url) = app.create("clip").await;
    assert_eq!(
        app.put_bytes(&url, vec![1; 100]).await.status,
        StatusCode::OK
    );
    // The storage event got there first: a media-worker is already chunking.
    app.backends
        .jobs
        .update(&id, &JobUpdate::status(JobStatus::Chunking))
        .await
        .unwrap();
    let r = app
        .json(
            Method::PATCH,
            &format!("/api/jobs/{id}"),
            json!({"title": "Renamed", "uploaded_at": Utc::now()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "chunking");
    let stored = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Chunking);
    assert_eq!(stored.title, "Renamed");
    assert!(stored.uploaded_at.is_some());

    let r = app
        .json(
            Method::PATCH,
            &format!("/api/jobs/{id}"),
            json!({"title": "  "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid-title");
}

#[tokio::test]
async fn patch_takes_uploaded_at_as_unix_seconds_or_rfc3339() {
    let app = TestApp::new().await;
    let (id, url) = app.create("clip").await;
    assert_eq!(
        app.put_bytes(&url, vec![1; 100]).await.status,
        StatusCode::OK
    );
    let patch = |body: serde_json::Value| {
        let uri = format!("/api/jobs/{id}");
        let app = &app;
        async move { app.json(Method::PATCH, &uri, body).await }
    };
    // Whole Unix seconds, the design's form: stored as that instant, answered as RFC 3339.
    let r = patch(json!({"uploaded_at": 1_767_225_600})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "uploaded");
    assert_eq!(r.json()["uploaded_at"], "2026-01-01T00:00:00Z");
    let stored = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.uploaded_at.unwrap().timestamp(), 1_767_225_600);
    assert_eq!(
        app.get(&format!("/api/jobs/{id}")).await.json()["uploaded_at"],
        "2026-01-01T00:00:00Z"
    );
    // An RFC 3339 string (what the upload page sends), with an offset.
    let r = patch(json!({"uploaded_at": "2026-01-02T01:30:00.250+01:00"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let stored = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.uploaded_at.unwrap(),
        "2026-01-02T00:30:00.250Z"
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
    );
    // null is the same as leaving it out.
    let r = patch(json!({"uploaded_at": null, "title": "Renamed"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.backends
            .jobs
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .uploaded_at,
        stored.uploaded_at
    );

    for (bad, why) in [
        (json!(-1), "outside 1970-01-01 to 9999-12-31"),
        (
            json!(253_402_300_800_i64),
            "outside 1970-01-01 to 9999-12-31",
        ),
        (json!(u64::MAX), "after year 9999"),
        (json!(1_767_225_600.5), "not a whole number of seconds"),
        (json!("1767225600.5"), "not an RFC 3339 date-time"),
        (json!("1767225600"), "not an RFC 3339 date-time"),
        (json!("yesterday"), "not an RFC 3339 date-time"),
        (json!("1969-12-31T23:59:59Z"), "outside 1970-01-01"),
        (json!(true), "got a boolean"),
    ] {
        let r = patch(json!({"uploaded_at": bad})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.error_code(), "invalid-uploaded-at", "{bad}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("Unix seconds") && message.contains(why),
            "{bad}: {message}"
        );
    }
    let stored_after = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored_after.uploaded_at, stored.uploaded_at,
        "refused values change nothing"
    );
}
