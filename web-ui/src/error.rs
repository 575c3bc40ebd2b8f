//! The one error type of the HTTP layer. Every failure becomes a JSON body
//! `{"error": {"code", "message"}}` with a stable kebab-case code and a sentence a person can
//! act on; internal details (paths, SQL, backend messages) are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parallax_core::Error as CoreError;
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// Readable message, safe to show.
    pub message: String,
    /// Extra headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl AppError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a job id that is not stored.
    pub fn job_not_found(job_id: &str) -> Self {
        let shown: String = job_id.chars().take(64).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            "job-not-found",
            format!("there is no job with id {shown:?}"),
        )
    }

    /// 409: the job is not in a state that allows this.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 403.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 500 that logs `detail` and shows only a generic sentence.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it was logged, please try again later",
        )
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { what: "job", id } => AppError::job_not_found(&id),
            CoreError::NotFound { what, .. } => AppError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("that {what} does not exist"),
            ),
            CoreError::InvalidInput { what, reason } => {
                let code = if what == "cursor" {
                    "bad-cursor"
                } else {
                    "invalid-input"
                };
                AppError::bad_request(code, format!("invalid {what}: {reason}"))
            }
            CoreError::InvalidTransition { from, .. } => AppError::conflict(
                "job-state",
                format!("the job is {from} and cannot be changed that way any more"),
            ),
            CoreError::Conflict { .. } => {
                AppError::conflict("conflict", "the job changed meanwhile; please retry")
            }
            CoreError::Presign(_) => AppError::forbidden(
                "bad-signature",
                "this link is not valid (expired, altered, or for another method)",
            ),
            other => AppError::internal(other),
        }
    }
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs and for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable kebab-case code (each route lists the ones it answers).
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

/// Result alias of handlers.
pub type AppResult<T> = Result<T, AppError>;
