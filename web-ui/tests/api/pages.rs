//! The HTML pages: the dashboard, a job's page and the upload page.

use axum::http::StatusCode;
use parallax_core::keys;
use parallax_core::model::JobStatus;
use web_ui::WebConfig;

use crate::common::TestApp;

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
        app.put_object(&key, vec![1u8; 10]).await;
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
