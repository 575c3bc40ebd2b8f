//! What the handlers' own types cannot say: the bodies they build with `json!`, the `{id}`
//! of the job routes, and the schemas of fields whose allowed values come from the code's
//! own lists (presets, file types, preview samples) rather than from a type.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{Object, Schema};

use crate::api::create::UploadInstructions;
use crate::api::settings::ModelView;
use crate::error::ErrorBody;
use crate::presets::PresetView;
use crate::views::JobView;

/// The `{id}` of the job routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only its description is used.
pub struct JobId {
    /// The job's id.
    #[param(format = "uuid")]
    id: String,
}

/// Which jobs `GET /api/jobs` lists.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Only its description is used.
pub enum ListState {
    /// Completed jobs, newest first (paged with a cursor).
    Completed,
    /// Jobs still converting.
    InProgress,
    /// Failed jobs, newest first (paged with a cursor).
    Failed,
}

/// The answer of `GET /healthz`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used.
pub struct Health {
    /// `ok`, or `unavailable` when the job store does not answer.
    status: String,
}

/// The answer of `GET /api/presets`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used.
pub struct PresetList {
    /// Every preset, in the order the upload page lists them; the first is the default.
    presets: Vec<PresetView>,
    /// The name of every setting (the fields of `settings`).
    settings: Vec<String>,
}

/// The answer of `GET /api/models`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used.
pub struct ModelList {
    /// The catalogue's models (none without a catalogue).
    models: Vec<ModelView>,
}

/// The answer of `POST /api/jobs`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used.
pub struct CreatedJob {
    /// The new job.
    job: JobView,
    /// Where and how to send the video.
    upload: UploadInstructions,
}

/// The answer of a route that makes a job from another one.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used.
pub struct NewJob {
    /// The new job.
    job: JobView,
}

/// The answer of a route that makes a job from another one (a re-render, a "Convert all"):
/// 201 with the new job, and its URL in `Location`.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 201,
    description = "the new job",
    headers(("Location" = String, description = "the new job's URL"))
)]
#[allow(dead_code)] // Only its description is used.
pub struct NewJobCreated(NewJob);

/// The answer of a job route whose `{id}` names no job: 404 `job-not-found`.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "unknown job (`job-not-found`)")]
#[allow(dead_code)] // Only its description is used.
pub struct JobNotFound(ErrorBody);

/// The answer of a route whose JSON body is over the body limit: 413 `body-too-large`.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 413,
    description = "the body is larger than the limit (`body-too-large`)"
)]
#[allow(dead_code)] // Only its description is used.
pub struct BodyTooLarge(ErrorBody);

/// One page of `GET /api/jobs`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used.
pub struct JobList {
    /// The jobs of this page.
    items: Vec<JobView>,
    /// The `cursor` of the next page; null on the last one.
    next_cursor: Option<String>,
}

/// A preset's name: one of [`crate::presets::PRESETS`].
pub(crate) fn preset_name() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(crate::presets::PRESETS.iter().map(|p| p.name)))
        .description(Some("a device preset to start from (see /api/presets)"))
        .build()
}

/// The name of the file about to be uploaded, with the extensions taken.
pub(crate) fn file_name() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "the file about to be uploaded; refused unless it ends in one of: {}",
            crate::api::create::VIDEO_EXTENSIONS.join(", ")
        )))
        .build()
}

/// The preview switch, with the number and length of the samples.
pub(crate) fn preview() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .default(Some(false.into()))
        .description(Some(format!(
            "convert only {} samples of about {} s spread over the video, one after the other, \
             without sound; `POST /api/jobs/{{id}}/convert` then converts the whole upload",
            parallax_core::model::PREVIEW_SAMPLES,
            parallax_core::model::PREVIEW_SAMPLE_SECS
        )))
        .build()
}

/// `uploaded_at` as `PATCH /api/jobs/{id}` takes it: Unix seconds or RFC 3339.
pub(crate) fn uploaded_at() -> Schema {
    let one_of = OneOfBuilder::new()
        .description(Some(
            "when the upload finished: whole Unix seconds (UTC) or an RFC 3339 date-time, from \
             1970 to the end of year 9999 (null: left out); responses always give it as RFC 3339",
        ))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(crate::api::patch::MAX_UNIX_SECONDS))
                .description(Some("Unix seconds")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    Schema::OneOf(one_of)
}
