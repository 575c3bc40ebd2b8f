//! How a step ends when it does not succeed: the input is bad (fail the job with a stable
//! code and a readable message, acknowledge the message), or something around it is
//! (leave the message so that it comes back and is retried).

/// A bad input: the job fails with `code` (stable, kebab-case) and `message` (for people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable kebab-case code, e.g. `not-a-video`.
    pub code: &'static str,
    /// What is wrong and what the person can do about it.
    pub message: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Rejection {}

/// Why a step did not finish: the one reject-or-retry type of every queue worker.
pub use parallax_core::worker::HandlerError;

impl From<Rejection> for HandlerError {
    fn from(r: Rejection) -> Self {
        HandlerError::Reject {
            code: r.code,
            message: r.message,
        }
    }
}

/// Adds context to the `Retry` side of a result.
pub trait RetryContext<T> {
    /// Like anyhow's `context`, for results that become [`HandlerError::Retry`].
    fn retry(self, what: &'static str) -> Result<T, HandlerError>;
}

impl<T, E> RetryContext<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn retry(self, what: &'static str) -> Result<T, HandlerError> {
        self.map_err(|e| HandlerError::Retry(e.into().context(what)))
    }
}
