//! `POST /api/jobs/{id}/rerender`, driven with `oneshot`: a completed job with stored depth
//! gives a new job that starts through the storage event (no upload, no queue call), and
//! every bad request is refused with a readable JSON error and nothing started.

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use parallax_core::keys;
use parallax_core::model::{Job, JobStatus, StereoMode};
use serde_json::json;

/// Stores what a conversion leaves for re-renders: the segment list, the segments and their
/// depth (stand-in bytes), for `total` segments of `job`.
async fn store_depth(app: &TestApp, job: &str, total: u32) {
    let mut keys = vec![keys::manifest(job)];
    for i in 0..total {
        keys.push(keys::segment(job, i));
        keys.push(keys::depth(job, i));
    }
    for key in keys {
        app.put_object(&key, b"stand-in").await;
    }
}

#[tokio::test]
async fn a_rerender_is_a_new_job_started_by_the_storage_event() {
    let app = TestApp::new().await;
    let source = app.seed("Holiday", JobStatus::Completed).await;
    store_depth(&app, &source.job_id, 2).await;
    assert!(app.started().await.is_empty());

    let uri = format!("/api/jobs/{}/rerender", source.job_id);
    let r = app
        .json(
            Method::POST,
            &uri,
            json!({
                "title": "Holiday, half SBS",
                "mode": "half_sbs",
                "settings": {"divergence": 3.0, "ema_decay": 0.5, "depth_resolution": 700}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    let id = v["job"]["job_id"].as_str().unwrap().to_owned();
    assert_ne!(id, source.job_id);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/jobs/{id}").as_str())
    );
    assert_eq!(v["job"]["status"], "uploaded");
    assert_eq!(v["job"]["mode"], "half_sbs");
    assert_eq!(v["job"]["title"], "Holiday, half SBS");
    assert_eq!(v["job"]["rerender_of"], source.job_id.as_str());
    assert_eq!(v["job"]["settings"]["divergence"], 3.0);
    // The depth-making settings are the stored depth's.
    let decay = v["job"]["settings"]["ema_decay"].as_f64().unwrap();
    assert!((decay - 0.9).abs() < 1e-6, "{decay}");
    assert_eq!(v["job"]["settings"]["depth_resolution"], json!(null));
    let stored = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.rerender_of.as_deref(), Some(source.job_id.as_str()));
    assert_eq!(stored.status, JobStatus::Uploaded);
    assert!(stored.uploaded_at.is_some());
    // Started as an upload would be, through the storage event: no upload of its own.
    assert_eq!(app.started().await, vec![id.clone()]);
    assert!(app
        .backends
        .storage
        .head(&keys::source(&id))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        app.get(&format!("/api/jobs/{id}")).await.json()["rerender_of"],
        source.job_id.as_str()
    );
    // An ordinary job says nothing of re-renders.
    let plain = app
        .get(&format!("/api/jobs/{}", source.job_id))
        .await
        .json();
    assert!(plain.get("rerender_of").is_none(), "{plain}");

    // No body: the source's layout, settings and title.
    let r = app.json(Method::POST, &uri, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    assert_eq!(v["job"]["mode"], "full_sbs");
    assert_eq!(v["job"]["title"], "Holiday");
    assert_eq!(app.started().await.len(), 1);

    // A re-render can itself be re-rendered once completed: the depth is the original's.
    let again = app.backends.jobs.get(&id).await.unwrap().unwrap();
    app.complete_job(&again.job_id, b"result".to_vec()).await;
    app.backends
        .storage
        .put_stream(
            &keys::manifest(&id),
            Box::pin(std::io::Cursor::new(b"{}".to_vec())),
        )
        .await
        .unwrap();
    let r = app
        .json(
            Method::POST,
            &format!("/api/jobs/{id}/rerender"),
            json!({"mode": "anaglyph"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["job"]["rerender_of"], id.as_str());
    assert_eq!(r.json()["job"]["title"], "Holiday, half SBS");

    let doc = app.get("/api/openapi.json").await.json();
    assert!(doc["paths"]["/api/jobs/{id}/rerender"]["post"].is_object());
    assert!(doc["components"]["schemas"]["RerenderJob"].is_object());
}

#[tokio::test]
async fn bad_rerender_requests_are_refused_readably_and_start_nothing() {
    let app = TestApp::new().await;
    let done = app.seed("done", JobStatus::Completed).await;
    store_depth(&app, &done.job_id, 2).await;
    let running = app.seed("running", JobStatus::ChunkingComplete).await;
    store_depth(&app, &running.job_id, 2).await;
    let failed = app.seed("failed", JobStatus::Failed).await;
    let old = app
        .seed("converted before depth was stored", JobStatus::Completed)
        .await;
    // Depth for the first segment only: the set is incomplete (expired, say).
    let partial = app.seed("partly expired", JobStatus::Completed).await;
    store_depth(&app, &partial.job_id, 1).await;
    let _ = app.started().await;
    let jobs_before = app.backends.jobs.list_in_progress(100).await.unwrap().len();

    let uri = |j: &Job| format!("/api/jobs/{}/rerender", j.job_id);
    let cases = [
        (
            "/api/jobs/00000000-0000-4000-8000-000000000000/rerender".to_owned(),
            json!({}),
            StatusCode::NOT_FOUND,
            "job-not-found",
        ),
        (
            "/api/jobs/not-a-job/rerender".to_owned(),
            json!({}),
            StatusCode::NOT_FOUND,
            "job-not-found",
        ),
        (
            uri(&running),
            json!({"mode": "half_sbs"}),
            StatusCode::CONFLICT,
            "job-not-completed",
        ),
        (
            uri(&failed),
            json!({}),
            StatusCode::CONFLICT,
            "job-not-completed",
        ),
        (
            uri(&old),
            json!({"mode": "half_sbs"}),
            StatusCode::CONFLICT,
            "depth-not-stored",
        ),
        (
            uri(&partial),
            json!({}),
            StatusCode::CONFLICT,
            "depth-not-stored",
        ),
        (
            uri(&done),
            json!({"mode": "hologram"}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
        ),
        (
            uri(&done),
            json!({"settings": {"divergence": 50}}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
        ),
        (
            uri(&done),
            json!({"settings": {"depth_resolution": 1}}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
        ),
        (
            uri(&done),
            json!({"mode": "half_sbs", "colour": "blue"}),
            StatusCode::BAD_REQUEST,
            "invalid-json",
        ),
        (
            uri(&done),
            json!({"title": "bad\u{7}title"}),
            StatusCode::BAD_REQUEST,
            "invalid-title",
        ),
    ];
    for (uri, body, status, code) in cases {
        let r = app.json(Method::POST, &uri, body.clone()).await;
        assert_eq!(r.status, status, "{uri} {body}: {}", r.text());
        assert_eq!(r.error_code(), code, "{uri} {body}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.len() > 15 && !message.contains("Backend"),
            "{uri}: unreadable {message:?}"
        );
    }
    assert!(app.started().await.is_empty(), "nothing started");
    assert_eq!(
        app.backends.jobs.list_in_progress(100).await.unwrap().len(),
        jobs_before,
        "no job created"
    );
    // The same job, asked properly, is re-rendered.
    let r = app
        .json(
            Method::POST,
            &uri(&done),
            json!({"mode": StereoMode::HalfTb}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}
