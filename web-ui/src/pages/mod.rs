//! The HTML pages: dashboard, upload, job page and login. Server-rendered with maud's `html!`
//! templates, which escape every spliced value (element text and attribute values alike) by
//! construction: user text cannot reach a page unescaped, and nothing is escaped by hand. The
//! script (`/static/app.js`) fills the upload form from the device presets, uploads files,
//! keeps the live parts of the pages current (pushed as server-sent events, see
//! [`crate::live`]) and sends the CSRF token; the job page's player has its own
//! (`/static/viewer.js`: 3D views, watching while it converts). No inline script is used (and
//! the CSP forbids it).
//!
//! One module per page; this one holds the layout every page shares, the error page, the
//! small formatting helpers and the static files.

mod dashboard;
mod job;
mod login;
mod upload;

pub use dashboard::{dashboard, dashboard_events};
pub use job::{job, job_events};
pub use login::{login, login_form};
pub use upload::upload;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use parallax_core::model::{JobStatus, StereoMode};

use crate::error::AppError;
use crate::eta::human_duration;
use crate::security::CsrfToken;
use crate::views::JobView;
use crate::AppState;

/// The document around every page's `body`: head (CSRF token for the script, style sheet,
/// script) and the top bar.
fn layout(state: &AppState, title: &str, csrf: &str, body: Markup) -> Markup {
    let cost = state.links.get_cost_dashboard_url();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · parallax" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header class="top" {
                    a class="brand" href="/" { "parallax" }
                    nav {
                        a href="/" { "Dashboard" }
                        a href="/upload" { "Upload" }
                        @if let Some(u) = &cost {
                            a class="cost" href=(u) rel="noopener noreferrer" target="_blank" { "Cost" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn page(state: &AppState, title: &str, csrf: &CsrfToken, body: Markup) -> Response {
    Html(layout(state, title, &csrf.0, body).into_string()).into_response()
}

/// An HTML page for an error (pages answer HTML, the API answers JSON).
fn error_page(state: &AppState, csrf: &CsrfToken, err: AppError) -> Response {
    let body = html! {
        h1 { (err.status.canonical_reason().unwrap_or("Error")) }
        p class="error-text" { (err.message) }
        p { a href="/" { "Back to the dashboard" } }
    };
    let mut resp = page(state, "Error", csrf, body);
    *resp.status_mut() = err.status;
    resp
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "–".to_owned())
}

fn size(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) if b >= 1_000_000_000 => format!("{:.2} GB", b as f64 / 1e9),
        Some(b) => format!("{:.1} MB", b as f64 / 1e6),
        None => "–".to_owned(),
    }
}

fn mode_label(m: StereoMode) -> &'static str {
    match m {
        StereoMode::FullSbs => "Full side-by-side",
        StereoMode::HalfSbs => "Half side-by-side",
        StereoMode::FullTb => "Full top-bottom",
        StereoMode::HalfTb => "Half top-bottom",
        StereoMode::Anaglyph => "Anaglyph (red-cyan)",
        StereoMode::DepthMap => "Depth map",
        StereoMode::FullCross => "Full cross-eyed (right-left)",
        StereoMode::HalfCross => "Half cross-eyed (right-left)",
        StereoMode::Rgbd => "RGB-D (colour + depth)",
        StereoMode::Vr180 => "VR180 (headsets, YouTube VR)",
    }
}

fn status_label(s: JobStatus) -> &'static str {
    match s {
        JobStatus::AwaitingUpload => "awaiting upload",
        JobStatus::Uploaded => "uploaded",
        JobStatus::Chunking => "splitting",
        JobStatus::ChunkingComplete => "converting",
        JobStatus::Reassembling => "stitching",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
    }
}

/// A job's status as the badge the pages show (`s-<status>` styles it).
fn status_badge(s: JobStatus) -> Markup {
    html! { span class={ "status s-" (s.as_str()) } { (status_label(s)) } }
}

fn progress_cell(v: &JobView) -> Markup {
    html! {
        @match (v.percent(), v.total_segments) {
            (Some(p), Some(t)) => {
                progress max="100" value=(p) {}
                " "
                span class="segments" { (v.completed_segments.unwrap_or(0)) " / " (t) }
            }
            _ => span class="muted" { "waiting for segments" },
        }
    }
}

fn eta_cell(v: &JobView) -> String {
    match v.eta_seconds {
        Some(s) if s > 0.0 => format!("about {} left", human_duration(s)),
        Some(_) => "any moment now".to_owned(),
        None => "–".to_owned(),
    }
}

const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");
const VIEWER_JS: &str = include_str!("../static/viewer.js");
const VIEWER_CSS: &str = include_str!("../static/viewer.css");

/// `GET /static/{file}`: the script and the style sheet.
pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "viewer.js" => (VIEWER_JS, "text/javascript; charset=utf-8"),
        "viewer.css" => (VIEWER_CSS, "text/css; charset=utf-8"),
        _ => {
            return AppError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "there is nothing at this address",
            )
            .into_response()
        }
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
