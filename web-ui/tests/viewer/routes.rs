//! The routes that list and serve a converting job's finished segments, and the job page's
//! viewer markup (driven with `oneshot`).

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::Value;
use web_ui::{AccessControl, WebConfig};

use crate::common::{req, TestApp};
use crate::fixtures::{converting_job, finish_segment, playable_copy, red_blue_sbs};

#[tokio::test]
async fn segment_routes_list_the_finished_run_and_serve_it_with_auth() {
    let app = TestApp::with_config(WebConfig {
        access: AccessControl::Token("sesame".into()),
        ..WebConfig::default()
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let segment = red_blue_sbs(work.path(), "segment.mkv");
    let id = converting_job(&app, "Four parts", 4).await;
    let bearer = [("authorization", "Bearer sesame")];
    let get = |uri: String| {
        let app = &app;
        async move {
            app.send(req(Method::GET, &uri, &bearer, Body::empty()))
                .await
        }
    };

    // Nothing finished yet.
    let r = get(format!("/api/jobs/{id}/segments")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["segments"], Value::Array(vec![]), "{v}");
    assert_eq!(v["total_segments"], 4);
    assert_eq!(v["finished"], false);

    // 0 and 1 done (1 without a playable copy), 2 not yet, 3 done: the run stops at 2.
    finish_segment(&app, &id, 0, &segment, true).await;
    finish_segment(&app, &id, 1, &segment, false).await;
    finish_segment(&app, &id, 3, &segment, true).await;
    let v = get(format!("/api/jobs/{id}/segments")).await.json();
    let listed: Vec<(u64, bool)> = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["index"].as_u64().unwrap(),
                s["playable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(0, true), (1, false)], "{v}");
    assert_eq!(
        v["segments"][0]["url"],
        format!("/api/jobs/{id}/segments/0")
    );
    let copy_len = std::fs::metadata(playable_copy(&segment)).unwrap().len();
    assert_eq!(v["segments"][0]["size"], copy_len);
    assert!(v["segments"][1]["url"].is_null(), "{v}");
    // From a later index on.
    let v = get(format!("/api/jobs/{id}/segments?from=3")).await.json();
    assert_eq!(v["segments"][0]["index"], 3, "{v}");
    assert_eq!(v["segments"].as_array().unwrap().len(), 1, "{v}");
    let v = get(format!("/api/jobs/{id}/segments?from=2")).await.json();
    assert_eq!(v["segments"], Value::Array(vec![]), "{v}");

    // The copy itself: the stored bytes, as MP4.
    let r = get(format!("/api/jobs/{id}/segments/0")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.body.len() as u64, copy_len);
    assert_eq!(&r.body[4..8], b"ftyp", "an MP4 file");

    // Missing copies, bad numbers and unknown jobs answer in the one JSON error shape.
    let r = get(format!("/api/jobs/{id}/segments/1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "segment-not-ready");
    let r = get(format!("/api/jobs/{id}/segments/x")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "bad-segment-index");
    let r = get(format!("/api/jobs/{id}/segments?from=-1")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get("/api/jobs/00000000-0000-0000-0000-000000000000/segments".into()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Described with the rest of the API.
    let doc = app
        .send(req(
            Method::GET,
            "/api/openapi.json",
            &bearer,
            Body::empty(),
        ))
        .await
        .json();
    for path in ["/api/jobs/{id}/segments", "/api/jobs/{id}/segments/{index}"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} not described"
        );
    }

    // Guarded like the rest of the API.
    for uri in [
        format!("/api/jobs/{id}/segments"),
        format!("/api/jobs/{id}/segments/0"),
    ] {
        let r = app.get(&uri).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        let r = app
            .send(req(
                Method::GET,
                &uri,
                &[("authorization", "Bearer wrong")],
                Body::empty(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
}

#[tokio::test]
async fn job_page_has_the_viewer_outside_its_live_part() {
    let app = TestApp::new().await;
    let id = converting_job(&app, "Half", 2).await;
    let html = app.get(&format!("/jobs/{id}")).await.text();
    let viewer_at = html
        .find("<section id=\"viewer\"")
        .expect("a viewer section");
    assert!(
        html[..viewer_at].contains("data-live=\"1\""),
        "the viewer follows the live part, which the page refreshes"
    );
    for attr in [
        "data-layout=\"sbs\"",
        "data-squeeze=\"full\"",
        "data-order=\"lr\"",
        "data-source=\"segments\"",
        &format!("data-segments=\"/api/jobs/{id}/segments\""),
        "<script src=\"/static/viewer.js\" defer></script>",
    ] {
        assert!(html.contains(attr), "{attr} missing");
    }
    // The fragment the page refreshes from has no player in it.
    let frag = app.get(&format!("/jobs/{id}?fragment=1")).await.text();
    assert!(!frag.contains("<video") && !frag.contains("viewer"));
    // The script and its style sheet are the site's own.
    let r = app.get("/static/viewer.js").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(r.text().contains("immersive-vr"));
    let r = app.get("/static/viewer.css").await;
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
}
