//! The dashboard: jobs in progress, failed and completed, kept current by server-sent events.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_page, eta_cell, mode_label, page, progress_cell, size, status_badge, time};
use crate::error::AppError;
use crate::eta::human_duration;
use crate::security::CsrfToken;
use crate::views;
use crate::AppState;

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

    /// The dashboard's address at this position with `change` applied.
    fn href(&self, completed: Option<Option<&str>>, failed: Option<Option<&str>>) -> String {
        format!("/{}", self.query(completed, failed))
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
        Ok(body) if q.fragment.is_some() => Html(body.into_string()).into_response(),
        Ok(body) => {
            let here = at.query(None, None);
            let refresh = if here.is_empty() {
                "/?fragment=1".to_owned()
            } else {
                format!("/{here}&fragment=1")
            };
            let live = html! {
                div id="dashboard" data-refresh=(refresh) data-events={ "/events" (here) } {
                    (body)
                }
            };
            page(&state, "Dashboard", &csrf, live)
        }
        Err(e) => error_page(&state, &csrf, e),
    }
}

/// `GET /events`: the dashboard's lists (at the same cursors as `/`) as server-sent
/// `dashboard` events of HTML, each time they change.
pub async fn dashboard_events(
    State(state): State<AppState>,
    Query(q): Query<DashboardQuery>,
) -> Response {
    let every = state.config.live_poll;
    let completed = q.cursor.filter(|c| !c.is_empty());
    let failed = q.failed_cursor.filter(|c| !c.is_empty());
    crate::live::watch(every, move || {
        let (state, completed, failed) = (state.clone(), completed.clone(), failed.clone());
        async move {
            let at = Cursors {
                completed: completed.as_deref(),
                failed: failed.as_deref(),
            };
            Ok(crate::live::Snapshot {
                event: "dashboard",
                data: dashboard_body(&state, at).await?.into_string(),
                last: false,
            })
        }
    })
    .into_response()
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A job's title, linked to its page.
fn title_link(job_id: &str, title: &str) -> Markup {
    html! { a href={ "/jobs/" (job_id) } { (title) } }
}

async fn dashboard_body(state: &AppState, at: Cursors<'_>) -> Result<Markup, AppError> {
    let n = state.config.page_size;
    let (in_progress, failed, completed) = tokio::try_join!(
        state.jobs.list_in_progress(n),
        state.jobs.list_failed(n, at.failed),
        state.jobs.list_completed(n, at.completed),
    )?;
    let in_progress = views::in_progress_views(state, &in_progress).await?;
    let completed_views = views::finished_views(&completed.items);
    Ok(html! {
        section class="jobs in-progress" {
            h2 { "In progress" }
            @if in_progress.is_empty() {
                p class="muted" { "Nothing is converting. " a href="/upload" { "Upload a video" } "." }
            } @else {
                table {
                    thead { tr { th { "Title" } th { "3D format" } th { "Status" } th { "Segments" } th { "ETA" } } }
                    tbody {
                        @for v in &in_progress {
                            tr class="job" data-job-id=(v.job_id) {
                                td { (title_link(&v.job_id, &v.title)) }
                                td { (mode_label(v.mode)) }
                                td { (status_badge(v.status)) }
                                td { (progress_cell(v)) }
                                td { (eta_cell(v)) }
                            }
                        }
                    }
                }
            }
        }
        @if !failed.items.is_empty() || at.failed.is_some() {
            section class="jobs failed" {
                h2 { "Failed" }
                table {
                    thead { tr { th { "Title" } th { "Reason" } th { "Created" } } }
                    tbody {
                        @for j in &failed.items {
                            tr class="job" data-job-id=(j.job_id) {
                                td { (title_link(&j.job_id, &j.title)) }
                                td class="reason" {
                                    @if let Some(e) = &j.error {
                                        code { (e.code) } " " (e.message)
                                    } @else {
                                        "unknown"
                                    }
                                }
                                td { (time(Some(j.created_at))) }
                            }
                        }
                    }
                }
                p class="pager" {
                    @if at.failed.is_some() {
                        a href=(at.href(None, Some(None))) { "Newest failed" } " "
                    }
                    @if let Some(next) = &failed.next_key {
                        a class="older-failed" href=(at.href(None, Some(Some(next)))) { "Older failed →" }
                    }
                }
            }
        }
        section class="jobs completed" {
            h2 { "Completed" }
            @if completed_views.is_empty() {
                p class="muted" { "No finished conversions yet." }
            } @else {
                table {
                    thead {
                        tr {
                            th { "Title" } th { "3D format" } th { "Finished" } th { "Size" }
                            th { "Conversion time" } th { "sec/MB" } th {}
                        }
                    }
                    tbody {
                        @for v in &completed_views {
                            tr class="job" data-job-id=(v.job_id) {
                                td { (title_link(&v.job_id, &v.title)) }
                                td { (mode_label(v.mode)) }
                                td { (time(v.completed_at)) }
                                td { (size(v.source_file_size_bytes)) }
                                td { (v.conversion_seconds.map(human_duration).unwrap_or_else(|| "–".into())) }
                                td { (v.seconds_per_mb.map(|s| format!("{s:.1}")).unwrap_or_else(|| "–".into())) }
                                td { a class="download" href={ "/api/jobs/" (v.job_id) "/download" } { "Download" } }
                            }
                        }
                    }
                }
            }
            p class="pager" {
                @if at.completed.is_some() {
                    a href=(at.href(Some(None), None)) { "Newest" } " "
                }
                @if let Some(next) = &completed.next_key {
                    a class="older" href=(at.href(Some(Some(next)), None)) { "Older →" }
                }
            }
        }
    })
}
