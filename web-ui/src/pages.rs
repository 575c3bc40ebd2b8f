//! The HTML pages: dashboard, upload, job page and login. Server-rendered; every piece of user
//! text goes through [`esc`]. The one script (`/static/app.js`) uploads files, refreshes the
//! live parts of the pages and sends the CSRF token; no inline script is used (and the CSP
//! forbids it).

use std::fmt::Write as _;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, Utc};
use parallax_core::keys;
use parallax_core::model::{JobStatus, StereoMode};
use serde::Deserialize;

use crate::api::{download_url, load_job};
use crate::error::AppError;
use crate::eta::human_duration;
use crate::security::{self, AccessControl, CsrfToken};
use crate::throttle::{self, ClientKey, Verdict};
use crate::views::{self, JobView};
use crate::AppState;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(state: &AppState, title: &str, csrf: &str, body: &str) -> String {
    let cost = state
        .links
        .get_cost_dashboard_url()
        .map(|u| {
            format!(
                r#"<a class="cost" href="{}" rel="noopener noreferrer" target="_blank">Cost</a>"#,
                esc(&u)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>{title} · parallax</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head><body>
<header class="top"><a class="brand" href="/">parallax</a>
<nav><a href="/">Dashboard</a><a href="/upload">Upload</a>{cost}</nav></header>
<main>{body}</main>
</body></html>"#,
        csrf = esc(csrf),
        title = esc(title),
    )
}

fn page(state: &AppState, title: &str, csrf: &CsrfToken, body: &str) -> Response {
    Html(layout(state, title, &csrf.0, body)).into_response()
}

/// An HTML page for an error (pages answer HTML, the API answers JSON).
fn error_page(state: &AppState, csrf: &CsrfToken, err: AppError) -> Response {
    let body = format!(
        r#"<h1>{}</h1><p class="error-text">{}</p><p><a href="/">Back to the dashboard</a></p>"#,
        err.status.canonical_reason().unwrap_or("Error"),
        esc(&err.message)
    );
    let mut resp = page(state, "Error", csrf, &body);
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

fn progress_cell(v: &JobView) -> String {
    match (v.percent(), v.total_segments) {
        (Some(p), Some(t)) => format!(
            r#"<progress max="100" value="{p}"></progress> <span class="segments">{} / {t}</span>"#,
            v.completed_segments.unwrap_or(0)
        ),
        _ => r#"<span class="muted">waiting for segments</span>"#.to_owned(),
    }
}

fn eta_cell(v: &JobView) -> String {
    match v.eta_seconds {
        Some(s) if s > 0.0 => format!("about {} left", human_duration(s)),
        Some(_) => "any moment now".to_owned(),
        None => "–".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DashboardQuery {
    cursor: Option<String>,
    failed_cursor: Option<String>,
    fragment: Option<String>,
}

/// The dashboard's position: a page of completed jobs and a page of failed ones.
#[derive(Debug, Clone, Copy, Default)]
struct Cursors<'a> {
    completed: Option<&'a str>,
    failed: Option<&'a str>,
}

impl Cursors<'_> {
    /// The query string of this position with `change` applied (`?` included, or empty).
    fn query(&self, completed: Option<Option<&str>>, failed: Option<Option<&str>>) -> String {
        let pairs = [
            ("cursor", completed.unwrap_or(self.completed)),
            ("failed_cursor", failed.unwrap_or(self.failed)),
        ];
        let q: Vec<String> = pairs
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", url_encode(v))))
            .collect();
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

/// `GET /`: in progress (with progress and ETA), failed (with reasons, paged), completed
/// (paged).
pub async fn dashboard(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DashboardQuery>,
) -> Response {
    let at = Cursors {
        completed: q.cursor.as_deref().filter(|c| !c.is_empty()),
        failed: q.failed_cursor.as_deref().filter(|c| !c.is_empty()),
    };
    match dashboard_body(&state, at).await {
        Ok(body) if q.fragment.is_some() => Html(body).into_response(),
        Ok(body) => {
            let here = at.query(None, None);
            let refresh = if here.is_empty() {
                "/?fragment=1".to_owned()
            } else {
                format!("/{here}&fragment=1")
            };
            let live = format!(
                r#"<div id="dashboard" data-refresh="{}">{body}</div>"#,
                esc(&refresh)
            );
            page(&state, "Dashboard", &csrf, &live)
        }
        Err(e) => error_page(&state, &csrf, e),
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn dashboard_body(state: &AppState, at: Cursors<'_>) -> Result<String, AppError> {
    let n = state.config.page_size;
    let (in_progress, failed, completed) = tokio::try_join!(
        state.jobs.list_in_progress(n),
        state.jobs.list_failed(n, at.failed),
        state.jobs.list_completed(n, at.completed),
    )?;
    let cursor = at.completed;
    let in_progress = views::in_progress_views(state, &in_progress).await?;
    let mut h = String::with_capacity(8192);
    h.push_str(r#"<section class="jobs in-progress"><h2>In progress</h2>"#);
    if in_progress.is_empty() {
        h.push_str(
            r#"<p class="muted">Nothing is converting. <a href="/upload">Upload a video</a>.</p>"#,
        );
    } else {
        h.push_str("<table><thead><tr><th>Title</th><th>3D format</th><th>Status</th><th>Segments</th><th>ETA</th></tr></thead><tbody>");
        for v in &in_progress {
            let _ = write!(
                h,
                r#"<tr class="job" data-job-id="{id}"><td><a href="/jobs/{id}">{title}</a></td><td>{mode}</td><td><span class="status s-{st}">{stl}</span></td><td>{prog}</td><td>{eta}</td></tr>"#,
                id = esc(&v.job_id),
                title = esc(&v.title),
                mode = mode_label(v.mode),
                st = v.status.as_str(),
                stl = status_label(v.status),
                prog = progress_cell(v),
                eta = eta_cell(v),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");

    if !failed.items.is_empty() || at.failed.is_some() {
        h.push_str(r#"<section class="jobs failed"><h2>Failed</h2><table><thead><tr><th>Title</th><th>Reason</th><th>Created</th></tr></thead><tbody>"#);
        for j in &failed.items {
            let reason = j
                .error
                .as_ref()
                .map(|e| format!(r#"<code>{}</code> {}"#, esc(&e.code), esc(&e.message)))
                .unwrap_or_else(|| "unknown".to_owned());
            let _ = write!(
                h,
                r#"<tr class="job" data-job-id="{id}"><td><a href="/jobs/{id}">{title}</a></td><td class="reason">{reason}</td><td>{created}</td></tr>"#,
                id = esc(&j.job_id),
                title = esc(&j.title),
                created = time(Some(j.created_at)),
            );
        }
        h.push_str(r#"</tbody></table><p class="pager">"#);
        if at.failed.is_some() {
            let _ = write!(
                h,
                r#"<a href="/{}">Newest failed</a> "#,
                esc(&at.query(None, Some(None)))
            );
        }
        if let Some(next) = &failed.next_key {
            let _ = write!(
                h,
                r#"<a class="older-failed" href="/{}">Older failed →</a>"#,
                esc(&at.query(None, Some(Some(next))))
            );
        }
        h.push_str("</p></section>");
    }

    h.push_str(r#"<section class="jobs completed"><h2>Completed</h2>"#);
    if completed.items.is_empty() {
        h.push_str(r#"<p class="muted">No finished conversions yet.</p>"#);
    } else {
        h.push_str("<table><thead><tr><th>Title</th><th>3D format</th><th>Finished</th><th>Size</th><th>Conversion time</th><th>sec/MB</th><th></th></tr></thead><tbody>");
        for item in &completed.items {
            let v = JobView::from_item(item, None, None);
            let _ = write!(
                h,
                r#"<tr class="job" data-job-id="{id}"><td><a href="/jobs/{id}">{title}</a></td><td>{mode}</td><td>{done}</td><td>{size}</td><td>{conv}</td><td>{spm}</td><td><a class="download" href="/api/jobs/{id}/download">Download</a></td></tr>"#,
                id = esc(&v.job_id),
                title = esc(&v.title),
                mode = mode_label(v.mode),
                done = time(v.completed_at),
                size = size(v.source_file_size_bytes),
                conv = v
                    .conversion_seconds
                    .map(human_duration)
                    .unwrap_or_else(|| "–".into()),
                spm = v
                    .seconds_per_mb
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_else(|| "–".into()),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str(r#"<p class="pager">"#);
    if cursor.is_some() {
        let _ = write!(
            h,
            r#"<a href="/{}">Newest</a> "#,
            esc(&at.query(Some(None), None))
        );
    }
    if let Some(next) = &completed.next_key {
        let _ = write!(
            h,
            r#"<a class="older" href="/{}">Older →</a>"#,
            esc(&at.query(Some(Some(next)), None))
        );
    }
    h.push_str("</p></section>");
    Ok(h)
}

/// `GET /upload`: pick or drop a file, choose the 3D format and strength, watch the upload.
pub async fn upload(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
) -> Response {
    let mut modes = String::new();
    for m in StereoMode::ALL {
        let _ = write!(
            modes,
            r#"<option value="{}">{}</option>"#,
            m.as_str(),
            mode_label(m)
        );
    }
    let max = state.config.max_upload_bytes;
    let body = format!(
        r#"<h1>Convert a video to 3D</h1>
<form id="upload-form" data-max-bytes="{max}">
<label class="drop" id="drop"><span>Drop a video here or <u>choose a file</u></span>
<input type="file" id="file" name="file" accept="video/*,.mkv,.mp4,.mov,.webm,.avi" required></label>
<p class="hint">At most {max_h}.</p>
<label>Title <input type="text" id="title" name="title" maxlength="200" placeholder="from the file name"></label>
<label>3D format <select id="mode" name="mode">{modes}</select></label>
<label>3D strength <span class="range"><input type="range" id="divergence" name="divergence" min="0.5" max="10" step="0.5" value="2"> <output id="divergence-value">2</output>&nbsp;% of the width</span></label>
<button type="submit" id="start">Upload and convert</button>
</form>
<div id="upload-progress" hidden><progress id="progress" max="100" value="0"></progress> <span id="progress-text">0 %</span></div>
<p id="upload-status" role="status"></p>"#,
        max_h = esc(&size(Some(max))),
    );
    page(&state, "Upload", &csrf, &body)
}

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
            let mut r = Html(body).into_response();
            if !live {
                r.headers_mut()
                    .insert("x-job-final", HeaderValue::from_static("1"));
            }
            r
        }
        Ok((body, live)) => {
            let wrapped = format!(
                r#"<div id="job" data-job-id="{id}" data-refresh="/jobs/{id}?fragment=1" data-live="{live}">{body}</div>"#,
                id = esc(&id),
                live = u8::from(live),
            );
            page(&state, "Job", &csrf, &wrapped)
        }
        Err(e) => error_page(&state, &csrf, e),
    }
}

async fn job_body(state: &AppState, id: &str) -> Result<(String, bool), AppError> {
    let job = load_job(state, id).await?;
    let v = views::job_view(state, &job).await?;
    let id = esc(&job.job_id);
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        r#"<h1 class="job-title">{}</h1><p><span class="status s-{}">{}</span></p>"#,
        esc(&job.title),
        job.status.as_str(),
        status_label(job.status)
    );
    if let Some(e) = &job.error {
        let _ = write!(
            h,
            r#"<p class="error-text"><code>{}</code> {}</p>"#,
            esc(&e.code),
            esc(&e.message)
        );
    }
    if !job.status.is_terminal() {
        let _ = write!(h, r#"<p>{} · {}</p>"#, progress_cell(&v), eta_cell(&v));
    }
    if !job.notes.is_empty() {
        h.push_str(r#"<ul class="notes">"#);
        for n in &job.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    h.push_str("<dl class=\"facts\">");
    let s = &job.settings;
    let rows = [
        ("3D format", mode_label(job.mode).to_owned()),
        ("3D strength", format!("{} % of the width", s.divergence)),
        ("Convergence", format!("{}", s.convergence)),
        ("Encoder", format!("{} (crf {})", esc(&s.encoder), s.crf)),
        ("Source size", size(job.source_file_size_bytes)),
        ("Created", time(Some(job.created_at))),
        ("Uploaded", time(job.uploaded_at)),
        ("Finished", time(job.completed_at)),
    ];
    for (k, val) in rows {
        let _ = write!(h, "<dt>{k}</dt><dd>{val}</dd>");
    }
    if let Some(c) = v.conversion_seconds {
        let _ = write!(h, "<dt>Conversion time</dt><dd>{}</dd>", human_duration(c));
    }
    if let Some(r) = v.seconds_per_mb {
        let _ = write!(h, "<dt>Speed</dt><dd>{r:.1} sec/MB</dd>");
    }
    h.push_str("</dl>");

    let ttl = state.config.download_url_ttl;
    let mut previews = String::new();
    for (key, alt) in [
        (keys::preview_frame(&job.job_id), "3D preview frame"),
        (keys::preview_depth(&job.job_id), "Depth map preview"),
    ] {
        if state.storage.head(&key).await?.is_some() {
            let url = state.storage.presign_download(&key, ttl, None).await?;
            let _ = write!(
                previews,
                r#"<figure><img src="{}" alt="{alt}"><figcaption>{alt}</figcaption></figure>"#,
                esc(&url)
            );
        }
    }
    if !previews.is_empty() {
        let _ = write!(h, r#"<div class="previews">{previews}</div>"#);
    }
    if job.status == JobStatus::Completed {
        let play = download_url(state, &job, false).await?;
        let _ = write!(
            h,
            r#"<video id="player" controls preload="metadata" src="{}"></video><p><a id="download" class="button" href="/api/jobs/{id}/download">Download {}</a></p>"#,
            esc(&play),
            esc(&views::download_file_name(
                &job.title,
                job.mode,
                job.output_key.as_deref().unwrap_or("")
            )),
        );
    }
    let mut actions = String::new();
    if let Some(logs) = state.links.get_job_logs_url(&job.job_id) {
        let _ = write!(
            actions,
            r#"<a class="logs" href="{}" rel="noopener noreferrer" target="_blank">Open logs</a>"#,
            esc(&logs)
        );
    }
    if !job.status.is_terminal() {
        let _ = write!(
            actions,
            r#"<button type="button" id="cancel" data-job-id="{id}">Cancel</button>"#
        );
    }
    if !actions.is_empty() {
        let _ = write!(h, r#"<p class="actions">{actions}</p>"#);
    }
    Ok((h, !job.status.is_terminal()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

fn login_csrf(headers: &HeaderMap) -> (String, bool) {
    match security::cookie(headers, security::CSRF_COOKIE)
        .filter(|c| !c.is_empty() && c.len() <= 128)
    {
        Some(c) => (c.to_owned(), false),
        None => (security::random_token(), true),
    }
}

/// The login form with an optional notice, answered with `status`.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, fresh) = login_csrf(headers);
    let notice = notice
        .map(|n| format!(r#"<p class="error-text" role="alert">{}</p>"#, esc(n)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Log in</h1>{notice}<form method="post" action="/login">
<input type="hidden" name="csrf" value="{c}"><input type="hidden" name="next" value="{n}">
<label>Access token <input type="password" name="token" id="token" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form>"#,
        c = esc(&csrf),
        n = esc(security::safe_next(next)),
    );
    let mut resp = (status, Html(layout(state, "Log in", &csrf, &body))).into_response();
    if fresh {
        let v = format!("{}={csrf}; Path=/; SameSite=Strict", security::CSRF_COOKIE);
        resp.headers_mut()
            .append(header::SET_COOKIE, HeaderValue::from_str(&v).expect("hex"));
    }
    resp
}

/// The login form saying when the address may try again: 429 with `Retry-After`.
fn locked_out_page(
    state: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
    retry_after: std::time::Duration,
) -> Response {
    let secs = throttle::retry_after_secs(retry_after);
    let at = Utc::now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
    let notice = format!(
        "Too many wrong tokens were tried from your address. Please wait {} and try again \
         (after {} UTC).",
        human_duration(secs as f64),
        at.format("%H:%M:%S")
    );
    let mut resp = login_page(
        state,
        headers,
        next,
        Some(&notice),
        StatusCode::TOO_MANY_REQUESTS,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// `GET /login` (token mode): a form for the access token.
pub async fn login_form(
    State(state): State<AppState>,
    client: ClientKey,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if !matches!(state.config.access, AccessControl::Token(_)) {
        return Redirect::to("/").into_response();
    }
    if let Verdict::Locked { retry_after } = state.throttle.check(client) {
        return locked_out_page(&state, &headers, q.next.as_deref(), retry_after);
    }
    let failed = q.failed.is_some().then_some("That token is not right.");
    login_page(&state, &headers, q.next.as_deref(), failed, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: checks the token and sets the session cookie. Wrong tokens are counted per
/// client address (see [`crate::throttle`]); a locked-out address gets the form back with 429
/// and when to try again, its token unchecked.
pub async fn login(
    State(state): State<AppState>,
    client: ClientKey,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let AccessControl::Token(token) = &state.config.access else {
        return Redirect::to("/").into_response();
    };
    if let Verdict::Locked { retry_after } = state.throttle.check(client) {
        tracing::info!(%client, "login not checked: this address is locked out");
        let next = form.as_ref().ok().and_then(|f| f.next.as_deref());
        return locked_out_page(&state, &headers, next, retry_after);
    }
    let f = match form {
        Ok(Form(f)) => f,
        Err(rejection) => {
            tracing::info!(%client, reason = %rejection.body_text(), "unreadable login form");
            let (status, notice) = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "That login form was too large to read. Enter the access token and try again.",
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "That login form could not be read (a field was missing or it was not sent \
                     as a form). Enter the access token and try again.",
                )
            };
            return login_page(&state, &headers, None, Some(notice), status);
        }
    };
    let cookie = security::cookie(&headers, security::CSRF_COOKIE).unwrap_or("");
    if cookie.is_empty() || !security::constant_time_eq(cookie.as_bytes(), f.csrf.as_bytes()) {
        return login_page(
            &state,
            &headers,
            f.next.as_deref(),
            Some("The login form expired. Enter the access token again."),
            StatusCode::FORBIDDEN,
        );
    }
    let next = security::safe_next(f.next.as_deref()).to_owned();
    if !security::constant_time_eq(f.token.as_bytes(), token.as_bytes()) {
        let verdict = state.throttle.record_failure(client);
        tracing::warn!(%client, ?verdict, "login with a wrong token");
        if let Verdict::Locked { retry_after } = verdict {
            return locked_out_page(&state, &headers, Some(&next), retry_after);
        }
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .append_pair("failed", "1")
            .finish();
        return Redirect::to(&format!("/login?{q}")).into_response();
    }
    state.throttle.record_success(client);
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        security::session_cookie_header(
            &AccessControl::session_value(token),
            state.config.secure_cookies,
        ),
    );
    resp
}

const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// `GET /static/{file}`: the script and the style sheet.
pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
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
