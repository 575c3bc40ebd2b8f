//! One job through the API: its state and segment count, failures, cancelling, the download
//! and the ETA, and unknown jobs.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use parallax_core::keys;
use parallax_core::model::{JobStatus, JobUpdate, SegmentCompletion};
use serde_json::json;

use crate::common::{req, TestApp};

#[tokio::test]
async fn get_job_counts_completed_segments() {
    let app = TestApp::new().await;
    let job = app.seed("counting", JobStatus::Chunking).await;
    let mut u = JobUpdate::status(JobStatus::ChunkingComplete);
    u.total_segments = Some(3);
    app.backends.jobs.update(&job.job_id, &u).await.unwrap();
    for i in [0, 2, 2] {
        app.backends
            .completions
            .put(&SegmentCompletion {
                job_id: job.job_id.clone(),
                segment_index: i,
                output_uri: keys::output(&job.job_id, i),
                completed_at: Utc::now(),
                frame_count: None,
            })
            .await
            .unwrap();
    }
    let r = app.get(&format!("/api/jobs/{}", job.job_id)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["status"], "chunking_complete");
    assert_eq!(v["total_segments"], 3);
    assert_eq!(v["completed_segments"], 2);
    assert!(v["error"].is_null());
}

#[tokio::test]
async fn unknown_jobs_are_404_everywhere() {
    let app = TestApp::new().await;
    for id in [
        "9b2e0c58-0000-4000-8000-000000000000",
        "..%2F..%2Fetc",
        "x y",
    ] {
        for (m, uri) in [
            (Method::GET, format!("/api/jobs/{id}")),
            (Method::PATCH, format!("/api/jobs/{id}")),
            (Method::DELETE, format!("/api/jobs/{id}")),
            (Method::GET, format!("/api/jobs/{id}/download")),
        ] {
            let r = app
                .json(m.clone(), &uri.replace(' ', "%20"), json!({}))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {uri}: {}", r.text());
            assert_eq!(r.error_code(), "job-not-found");
        }
        let r = app.get(&format!("/jobs/{}", id.replace(' ', "%20"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(
            r.text().contains("there is no job"),
            "job page explains: {}",
            r.text()
        );
    }
    let r = app.get("/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not-found");
}

#[tokio::test]
async fn failed_jobs_show_their_reason() {
    let app = TestApp::new().await;
    let job = app.seed("broken", JobStatus::Failed).await;
    let v = app.get(&format!("/api/jobs/{}", job.job_id)).await.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "not-a-video");
    assert_eq!(v["error"]["message"], "The file is not a video.");
    let page = app.get("/").await.text();
    assert!(page.contains("not-a-video") && page.contains("The file is not a video."));
}

#[tokio::test]
async fn delete_cancels_an_unfinished_job_once() {
    let app = TestApp::new().await;
    let (id, _) = app.create("to cancel").await;
    let r = app
        .json(Method::DELETE, &format!("/api/jobs/{id}"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "cancelled");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Cancelled"));
    let r = app
        .json(Method::DELETE, &format!("/api/jobs/{id}"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "job-finished");
    let done = app.seed("done", JobStatus::Completed).await;
    let r = app
        .json(
            Method::DELETE,
            &format!("/api/jobs/{}", done.job_id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        app.backends
            .jobs
            .get(&done.job_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Completed
    );
}

#[tokio::test]
async fn download_redirects_to_a_presigned_url_named_after_the_title() {
    let app = TestApp::new().await;
    let (id, _) = app.create("Attack on Titan").await;
    let r = app.get(&format!("/api/jobs/{id}/download")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing to download yet");
    assert_eq!(r.error_code(), "not-ready");

    let result: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    app.complete_job(&id, result.clone()).await;
    let r = app.get(&format!("/api/jobs/{id}/download")).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with("/objects/final/"), "{location}");
    let r = app.get(&location).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"attack-on-titan3d_LR.mp4\"")
    );
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.body.as_ref(), result.as_slice());

    // The player may seek: byte ranges work.
    let r = app
        .send(req(
            Method::GET,
            &location,
            &[("range", "bytes=100-199")],
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &result[100..200]);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/50000"));
}

#[tokio::test]
async fn eta_uses_the_cached_average_seconds_per_mb() {
    let app = TestApp::new().await;
    // 100 s for 20 MB: 5 s/MB.
    let done = app.seed("reference", JobStatus::Completed).await;
    let u = JobUpdate {
        completed_at: Some(done.uploaded_at.unwrap() + chrono::Duration::seconds(100)),
        ..JobUpdate::default()
    };
    app.backends.jobs.update(&done.job_id, &u).await.unwrap();
    let v = app.get(&format!("/api/jobs/{}", done.job_id)).await.json();
    assert_eq!(v["conversion_seconds"], 100.0);
    assert_eq!(v["seconds_per_mb"], 5.0);
    assert!(v["eta_seconds"].is_null(), "finished jobs have no ETA");

    // A 20 MB job uploaded 100 s ago at 5 s/MB: about 0 s left, never negative.
    let live = app.seed("live", JobStatus::ChunkingComplete).await;
    let v = app.get(&format!("/api/jobs/{}", live.job_id)).await.json();
    let eta = v["eta_seconds"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&eta), "{eta}");
    // A 200 MB job uploaded just now: about 1000 s.
    let u = JobUpdate {
        source_file_size_bytes: Some(200_000_000),
        uploaded_at: Some(Utc::now()),
        ..JobUpdate::default()
    };
    app.backends.jobs.update(&live.job_id, &u).await.unwrap();
    let v = app.get(&format!("/api/jobs/{}", live.job_id)).await.json();
    let eta = v["eta_seconds"].as_f64().unwrap();
    assert!((990.0..=1000.0).contains(&eta), "{eta}");

    // The average is cached: a much slower job finishing now does not change it until the TTL.
    let slow = app.seed("slow", JobStatus::Completed).await;
    let u = JobUpdate {
        completed_at: Some(slow.uploaded_at.unwrap() + chrono::Duration::seconds(10_000)),
        ..JobUpdate::default()
    };
    app.backends.jobs.update(&slow.job_id, &u).await.unwrap();
    let v = app.get(&format!("/api/jobs/{}", live.job_id)).await.json();
    assert!(v["eta_seconds"].as_f64().unwrap() <= 1000.0);
    app.state.eta.invalidate().await;
    let v = app.get(&format!("/api/jobs/{}", live.job_id)).await.json();
    // (100 + 10000) s over 40 MB = 252.5 s/MB; 200 MB -> about 50,500 s.
    assert!(v["eta_seconds"].as_f64().unwrap() > 50_000.0, "{v}");
}
