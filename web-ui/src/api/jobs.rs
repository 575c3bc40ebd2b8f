//! Reading jobs: one job, its live events, the listings the dashboard pages through, the
//! download of a result; and cancelling a job that has not finished.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use parallax_core::model::{Job, JobStatus, JobUpdate};
use serde::Deserialize;
use serde_json::json;

use super::request::load_job;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::live;
use crate::views::{self, JobView};
use crate::AppState;

/// `GET /api/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    summary = "One job with its progress",
    params(crate::openapi::JobId),
    responses(
        (status = 200, description = "the job", body = JobView),
        crate::openapi::JobNotFound,
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<JobView>> {
    let job = load_job(&state, &id).await?;
    Ok(Json(views::job_view(&state, &job).await?))
}

/// `GET /api/jobs/{id}/events`: the job as server-sent `job` events (the same JSON as
/// `GET /api/jobs/{id}`), the current state at once and then each change; the stream ends
/// after the job completes or fails.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/events",
    tag = "jobs",
    summary = "The job as server-sent events",
    description = "A `job` event (the Job JSON, as `GET /api/jobs/{id}` answers it) at once and at each change; the stream ends after the job completes or fails. A failure to read the job is sent as a `stream-error` event (`{\"code\", \"message\"}`) and ends the stream.",
    params(crate::openapi::JobId),
    responses(
        (status = 200, description = "an event stream", content_type = "text/event-stream", body = String),
        crate::openapi::JobNotFound,
    )
)]
pub async fn job_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Response> {
    load_job(&state, &id).await?;
    let every = state.config.live_poll;
    Ok(live::watch(every, move || {
        let (state, id) = (state.clone(), id.clone());
        async move {
            let job = load_job(&state, &id).await?;
            let view = views::job_view(&state, &job).await?;
            Ok(live::Snapshot {
                event: "job",
                data: serde_json::to_string(&view).map_err(AppError::internal)?,
                last: job.status.is_terminal(),
            })
        }
    })
    .into_response())
}

/// `DELETE /api/jobs/{id}`: cancels a job that is not finished (it becomes failed with code
/// `cancelled`; workers drop work for failed jobs).
#[utoipa::path(
    delete,
    path = "/api/jobs/{id}",
    tag = "jobs",
    summary = "Cancel an unfinished job (it becomes failed with code `cancelled`)",
    params(crate::openapi::JobId),
    responses(
        (status = 200, description = "the cancelled job", body = JobView),
        crate::openapi::JobNotFound,
        (status = 409, description = "the job already finished (`job-finished`)", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<JobView>> {
    let job = load_job(&state, &id).await?;
    if job.status.is_terminal() {
        return Err(AppError::conflict(
            "job-finished",
            format!(
                "the job is already {}; only unfinished jobs can be cancelled",
                job.status
            ),
        ));
    }
    let update = JobUpdate::failed("cancelled", "Cancelled by a user before it finished.");
    let stored = state.jobs.update(&id, &update).await?;
    tracing::info!(job_id = %id, "job cancelled");
    Ok(Json(views::job_view(&state, &stored).await?))
}

/// The presigned download of a completed job, named after its title.
pub async fn download_url(state: &AppState, job: &Job, attachment: bool) -> AppResult<String> {
    let key = match (&job.status, &job.output_key) {
        (JobStatus::Completed, Some(k)) => k,
        _ => {
            return Err(AppError::conflict(
                "not-ready",
                format!(
                    "the job is {}; there is nothing to download yet",
                    job.status
                ),
            ))
        }
    };
    let disposition = attachment.then(|| {
        format!(
            "attachment; filename=\"{}\"",
            views::download_file_name(&job.title, job.mode, key)
        )
    });
    Ok(state
        .storage
        .presign_download(key, state.config.download_url_ttl, disposition.as_deref())
        .await?)
}

/// `GET /api/jobs/{id}/download`: a redirect to the presigned download.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/download",
    tag = "jobs",
    summary = "Redirect to a presigned download named after the title and layout (e.g. attack-on-titan3d_LR.mp4)",
    params(crate::openapi::JobId),
    responses(
        (status = 307, description = "redirect to the presigned URL",
            headers(("Location" = String, description = "the presigned URL"))),
        crate::openapi::JobNotFound,
        (status = 409, description = "the job has no result yet (`not-ready`)", body = ErrorBody),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let job = load_job(&state, &id).await?;
    let url = download_url(&state, &job, true).await?;
    Ok(Redirect::temporary(&url).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/jobs?state=completed|in_progress|failed&limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    summary = "List jobs",
    params(
        ("state" = Option<crate::openapi::ListState>, Query, description = "which jobs (default `completed`)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "rows per page (default: the site's page size)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (completed and failed listings)"),
    ),
    responses(
        (status = 200, description = "one page", body = crate::openapi::JobList),
        (status = 400, description = "bad state (`invalid-state`), limit (`invalid-limit`) or cursor (`bad-cursor`)", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let limit = match q.limit.as_deref() {
        None | Some("") => state.config.page_size,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(AppError::bad_request(
                    "invalid-limit",
                    "limit must be a whole number from 1 to 100",
                ))
            }
        },
    };
    let cursor = q.cursor.as_deref().filter(|c| !c.is_empty());
    let which = q.state.as_deref().unwrap_or("completed");
    if cursor.is_some() && which == "in_progress" {
        return Err(AppError::bad_request(
            "bad-cursor",
            "only the completed and failed listings are paged with a cursor",
        ));
    }
    let (items, next) = match which {
        "completed" => {
            let page = state.jobs.list_completed(limit, cursor).await?;
            (views::finished_views(&page.items), page.next_key)
        }
        "in_progress" => {
            let items = state.jobs.list_in_progress(limit).await?;
            (views::in_progress_views(&state, &items).await?, None)
        }
        "failed" => {
            let page = state.jobs.list_failed(limit, cursor).await?;
            (views::finished_views(&page.items), page.next_key)
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(AppError::bad_request(
                "invalid-state",
                format!("unknown state {shown:?}; use completed, in_progress or failed"),
            ));
        }
    };
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}
