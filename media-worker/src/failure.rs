//! How a step ends when it does not succeed: the input is bad (fail the job with a stable
//! code and a readable message, acknowledge the message), or something around it is
//! (leave the message so that it comes back and is retried).

use parallax_media::process::ProcessError;

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

/// Why a step did not finish.
#[derive(Debug)]
pub enum Failure {
    /// The input is at fault: fail the job, delete the message.
    Reject(Rejection),
    /// Infrastructure (storage, queue, a killed process, ...): leave the message for a retry.
    Retry(anyhow::Error),
}

impl Failure {
    /// A bad input.
    pub fn reject(code: &'static str, message: impl Into<String>) -> Self {
        Failure::Reject(Rejection::new(code, message))
    }
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Failure::Reject(r)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Retry(e)
    }
}

impl From<parallax_core::Error> for Failure {
    fn from(e: parallax_core::Error) -> Self {
        Failure::Retry(e.into())
    }
}

impl From<ProcessError> for Failure {
    fn from(e: ProcessError) -> Self {
        Failure::Retry(e.into())
    }
}

impl From<parallax_media::Error> for Failure {
    fn from(e: parallax_media::Error) -> Self {
        Failure::Retry(e.into())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Reject(r) => write!(f, "rejected: {r}"),
            Failure::Retry(e) => write!(f, "will retry: {e:#}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Adds context to the `Retry` side of a result.
pub trait RetryContext<T> {
    /// Like anyhow's `context`, for results that become [`Failure::Retry`].
    fn retry(self, what: &'static str) -> Result<T, Failure>;
}

impl<T, E> RetryContext<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn retry(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::Retry(e.into().context(what)))
    }
}
