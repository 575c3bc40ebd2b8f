//! `PATCH /api/jobs/{id}`: a job's new title, or the browser's "upload finished" with the
//! time it finished (`uploaded_at`, in either form it may be sent in).

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use parallax_core::keys;
use parallax_core::model::{JobStatus, JobUpdate};
use parallax_core::Error as CoreError;
use serde::Deserialize;

use super::request::{clean_title, load_job, parse_json, Body};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::views::{self, JobView};
use crate::AppState;

/// Changes to a job: its title, or the browser's "upload finished".
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchJob {
    /// The new title.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    title: Option<String>,
    /// Unix seconds or an RFC 3339 string; checked by [`parse_uploaded_at`].
    #[serde(default)]
    #[schema(schema_with = crate::openapi::uploaded_at)]
    uploaded_at: Option<serde_json::Value>,
    /// The uploaded file's size in bytes.
    #[serde(default)]
    source_file_size_bytes: Option<u64>,
}

/// The last second of year 9999, the latest instant an RFC 3339 string can hold.
pub(crate) const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// `uploaded_at` as sent: whole Unix seconds (the design's form) or an RFC 3339 string (what
/// the page sends); `null` is the same as leaving it out. Refuses, with a readable message,
/// fractions, negative numbers, instants before 1970 or after year 9999, and other strings.
fn parse_uploaded_at(value: Option<&serde_json::Value>) -> AppResult<Option<DateTime<Utc>>> {
    let invalid = |why: String| {
        AppError::bad_request(
            "invalid-uploaded-at",
            format!(
                "uploaded_at must be whole Unix seconds (e.g. 1767225600) or an RFC 3339 \
                 date-time (e.g. \"2026-01-01T00:00:00Z\"): {why}"
            ),
        )
    };
    let at = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => {
            let Some(secs) = n.as_i64() else {
                return Err(invalid(if n.is_u64() {
                    format!("{n} is after year 9999")
                } else {
                    format!("{n} is not a whole number of seconds")
                }));
            };
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| invalid(format!("{secs} is outside 1970-01-01 to 9999-12-31")))?
        }
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                let shown: String = s.chars().take(40).collect();
                invalid(format!("{shown:?} is not an RFC 3339 date-time"))
            })?,
        Some(other) => {
            let kind = match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Array(_) => "an array",
                _ => "an object",
            };
            return Err(invalid(format!("got {kind}")));
        }
    };
    if !(0..=MAX_UNIX_SECONDS).contains(&at.timestamp()) {
        return Err(invalid(format!(
            "{} is outside 1970-01-01 to 9999-12-31",
            at.timestamp()
        )));
    }
    Ok(Some(at))
}

/// `PATCH /api/jobs/{id}`: title, and the browser's "upload finished" (uploaded_at, size).
/// Moves the status to `uploaded` only while it is still `awaiting_upload` (the storage
/// event may have moved it on already; status never moves backwards).
#[utoipa::path(
    patch,
    path = "/api/jobs/{id}",
    tag = "jobs",
    summary = "Set the title; report the upload as finished (uploaded_at)",
    params(crate::openapi::JobId),
    request_body(content = PatchJob, content_type = "application/json"),
    responses(
        (status = 200, description = "the job as stored", body = JobView),
        (status = 400, description = "invalid body (`invalid-json`), title (`invalid-title`) or uploaded_at (`invalid-uploaded-at`)", body = ErrorBody),
        crate::openapi::JobNotFound,
        (status = 409, description = "uploaded_at given but the upload is not in storage (`not-uploaded`)", body = ErrorBody),
        crate::openapi::BodyTooLarge,
    )
)]
pub async fn patch_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> AppResult<Json<JobView>> {
    let req: PatchJob = parse_json(&body)?;
    let uploaded_at = parse_uploaded_at(req.uploaded_at.as_ref())?;
    let job = load_job(&state, &id).await?;
    let mut update = JobUpdate {
        title: req.title.as_deref().map(clean_title).transpose()?,
        uploaded_at,
        source_file_size_bytes: req.source_file_size_bytes,
        ..JobUpdate::default()
    };
    if update.title.as_deref() == Some("") {
        return Err(AppError::bad_request(
            "invalid-title",
            "the title cannot be empty",
        ));
    }
    if uploaded_at.is_some() {
        // The upload must really be there: the stored size is the truth.
        match state.storage.head(&keys::source(&id)).await? {
            Some(size) => update.source_file_size_bytes = Some(size),
            None => {
                return Err(AppError::conflict(
                    "not-uploaded",
                    "the upload has not arrived in storage; upload the file first",
                ))
            }
        }
        if job.status == JobStatus::AwaitingUpload {
            update.status = Some(JobStatus::Uploaded);
        }
    }
    let stored = match state.jobs.update(&id, &update).await {
        Err(CoreError::InvalidTransition { .. }) if update.status.is_some() => {
            // The storage event moved the job on meanwhile: keep its status.
            update.status = None;
            state.jobs.update(&id, &update).await?
        }
        other => other?,
    };
    Ok(Json(views::job_view(&state, &stored).await?))
}
