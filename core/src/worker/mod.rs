//! The one queue-worker runtime: every queue loop of the fleet (chunking, reassembly,
//! segment outputs, ...) is a [`Handler`] run by [`run`], so that they all behave the same
//! way when something goes wrong.
//!
//! Per message, [`run`]:
//! - hands it to the handler in its own task (a panic fails that message only, never the
//!   loop), while a heartbeat ([`hold_lease`]) keeps it invisible;
//! - when the lease is lost (the receipt went stale, or no heartbeat got through for a whole
//!   visibility timeout) drops the handler's future: another worker may hold the message now;
//! - ends it by what the handler returned:
//!   - [`Outcome::Done`]: delete it;
//!   - [`Outcome::Release`]: make it visible again after a delay (for another worker);
//!   - [`HandlerError::Reject`] (bad input): fail the job with the code and message through
//!     [`Handler::fail_job`], then delete it;
//!   - [`HandlerError::Retry`] (infrastructure) or a panic: release it with a back-off that
//!     grows with its receive count; on the last receive the queue allows, fail the job
//!     first ([`Handler::give_up`] says with what), so the copy that then lands in the
//!     dead-letter queue is never silent.
//!
//! On shutdown ([`shutdown_token`]: Ctrl-C or SIGTERM) a loop stops receiving, lets the
//! messages in hand finish within [`LoopConfig::grace`], and releases (visibility 0) those
//! that do not, so another worker takes them over at once.
//!
//! Overlap ([`LoopConfig::overlap`]): a handler whose last part needs little of what its
//! slot stands for (a GPU, say, while an encoder drains and a result uploads) says so with
//! [`Context::draining`]; the loop then receives the next message for that slot while the
//! first one finishes, so the expensive resource is not idle between messages. At most twice
//! [`LoopConfig::concurrency`] messages are in hand at once.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use parallax_core::queue::ReceivedMessage;
//! use parallax_core::worker::{self, Context, Handler, HandlerError, LoopConfig, Outcome};
//!
//! #[derive(Debug)]
//! struct Echo;
//!
//! #[async_trait::async_trait]
//! impl Handler for Echo {
//!     async fn handle(&self, msg: &ReceivedMessage, _: &Context) -> Result<Outcome, HandlerError> {
//!         println!("{}", msg.body);
//!         Ok(Outcome::Done)
//!     }
//! }
//!
//! # async fn demo(queue: Arc<dyn parallax_core::queue::QueueReceiver>) {
//! let cfg = LoopConfig::new("echo", &Default::default());
//! worker::run(queue, Arc::new(Echo), cfg, worker::shutdown_token()).await;
//! # }
//! ```

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;
use crate::jobs::JobStore;
use crate::model::JobUpdate;
use crate::queue::{QueueSettings, ReceivedMessage};

mod lease;
mod runtime;
mod shutdown;
#[cfg(test)]
mod tests;

pub use lease::{acknowledge, heartbeat_interval, hold_lease, release, LeaseLost};
pub use runtime::run;
pub use shutdown::shutdown_token;
pub use tokio_util::sync::CancellationToken;

/// How a handled message ends when the handler succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The work is done (or there was nothing to do): delete the message.
    Done,
    /// Not for this worker: make the message visible again after the delay (zero: at once),
    /// for another worker. Releasing the same message again and again ends in the
    /// dead-letter queue once it passes the queue's max receives, which is how a malformed
    /// message is left for a person to inspect.
    Release(Duration),
}

/// Why a handler did not finish a message: ONE classification for every loop.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The input is bad and a retry cannot help: the job fails with `code` (stable,
    /// kebab-case) and `message` (for people), and the message is deleted.
    #[error("rejected ({code}): {message}")]
    Reject {
        /// Stable kebab-case error code, e.g. `not-a-video`.
        code: &'static str,
        /// What is wrong and what the person can do about it.
        message: String,
    },
    /// Infrastructure trouble (storage, queue, a killed process, ...): the message is
    /// released with a back-off and handled again.
    #[error(transparent)]
    Retry(anyhow::Error),
}

impl HandlerError {
    /// A bad input.
    pub fn reject(code: &'static str, message: impl Into<String>) -> Self {
        HandlerError::Reject {
            code,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::Retry(e)
    }
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        HandlerError::Retry(e.into())
    }
}

/// What a handler knows about the delivery it handles.
#[derive(Debug, Clone)]
pub struct Context {
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// Receives after which the queue dead-letters the message.
    pub max_receives: u32,
    /// Cancelled when the process is shutting down. The runtime already bounds the work by
    /// the grace period; a handler may look at it to give up early on work that would
    /// only wait (a long pause, a poll).
    pub shutdown: CancellationToken,
    /// The message's slot, freed early by [`Context::draining`] when the loop overlaps.
    slot: Slot,
}

impl Context {
    /// A context outside the runtime (for calling a handler directly, as tests do):
    /// [`Context::draining`] does nothing.
    pub fn new(receive_count: u32, max_receives: u32, shutdown: CancellationToken) -> Self {
        Self {
            receive_count,
            max_receives,
            shutdown,
            slot: Slot::default(),
        }
    }

    /// Whether this is the last receive the queue allows: a [`HandlerError::Retry`] now
    /// also fails the job.
    pub fn last_attempt(&self) -> bool {
        self.receive_count >= self.max_receives
    }

    /// Says that the rest of this message's work is finishing (draining, checking,
    /// uploading) and hardly needs its slot: with [`LoopConfig::overlap`] the loop receives
    /// the next message for the slot now, while this one runs on to its end (the message
    /// stays leased and is settled as usual). Calling it again, or without overlap, does
    /// nothing. Cheap and callable from synchronous code (a progress callback).
    pub fn draining(&self) {
        self.slot.free();
    }
}

/// A message's claim on one of the loop's [`LoopConfig::concurrency`] slots; shared by the
/// runtime and the handler's [`Context`], so that either may end it first.
#[derive(Debug, Clone, Default)]
struct Slot(std::sync::Arc<std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl Slot {
    fn holding(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(Some(permit))))
    }

    fn free(&self) {
        // A poisoned lock only means a panic elsewhere while freeing: the slot is freed then
        // anyway, when the runtime drops its handle.
        if let Ok(mut held) = self.0.lock() {
            held.take();
        }
    }
}

/// One queue's message handling. The runtime ([`run`]) does the rest: receiving, the
/// heartbeat, the panic boundary, deleting, releasing, failing jobs, shutdown.
#[async_trait]
pub trait Handler: Send + Sync + std::fmt::Debug + 'static {
    /// Handles one message. The future is dropped (at an `.await`) when the lease is lost or
    /// the shutdown grace period ends, so every step must be safe to cut off and redo:
    /// keys derive from (job, segment), writes are conditional.
    async fn handle(&self, msg: &ReceivedMessage, ctx: &Context) -> Result<Outcome, HandlerError>;

    /// Marks the job `msg` is about as failed with `code` and `message`; called for a
    /// [`HandlerError::Reject`] and for a retry on the last allowed receive. A job that is
    /// already finished or gone is not an error (see [`fail_job`]). An error here releases
    /// the message with a back-off instead of deleting it, so the failure is recorded on a
    /// later receive. The default fails nothing: for queues whose messages name no job.
    async fn fail_job(
        &self,
        msg: &ReceivedMessage,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let _ = (msg, code, message);
        Ok(())
    }

    /// The span `msg` is handled and settled in, e.g. one naming the job its body is
    /// about, so that every log line of a job carries its id. It sits inside the runtime's
    /// span of the queue and message id. The default adds nothing.
    fn span(&self, msg: &ReceivedMessage) -> tracing::Span {
        let _ = msg;
        tracing::Span::none()
    }

    /// The code and message a job fails with when its message is given up after
    /// `receive_count` receives that each ended in `error`.
    fn give_up(&self, msg: &ReceivedMessage, error: &anyhow::Error) -> (&'static str, String) {
        (
            "gave-up",
            format!("gave up after {} attempts: {error:#}", msg.receive_count),
        )
    }
}

/// How one loop runs.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// The queue's name, for logs.
    pub queue: String,
    /// Messages handled at once; each receive asks for as many as there are free slots
    /// (at most 10).
    pub concurrency: usize,
    /// Whether a handler may free its slot before it finishes ([`Context::draining`]), so
    /// that the next message is received and started while the first one finishes: at most
    /// `2 x concurrency` messages in hand, at most `concurrency` of them not draining.
    pub overlap: bool,
    /// The queue's visibility timeout: what each heartbeat extends the lease to (every
    /// third of it).
    pub visibility_timeout: Duration,
    /// Receives after which the queue dead-letters a message.
    pub max_receives: u32,
    /// How long a message in hand may still run after shutdown before it is released.
    pub grace: Duration,
    /// A retried message is visible again after this times its receive count (at most the
    /// visibility timeout).
    pub retry_backoff: Duration,
    /// How long to wait after a failed receive.
    pub receive_error_pause: Duration,
}

impl LoopConfig {
    /// One message at a time on `queue` (no overlap), with the timeouts of `settings`, a
    /// 30 s grace period and a 2 s back-off step.
    pub fn new(queue: impl Into<String>, settings: &QueueSettings) -> Self {
        Self {
            queue: queue.into(),
            concurrency: 1,
            overlap: false,
            visibility_timeout: settings.visibility_timeout,
            max_receives: settings.max_receives,
            grace: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(2),
            receive_error_pause: Duration::from_secs(1),
        }
    }

    /// How long a retried message waits before it is handed out again.
    pub fn backoff(&self, receive_count: u32) -> Duration {
        (self.retry_backoff * receive_count.max(1)).min(self.visibility_timeout)
    }
}

/// Marks `job_id` failed with `code` and `message`; a job already past failing (completed,
/// failed) or gone is left as it is and counts as done.
pub async fn fail_job(
    jobs: &dyn JobStore,
    job_id: &str,
    code: &str,
    message: &str,
) -> crate::Result<()> {
    match jobs.update(job_id, &JobUpdate::failed(code, message)).await {
        Ok(_) | Err(Error::InvalidTransition { .. } | Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether any error in the chain is a core "the input is bad" error (as opposed to an
/// infrastructure failure worth a retry).
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<Error>(),
            Some(Error::InvalidInput { .. } | Error::NotFound { .. })
        )
    })
}
