//! The JSON API and the pages, driven with `oneshot`.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::{req, TestApp};
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{JobStatus, JobUpdate, SegmentCompletion};
use serde_json::json;
use web_ui::WebConfig;

async fn put_bytes(app: &TestApp, url: &str, bytes: Vec<u8>) -> common::Resp {
    app.send(req(Method::PUT, url, &[], Body::from(bytes)))
        .await
}

#[tokio::test]
async fn create_job_gives_the_job_and_a_presigned_upload() {
    let app = TestApp::new().await;
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "Holiday", "mode": "half-sbs", "settings": {"divergence": 3.5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    let id = v["job"]["job_id"].as_str().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/jobs/{id}").as_str())
    );
    assert_eq!(v["job"]["status"], "awaiting_upload");
    assert_eq!(v["job"]["mode"], "half_sbs");
    assert_eq!(v["job"]["settings"]["divergence"], 3.5);
    assert_eq!(v["upload"]["method"], "PUT");
    let url = v["upload"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("/objects/uploads/{id}/source?")),
        "{url}"
    );
    assert_eq!(
        v["upload"]["headers"]["Content-Type"],
        "application/octet-stream"
    );
    let stored = app.backends.jobs.get(id).await.unwrap().unwrap();
    assert_eq!(stored.title, "Holiday");
}

#[tokio::test]
async fn create_job_refuses_bad_input_with_json_errors() {
    let app = TestApp::with_config(WebConfig {
        max_upload_bytes: 1000,
        ..WebConfig::default()
    })
    .await;
    let cases = [
        (
            json!({"mode": "hologram"}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
        ),
        (
            json!({"settings": {"divergence": 50}}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
        ),
        (
            json!({"settings": {"encoder": "rm -rf"}}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
        ),
        (
            json!({"colour": "blue"}),
            StatusCode::BAD_REQUEST,
            "invalid-json",
        ),
        (
            json!({"title": "x".repeat(201)}),
            StatusCode::BAD_REQUEST,
            "invalid-title",
        ),
        (
            json!({"title": "a\u{7}b"}),
            StatusCode::BAD_REQUEST,
            "invalid-title",
        ),
        (
            json!({"source_file_size_bytes": 1001}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload-too-large",
        ),
    ];
    for (body, status, code) in cases {
        let r = app.json(Method::POST, "/api/jobs", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.error_code(), code, "{body}");
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = app
        .send(req(Method::POST, "/api/jobs", &[], Body::from("{not json")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid-json");
    // Nothing was created by the refused requests.
    assert!(app
        .backends
        .jobs
        .list_in_progress(100)
        .await
        .unwrap()
        .is_empty());
    // An empty body is a job with every default.
    let r = app
        .send(req(Method::POST, "/api/jobs", &[], Body::empty()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["job"]["title"], "untitled");
    assert_eq!(r.json()["job"]["mode"], "full_sbs");
}

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

    let r = put_bytes(&app, &url, vec![7u8; 12_345]).await;
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
        put_bytes(&app, &url, vec![1; 100]).await.status,
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
        put_bytes(&app, &url, vec![1; 100]).await.status,
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
async fn listing_pages_completed_jobs_and_rejects_bad_parameters() {
    let app = TestApp::new().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            app.seed(&format!("done {i}"), JobStatus::Completed)
                .await
                .job_id,
        );
    }
    let p1 = app.get("/api/jobs?state=completed&limit=20").await.json();
    assert_eq!(p1["items"].as_array().unwrap().len(), 20);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let p2 = app
        .get(&format!(
            "/api/jobs?state=completed&limit=20&cursor={cursor}"
        ))
        .await
        .json();
    assert!(p2["next_cursor"].is_null());
    let mut seen: Vec<String> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    // Newest first: the last seeded job leads.
    assert_eq!(seen[0], ids[24]);
    assert_eq!(
        p1["items"][0]["download_url"],
        format!("/api/jobs/{}/download", ids[24])
    );
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "every job exactly once across pages");

    for (uri, code) in [
        (
            "/api/jobs?state=completed&cursor=bm90LWEtY3Vyc29y",
            "bad-cursor",
        ),
        ("/api/jobs?state=completed&cursor=%%%", "bad-cursor"),
        ("/api/jobs?state=in_progress&cursor=abc", "bad-cursor"),
        ("/api/jobs?state=paused", "invalid-state"),
        ("/api/jobs?limit=0", "invalid-limit"),
        ("/api/jobs?limit=101", "invalid-limit"),
        ("/api/jobs?limit=ten", "invalid-limit"),
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        assert_eq!(r.error_code(), code, "{uri}");
    }

    let live = app.seed("live", JobStatus::ChunkingComplete).await;
    let v = app.get("/api/jobs?state=in_progress").await.json();
    assert_eq!(v["items"][0]["job_id"], live.job_id.as_str());
    assert_eq!(v["items"][0]["completed_segments"], 0);
    let v = app.get("/api/jobs?state=failed").await.json();
    assert!(v["items"].as_array().unwrap().is_empty());
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

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let app = TestApp::new().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["openapi"], "3.1.0");
    for (path, methods) in [
        ("/api/jobs", &["get", "post"][..]),
        ("/api/jobs/{id}", &["get", "patch", "delete"][..]),
        ("/api/jobs/{id}/download", &["get"][..]),
        ("/healthz", &["get"][..]),
    ] {
        for m in methods {
            assert!(v["paths"][path][m].is_object(), "{m} {path} missing");
        }
    }
    let uploaded_at = &v["components"]["schemas"]["PatchJob"]["properties"]["uploaded_at"];
    assert_eq!(uploaded_at["oneOf"][0]["type"], "integer", "{uploaded_at}");
    assert_eq!(
        uploaded_at["oneOf"][1]["format"], "date-time",
        "{uploaded_at}"
    );
    // Every $ref points at a schema that exists.
    let text = r.text();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            v["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn healthz_answers() {
    let app = TestApp::new().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
}

#[tokio::test]
async fn dashboard_lists_jobs_by_state_and_pages_completed_ones() {
    let app = TestApp::with_config(WebConfig {
        page_size: 3,
        ..WebConfig::default()
    })
    .await;
    let live = app.seed("Live one", JobStatus::Chunking).await;
    let failed = app.seed("Broken one", JobStatus::Failed).await;
    let mut done = Vec::new();
    for i in 0..4 {
        done.push(app.seed(&format!("Done {i}"), JobStatus::Completed).await);
    }
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = r.text();
    let in_progress = &html[html.find("In progress").unwrap()..html.find("Failed").unwrap()];
    assert!(in_progress.contains("Live one") && in_progress.contains(&live.job_id));
    let failed_part = &html[html.find("Failed").unwrap()..html.find("Completed").unwrap()];
    assert!(failed_part.contains(&failed.job_id) && failed_part.contains("not-a-video"));
    let completed = &html[html.find("<h2>Completed").unwrap()..];
    for d in &done[1..] {
        assert!(completed.contains(&d.job_id), "newest three on page one");
    }
    assert!(!completed.contains(&done[0].job_id), "oldest on page two");
    assert!(completed.contains(&format!("/api/jobs/{}/download", done[3].job_id)));
    // Conversion time and sec/MB columns: 100 s for 20 MB.
    assert!(completed.contains("1 min 40 s"), "{completed}");
    assert!(completed.contains(">5.0<"), "{completed}");
    let older = completed.split("class=\"older\" href=\"").nth(1).unwrap();
    let older = older[..older.find('"').unwrap()].replace("&amp;", "&");
    let html2 = app.get(&older).await.text();
    let completed2 = &html2[html2.find("<h2>Completed").unwrap()..];
    assert!(completed2.contains(&done[0].job_id), "{completed2}");
    // The live part refreshes from a fragment without the page around it.
    let frag = app.get("/?fragment=1").await.text();
    assert!(frag.contains("Live one") && !frag.contains("<html"));
    let r = app.get("/?cursor=garbage").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn job_page_shows_settings_previews_player_and_download() {
    let app = TestApp::new().await;
    let (id, _) = app.create("Attack on Titan").await;
    let html = app.get(&format!("/jobs/{id}")).await.text();
    assert!(html.contains("Attack on Titan") && html.contains("awaiting upload"));
    assert!(html.contains("Full side-by-side") && html.contains("2 % of the width"));
    assert!(
        html.contains("id=\"cancel\""),
        "unfinished jobs can be cancelled"
    );
    assert!(
        !html.contains("<video"),
        "no player before the result exists"
    );
    assert!(
        !html.contains("<img"),
        "no previews before the worker writes them"
    );
    assert!(
        !html.contains("Open logs"),
        "the local deployment has no logs link"
    );
    assert!(
        !html.contains(">Cost<"),
        "the local deployment has no cost link"
    );

    for key in [keys::preview_frame(&id), keys::preview_depth(&id)] {
        app.backends
            .storage
            .put_stream(&key, Box::pin(std::io::Cursor::new(vec![1u8; 10])))
            .await
            .unwrap();
    }
    app.complete_job(&id, vec![0u8; 1000]).await;
    let html = app.get(&format!("/jobs/{id}")).await.text();
    assert!(
        html.contains("alt=\"3D preview frame\"") && html.contains("alt=\"Depth map preview\"")
    );
    assert!(html.contains("<video id=\"player\""));
    assert!(html.contains(&format!("href=\"/api/jobs/{id}/download\"")));
    assert!(html.contains("attack-on-titan3d_LR.mp4"));
    assert!(!html.contains("id=\"cancel\""));
    // The player's URL is a working presigned GET (inline, no attachment).
    let src = html
        .split("<video id=\"player\" controls preload=\"metadata\" src=\"")
        .nth(1)
        .unwrap();
    let src = src[..src.find('"').unwrap()].replace("&amp;", "&");
    let r = app.get(&src).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-disposition").is_none());
}

#[tokio::test]
async fn upload_page_offers_every_mode_and_the_limit() {
    let app = TestApp::with_config(WebConfig {
        max_upload_bytes: 5_000_000,
        ..WebConfig::default()
    })
    .await;
    let html = app.get("/upload").await.text();
    for m in parallax_core::model::StereoMode::ALL {
        assert!(html.contains(&format!("value=\"{}\"", m.as_str())));
    }
    assert!(html.contains("data-max-bytes=\"5000000\"") && html.contains("5.0 MB"));
    let js = app.get("/static/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(
        app.get("/static/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
}

/// The stereo knobs are refused at job creation with a reason that names the knob (or the
/// values it takes), and a valid set is stored as given.
#[tokio::test]
async fn stereo_knobs_are_checked_at_job_creation() {
    let app = TestApp::new().await;
    for (settings, says) in [
        (json!({"foreground_scale": 9}), "foreground_scale"),
        (json!({"ipd_offset": -10}), "ipd_offset"),
        (json!({"edge_dilation": 11}), "edge_dilation"),
        (json!({"max_output_width": 63}), "max_output_width"),
        (json!({"bit_depth": 10}), "HEVC"),
        (json!({"divergence": 12}), "divergence"),
        (json!({"anaglyph_method": "sepia"}), "dubois"),
        (json!({"synthetic_view": "middle"}), "both"),
    ] {
        let r = app
            .json(Method::POST, "/api/jobs", json!({"settings": settings}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{settings}: {}",
            r.text()
        );
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{settings}: {message}");
    }
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"mode": "vr180", "settings": {
                "foreground_scale": 1.5, "ipd_offset": 1, "edge_dilation": 3,
                "preserve_screen_border": true, "synthetic_view": "left",
                "auto_convergence": true, "max_output_width": 3840,
                "anaglyph_method": "wimmer", "encoder": "libx265", "bit_depth": 10
            }}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let s = &r.json()["job"]["settings"];
    assert_eq!(r.json()["job"]["mode"], "vr180");
    assert_eq!(s["synthetic_view"], "left");
    assert_eq!(s["edge_dilation"], 3);
    assert_eq!(s["max_output_width"], 3840);
    assert_eq!(s["anaglyph_method"], "wimmer");
}

/// The failed jobs are paged like the completed ones, on the dashboard and in the API: every
/// failed job is reachable, none twice.
#[tokio::test]
async fn failed_jobs_are_paged_on_the_dashboard_and_in_the_api() {
    let app = TestApp::with_config(WebConfig {
        page_size: 3,
        ..WebConfig::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            app.seed(&format!("broken {i}"), JobStatus::Failed)
                .await
                .job_id,
        );
    }
    // The API: pages of three with a cursor.
    let mut seen = Vec::new();
    let mut uri = "/api/jobs?state=failed".to_owned();
    loop {
        let page = app.get(&uri).await.json();
        for j in page["items"].as_array().unwrap() {
            seen.push(j["job_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/jobs?state=failed&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    // The dashboard: an "Older failed" link to the next page, which shows other jobs.
    let first = app.get("/").await.text();
    let at = first
        .find(r#"class="older-failed" href="/"#)
        .expect("a link to older failed jobs");
    let href = &first[at + r#"class="older-failed" href="#.len() + 1..];
    let href = href[..href.find('"').unwrap()].replace("&amp;", "&");
    let second = app.get(&href).await.text();
    let shown = |html: &str| -> Vec<String> {
        ids.iter()
            .filter(|id| html.contains(id.as_str()))
            .cloned()
            .collect()
    };
    let (a, b) = (shown(&first), shown(&second));
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(
        !b.is_empty() && b.iter().all(|id| !a.contains(id)),
        "{a:?} then {b:?}"
    );
    assert!(second.contains("Newest failed"));
}

/// A JSON body over the limit is refused in the JSON error shape (413, `body-too-large`),
/// like every other rejection, not as plain text.
#[tokio::test]
async fn a_body_over_the_limit_gets_the_json_error_shape() {
    let app = TestApp::with_config(WebConfig {
        max_body_bytes: 1024,
        ..WebConfig::default()
    })
    .await;
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(4096));
    let r = app
        .send(req(
            Method::POST,
            "/api/jobs",
            &[("content-type", "application/json")],
            axum::body::Body::from(big),
        ))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.error_code(), "body-too-large");
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
}

// ---- Presets, overrides, several files, bad input ----

#[tokio::test]
async fn presets_are_listed_and_a_preset_with_overrides_makes_the_job() {
    let app = TestApp::new().await;
    let r = app.get("/api/presets").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let listed = r.json();
    let presets = listed["presets"].as_array().unwrap();
    let names: Vec<&str> = presets
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in [
        "quest",
        "vision_pro",
        "tv_half_sbs",
        "tv_half_tb",
        "anaglyph",
        "youtube_vr180",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let vision = presets.iter().find(|p| p["name"] == "vision_pro").unwrap();
    assert_eq!(vision["mode"], "full_sbs");
    assert_eq!(vision["settings"]["encoder"], "libx265");
    assert_eq!(vision["settings"]["bit_depth"], 10);
    assert!(vision["description"].as_str().unwrap().contains("MV-HEVC"));

    // A preset alone: the job gets exactly the listed mode and settings.
    for p in presets {
        let r = app
            .json(Method::POST, "/api/jobs", json!({"preset": p["name"]}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let job = &r.json()["job"];
        assert_eq!(job["mode"], p["mode"], "{}", p["name"]);
        assert_eq!(job["settings"], p["settings"], "{}", p["name"]);
    }

    // A preset with overrides: the overrides win, the rest is the preset's.
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"preset": "vision_pro", "settings": {"divergence": 3.5, "ipd_offset": -1.5, "auto_convergence": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["job"]["job_id"].as_str().unwrap().to_owned();
    let stored = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.mode, parallax_core::model::StereoMode::FullSbs);
    assert_eq!(stored.settings.encoder, "libx265");
    assert_eq!(stored.settings.bit_depth, Some(10));
    assert_eq!(stored.settings.divergence, 3.5);
    assert_eq!(stored.settings.ipd_offset, -1.5);
    assert!(stored.settings.auto_convergence);

    // The mode overrides the preset's too.
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"preset": "tv_half_tb", "mode": "half_sbs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["job"]["mode"], "half_sbs");
    assert_eq!(r.json()["job"]["settings"]["encoder"], "libx264");
}

#[tokio::test]
async fn unknown_presets_settings_and_file_types_are_refused() {
    let app = TestApp::new().await;
    let cases = [
        (
            json!({"preset": "hologram"}),
            StatusCode::BAD_REQUEST,
            "unknown-preset",
            "quest",
        ),
        (
            json!({"preset": "quest", "settings": {"strength": 3}}),
            StatusCode::BAD_REQUEST,
            "unknown-setting",
            "strength",
        ),
        (
            json!({"settings": {"crf": "high"}}),
            StatusCode::BAD_REQUEST,
            "invalid-settings",
            "wrong type",
        ),
        (
            json!({"preset": "quest", "settings": {"bit_depth": 12}}),
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "bit_depth",
        ),
        (
            json!({"file_name": "notes.pdf"}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-file-type",
            "notes.pdf",
        ),
        (
            json!({"file_name": "no extension"}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-file-type",
            ".mp4",
        ),
    ];
    for (body, status, code, mentions) in cases {
        let r = app.json(Method::POST, "/api/jobs", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.error_code(), code, "{body}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    assert!(app
        .backends
        .jobs
        .list_in_progress(100)
        .await
        .unwrap()
        .is_empty());
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"file_name": "Holiday.MKV"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn several_files_make_one_job_each_with_the_same_settings() {
    let app = TestApp::new().await;
    let settings = json!({"divergence": 4.0, "edge_dilation": 3, "max_output_width": 1920});
    let files = ["a.mp4", "b.mov", "c.mkv"];
    let mut ids = Vec::new();
    for (i, name) in files.iter().enumerate() {
        let bytes = vec![i as u8; 1000 + i];
        let r = app
            .json(
                Method::POST,
                "/api/jobs",
                json!({"title": name, "preset": "quest", "settings": settings, "file_name": name, "source_file_size_bytes": bytes.len()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        let id = v["job"]["job_id"].as_str().unwrap().to_owned();
        let url = v["upload"]["url"].as_str().unwrap().to_owned();
        assert!(url.contains(&id), "each file has its own upload URL");
        assert_eq!(put_bytes(&app, &url, bytes).await.status, StatusCode::OK);
        let r = app
            .json(
                Method::PATCH,
                &format!("/api/jobs/{id}"),
                json!({"uploaded_at": Utc::now().to_rfc3339()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        ids.push(id);
    }
    let listed = app.get("/api/jobs?state=in_progress").await.json();
    let items = listed["items"].as_array().unwrap();
    for (id, name) in ids.iter().zip(files) {
        assert!(
            items
                .iter()
                .any(|j| j["job_id"] == id.as_str() && j["title"] == name),
            "{name} is not listed"
        );
        let job = app.backends.jobs.get(id).await.unwrap().unwrap();
        assert_eq!(job.settings.divergence, 4.0);
        assert_eq!(job.settings.edge_dilation, 3);
        assert_eq!(job.settings.max_output_width, Some(1920));
        assert_eq!(job.settings.encoder, "libx265");
    }
}

#[tokio::test]
async fn the_upload_page_offers_presets_and_every_setting() {
    let app = TestApp::new().await;
    let page = app.get("/upload").await.text();
    for name in [
        "quest",
        "vision_pro",
        "tv_half_sbs",
        "anaglyph",
        "youtube_vr180",
    ] {
        assert!(
            page.contains(&format!(r#"<option value="{name}">"#)),
            "{name}"
        );
    }
    let names: Vec<String> = app.get("/api/presets").await.json()["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 18, "{names:?}");
    for n in names.iter().filter(|n| *n != "model") {
        assert!(
            page.contains(&format!(r#"data-setting="{n}""#)),
            "no input for {n}"
        );
    }
    assert!(page.contains(" multiple"), "several files can be chosen");
}

// ---- Live progress (server-sent events) ----

/// An open event stream, read event by event.
struct Events {
    body: axum::body::BodyDataStream,
    buf: String,
}

impl Events {
    async fn open(app: &TestApp, uri: &str) -> Self {
        use tower::ServiceExt as _;
        let resp = app
            .app
            .clone()
            .oneshot(req(Method::GET, uri, &[], Body::empty()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            body: resp.into_body().into_data_stream(),
            buf: String::new(),
        }
    }

    /// The next named event as (name, data), skipping keep-alive comments; `None` at the end.
    async fn next(&mut self) -> Option<(String, String)> {
        use futures::StreamExt as _;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), Vec::new());
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push(d);
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d);
                    }
                }
                if name.is_empty() {
                    continue;
                }
                return Some((name, data.join("\n")));
            }
            // A guard against a hang, not a timing assertion.
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(60), self.body.next())
                .await
                .expect("no event within a minute")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }
}

fn live_config() -> WebConfig {
    WebConfig {
        live_poll: std::time::Duration::from_millis(20),
        ..WebConfig::default()
    }
}

async fn complete_segment(app: &TestApp, job_id: &str, i: u32) {
    app.backends
        .completions
        .put(&SegmentCompletion {
            job_id: job_id.to_owned(),
            segment_index: i,
            output_uri: keys::output(job_id, i),
            completed_at: Utc::now(),
            frame_count: Some(10),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn job_events_arrive_when_the_job_changes() {
    let app = TestApp::with_config(live_config()).await;
    let job = app.seed("Live", JobStatus::Uploaded).await;
    let id = job.job_id.clone();
    let mut events = Events::open(&app, &format!("/api/jobs/{id}/events")).await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "job");
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["status"], "uploaded");
    assert!(v.get("segments").is_none(), "no segments before chunking");

    // Chunked into 4 segments.
    let mut u = JobUpdate::status(JobStatus::ChunkingComplete);
    u.total_segments = Some(4);
    app.backends.jobs.update(&id, &u).await.unwrap();
    let v = next_job(&mut events).await;
    assert_eq!(v["status"], "chunking_complete");
    assert_eq!(
        v["segments"],
        json!(["waiting", "waiting", "waiting", "waiting"])
    );

    // Segment 2 is done; segment 0's output is stored but not yet recorded.
    complete_segment(&app, &id, 2).await;
    let v = wait_for(&mut events, |v| v["completed_segments"] == 1).await;
    assert_eq!(v["segments"][2], "done");
    app.backends
        .storage
        .put_stream(
            &keys::output(&id, 0),
            Box::pin(std::io::Cursor::new(vec![0u8; 10])),
        )
        .await
        .unwrap();
    let v = wait_for(&mut events, |v| v["segments"][0] == "in_progress").await;
    assert_eq!(
        v["segments"],
        json!(["in_progress", "waiting", "done", "waiting"])
    );

    // Completed: the last event, then the stream ends.
    app.complete_job(&id, vec![1, 2, 3]).await;
    let v = wait_for(&mut events, |v| v["status"] == "completed").await;
    assert_eq!(v["segments"], json!(["done", "done"]));
    assert!(
        events.next().await.is_none(),
        "the stream ends after the final state"
    );

    let r = app
        .get("/api/jobs/00000000-0000-0000-0000-00000000beef/events")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "job-not-found");
}

async fn next_job(events: &mut Events) -> serde_json::Value {
    let (name, data) = events.next().await.expect("an event");
    assert_eq!(name, "job");
    serde_json::from_str(&data).unwrap()
}

async fn wait_for(
    events: &mut Events,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    loop {
        let v = next_job(events).await;
        if f(&v) {
            return v;
        }
    }
}

#[tokio::test]
async fn the_pages_get_their_live_parts_pushed() {
    let app = TestApp::with_config(live_config()).await;
    let job = app.seed("Pushed <b>", JobStatus::Uploaded).await;
    let id = job.job_id.clone();
    let mut u = JobUpdate::status(JobStatus::ChunkingComplete);
    u.total_segments = Some(3);
    app.backends.jobs.update(&id, &u).await.unwrap();

    let page = app.get(&format!("/jobs/{id}")).await.text();
    assert!(page.contains(&format!(r#"data-events="/jobs/{id}/events""#)));
    assert_eq!(
        page.matches(r#"class="seg waiting""#).count(),
        3 + 1,
        "3 cells + legend"
    );

    let mut job_events = Events::open(&app, &format!("/jobs/{id}/events")).await;
    let (name, html) = job_events.next().await.unwrap();
    assert_eq!(name, "progress");
    assert!(html.starts_with(r#"<div id="job-progress">"#), "{html}");
    assert_eq!(
        html.matches(r#"class="seg done""#).count(),
        1,
        "legend only"
    );

    let mut dashboard = Events::open(&app, "/events").await;
    let (name, html) = dashboard.next().await.unwrap();
    assert_eq!(name, "dashboard");
    assert!(html.contains("Pushed &lt;b&gt;"), "escaped title: {html}");
    assert!(html.contains("0 / 3"), "{html}");

    complete_segment(&app, &id, 1).await;
    let (name, html) = job_events.next().await.unwrap();
    assert_eq!(name, "progress");
    assert_eq!(html.matches(r#"class="seg done""#).count(), 2, "{html}");
    assert!(html.contains(r#"title="segment 2: done""#), "{html}");
    let (_, html) = dashboard.next().await.unwrap();
    assert!(html.contains("1 / 3"), "{html}");

    app.complete_job(&id, vec![9]).await;
    let (name, data) = job_events.next().await.unwrap();
    assert_eq!((name.as_str(), data.as_str()), ("final", "completed"));
    assert!(job_events.next().await.is_none());
}

// ---- Ranges read from their start ----

/// Storage that records how objects are read.
#[derive(Debug)]
struct Recording {
    inner: std::sync::Arc<dyn parallax_core::storage::ObjectStorage>,
    calls: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl parallax_core::storage::ObjectStorage for Recording {
    async fn put_stream(
        &self,
        key: &str,
        body: parallax_core::storage::ByteStream,
    ) -> parallax_core::Result<u64> {
        self.inner.put_stream(key, body).await
    }
    async fn get_stream(
        &self,
        key: &str,
    ) -> parallax_core::Result<parallax_core::storage::ByteStream> {
        self.calls.lock().unwrap().push(format!("get {key}"));
        self.inner.get_stream(key).await
    }
    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> parallax_core::Result<parallax_core::storage::ByteStream> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("range {key} {start}+{len}"));
        self.inner.get_range(key, start, len).await
    }
    async fn head(&self, key: &str) -> parallax_core::Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> parallax_core::Result<()> {
        self.inner.delete_prefix(prefix).await
    }
    async fn presign_upload(
        &self,
        key: &str,
        expires_in: std::time::Duration,
    ) -> parallax_core::Result<parallax_core::storage::PresignedRequest> {
        self.inner.presign_upload(key, expires_in).await
    }
    async fn presign_download(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        disposition: Option<&str>,
    ) -> parallax_core::Result<String> {
        self.inner
            .presign_download(key, expires_in, disposition)
            .await
    }
}

#[tokio::test]
async fn ranges_are_read_from_their_start_not_skipped_to() {
    let base = TestApp::new().await;
    let recording = std::sync::Arc::new(Recording {
        inner: base.backends.storage.clone(),
        calls: std::sync::Mutex::new(Vec::new()),
    });
    let mut state = base.state.clone();
    state.storage = recording.clone();
    let app = TestApp {
        app: web_ui::app(state.clone()),
        state,
        ..base
    };
    let (id, _) = app.create("Seek").await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let key = app.complete_job(&id, data.clone()).await;
    let location = app
        .get(&format!("/api/jobs/{id}/download"))
        .await
        .header("location")
        .unwrap()
        .to_owned();
    recording.calls.lock().unwrap().clear();
    for (range, start, end) in [
        ("bytes=150000-150099", 150_000usize, 150_099usize),
        ("bytes=199990-", 199_990, 199_999),
        ("bytes=-5", 199_995, 199_999),
    ] {
        let r = app
            .send(req(
                Method::GET,
                &location,
                &[("range", range)],
                Body::empty(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.body.as_ref(), &data[start..=end], "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/200000").as_str())
        );
    }
    assert_eq!(
        *recording.calls.lock().unwrap(),
        vec![
            format!("range {key} 150000+100"),
            format!("range {key} 199990+10"),
            format!("range {key} 199995+5"),
        ],
        "each range is one ranged read, never a whole stream read and skipped"
    );
    // A whole download is one plain stream.
    let r = app.get(&location).await;
    assert_eq!(r.body.len(), data.len());
    assert_eq!(
        recording.calls.lock().unwrap().last().unwrap(),
        &format!("get {key}")
    );
}

// ---- Cookies ----

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
