//! The one error type of the core crate. Adapters map their backend's errors onto it so that
//! workers can tell "retry later" (infrastructure) from "this input is bad" without knowing
//! which backend is in use.

use crate::model::status::JobStatus;

/// Result alias used across the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors returned by the core interfaces and their adapters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("{what} not found: {id}")]
    NotFound {
        /// What kind of thing (`job`, `object`, ...).
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// A write lost against the current state (already exists, changed meanwhile).
    #[error("conflict on {what} {id}: {reason}")]
    Conflict {
        /// What kind of thing.
        what: &'static str,
        /// Its identifier.
        id: String,
        /// Why the write was refused.
        reason: String,
    },
    /// A job status change that the flow does not allow (status only moves forward).
    #[error("job {job_id}: illegal status transition {from} -> {to}")]
    InvalidTransition {
        /// The job.
        job_id: String,
        /// Its current status.
        from: JobStatus,
        /// The status that was asked for.
        to: JobStatus,
    },
    /// The caller passed something malformed (a bad key, cursor, message body, ...).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was invalid.
        what: &'static str,
        /// Why, in words a person can act on.
        reason: String,
    },
    /// A presigned URL failed verification.
    #[error("presigned URL rejected: {0}")]
    Presign(#[from] PresignError),
    /// A receipt handle that no longer holds its message (it was received again since).
    #[error("stale receipt handle for queue {queue}")]
    StaleReceipt {
        /// The queue.
        queue: String,
    },
    /// A local file operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The backend (SQLite, S3, SQS, DynamoDB, ...) failed; usually worth a retry.
    #[error("{backend} error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// Shorthand for a [`Error::Backend`].
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }

    /// Shorthand for an [`Error::Io`] on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Shorthand for an [`Error::InvalidInput`].
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            reason: reason.into(),
        }
    }

    /// True when retrying the same call later may succeed (infrastructure trouble), false when
    /// the input itself is at fault and a retry would fail the same way.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Backend { .. } | Error::Io { .. })
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::backend("sqlite", e)
    }
}

/// Why a presigned URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresignError {
    /// A required query parameter is missing or malformed.
    #[error("missing or malformed parameter {0}")]
    Malformed(&'static str),
    /// The URL's time is up.
    #[error("the link expired")]
    Expired,
    /// The URL was made for another method.
    #[error("the link is for {expected}, not {got}")]
    WrongMethod {
        /// The method the URL was signed for.
        expected: String,
        /// The method used.
        got: String,
    },
    /// The signature does not match (tampered key, expiry or disposition, or another secret).
    #[error("bad signature")]
    BadSignature,
}
