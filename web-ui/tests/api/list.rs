//! Listing jobs: paging completed and failed jobs in the API and on the dashboard.

use axum::http::StatusCode;
use parallax_core::model::JobStatus;
use web_ui::WebConfig;

use crate::common::TestApp;

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
