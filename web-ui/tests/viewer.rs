//! The job page's player and 3D viewer: the routes that list and serve a converting job's
//! finished segments, and, in a real headless Chromium, the viewer's WebGL views (pixels read
//! back from its canvas) and a converting job's page playing its first finished segment.
//! Screenshots are kept under target/tmp/web-ui-viewer.

#[path = "common/chromium.rs"]
mod chromium;
mod common;
#[path = "common/pages.rs"]
mod pages;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::{req, TestApp};
use fantoccini::{Client, Locator};
use pages::Session;
use parallax_core::keys;
use parallax_core::model::{
    ConversionSettings, Job, JobStatus, JobUpdate, SegmentCompletion, StereoMode,
};
use parallax_testkit::wait_until;
use serde_json::Value;
use web_ui::{AccessControl, WebConfig};

const SHOTS: &str = "web-ui-viewer";
const RED: [i64; 3] = [255, 0, 0];
const BLUE: [i64; 3] = [0, 0, 255];
const MAGENTA: [i64; 3] = [255, 0, 255];

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed (make setup installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 3 s side-by-side clip (H.264): the left view pure red, the right view pure blue, each
/// 160x90. The name's extension picks the container (`.mp4` as a result, `.mkv` as a
/// converted segment).
fn red_blue_sbs(dir: &Path, name: &str) -> PathBuf {
    red_blue(dir, name, "hstack")
}

/// Red and blue 160x90 pictures put together by `stack` (`hstack` or `vstack`), 3 s of H.264.
fn red_blue(dir: &Path, name: &str, stack: &str) -> PathBuf {
    let out = dir.join(name);
    let filter = format!("[0:v][1:v]{stack}=inputs=2,format=yuv420p");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x90:r=15:d=3",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=160x90:r=15:d=3",
        "-filter_complex",
        &filter,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "15",
        out.to_str().unwrap(),
    ]);
    out
}

/// The playable copy of a converted segment, made with the video-worker's remux.
fn playable_copy(segment: &Path) -> PathBuf {
    let out = segment.with_extension("play.mp4");
    ffmpeg(&[
        "-i",
        segment.to_str().unwrap(),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        "-f",
        "mp4",
        out.to_str().unwrap(),
    ]);
    out
}

async fn put_file(app: &TestApp, key: &str, path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    app.backends
        .storage
        .put_stream(key, Box::pin(std::io::Cursor::new(bytes)))
        .await
        .unwrap();
}

/// A full side-by-side job that is converting: split into `total` segments, none done.
async fn converting_job(app: &TestApp, title: &str, total: u32) -> String {
    let job = Job::new(title, StereoMode::FullSbs, ConversionSettings::default());
    app.backends.jobs.put(&job).await.unwrap();
    let mut u = JobUpdate::status(JobStatus::ChunkingComplete);
    u.uploaded_at = Some(Utc::now());
    u.source_file_size_bytes = Some(1_000_000);
    u.total_segments = Some(total);
    app.backends.jobs.update(&job.job_id, &u).await.unwrap();
    job.job_id
}

/// What the workers leave when segment `index` is done: the converted segment, its playable
/// copy (unless `with_copy` is false) and its completion.
async fn finish_segment(app: &TestApp, job_id: &str, index: u32, segment: &Path, with_copy: bool) {
    put_file(app, &keys::output(job_id, index), segment).await;
    if with_copy {
        put_file(app, &keys::playable(job_id, index), &playable_copy(segment)).await;
    }
    app.backends
        .completions
        .put(&SegmentCompletion {
            job_id: job_id.to_owned(),
            segment_index: index,
            output_uri: keys::output(job_id, index),
            completed_at: Utc::now(),
            frame_count: Some(45),
        })
        .await
        .unwrap();
}

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

// ---- In Chromium ----

/// Waits up to `secs` for `f` to give `Ok` (its `Err` says what was seen instead).
async fn wait_for<T, F, Fut>(secs: u64, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    wait_until(Duration::from_secs(secs), what, f).await
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script runs")
}

/// The viewer canvas's size and pixels at a quarter, half and three quarters of its width
/// (half height), copied through a 2D canvas; `null` while the canvas is hidden or empty.
const CANVAS_PIXELS: &str = r#"
const c = document.getElementById('viewer-canvas');
if (!c || c.hidden || c.width < 2) return null;
const t = document.createElement('canvas');
t.width = c.width; t.height = c.height;
const g = t.getContext('2d');
g.drawImage(c, 0, 0);
const at = (fx) => Array.from(g.getImageData(Math.floor(fx * c.width), Math.floor(c.height / 2), 1, 1).data.slice(0, 3));
return { w: c.width, h: c.height, left: at(0.25), centre: at(0.5), right: at(0.75) };
"#;

const PLAY: &str = r#"
const v = document.getElementById('player');
v.muted = true; v.loop = true;
v.play().catch(() => {});
return true;
"#;

fn near(px: &Value, rgb: [i64; 3]) -> bool {
    px.as_array().is_some_and(|a| {
        a.len() == 3
            && a.iter()
                .zip(rgb)
                .all(|(p, want)| (p.as_i64().unwrap_or(-999) - want).abs() <= 40)
    })
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Waits until the canvas is `w` wide and `ok` holds for its pixels.
async fn wait_canvas(c: &Client, what: &str, w: u64, ok: impl Fn(&Value) -> bool) -> Value {
    wait_for(30, what, || async {
        let px = js(c, CANVAS_PIXELS).await;
        if px["w"].as_u64() == Some(w) && ok(&px) {
            Ok(px)
        } else {
            Err(px.to_string())
        }
    })
    .await
}

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

/// A completed job called `title` in `mode` whose result is `clip`.
async fn completed_job(app: &TestApp, title: &str, mode: StereoMode, clip: &Path) -> String {
    let job = Job::new(title, mode, ConversionSettings::default());
    app.backends.jobs.put(&job).await.unwrap();
    let key = keys::final_output(&job.job_id, "result.mp4");
    put_file(app, &key, clip).await;
    let mut u = JobUpdate::status(JobStatus::Completed);
    u.uploaded_at = Some(Utc::now());
    u.completed_at = Some(Utc::now());
    u.total_segments = Some(1);
    u.output_key = Some(key);
    app.backends.jobs.update(&job.job_id, &u).await.unwrap();
    job.job_id
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

/// Stands in for a headset: a WebXR device whose two views (eyes 64 mm apart, looking ahead)
/// render into the viewer's own canvas, left eye on its left half, right eye on its right
/// half; then loads the viewer's script again so that it finds the device.
const FAKE_HEADSET: &str = r#"
const canvas = document.getElementById('viewer-canvas');
canvas.width = 320; canvas.height = 90;
window.XRWebGLLayer = class {
  constructor() { this.framebuffer = null; }
  getViewport(v) { return { x: v.eye === 'left' ? 0 : 160, y: 0, width: 160, height: 90 }; }
};
// A 90 degree vertical field of view, 160:90 viewports.
const f = 1, aspect = 160 / 90, near = 0.1, far = 100;
const proj = new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
  0, 0, 2 * far * near / (near - far), 0]);
const view = (eye, x) => ({
  eye, projectionMatrix: proj,
  transform: { matrix: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, 0, 0, 1]),
               position: { x, y: 0, z: 0, w: 1 } },
});
const session = {
  renderState: {}, ended: false, listeners: {}, frames: 0,
  updateRenderState(s) { Object.assign(this.renderState, s); },
  requestReferenceSpace() { return Promise.resolve({}); },
  requestAnimationFrame(cb) {
    if (this.ended) return 0;
    return requestAnimationFrame((t) => { this.frames += 1; cb(t, {
      getViewerPose: () => ({ views: [view('left', -0.032), view('right', 0.032)] }) }); });
  },
  end() { this.ended = true; (this.listeners.end || []).forEach((h) => h()); return Promise.resolve(); },
  addEventListener(n, h) { (this.listeners[n] = this.listeners[n] || []).push(h); },
};
Object.defineProperty(navigator, 'xr', { configurable: true, value: {
  isSessionSupported: (mode) => Promise.resolve(mode === 'immersive-vr'),
  requestSession: () => Promise.resolve(session),
} });
WebGLRenderingContext.prototype.makeXRCompatible = () => Promise.resolve();
window.fakeXrSession = session;
document.querySelector('.viewer-views').replaceChildren();
const s = document.createElement('script');
s.src = '/static/viewer.js';
document.body.appendChild(s);
return true;
"#;

/// The canvas's pixels at the centre of each eye's half and at a corner of the left one,
/// while the fake headset's session has drawn.
const HEADSET_PIXELS: &str = r#"
const c = document.getElementById('viewer-canvas');
const s = window.fakeXrSession;
if (!s || s.frames < 2) return null;
const t = document.createElement('canvas');
t.width = c.width; t.height = c.height;
const g = t.getContext('2d');
g.drawImage(c, 0, 0);
const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
return { w: c.width, left: at(80, 45), right: at(240, 45), corner: at(2, 2), frames: s.frames };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headset_shows_each_eye_its_own_view() {
    let Some(s) = Session::start(TestApp::new().await).await else {
        return;
    };
    let c = &s.c;
    let clip = red_blue_sbs(s.work.path(), "red-blue.mp4");
    let id = completed_job(&s.app, "Red and blue", StereoMode::FullSbs, &clip).await;
    s.open_viewer(&id).await;
    assert!(
        c.find(Locator::Css("button#view-vr")).await.is_err(),
        "no VR offered without a headset"
    );
    js(c, FAKE_HEADSET).await;
    wait_for(20, "the VR button", || async {
        match c.find(Locator::Css("button#view-vr")).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    js(c, PLAY).await;
    click(c, "button#view-vr").await;
    // Straight ahead, each eye sees the middle of the screen in its own view; around the
    // screen there is the dark room.
    let room = [18, 20, 26];
    wait_for(30, "each eye's view on the screen", || async {
        let px = js(c, HEADSET_PIXELS).await;
        if near(&px["left"], RED) && near(&px["right"], BLUE) && near(&px["corner"], room) {
            Ok(())
        } else {
            Err(px.to_string())
        }
    })
    .await;
    click(c, "button#view-vr").await;
    wait_for(10, "the session ended", || async {
        let ended = js(c, "return window.fakeXrSession.ended").await;
        let label = c
            .find(Locator::Css("button#view-vr"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if ended == Value::Bool(true) && label == "View in VR headset" {
            Ok(())
        } else {
            Err(format!("ended {ended}, button {label:?}"))
        }
    })
    .await;
    s.close().await;
}
