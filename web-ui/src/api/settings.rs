//! What a job is made with: the device presets and the catalogue's depth models, listed for
//! the upload page and scripts, and how a request's preset, mode and settings become a job's.

use axum::extract::State;
use axum::Json;
use parallax_core::model::{ConversionSettings, StereoMode};
use serde::Serialize;
use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::presets;
use crate::AppState;

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

/// The mode and settings a request asks for: `preset`'s, else `base`; then `mode` and each
/// field of `settings` override; the model it names must be in the catalogue.
pub(super) fn choose(
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
