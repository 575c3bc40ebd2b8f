//! `POST /api/jobs/{id}/convert`: "Convert all" from a preview, a new job converting the
//! whole of the preview's upload.

use axum::extract::{Path, State};
use axum::response::Response;
use parallax_core::keys;
use parallax_core::model::{ConversionSettings, StereoMode};
use serde::Deserialize;
use serde_json::json;

use super::marker::{job_without_upload, start_by_marker, Marker};
use super::request::{load_job, parse_json, title_or, Body};
use super::settings::choose;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::AppState;

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
        crate::openapi::NewJobCreated,
        (status = 400, description = "invalid title (`invalid-title`), mode or settings (`invalid-input`, `invalid-settings`), unknown preset (`unknown-preset`), setting (`unknown-setting`) or model (`unknown-model`), unknown field (`invalid-json`)", body = ErrorBody),
        crate::openapi::JobNotFound,
        (status = 409, description = "the job is not a preview (`not-a-preview`), or its video is not uploaded (`no-upload`)", body = ErrorBody),
        crate::openapi::BodyTooLarge,
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
    let mut job = job_without_upload(title, mode, settings);
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
