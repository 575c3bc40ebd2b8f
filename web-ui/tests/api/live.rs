//! Live progress: server-sent events for the API and the pages' live parts.

use axum::http::StatusCode;
use parallax_core::keys;
use parallax_core::model::{JobStatus, JobUpdate};
use serde_json::json;
use web_ui::WebConfig;

use crate::common::events::Events;
use crate::common::TestApp;

fn live_config() -> WebConfig {
    WebConfig {
        live_poll: std::time::Duration::from_millis(20),
        ..WebConfig::default()
    }
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
    app.record_segment(&id, 2, 10).await;
    let v = wait_for(&mut events, |v| v["completed_segments"] == 1).await;
    assert_eq!(v["segments"][2], "done");
    app.put_object(&keys::output(&id, 0), vec![0u8; 10]).await;
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

    app.record_segment(&id, 1, 10).await;
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
