//! Creating jobs: the job and its presigned upload, presets with overrides, several files
//! at once, and the input refused at creation (bad values, stereo knobs, bodies over the limit).

use axum::body::Body;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use serde_json::json;
use web_ui::WebConfig;

use crate::common::{req, TestApp};

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
        assert_eq!(app.put_bytes(&url, bytes).await.status, StatusCode::OK);
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
