//! The JSON API (see `/api/openapi.json`). The pages use it too.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use parallax_core::keys;
use parallax_core::model::{ConversionSettings, Job, JobStatus, JobUpdate, StereoMode};
use parallax_core::Error as CoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::views::{self, JobView};
use crate::AppState;

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// A JSON request's body, read whole; a body over the size limit (or one that cannot be read)
/// is refused in the JSON error shape, as every other rejection is, not axum's plain text.
pub struct Body(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "the request body is larger than this API takes; send the video itself to the upload URL, not here",
            )),
            Err(e) => Err(AppError::bad_request(
                "invalid-body",
                format!("the request body could not be read: {}", e.body_text()),
            )),
        }
    }
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> AppResult<T> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}")
            .map_err(|e| AppError::bad_request("invalid-json", e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(
            "invalid-json",
            format!("the request body is not the expected JSON: {e}"),
        )
    })
}

/// Trims a title and refuses what cannot be shown as one.
pub fn clean_title(raw: &str) -> AppResult<String> {
    let t = raw.trim();
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::bad_request(
            "invalid-title",
            format!("the title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(AppError::bad_request(
            "invalid-title",
            "the title contains control characters",
        ));
    }
    Ok(t.to_owned())
}

fn check_job_id(id: &str) -> AppResult<()> {
    // Ids are UUIDs; anything else cannot be stored, so it is unknown.
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(AppError::job_not_found(id));
    }
    Ok(())
}

/// Loads a job or answers 404.
pub async fn load_job(state: &AppState, id: &str) -> AppResult<Job> {
    check_job_id(id)?;
    state
        .jobs
        .get(id)
        .await?
        .ok_or_else(|| AppError::job_not_found(id))
}

/// `GET /healthz`: the process is up and the job store answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.jobs.get("00000000-0000-0000-0000-000000000000").await {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: job store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Unknown routes: a JSON 404.
pub async fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "there is nothing at this address",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateJob {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    settings: Option<ConversionSettings>,
    /// Size of the file about to be uploaded, to refuse it before any byte is sent.
    #[serde(default)]
    source_file_size_bytes: Option<u64>,
}

/// How to send the upload.
#[derive(Debug, Serialize)]
pub struct UploadInstructions {
    /// Presigned URL.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Headers to send.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// Largest accepted size in bytes.
    pub max_bytes: u64,
}

/// `POST /api/jobs`.
pub async fn create_job(State(state): State<AppState>, Body(body): Body) -> AppResult<Response> {
    let req: CreateJob = parse_json(&body)?;
    let title = clean_title(req.title.as_deref().unwrap_or(""))?;
    let title = if title.is_empty() {
        "untitled".to_owned()
    } else {
        title
    };
    let mode = match req.mode.as_deref() {
        None | Some("") => StereoMode::default(),
        Some(m) => StereoMode::parse(m)?,
    };
    let settings = req.settings.unwrap_or_default();
    settings.validate()?;
    let max = state.config.max_upload_bytes;
    if let Some(size) = req.source_file_size_bytes {
        if size > max {
            return Err(too_large(max));
        }
    }
    let job = Job::new(title, mode, settings);
    let upload = state
        .storage
        .presign_upload(&keys::source(&job.job_id), state.config.upload_url_ttl)
        .await?;
    state.jobs.put(&job).await?;
    tracing::info!(job_id = %job.job_id, mode = %job.mode, "job created");
    let view = views::job_view(&state, &job).await?;
    let headers = upload
        .headers
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let body = json!({
        "job": view,
        "upload": UploadInstructions { url: upload.url, method: upload.method, headers, max_bytes: max },
    });
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/jobs/{}", job.job_id))],
        Json(body),
    )
        .into_response())
}

/// 413 with the limit in words.
pub fn too_large(max: u64) -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload-too-large",
        format!(
            "the file is larger than this site accepts ({:.1} MB at most)",
            max as f64 / 1e6
        ),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchJob {
    #[serde(default)]
    title: Option<String>,
    /// Unix seconds or an RFC 3339 string; checked by [`parse_uploaded_at`].
    #[serde(default)]
    uploaded_at: Option<serde_json::Value>,
    #[serde(default)]
    source_file_size_bytes: Option<u64>,
}

/// The last second of year 9999, the latest instant an RFC 3339 string can hold.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RerenderJob {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    settings: Option<ConversionSettings>,
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
    let mut settings = req.settings.unwrap_or_else(|| source.settings.clone());
    settings.validate()?;
    settings.depth_resolution = source.settings.depth_resolution;
    settings.ema_decay = source.settings.ema_decay;
    let title = clean_title(req.title.as_deref().unwrap_or(""))?;
    let title = if title.is_empty() {
        source.title.clone()
    } else {
        title
    };
    check_depth_stored(&state, &source).await?;

    let mut job = Job::new(title, mode, settings);
    job.status = JobStatus::Uploaded;
    job.uploaded_at = Some(Utc::now());
    job.rerender_of = Some(source.job_id.clone());
    state.jobs.put(&job).await?;
    let marker = json!({ "rerender_of": source.job_id })
        .to_string()
        .into_bytes();
    if let Err(e) = state
        .storage
        .put_stream(
            &keys::rerender_marker(&job.job_id),
            Box::pin(std::io::Cursor::new(marker)),
        )
        .await
    {
        // Nothing will start it: say so on the job rather than leave it waiting.
        let failed = JobUpdate::failed(
            "rerender-not-started",
            "The re-render could not be started; please try again.",
        );
        if let Err(e) = state.jobs.update(&job.job_id, &failed).await {
            tracing::warn!(job_id = %job.job_id, error = %e, "could not fail the unstarted re-render");
        }
        return Err(e.into());
    }
    tracing::info!(job_id = %job.job_id, rerender_of = %source.job_id, mode = %job.mode, "re-render job created");
    let view = views::job_view(&state, &job).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/jobs/{}", job.job_id))],
        Json(json!({ "job": view })),
    )
        .into_response())
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

/// `GET /api/jobs/{id}`.
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<JobView>> {
    let job = load_job(&state, &id).await?;
    Ok(Json(views::job_view(&state, &job).await?))
}

/// `DELETE /api/jobs/{id}`: cancels a job that is not finished (it becomes failed with code
/// `cancelled`; workers drop work for failed jobs).
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
            let views = page
                .items
                .iter()
                .map(|i| JobView::from_item(i, None, None))
                .collect();
            (views, page.next_key)
        }
        "in_progress" => {
            let items = state.jobs.list_in_progress(limit).await?;
            (views::in_progress_views(&state, &items).await?, None)
        }
        "failed" => {
            let page = state.jobs.list_failed(limit, cursor).await?;
            let views = page
                .items
                .iter()
                .map(|i| JobView::from_item(i, None, None))
                .collect();
            (views, page.next_key)
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(AppError::bad_request(
                "invalid-state",
                format!("unknown state {shown:?}; use completed, in_progress or failed"),
            ));
        }
    };
    let items: Vec<JobView> = items;
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}
