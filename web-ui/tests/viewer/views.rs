//! In Chromium: the viewer's WebGL views combine the two eyes as the chosen mode says and
//! follow the layout of the job's mode.

use parallax_core::model::StereoMode;
use serde_json::Value;

use crate::canvas::{near, wait_canvas, wait_for, BLUE, MAGENTA, PLAY, RED, SHOTS};
use crate::chromium;
use crate::common::TestApp;
use crate::fixtures::{completed_job, red_blue, red_blue_sbs};
use crate::pages::{click, js, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_combines_the_two_views_as_the_chosen_mode_says() {
    let Some(s) = Session::start(TestApp::new().await).await else {
        return;
    };
    let c = &s.c;
    let clip = red_blue_sbs(s.work.path(), "red-blue.mp4");
    let id = completed_job(&s.app, "Red and blue", StereoMode::FullSbs, &clip).await;
    // Tall enough for the whole job page in the screenshots.
    c.set_window_size(1280, 1800).await.unwrap();
    s.open_viewer(&id).await;
    js(c, PLAY).await;

    // Anaglyph: red from the left view, green and blue from the right; one eye's size.
    click(c, "button#view-anaglyph").await;
    let px = wait_canvas(c, "the anaglyph picture", 160, |px| {
        near(&px["centre"], MAGENTA) && near(&px["left"], MAGENTA)
    })
    .await;
    assert_eq!(px["h"], 90, "{px}");
    chromium::screenshot(c, SHOTS, "1-job-page-anaglyph.png").await;

    // Cross-eyed: the right view on the left, the left view on the right.
    click(c, "button#view-cross").await;
    wait_canvas(c, "the cross-eyed picture", 320, |px| {
        near(&px["left"], BLUE) && near(&px["right"], RED)
    })
    .await;
    chromium::screenshot(c, SHOTS, "2-job-page-cross-eyed.png").await;

    // Wiggle: the left view and the right view in turn, the whole picture each time.
    click(c, "button#view-wiggle").await;
    for (i, (name, colour)) in [("left", RED), ("right", BLUE), ("left", RED)]
        .into_iter()
        .enumerate()
    {
        wait_canvas(c, &format!("wiggle showing the {name} view"), 160, |px| {
            near(&px["left"], colour) && near(&px["right"], colour)
        })
        .await;
        if i == 0 {
            chromium::screenshot(c, SHOTS, "3-job-page-wiggle.png").await;
        }
    }

    // One eye in 2D, then back to the video as stored (no canvas).
    click(c, "button#view-left").await;
    wait_canvas(c, "the left view alone", 160, |px| near(&px["centre"], RED)).await;
    click(c, "button#view-stored").await;
    wait_for(10, "the canvas hidden again", || async {
        let hidden = js(c, "return document.getElementById('viewer-canvas').hidden").await;
        if hidden == Value::Bool(true) {
            Ok(())
        } else {
            Err(hidden.to_string())
        }
    })
    .await;

    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_follows_the_layout_of_the_jobs_mode() {
    let Some(s) = Session::start(TestApp::new().await).await else {
        return;
    };
    let (app, work, c) = (&s.app, &s.work, &s.c);
    // Half top-bottom: left view (red) on top, right view (blue) below, each eye shown at the
    // whole frame's size. Half cross-eyed: the right view (here blue) is stored on the left.
    let top_bottom = completed_job(
        app,
        "Top and bottom",
        StereoMode::HalfTb,
        &red_blue(work.path(), "tb.mp4", "vstack"),
    )
    .await;
    let cross = completed_job(
        app,
        "Cross-eyed",
        StereoMode::HalfCross,
        &red_blue(work.path(), "rl.mp4", "hstack"),
    )
    .await;
    const BLACK: [i64; 3] = [0, 0, 0];
    // (job, eye width, anaglyph colour, cross-eyed left half, right half)
    let cases = [
        (top_bottom, 160, MAGENTA, BLUE, RED),
        (cross, 320, BLACK, RED, BLUE),
    ];

    for (id, eye_w, anaglyph, cross_left, cross_right) in cases {
        s.open_viewer(&id).await;
        js(c, PLAY).await;
        click(c, "button#view-anaglyph").await;
        wait_canvas(c, &format!("the anaglyph picture of {id}"), eye_w, |px| {
            near(&px["centre"], anaglyph)
        })
        .await;
        click(c, "button#view-cross").await;
        wait_canvas(
            c,
            &format!("the cross-eyed picture of {id}"),
            2 * eye_w,
            |px| near(&px["left"], cross_left) && near(&px["right"], cross_right),
        )
        .await;
    }
    s.close().await;
}
