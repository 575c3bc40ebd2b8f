//! Previews and models per job, through the API with `oneshot`: a preview job is created and
//! shown as one; "Convert all" starts a whole conversion of the preview's upload through the
//! storage event, and is refused readably where it cannot; a job may name a catalogue model
//! (an unknown name is refused before any upload), `GET /api/models` says which models a
//! running worker holds, and a job waiting for a worker with its model says so.

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use parallax_core::catalogue::Catalogue;
use parallax_core::keys;
use parallax_core::model::{JobUpdate, Waiting};
use serde_json::json;
use web_ui::WebConfig;

const CATALOGUE: &str = r#"
[[model]]
name = "default"
file = "default-depth.onnx"
url = "bundled"
licence = "Apache-2.0"
kind = "frame"
input_size = 518

[[model]]
name = "video-depth-anything-small"
file = "vda.onnx"
url = ""
licence = "Apache-2.0"
kind = "temporal"
input_size = 518
window = 32
"#;

async fn with_catalogue() -> TestApp {
    TestApp::with_config(WebConfig {
        catalogue: Some(Catalogue::parse(CATALOGUE).unwrap()),
        ..WebConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_preview_is_created_and_convert_all_converts_its_upload_whole() {
    let app = TestApp::new().await;
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "Rome", "preview": true, "preset": "quest"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let preview_id = r.json()["job"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["job"]["preview"], true);
    let stored = app.backends.jobs.get(&preview_id).await.unwrap().unwrap();
    assert!(stored.preview);
    // The browser uploads the video; the upload's event starts the preview.
    app.put_object(&keys::source(&preview_id), b"video").await;
    assert_eq!(app.started().await, vec![preview_id.clone()]);
    let r = app
        .json(
            Method::PATCH,
            &format!("/api/jobs/{preview_id}"),
            json!({"uploaded_at": chrono::Utc::now().timestamp()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = app.get(&format!("/jobs/{preview_id}")).await.text();
    assert!(page.contains("id=\"preview-note\""), "{page}");
    assert!(page.contains("id=\"convert-all\""), "{page}");

    let r = app
        .json(
            Method::POST,
            &format!("/api/jobs/{preview_id}/convert"),
            json!({"settings": {"divergence": 3.0}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    let id = v["job"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(v["job"]["status"], "uploaded");
    assert_eq!(v["job"]["upload_of"], preview_id.as_str());
    assert_eq!(v["job"]["mode"], "full_sbs", "the preview's mode");
    assert_eq!(
        v["job"]["settings"]["encoder"], "libx265",
        "the preview's settings"
    );
    assert_eq!(v["job"]["settings"]["divergence"], 3.0, "with the change");
    assert!(v["job"].get("preview").is_none(), "the whole video");
    let job = app.backends.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.upload_of.as_deref(), Some(preview_id.as_str()));
    assert_eq!(job.upload_job(), preview_id);
    // Started through the storage event, with no upload of its own.
    assert_eq!(app.started().await, vec![id.clone()]);
    assert!(app
        .backends
        .storage
        .head(&keys::source(&id))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn convert_all_is_refused_readably_where_it_cannot_start() {
    let app = TestApp::new().await;
    let whole = app
        .seed("whole", parallax_core::model::JobStatus::Uploaded)
        .await;
    let r = app
        .json(
            Method::POST,
            &format!("/api/jobs/{}/convert", whole.job_id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "not-a-preview");

    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "p", "preview": true}),
        )
        .await;
    let id = r.json()["job"]["job_id"].as_str().unwrap().to_owned();
    let r = app
        .json(Method::POST, &format!("/api/jobs/{id}/convert"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.error_code(), "no-upload");
    app.put_object(&keys::source(&id), b"video").await;
    let r = app
        .json(
            Method::POST,
            &format!("/api/jobs/{id}/convert"),
            json!({"preset": "no-such-device"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "unknown-preset");
    let r = app
        .json(
            Method::POST,
            &format!("/api/jobs/{id}/convert"),
            json!({"settings": {"no_such_knob": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "unknown-setting");
}

#[tokio::test]
async fn a_job_may_name_a_catalogue_model_and_unknown_ones_are_refused_before_the_upload() {
    let app = with_catalogue().await;
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "t", "settings": {"model": "video-depth-anything-small"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        r.json()["job"]["settings"]["model"],
        "video-depth-anything-small"
    );
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "t", "settings": {"model": "midas-huge"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "unknown-model");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("\"midas-huge\"") && msg.contains("video-depth-anything-small"),
        "{msg}"
    );
    let r = app
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "t", "settings": {"model": "Not A Name!"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // Without a catalogue no model can be named.
    let bare = TestApp::new().await;
    let r = bare
        .json(
            Method::POST,
            "/api/jobs",
            json!({"title": "t", "settings": {"model": "default"}}),
        )
        .await;
    assert_eq!(r.error_code(), "unknown-model");
    assert!(r.text().contains("no model catalogue"), "{}", r.text());

    // The upload page offers the catalogue's models.
    let page = app.get("/upload").await.text();
    assert!(page.contains(r#"data-setting="model""#), "model chooser");
    assert!(page.contains(r#"<option value="video-depth-anything-small">"#));
}

#[tokio::test]
async fn the_models_list_says_which_a_running_worker_holds() {
    let app = with_catalogue().await;
    let list = |v: serde_json::Value| -> Vec<(String, bool)> {
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_owned(), m["held"] == true))
            .collect()
    };
    let r = app.get("/api/models").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        list(r.json()),
        vec![
            ("default".to_owned(), false),
            ("video-depth-anything-small".to_owned(), false)
        ]
    );
    assert_eq!(r.json()["models"][1]["kind"], "temporal/32");
    // A worker renewed its note just now; another's note is stale.
    let now = chrono::Utc::now().timestamp();
    app.put_object(&keys::model_holder("default"), now.to_string())
        .await;
    app.put_object(
        &keys::model_holder("video-depth-anything-small"),
        (now - 3600).to_string(),
    )
    .await;
    assert_eq!(
        list(app.get("/api/models").await.json()),
        vec![
            ("default".to_owned(), true),
            ("video-depth-anything-small".to_owned(), false)
        ]
    );
}

#[tokio::test]
async fn a_job_waiting_for_a_worker_with_its_model_says_so() {
    let app = with_catalogue().await;
    let job = app
        .seed("waits", parallax_core::model::JobStatus::ChunkingComplete)
        .await;
    app.backends
        .jobs
        .update(
            &job.job_id,
            &JobUpdate {
                waiting: Some(Some(Waiting {
                    model: "video-depth-anything-small".into(),
                    since: chrono::Utc::now(),
                })),
                ..JobUpdate::default()
            },
        )
        .await
        .unwrap();
    let v = app.get(&format!("/api/jobs/{}", job.job_id)).await.json();
    let w = v["waiting"].as_str().unwrap();
    assert!(
        w.starts_with("waiting for a worker with model video-depth-anything-small"),
        "{w}"
    );
    let page = app.get(&format!("/jobs/{}", job.job_id)).await.text();
    assert!(
        page.contains("waiting for a worker with model video-depth-anything-small"),
        "{page}"
    );
}
