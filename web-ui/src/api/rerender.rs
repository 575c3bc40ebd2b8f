//! `POST /api/jobs/{id}/rerender`: a completed job rendered again, in another layout or with
//! other stereo settings, from its stored depth (no depth model runs), as a new job.

use axum::extract::{Path, State};
use axum::response::Response;
use parallax_core::keys;
use parallax_core::model::{ConversionSettings, Job, JobStatus, StereoMode};
use serde::Deserialize;
use serde_json::json;

use super::marker::{job_without_upload, start_by_marker, Marker};
use super::request::{load_job, parse_json, title_or, Body};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::presets;
use crate::AppState;

/// A re-render: every field may be left out.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RerenderJob {
    /// The new job's title (the source job's when left out).
    #[serde(default)]
    #[schema(max_length = 200)]
    title: Option<String>,
    /// The new job's 3D format (the source job's when left out).
    #[serde(default)]
    #[schema(value_type = Option<StereoMode>)]
    mode: Option<String>,
    /// Checked against the fields settings have, as job creation does; fields left out take
    /// their defaults.
    #[serde(default)]
    #[schema(value_type = Option<ConversionSettings>)]
    settings: Option<serde_json::Value>,
}

/// How many re-renders of re-renders are followed back to the job whose depth is stored.
const MAX_RERENDER_CHAIN: usize = 64;

/// `POST /api/jobs/{id}/rerender`: a new job that renders completed job `id` again in another
/// layout or with other stereo settings from its stored depth, running no depth model. The
/// new job has no upload: it is stored as `uploaded` with `rerender_of: id`, and a small
/// marker object under its uploads prefix starts it through the storage event, as an upload
/// would (the web-ui never talks to a queue). The whole flow is described in media-worker's
/// chunking step. `mode`, `settings` and `title` default to the source job's; the depth-making
/// settings (`depth_resolution`, `ema_decay`) are always the source's: the stored depth was
/// made with them.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/rerender",
    tag = "jobs",
    summary = "Render a completed job again, in another layout or with other stereo settings, as a new job that reuses its stored depth (no depth model runs)",
    description = "The new job has no upload: it starts `uploaded`, says `rerender_of`, and follows the usual flow from chunking on; its result carries the original upload's audio and subtitles. `mode`, `settings` and `title` default to the source job's; `depth_resolution` and `ema_decay` are always the source's (the stored depth was made with them).",
    params(crate::openapi::JobId),
    request_body(content = Option<RerenderJob>, content_type = "application/json"),
    responses(
        crate::openapi::NewJobCreated,
        (status = 400, description = "invalid title (`invalid-title`), mode or settings (`invalid-input`, `invalid-settings`, `unknown-setting`), unknown field (`invalid-json`)", body = ErrorBody),
        crate::openapi::JobNotFound,
        (status = 409, description = "the job is not completed (`job-not-completed`), or its depth is not stored: converted before depth was kept, or expired (`depth-not-stored`)", body = ErrorBody),
        crate::openapi::BodyTooLarge,
    )
)]
pub async fn rerender_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> AppResult<Response> {
    let req: RerenderJob = parse_json(&body)?;
    let source = load_job(&state, &id).await?;
    if source.status != JobStatus::Completed {
        return Err(AppError::conflict(
            "job-not-completed",
            format!(
                "the job is {}; only a completed job can be re-rendered",
                source.status
            ),
        ));
    }
    let mode = match req.mode.as_deref() {
        None | Some("") => source.mode,
        Some(m) => StereoMode::parse(m)?,
    };
    let mut settings = match &req.settings {
        None | Some(serde_json::Value::Null) => source.settings.clone(),
        Some(given) => presets::merge(&ConversionSettings::default(), Some(given))?,
    };
    settings.validate()?;
    settings.depth_resolution = source.settings.depth_resolution;
    settings.ema_decay = source.settings.ema_decay;
    settings.model = source.settings.model.clone();
    let title = title_or(req.title.as_deref(), || source.title.clone())?;
    check_depth_stored(&state, &source).await?;

    let mut job = job_without_upload(title, mode, settings);
    job.rerender_of = Some(source.job_id.clone());
    let marker = Marker {
        key: keys::rerender_marker(&job.job_id),
        note: json!({ "rerender_of": source.job_id }),
        failure: ("rerender-not-started", "re-render"),
    };
    let created = start_by_marker(&state, &job, marker).await?;
    tracing::info!(job_id = %job.job_id, rerender_of = %source.job_id, mode = %job.mode, "re-render job created");
    Ok(created)
}

/// Refuses (409 `depth-not-stored`) a completed job whose depth cannot be re-rendered: one
/// converted before depth was stored, or whose stored segments have expired. The depth is the
/// original conversion's (a re-render stores none): re-renders are followed back to it. The
/// first and last segments stand for the set (a job stores all or, older, none).
async fn check_depth_stored(state: &AppState, source: &Job) -> AppResult<()> {
    let not_stored = || {
        AppError::conflict(
            "depth-not-stored",
            "this job's depth maps are no longer stored (it was converted before they were \
             kept, or they have expired); convert the video again to change its 3D settings",
        )
    };
    let mut original = source.clone();
    for _ in 0..MAX_RERENDER_CHAIN {
        let Some(of) = original.rerender_of.clone() else {
            break;
        };
        original = state.jobs.get(&of).await?.ok_or_else(not_stored)?;
    }
    let Some(last) = original
        .total_segments
        .filter(|_| original.rerender_of.is_none())
        .and_then(|n| n.checked_sub(1))
    else {
        return Err(not_stored());
    };
    let id = &original.job_id;
    let needed = [
        keys::manifest(&source.job_id),
        keys::segment(id, 0),
        keys::segment(id, last),
        keys::depth(id, 0),
        keys::depth(id, last),
    ];
    for key in needed {
        if state.storage.head(&key).await?.is_none() {
            return Err(not_stored());
        }
    }
    Ok(())
}
