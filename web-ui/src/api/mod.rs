//! The JSON API (see `/api/openapi.json`). The pages use it too. One module per concern; the
//! router in `lib.rs` and the document in `openapi` name each handler by its module.
//!
//! - [`request`]: what the handlers read from a request: the JSON body, a title, the job an
//!   `{id}` names;
//! - [`settings`]: the presets and depth models a job is made with, and how a request's
//!   preset, mode and settings become a job's;
//! - [`create`]: `POST /api/jobs`, a new job and its presigned upload;
//! - [`patch`]: `PATCH /api/jobs/{id}`, a new title or "upload finished";
//! - [`jobs`]: reading, listing, watching, cancelling and downloading jobs;
//! - [`segments`]: a converting job's finished segments, for its page's player;
//! - [`rerender`] and [`convert`]: jobs made from another job's stored work, which a
//!   [`marker`] object starts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::AppError;
use crate::AppState;

pub mod convert;
pub mod create;
pub mod jobs;
pub mod marker;
pub mod patch;
pub mod request;
pub mod rerender;
pub mod segments;
pub mod settings;

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
