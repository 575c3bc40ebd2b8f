//! `POST /api/jobs`: a new job, and the presigned upload its video goes to. The size and the
//! file type are checked here, before any byte is sent.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use parallax_core::keys;
use parallax_core::model::{ConversionSettings, Job, StereoMode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::{parse_json, title_or, Body};
use super::settings::choose;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::views;
use crate::AppState;

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
    /// against the fields `ConversionSettings` has by [`crate::presets::merge`].
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
    Ok(created(&job.job_id, body))
}

/// 201 with `body` and the new job's URL in `Location`: the answer of every route that makes
/// a job.
pub(super) fn created(job_id: &str, body: serde_json::Value) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/jobs/{job_id}"))],
        Json(body),
    )
        .into_response()
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
