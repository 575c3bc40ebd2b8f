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

use crate::error::{AppError, AppResult, ErrorBody};
use crate::views::{self, JobView};
use crate::AppState;
use crate::{live, presets};

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
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    summary = "Liveness and job-store health",
    security(()),
    responses(
        (status = 200, description = "healthy", body = crate::openapi::Health),
        (status = 503, description = "the job store does not answer", body = crate::openapi::Health),
    )
)]
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

/// A new job: every field may be left out.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateJob {
    /// The job's title (`untitled` when left out).
    #[serde(default)]
    #[schema(max_length = 200)]
    title: Option<String>,
    /// A device preset ([`crate::presets::PRESETS`]): the mode and settings to start from.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::preset_name)]
    preset: Option<String>,
    /// Overrides the preset's mode.
    #[serde(default)]
    #[schema(value_type = Option<StereoMode>)]
    mode: Option<String>,
    /// Overrides of the preset's settings (or of the defaults), field by field; checked
    /// against the fields `ConversionSettings` has by [`presets::merge`].
    #[serde(default)]
    #[schema(value_type = Option<ConversionSettings>)]
    settings: Option<serde_json::Value>,
    /// Size of the file about to be uploaded, to refuse it before any byte is sent.
    #[serde(default)]
    source_file_size_bytes: Option<u64>,
    /// Name of the file about to be uploaded, to refuse a type the service cannot convert.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::file_name)]
    file_name: Option<String>,
    /// Convert only a few short samples spread over the video (see `Job::preview`).
    #[serde(default)]
    #[schema(schema_with = crate::openapi::preview)]
    preview: bool,
}

/// The request's title, cleaned, or `fallback`'s when it gives none.
fn title_or(given: Option<&str>, fallback: impl FnOnce() -> String) -> AppResult<String> {
    let title = clean_title(given.unwrap_or(""))?;
    Ok(if title.is_empty() { fallback() } else { title })
}

/// The mode and settings a request asks for: `preset`'s, else `base`; then `mode` and each
/// field of `settings` override; the model it names must be in the catalogue.
fn choose(
    state: &AppState,
    base: (StereoMode, ConversionSettings),
    preset: Option<&str>,
    mode: Option<&str>,
    settings: Option<&serde_json::Value>,
) -> AppResult<(StereoMode, ConversionSettings)> {
    let (base_mode, base_settings) = match preset {
        None | Some("") => base,
        Some(name) => {
            let p = presets::find(name)?;
            (p.mode, p.settings())
        }
    };
    let mode = match mode {
        None | Some("") => base_mode,
        Some(m) => StereoMode::parse(m)?,
    };
    let settings = presets::merge(&base_settings, settings)?;
    check_model(state, &settings)?;
    Ok((mode, settings))
}

/// Refuses (400 `unknown-model`) settings that name a model the catalogue does not list
/// (or any model when there is no catalogue), naming the ones it does.
pub fn check_model(state: &AppState, settings: &ConversionSettings) -> AppResult<()> {
    let Some(name) = settings.model.as_deref() else {
        return Ok(());
    };
    let known = state
        .config
        .catalogue
        .as_ref()
        .map(|c| c.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>())
        .unwrap_or_default();
    if known.contains(&name) {
        return Ok(());
    }
    let shown: String = name.chars().take(64).collect();
    Err(AppError::bad_request(
        "unknown-model",
        if known.is_empty() {
            format!("this service has no model catalogue, so a job cannot name the depth model {shown:?}: leave `model` out to use the workers' default")
        } else {
            format!(
                "{shown:?} is not a depth model this service knows; known models: {} (GET /api/models)",
                known.join(", ")
            )
        },
    ))
}

/// One catalogue model as `GET /api/models` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelView {
    /// What `settings.model` takes.
    pub name: String,
    /// `frame` (one frame at a time) or `temporal/T` (windows of T frames).
    pub kind: String,
    /// The weights' licence.
    pub licence: String,
    /// The short side the model was trained at, in pixels.
    pub input_size: u32,
    /// Whether a running video-worker holds it now (a job naming it would be converted;
    /// otherwise the job waits for one, then fails).
    pub held: bool,
    /// About the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How fresh a worker's note that it holds a model must be to count (the workers renew it
/// three times in this span).
const HOLDER_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /api/models`: the catalogue's models, each with whether a running worker holds it.
#[utoipa::path(
    get,
    path = "/api/models",
    tag = "models",
    summary = "The depth models a job may name in `settings.model`",
    description = "Each with whether a running video-worker holds it (a job naming a model no running worker holds waits for one, then fails with `no-worker-for-model`).",
    responses((status = 200, description = "the catalogue", body = crate::openapi::ModelList))
)]
pub async fn list_models(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let mut models = Vec::new();
    for m in state.config.catalogue.iter().flat_map(|c| &c.models) {
        let held = parallax_core::holders::held_by_a_running_worker(
            state.storage.as_ref(),
            &m.name,
            HOLDER_FRESH,
        )
        .await;
        models.push(ModelView {
            name: m.name.clone(),
            kind: m.kind_label(),
            licence: m.licence.clone(),
            input_size: m.input_size,
            held,
            note: m.note.clone(),
        });
    }
    Ok(Json(json!({ "models": models })))
}

/// File name extensions of the containers the chunking step takes (what ffmpeg demuxes as
/// video here); the upload page offers the same list.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "m2ts", "mts", "wmv", "flv",
    "3gp", "ogv",
];

/// Refuses (415 `unsupported-file-type`) a file name whose extension is not a video
/// container the service takes.
pub fn check_file_type(file_name: &str) -> AppResult<()> {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
        return Ok(());
    }
    let shown: String = file_name.chars().take(80).collect();
    Err(AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-file-type",
        format!(
            "{shown:?} is not a video this service can convert; send one of: {}",
            VIDEO_EXTENSIONS
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ))
}

/// `GET /api/presets`: the device presets, each with its mode and whole settings.
#[utoipa::path(
    get,
    path = "/api/presets",
    tag = "presets",
    summary = "The device presets: each one's 3D format and whole settings",
    responses((status = 200, description = "every preset, and the names of every setting", body = crate::openapi::PresetList))
)]
pub async fn list_presets() -> Json<serde_json::Value> {
    let presets: Vec<presets::PresetView> = presets::PRESETS.iter().map(|p| p.view()).collect();
    Json(json!({ "presets": presets, "settings": presets::setting_names() }))
}

/// How to send the upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Upload)]
pub struct UploadInstructions {
    /// Presigned URL.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Headers to send.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// Largest accepted size in bytes.
    pub max_bytes: u64,
}

/// `POST /api/jobs`.
#[utoipa::path(
    post,
    path = "/api/jobs",
    tag = "jobs",
    summary = "Create a job and get a presigned upload",
    description = "`preset` picks a device preset (its mode and settings); `mode` and each field of `settings` override it. A setting name that does not exist is refused (`unknown-setting`), as is an unknown preset (`unknown-preset`). Several files are several jobs: one request per file.",
    request_body(content = Option<CreateJob>, content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = crate::openapi::CreatedJob,
            headers(("Location" = String, description = "the new job's URL"))),
        (status = 400, description = "invalid title (`invalid-title`), mode or setting value (`invalid-input`), setting type (`invalid-settings`), unknown setting (`unknown-setting`), unknown preset (`unknown-preset`), unknown model (`unknown-model`), unknown field (`invalid-json`)", body = ErrorBody),
        (status = 413, description = "the announced file is larger than the upload limit (`upload-too-large`), or the body is (`body-too-large`)", body = ErrorBody),
        (status = 415, description = "`file_name` is not a video this service converts (`unsupported-file-type`)", body = ErrorBody),
    )
)]
pub async fn create_job(State(state): State<AppState>, Body(body): Body) -> AppResult<Response> {
    let req: CreateJob = parse_json(&body)?;
    let title = title_or(req.title.as_deref(), || "untitled".to_owned())?;
    let (mode, settings) = choose(
        &state,
        (StereoMode::default(), ConversionSettings::default()),
        req.preset.as_deref(),
        req.mode.as_deref(),
        req.settings.as_ref(),
    )?;
    if let Some(name) = req.file_name.as_deref() {
        check_file_type(name)?;
    }
    let max = state.config.max_upload_bytes;
    if let Some(size) = req.source_file_size_bytes {
        if size > max {
            return Err(too_large(max));
        }
    }
    let mut job = Job::new(title, mode, settings);
    job.preview = req.preview;
    let upload = state
        .storage
        .presign_upload(&keys::source(&job.job_id), state.config.upload_url_ttl)
        .await?;
    state.jobs.put(&job).await?;
    tracing::info!(job_id = %job.job_id, mode = %job.mode, preset = req.preset.as_deref().unwrap_or(""), "job created");
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
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
        (status = 409, description = "uploaded_at given but the upload is not in storage (`not-uploaded`)", body = ErrorBody),
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
        (status = 201, description = "the new job", body = crate::openapi::NewJob,
            headers(("Location" = String, description = "the new job's URL"))),
        (status = 400, description = "invalid title (`invalid-title`), mode or settings (`invalid-input`, `invalid-settings`, `unknown-setting`), unknown field (`invalid-json`)", body = ErrorBody),
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
        (status = 409, description = "the job is not completed (`job-not-completed`), or its depth is not stored: converted before depth was kept, or expired (`depth-not-stored`)", body = ErrorBody),
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

    let mut job = Job::new(title, mode, settings);
    job.status = JobStatus::Uploaded;
    job.uploaded_at = Some(Utc::now());
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

/// The object that starts a job with no upload of its own (a re-render, a "Convert all").
struct Marker {
    /// Under the job's uploads prefix, so the storage event carries it to chunking.
    key: String,
    /// What it holds (never video).
    note: serde_json::Value,
    /// The failure code, and what the job is in words, when the marker cannot be written.
    failure: (&'static str, &'static str),
}

/// Stores `job` and writes its marker, which starts it through the storage event exactly as
/// an upload would (the web-ui never talks to a queue); answers 201 with the job. A marker
/// that cannot be written fails the job at once rather than leave it waiting for nothing.
async fn start_by_marker(state: &AppState, job: &Job, marker: Marker) -> AppResult<Response> {
    state.jobs.put(job).await?;
    let body = marker.note.to_string().into_bytes();
    if let Err(e) = state
        .storage
        .put_stream(&marker.key, Box::pin(std::io::Cursor::new(body)))
        .await
    {
        let (code, what) = marker.failure;
        let failed = JobUpdate::failed(
            code,
            format!("The {what} could not be started; please try again."),
        );
        if let Err(e) = state.jobs.update(&job.job_id, &failed).await {
            tracing::warn!(job_id = %job.job_id, error = %e, "could not fail the unstarted {what}");
        }
        return Err(e.into());
    }
    let view = views::job_view(state, job).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/jobs/{}", job.job_id))],
        Json(json!({ "job": view })),
    )
        .into_response())
}

/// "Convert all" from a preview: every field may be left out.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConvertAll {
    /// The new job's title (the preview's when left out).
    #[serde(default)]
    #[schema(max_length = 200)]
    title: Option<String>,
    /// A device preset to start from instead of the preview's mode and settings.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::preset_name)]
    preset: Option<String>,
    /// Overrides the preset's or else the preview's mode.
    #[serde(default)]
    #[schema(value_type = Option<StereoMode>)]
    mode: Option<String>,
    /// Overrides, field by field, of the preset's settings or else the preview's.
    #[serde(default)]
    #[schema(value_type = Option<ConversionSettings>)]
    settings: Option<serde_json::Value>,
}

/// `POST /api/jobs/{id}/convert`: "Convert all" from preview `id`: a new job converting the
/// whole of the preview's upload, with the preview's mode and settings or changed ones. Like
/// a re-render it has no upload of its own: it is stored as `uploaded` with `upload_of`, and
/// a marker object under its uploads prefix starts it through the storage event.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/convert",
    tag = "jobs",
    summary = "\"Convert all\": convert the whole upload of a preview, as a new job",
    description = "The new job has no upload: it starts `uploaded`, says `upload_of`, and follows the usual flow from chunking on. `preset` starts from a device preset instead of the preview's mode and settings; `mode` and each field of `settings` override.",
    params(crate::openapi::JobId),
    request_body(content = Option<ConvertAll>, content_type = "application/json"),
    responses(
        (status = 201, description = "the new job", body = crate::openapi::NewJob,
            headers(("Location" = String, description = "the new job's URL"))),
        (status = 400, description = "invalid title (`invalid-title`), mode or settings (`invalid-input`, `invalid-settings`), unknown preset (`unknown-preset`), setting (`unknown-setting`) or model (`unknown-model`), unknown field (`invalid-json`)", body = ErrorBody),
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
        (status = 409, description = "the job is not a preview (`not-a-preview`), or its video is not uploaded (`no-upload`)", body = ErrorBody),
    )
)]
pub async fn convert_all(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> AppResult<Response> {
    let req: ConvertAll = parse_json(&body)?;
    let preview = load_job(&state, &id).await?;
    if !preview.preview {
        return Err(AppError::conflict(
            "not-a-preview",
            "this job converts the whole video already; \"Convert all\" starts from a preview",
        ));
    }
    let upload_job = preview.upload_job().to_owned();
    if state
        .storage
        .head(&keys::source(&upload_job))
        .await?
        .is_none()
    {
        return Err(AppError::conflict(
            "no-upload",
            "the preview's video is not uploaded (or no longer stored): upload it again",
        ));
    }
    let (mode, settings) = choose(
        &state,
        (preview.mode, preview.settings.clone()),
        req.preset.as_deref(),
        req.mode.as_deref(),
        req.settings.as_ref(),
    )?;
    let title = title_or(req.title.as_deref(), || preview.title.clone())?;
    let mut job = Job::new(title, mode, settings);
    job.status = JobStatus::Uploaded;
    job.uploaded_at = Some(Utc::now());
    job.source_file_size_bytes = preview.source_file_size_bytes;
    job.upload_of = Some(upload_job.clone());
    let marker = Marker {
        key: keys::convert_marker(&job.job_id),
        note: json!({ "upload_of": upload_job }),
        failure: ("convert-not-started", "conversion"),
    };
    let created = start_by_marker(&state, &job, marker).await?;
    tracing::info!(job_id = %job.job_id, preview = %preview.job_id, mode = %job.mode, "full conversion of a preview created");
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

/// `GET /api/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    summary = "One job with its progress",
    params(crate::openapi::JobId),
    responses(
        (status = 200, description = "the job", body = JobView),
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
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
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
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
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
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
        (status = 404, description = "unknown job (`job-not-found`)", body = ErrorBody),
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
