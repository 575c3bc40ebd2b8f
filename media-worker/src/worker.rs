//! The queue loops. Each receives one message at a time, handles it in its own task (a panic
//! boundary) while a heartbeat keeps it invisible, deletes it only after success, and
//! classifies failures: a bad input fails its job (stable code, readable message) and the
//! message is deleted; anything else leaves the message to come back, and on its last
//! allowed delivery fails the job so that a person sees why. On shutdown the loop stops
//! receiving, lets the current message finish within the grace period, and otherwise
//! releases it (visibility 0) for another worker.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parallax_core::backends::Backends;
use parallax_core::keys::QueueName;
use parallax_core::model::{ChunkingMessage, JobUpdate, ReassemblyRequest};
use parallax_core::queue::{QueueReceiver, ReceivedMessage};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::chunk::{self, ChunkOutcome};
use crate::failure::{Failure, Rejection};
use crate::reassemble::{self, ReassemblyOutcome};
use crate::settings::Settings;

/// Which step a loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The chunking queue.
    Chunking,
    /// The reassembly queue.
    Reassembly,
}

impl Step {
    fn queue(self) -> QueueName {
        match self {
            Step::Chunking => QueueName::Chunking,
            Step::Reassembly => QueueName::Reassembly,
        }
    }

    fn gave_up_code(self) -> &'static str {
        match self {
            Step::Chunking => "chunking-failed",
            Step::Reassembly => "reassembly-failed",
        }
    }
}

/// What the loops share.
#[derive(Debug, Clone)]
pub struct Worker {
    /// The adapters.
    pub backends: Backends,
    /// The media settings.
    pub settings: Arc<Settings>,
    /// The queues' visibility timeout (the heartbeat renews it at a third of it).
    pub visibility_timeout: Duration,
    /// Deliveries after which the queue dead-letters a message.
    pub max_receives: u32,
}

/// How one message ended.
#[derive(Debug)]
enum Handled {
    /// Delete it.
    Done,
    /// Leave it to come back.
    Retry(anyhow::Error),
}

impl Worker {
    /// Runs `step`'s loop until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, step: Step, mut shutdown: watch::Receiver<bool>) {
        let receiver = self.backends.queue(step.queue()).receiver.clone();
        tracing::info!(queue = %step.queue(), "loop started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let received = tokio::select! {
                _ = shutdown.changed() => break,
                r = receiver.receive(1) => r,
            };
            let messages = match received {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(queue = %step.queue(), error = %e, "receive failed; retrying");
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            for msg in messages {
                self.clone()
                    .process(step, receiver.clone(), msg, shutdown.clone())
                    .await;
            }
        }
        tracing::info!(queue = %step.queue(), "loop stopped");
    }

    /// Handles one message: heartbeat, panic boundary, delete or leave, shutdown release.
    async fn process(
        self: Arc<Self>,
        step: Step,
        receiver: Arc<dyn QueueReceiver>,
        msg: ReceivedMessage,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let span = tracing::info_span!("message", queue = %step.queue(), message_id = %msg.message_id, receive_count = msg.receive_count);
        let body = msg.body.clone();
        let last_attempt = msg.receive_count >= self.max_receives;
        let this = self.clone();
        let task = tokio::spawn(
            async move { this.handle(step, &body, last_attempt).await }.instrument(span.clone()),
        );
        let abort = task.abort_handle();
        let work = heartbeat(
            receiver.as_ref(),
            &msg.receipt_handle,
            self.visibility_timeout,
            task,
        );
        tokio::pin!(work);
        let grace = self.settings.shutdown_grace;
        let joined = tokio::select! {
            r = &mut work => Some(r),
            _ = async {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                tracing::info!(parent: &span, grace = ?grace, "shutting down: letting the current message finish");
                tokio::time::sleep(grace).await;
            } => None,
        };
        let _enter = span.enter();
        let outcome = match joined {
            None => {
                abort.abort();
                tracing::warn!("did not finish within the grace period; releasing the message");
                if let Err(e) = receiver
                    .change_visibility(&msg.receipt_handle, Duration::ZERO)
                    .await
                {
                    tracing::warn!(error = %e, "could not release the message; it comes back after its timeout");
                }
                return;
            }
            Some(Ok(h)) => h,
            Some(Err(e)) if e.is_panic() => {
                Handled::Retry(anyhow::anyhow!("the handler panicked: {e}"))
            }
            Some(Err(e)) => Handled::Retry(anyhow::anyhow!("the handler was cancelled: {e}")),
        };
        match outcome {
            Handled::Done => match receiver.delete(&msg.receipt_handle).await {
                Ok(()) => {}
                Err(parallax_core::Error::StaleReceipt { .. }) => {
                    tracing::warn!("the message was handed out again meanwhile; not deleted")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "deleting the message failed; it will be redelivered (the steps are idempotent)")
                }
            },
            Handled::Retry(e) => {
                tracing::warn!(error = format!("{e:#}"), "leaving the message for a retry")
            }
        }
    }

    /// The step itself; never panics on bad input.
    async fn handle(&self, step: Step, body: &str, last_attempt: bool) -> Handled {
        match step {
            Step::Chunking => self.handle_chunking(body, last_attempt).await,
            Step::Reassembly => self.handle_reassembly(body, last_attempt).await,
        }
    }

    async fn handle_chunking(&self, body: &str, last_attempt: bool) -> Handled {
        let message = match ChunkingMessage::parse(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable chunking message");
                return Handled::Done;
            }
        };
        if let ChunkingMessage::Test(t) = &message {
            tracing::info!(bucket = %t.bucket, "dropping S3's test event");
            return Handled::Done;
        }
        let ids = message.job_ids();
        if ids.is_empty() {
            tracing::info!("dropping a chunking message that names no upload");
        }
        for job_id in ids {
            let span = tracing::info_span!("job", job_id = %job_id);
            let result = chunk::chunk_job(&self.backends, &self.settings, &job_id)
                .instrument(span.clone())
                .await;
            let _e = span.enter();
            match result {
                Ok(ChunkOutcome::Dropped(why)) => tracing::info!(reason = %why, "nothing to chunk"),
                Ok(o) => tracing::info!(outcome = ?o, "chunking done"),
                Err(f) => {
                    if let Some(h) = self.settle(Step::Chunking, &job_id, f, last_attempt).await {
                        return h;
                    }
                }
            }
        }
        Handled::Done
    }

    async fn handle_reassembly(&self, body: &str, last_attempt: bool) -> Handled {
        let request: ReassemblyRequest = match serde_json::from_str(body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable reassembly request");
                return Handled::Done;
            }
        };
        let span = tracing::info_span!("job", job_id = %request.job_id);
        let result = reassemble::reassemble_job(&self.backends, &self.settings, &request)
            .instrument(span.clone())
            .await;
        let _e = span.enter();
        match result {
            Ok(ReassemblyOutcome::Dropped(why)) => {
                tracing::info!(reason = %why, "nothing to reassemble");
                Handled::Done
            }
            Ok(ReassemblyOutcome::Completed { .. }) => Handled::Done,
            Err(f) => self
                .settle(Step::Reassembly, &request.job_id, f, last_attempt)
                .await
                .unwrap_or(Handled::Done),
        }
    }

    /// Fails the job for a rejection (or a retry on the last attempt); returns `Some` when the
    /// message must be left for a retry.
    async fn settle(
        &self,
        step: Step,
        job_id: &str,
        failure: Failure,
        last_attempt: bool,
    ) -> Option<Handled> {
        let rejection = match failure {
            Failure::Reject(r) => r,
            Failure::Retry(e) if last_attempt => Rejection::new(
                step.gave_up_code(),
                format!("gave up after {} attempts: {e:#}", self.max_receives),
            ),
            Failure::Retry(e) => return Some(Handled::Retry(e)),
        };
        tracing::warn!(code = rejection.code, reason = %rejection.message, "failing the job");
        let update = JobUpdate::failed(rejection.code, rejection.message);
        match self.backends.jobs.update(job_id, &update).await {
            Ok(_) | Err(parallax_core::Error::InvalidTransition { .. }) => None,
            Err(e) => Some(Handled::Retry(
                anyhow::Error::new(e).context("marking the job failed"),
            )),
        }
    }
}

/// Awaits `work`, renewing the message's visibility every third of the timeout.
async fn heartbeat<F: Future>(
    receiver: &dyn QueueReceiver,
    receipt: &str,
    visibility: Duration,
    work: F,
) -> F::Output {
    let period = (visibility / 3).max(Duration::from_millis(200));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = receiver.change_visibility(receipt, visibility).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }
    }
}
