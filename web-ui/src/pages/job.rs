//! The job page: status, progress and the segment bar (kept current by server-sent events),
//! settings, previews, actions, and the player with its 3D views.

use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use parallax_core::keys;
use parallax_core::model::{JobStatus, StereoMode};
use serde::Deserialize;

use super::{error_page, eta_cell, mode_label, page, progress_cell, size, status_badge, time};
use crate::api::jobs::download_url;
use crate::api::request::load_job;
use crate::error::AppError;
use crate::eta::human_duration;
use crate::security::CsrfToken;
use crate::views::{self, JobView, SegmentState};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct JobQuery {
    fragment: Option<String>,
}

/// `GET /jobs/{id}`: status, progress, settings, previews, player, download, logs link.
pub async fn job(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Query(q): Query<JobQuery>,
) -> Response {
    match job_body(&state, &id).await {
        Ok((body, live)) if q.fragment.is_some() => {
            let mut r = Html(body.into_string()).into_response();
            if !live {
                r.headers_mut()
                    .insert("x-job-final", HeaderValue::from_static("1"));
            }
            r
        }
        Ok((body, live)) => {
            let viewer = match viewer_section(&state, &id).await {
                Ok(v) => v,
                Err(e) => return error_page(&state, &csrf, e),
            };
            let wrapped = html! {
                div id="job" data-job-id=(id) data-refresh={ "/jobs/" (id) "?fragment=1" }
                    data-events={ "/jobs/" (id) "/events" } data-live=(u8::from(live)) {
                    (body)
                }
                (viewer)
            };
            page(&state, "Job", &csrf, wrapped)
        }
        Err(e) => error_page(&state, &csrf, e),
    }
}

/// The per-segment bar: one cell per segment, done / in progress / waiting, with a legend.
fn segment_bar(states: &[SegmentState]) -> Markup {
    let count = |want: SegmentState| states.iter().filter(|&&s| s == want).count();
    let (done, busy, waiting) = (
        count(SegmentState::Done),
        count(SegmentState::InProgress),
        count(SegmentState::Waiting),
    );
    let summary = format!(
        "{done} of {total} segments done, {busy} in progress, {waiting} waiting",
        total = states.len()
    );
    html! {
        div class="segbar" id="segbar" role="img" aria-label=(summary) {
            @for (i, s) in states.iter().enumerate() {
                @let (class, word) = match s {
                    SegmentState::Done => ("done", "done"),
                    SegmentState::InProgress => ("in-progress", "in progress"),
                    SegmentState::Waiting => ("waiting", "waiting"),
                };
                span class={ "seg " (class) } title={ "segment " (i + 1) ": " (word) } {}
            }
        }
        p class="seg-legend" {
            span class="seg done" {} " done " b class="n-done" { (done) } " "
            span class="seg in-progress" {} " in progress " b class="n-in-progress" { (busy) } " "
            span class="seg waiting" {} " waiting " b class="n-waiting" { (waiting) }
        }
    }
}

/// The live part of the job page: status, progress, the segment bar and the ETA (what
/// `/jobs/{id}/events` pushes).
fn progress_section(v: &JobView) -> Markup {
    html! {
        div id="job-progress" {
            p { (status_badge(v.status)) }
            @if !v.status.is_terminal() {
                p { (progress_cell(v)) " · " (eta_cell(v)) }
                @if let Some(states) = v.segments.as_deref().filter(|s| !s.is_empty()) {
                    (segment_bar(states))
                }
            }
        }
    }
}

/// `GET /jobs/{id}/events`: the job page's live part as server-sent `progress` events of
/// HTML while the job runs, then one `final` event (the page reloads to show the result).
pub async fn job_events(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if let Err(e) = load_job(&state, &id).await {
        return e.into_response();
    }
    let every = state.config.live_poll;
    crate::live::watch(every, move || {
        let (state, id) = (state.clone(), id.clone());
        async move {
            let job = load_job(&state, &id).await?;
            if job.status.is_terminal() {
                return Ok(crate::live::Snapshot {
                    event: "final",
                    data: job.status.as_str().to_owned(),
                    last: true,
                });
            }
            let v = views::job_view(&state, &job).await?;
            Ok(crate::live::Snapshot {
                event: "progress",
                data: progress_section(&v).into_string(),
                last: false,
            })
        }
    })
    .into_response()
}

/// The job page's live part and below it, whether the job is still on its way.
async fn job_body(state: &AppState, id: &str) -> Result<(Markup, bool), AppError> {
    let job = load_job(state, id).await?;
    let v = views::job_view(state, &job).await?;
    let id = &job.job_id;
    let s = &job.settings;
    let facts = [
        ("3D format", mode_label(job.mode).to_owned()),
        ("3D strength", format!("{} % of the width", s.divergence)),
        (
            "Depth model",
            s.model
                .clone()
                .unwrap_or_else(|| "the worker's default".to_owned()),
        ),
        ("Convergence", s.convergence.to_string()),
        ("Encoder", format!("{} (crf {})", s.encoder, s.crf)),
        ("Source size", size(job.source_file_size_bytes)),
        ("Created", time(Some(job.created_at))),
        ("Uploaded", time(job.uploaded_at)),
        ("Finished", time(job.completed_at)),
    ];

    let ttl = state.config.download_url_ttl;
    let mut previews = Vec::new();
    for (key, alt) in [
        (keys::preview_frame(id), "3D preview frame"),
        (keys::preview_depth(id), "Depth map preview"),
    ] {
        if state.storage.head(&key).await?.is_some() {
            previews.push((state.storage.presign_download(&key, ttl, None).await?, alt));
        }
    }
    let logs = state.links.get_job_logs_url(id);
    let cancel = !job.status.is_terminal();
    // The whole video with the preview's settings; other settings through the API.
    let convert_all = job.preview && job.status != JobStatus::AwaitingUpload;

    let body = html! {
        h1 class="job-title" { (job.title) }
        (progress_section(&v))
        @if let Some(e) = &job.error {
            p class="error-text" { code { (e.code) } " " (e.message) }
        }
        @if let Some(w) = &v.waiting {
            p class="waiting" id="waiting" { (w) }
        }
        @if job.preview {
            p class="hint" id="preview-note" {
                "A preview: " (parallax_core::model::PREVIEW_SAMPLES) " samples of about "
                (parallax_core::model::PREVIEW_SAMPLE_SECS)
                " s spread over the video, one after the other, without sound."
            }
        }
        @if !job.notes.is_empty() {
            ul class="notes" { @for n in &job.notes { li { (n) } } }
        }
        dl class="facts" {
            @for (k, val) in &facts { dt { (k) } dd { (val) } }
            @if let Some(c) = v.conversion_seconds {
                dt { "Conversion time" } dd { (human_duration(c)) }
            }
            @if let Some(r) = v.seconds_per_mb {
                dt { "Speed" } dd { (format!("{r:.1}")) " sec/MB" }
            }
        }
        @if !previews.is_empty() {
            div class="previews" {
                @for (url, alt) in &previews {
                    figure { img src=(url) alt=(alt); figcaption { (alt) } }
                }
            }
        }
        @if job.status == JobStatus::Completed {
            // The player is in the viewer section below (see `viewer_section`).
            p {
                a id="download" class="button" href={ "/api/jobs/" (id) "/download" } {
                    "Download "
                    (views::download_file_name(&job.title, job.mode, job.output_key.as_deref().unwrap_or("")))
                }
            }
        }
        @if logs.is_some() || cancel || convert_all {
            p class="actions" {
                @if let Some(logs) = &logs {
                    a class="logs" href=(logs) rel="noopener noreferrer" target="_blank" { "Open logs" }
                }
                @if cancel {
                    button type="button" id="cancel" data-job-id=(id) { "Cancel" }
                }
                @if convert_all {
                    button type="button" id="convert-all" data-job-id=(id) { "Convert all" }
                }
            }
        }
    };
    Ok((body, !job.status.is_terminal()))
}

/// How the two views sit in a frame of a mode's output, for `/static/viewer.js`:
/// (layout, squeeze, order, projection). `layout` is `sbs` or `tb` for a stereo pair,
/// `anaglyph` (already combined) or `mono` (no pair: depth map, RGB-D).
fn viewer_layout(m: StereoMode) -> (&'static str, &'static str, &'static str, &'static str) {
    match m {
        StereoMode::FullSbs => ("sbs", "full", "lr", "flat"),
        StereoMode::HalfSbs => ("sbs", "half", "lr", "flat"),
        StereoMode::FullTb => ("tb", "full", "lr", "flat"),
        StereoMode::HalfTb => ("tb", "half", "lr", "flat"),
        StereoMode::FullCross => ("sbs", "full", "rl", "flat"),
        StereoMode::HalfCross => ("sbs", "half", "rl", "flat"),
        StereoMode::Vr180 => ("sbs", "full", "lr", "vr180"),
        StereoMode::Anaglyph => ("anaglyph", "full", "lr", "flat"),
        StereoMode::DepthMap | StereoMode::Rgbd => ("mono", "full", "lr", "flat"),
    }
}

/// The job page's player and 3D viewer. It sits outside the live part of the page (which is
/// replaced every few seconds), so playback goes on while the progress refreshes. A completed
/// job plays its result; a job on its way plays its finished segments as they come (see
/// [`crate::api::segments`]); `/static/viewer.js` adds the 3D views the browser can show.
async fn viewer_section(state: &AppState, id: &str) -> Result<Markup, AppError> {
    let job = load_job(state, id).await?;
    let video = match job.status {
        JobStatus::AwaitingUpload | JobStatus::Failed => return Ok(Markup::default()),
        JobStatus::Completed => {
            let play = download_url(state, &job, false).await?;
            // `crossorigin`: the viewer reads the frames into WebGL, which a video from
            // another origin (S3, whose CORS rule allows this site) only permits with CORS.
            html! {
                video id="player" controls preload="metadata" src=(play) crossorigin="anonymous"
                    playsinline {}
            }
        }
        _ => html! {
            video id="player" controls muted playsinline
                data-segments={ "/api/jobs/" (job.job_id) "/segments" } {}
        },
    };
    let (layout, squeeze, order, projection) = viewer_layout(job.mode);
    let source = if job.status == JobStatus::Completed {
        "file"
    } else {
        "segments"
    };
    Ok(html! {
        link rel="stylesheet" href="/static/viewer.css";
        section id="viewer" class="viewer" data-mode=(job.mode.as_str()) data-layout=(layout)
            data-squeeze=(squeeze) data-order=(order) data-projection=(projection)
            data-source=(source) {
            h2 { "Watch" }
            div class="viewer-views" role="group" aria-label="How to show the 3D video" {}
            canvas id="viewer-canvas" hidden {}
            (video)
            p id="viewer-status" class="muted" role="status" {}
        }
        script src="/static/viewer.js" defer {}
    })
}
