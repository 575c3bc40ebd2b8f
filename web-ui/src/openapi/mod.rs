//! The OpenAPI 3.1 document of the JSON API, served at `/api/openapi.json`. It is generated
//! (utoipa) from the handlers' `#[utoipa::path]` annotations and the request and response
//! types (`ToSchema`, with core's model types behind its `openapi` feature), so a field or a
//! route cannot be added without the document knowing. What types cannot say (each route's
//! summary and error codes, the security schemes, the info text) is written next to the
//! handlers or here.
//!
//! A few handlers build their JSON with `json!`; the types in [`schemas`] describe those
//! bodies, and the tests check the real answers against them.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, Object, RefOr, Schema};
use utoipa::{Modify, OpenApi};

mod schemas;
#[cfg(test)]
mod tests;

pub(crate) use schemas::{file_name, preset_name, preview, uploaded_at};
pub use schemas::{
    BodyTooLarge, CreatedJob, Health, JobId, JobList, JobNotFound, ListState, ModelList, NewJob,
    NewJobCreated, PresetList,
};

/// The API's description; every operation's own text is on its handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "parallax API",
        description = "Create 2D-to-3D conversion jobs, upload their source through a presigned URL, follow their progress and download the result. When access control is on, send `Authorization: Bearer <token>` (or basic auth). Browsers that send cookies must echo the `parallax_csrf` cookie in `X-CSRF-Token` on POST, PATCH and DELETE. After a few wrong tokens or passwords from one client address, that address is answered 429 (`too-many-attempts`, with `Retry-After` in seconds) for a while, without its credentials being checked."
    ),
    paths(
        crate::api::healthz,
        document,
        crate::api::settings::list_presets,
        crate::api::create::create_job,
        crate::api::jobs::list_jobs,
        crate::api::jobs::get_job,
        crate::api::patch::patch_job,
        crate::api::jobs::cancel_job,
        crate::api::jobs::job_events,
        crate::api::jobs::download,
        crate::api::rerender::rerender_job,
        crate::api::convert::convert_all,
        crate::api::settings::list_models,
        crate::api::segments::list,
        crate::api::segments::segment,
    ),
    // Schemas named only by a query parameter or an `IntoResponses` type: utoipa does not
    // collect those by itself.
    components(schemas(ListState, NewJob, crate::error::ErrorBody)),
    security(("bearer" = []), ("basic" = []), ()),
    modifiers(&SecuritySchemes, &SettingBounds)
)]
struct ApiDoc;

/// Adds the two ways to authenticate that `security` names.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc
            .components
            .get_or_insert_with(|| ComponentsBuilder::new().build());
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The ranges [`ConversionSettings::validate`] accepts, which the field types cannot say:
/// `(setting, least, most)`, both inclusive. The tests hold each one against `validate`.
///
/// [`ConversionSettings::validate`]: parallax_core::model::ConversionSettings::validate
const SETTING_RANGES: &[(&str, f64, f64)] = &[
    ("divergence", 0.0, 10.0),
    ("convergence", 0.0, 1.0),
    ("depth_resolution", 14.0, 2048.0),
    ("crf", 0.0, 51.0),
    ("edge_dilation", 0.0, 10.0),
    ("foreground_scale", -3.0, 3.0),
    ("ipd_offset", -5.0, 5.0),
    ("keyframe_interval", 1.0, 60.0),
    ("fast_depth_scale", 0.25, 1.0),
];

/// The encoders `validate` accepts.
const ENCODERS: &[&str] = &["libx264", "libx265", "h264_nvenc", "hevc_nvenc"];

/// What a catalogue model's name looks like (`validate`'s check of `model`).
const MODEL_PATTERN: &str = "^[a-z0-9._-]{1,64}$";

/// Writes `validate`'s limits into the settings schema.
struct SettingBounds;

fn number(x: f64) -> utoipa::Number {
    if x.fract() == 0.0 {
        utoipa::Number::Int(x as isize)
    } else {
        utoipa::Number::Float(x)
    }
}

impl Modify for SettingBounds {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(RefOr::T(Schema::Object(settings))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("ConversionSettings"))
        else {
            return;
        };
        let mut field = |name: &str, change: &dyn Fn(&mut Object)| {
            if let Some(RefOr::T(Schema::Object(o))) = settings.properties.get_mut(name) {
                change(o);
            }
        };
        for &(name, least, most) in SETTING_RANGES {
            field(name, &|o| {
                o.minimum = Some(number(least));
                o.maximum = Some(number(most));
            });
        }
        field("ema_decay", &|o| {
            o.minimum = Some(number(0.0));
            o.exclusive_maximum = Some(number(1.0));
        });
        field("max_output_width", &|o| {
            o.minimum = Some(number(64.0));
            o.multiple_of = Some(number(2.0));
        });
        field("bit_depth", &|o| {
            o.enum_values = Some(vec![8.into(), 10.into(), serde_json::Value::Null]);
        });
        field("encoder", &|o| {
            o.enum_values = Some(ENCODERS.iter().map(|&e| e.into()).collect());
        });
        field("model", &|o| o.pattern = Some(MODEL_PATTERN.to_owned()));
    }
}

/// The document.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(spec())
}
