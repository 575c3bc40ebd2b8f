//! What the handlers read from a request: its JSON body (refused in the one error shape when
//! it is too large or not the expected JSON), a title, and the job an `{id}` names.

use axum::body::Bytes;
use axum::http::StatusCode;
use parallax_core::model::Job;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};
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

/// The body as `T`; an empty body is `{}`, every field left out.
pub(super) fn parse_json<T: DeserializeOwned>(body: &Bytes) -> AppResult<T> {
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

/// The request's title, cleaned, or `fallback`'s when it gives none.
pub(super) fn title_or(
    given: Option<&str>,
    fallback: impl FnOnce() -> String,
) -> AppResult<String> {
    let title = clean_title(given.unwrap_or(""))?;
    Ok(if title.is_empty() { fallback() } else { title })
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
