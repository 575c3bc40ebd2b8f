//! In Chromium: a converting job's page plays its finished segments.

use crate::canvas::{near, wait_canvas, wait_for, MAGENTA, PLAY, SHOTS};
use crate::chromium;
use crate::common::TestApp;
use crate::fixtures::{converting_job, finish_segment, red_blue_sbs};
use crate::pages::{click, js, Session};

/// The player's state: readiness, position, duration and segments appended.
const PLAYER_STATE: &str = r#"
const v = document.getElementById('player');
return { ready: v.readyState, time: v.currentTime, duration: v.duration,
         segments: Number(document.getElementById('viewer').dataset.appended || 0),
         error: v.error ? v.error.message || String(v.error.code) : null,
         status: document.getElementById('viewer-status').textContent };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converting_job_page_plays_its_finished_segments() {
    let Some(s) = Session::start(TestApp::new().await).await else {
        return;
    };
    let (app, c) = (&s.app, &s.c);
    let segment = red_blue_sbs(s.work.path(), "segment.mkv");
    let id = converting_job(app, "Still converting", 2).await;
    finish_segment(app, &id, 0, &segment, true).await;
    // Tall enough for the whole job page in the screenshots.
    c.set_window_size(1280, 1800).await.unwrap();
    s.goto(&format!("/jobs/{id}")).await;

    // Segment 0 is in the player and shows a picture; segment 1 is not converted yet.
    let state = wait_for(30, "the first segment in the player", || async {
        let s = js(c, PLAYER_STATE).await;
        if s["ready"].as_u64() >= Some(2) && s["segments"] == 1 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert!(
        state["status"].as_str().unwrap().contains("1 of 2"),
        "{state}"
    );
    js(c, PLAY).await;
    wait_for(30, "the first segment playing", || async {
        let s = js(c, PLAYER_STATE).await;
        if s["time"].as_f64().is_some_and(|t| t > 0.0) {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    // The 3D views work on it too (the segments come from the site's own origin).
    click(c, "button#view-anaglyph").await;
    wait_canvas(c, "the anaglyph picture of the segment", 160, |px| {
        near(&px["centre"], MAGENTA)
    })
    .await;
    chromium::screenshot(c, SHOTS, "4-converting-job-page.png").await;

    // Segment 1 finishes while the page is open: it is appended behind segment 0.
    finish_segment(app, &id, 1, &segment, true).await;
    let state = wait_for(30, "the second segment appended", || async {
        let s = js(c, PLAYER_STATE).await;
        if s["segments"] == 2 && s["duration"].as_f64().is_some_and(|d| d > 4.5) {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert!(state["error"].is_null(), "{state}");
    chromium::screenshot(c, SHOTS, "5-converting-job-page-all-segments.png").await;

    s.close().await;
}
