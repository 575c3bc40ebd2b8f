//! The chunking and reassembly handlers, run by core's queue-worker runtime
//! ([`parallax_core::worker`]): one message at a time, a heartbeat keeping it invisible, a
//! panic boundary, bad input failing its job (stable code, readable message) and deleting the
//! message, anything else retried with a back-off and, on the last allowed receive, failing
//! the job before the message goes to the dead-letter queue. On shutdown the loop stops
//! receiving, lets the current message finish within `SHUTDOWN_GRACE_SECS`, and otherwise
//! releases it (visibility 0) for another worker.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use parallax_core::backends::Backends;
use parallax_core::keys::QueueName;
use parallax_core::model::{ChunkingMessage, ReassemblyRequest};
use parallax_core::queue::{QueueSettings, ReceivedMessage};
use parallax_core::worker::{
    self, CancellationToken, Context, Handler, HandlerError, LoopConfig, Outcome,
};

use crate::chunk::{self, ChunkOutcome};
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
}

/// What the handlers share.
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

impl Worker {
    /// Runs `step`'s loop until `shutdown` is cancelled (see
    /// [`parallax_core::worker::shutdown_token`]).
    pub async fn run(self: Arc<Self>, step: Step, shutdown: CancellationToken) {
        let receiver = self.backends.queue(step.queue()).receiver.clone();
        let cfg = LoopConfig {
            visibility_timeout: self.visibility_timeout,
            max_receives: self.max_receives,
            grace: self.settings.shutdown_grace,
            ..LoopConfig::new(step.queue().to_string(), &QueueSettings::default())
        };
        let handler: Arc<dyn Handler> = match step {
            Step::Chunking => Arc::new(Chunking(self)),
            Step::Reassembly => Arc::new(Reassembly(self)),
        };
        worker::run(receiver, handler, cfg, shutdown).await
    }

    async fn fail_jobs(&self, ids: &[String], code: &str, message: &str) -> anyhow::Result<()> {
        for id in ids {
            worker::fail_job(&*self.backends.jobs, id, code, message)
                .await
                .with_context(|| format!("marking job {id} failed"))?;
        }
        Ok(())
    }
}

/// The chunking queue: upload events (or plain `{"job_id"}` messages) to segments and tasks.
#[derive(Debug)]
pub struct Chunking(pub Arc<Worker>);

impl Chunking {
    /// The jobs a chunking message names (none when it is unreadable or S3's test event).
    fn job_ids(msg: &ReceivedMessage) -> Vec<String> {
        ChunkingMessage::parse(&msg.body)
            .map(|m| m.job_ids())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Handler for Chunking {
    async fn handle(&self, msg: &ReceivedMessage, _: &Context) -> Result<Outcome, HandlerError> {
        let message = match ChunkingMessage::parse(&msg.body) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable chunking message");
                return Ok(Outcome::Done);
            }
        };
        if let ChunkingMessage::Test(t) = &message {
            tracing::info!(bucket = %t.bucket, "dropping S3's test event");
            return Ok(Outcome::Done);
        }
        match message.job_ids().as_slice() {
            [] => {
                tracing::info!("dropping a chunking message that names no upload");
                Ok(Outcome::Done)
            }
            [job_id] => {
                match chunk::chunk_job(&self.0.backends, &self.0.settings, job_id).await? {
                    ChunkOutcome::Dropped(why) => tracing::info!(reason = %why, "nothing to chunk"),
                    o => tracing::info!(outcome = ?o, "chunking done"),
                }
                Ok(Outcome::Done)
            }
            several => {
                // One message per upload, so that each succeeds, retries or fails on its own.
                let bodies: Vec<String> = several
                    .iter()
                    .map(|id| serde_json::json!({ "job_id": id }).to_string())
                    .collect();
                self.0
                    .backends
                    .queue(QueueName::Chunking)
                    .sender
                    .send_batch(&bodies)
                    .await
                    .context("splitting an event that names several uploads")?;
                tracing::info!(
                    uploads = several.len(),
                    "split an event naming several uploads"
                );
                Ok(Outcome::Done)
            }
        }
    }

    async fn fail_job(
        &self,
        msg: &ReceivedMessage,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        self.0.fail_jobs(&Self::job_ids(msg), code, message).await
    }

    fn span(&self, msg: &ReceivedMessage) -> tracing::Span {
        match Self::job_ids(msg).as_slice() {
            [job_id] => tracing::info_span!("job", job_id = %job_id),
            _ => tracing::Span::none(),
        }
    }

    fn give_up(&self, msg: &ReceivedMessage, error: &anyhow::Error) -> (&'static str, String) {
        (
            "chunking-failed",
            format!("gave up after {} attempts: {error:#}", msg.receive_count),
        )
    }
}

/// The reassembly queue: converted segments to the final video.
#[derive(Debug)]
pub struct Reassembly(pub Arc<Worker>);

impl Reassembly {
    fn request(msg: &ReceivedMessage) -> Option<ReassemblyRequest> {
        serde_json::from_str(&msg.body).ok()
    }
}

#[async_trait]
impl Handler for Reassembly {
    async fn handle(&self, msg: &ReceivedMessage, _: &Context) -> Result<Outcome, HandlerError> {
        let request: ReassemblyRequest = match serde_json::from_str(&msg.body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable reassembly request");
                return Ok(Outcome::Done);
            }
        };
        match reassemble::reassemble_job(&self.0.backends, &self.0.settings, &request).await? {
            ReassemblyOutcome::Dropped(why) => {
                tracing::info!(reason = %why, "nothing to reassemble")
            }
            ReassemblyOutcome::Completed { .. } => {}
        }
        Ok(Outcome::Done)
    }

    async fn fail_job(
        &self,
        msg: &ReceivedMessage,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let ids: Vec<String> = Self::request(msg).map(|r| r.job_id).into_iter().collect();
        self.0.fail_jobs(&ids, code, message).await
    }

    fn span(&self, msg: &ReceivedMessage) -> tracing::Span {
        match Self::request(msg) {
            Some(r) => tracing::info_span!("job", job_id = %r.job_id),
            None => tracing::Span::none(),
        }
    }

    fn give_up(&self, msg: &ReceivedMessage, error: &anyhow::Error) -> (&'static str, String) {
        (
            "reassembly-failed",
            format!("gave up after {} attempts: {error:#}", msg.receive_count),
        )
    }
}

#[cfg(test)]
mod tests {
    use parallax_core::config::CommonArgs;
    use parallax_core::keys;
    use parallax_core::model::S3EventNotification;

    use super::*;

    /// Each upload of a multi-record event succeeds, retries or fails on its own.
    #[tokio::test]
    async fn an_event_naming_several_uploads_is_split_into_one_message_each() {
        let dir = tempfile::tempdir().unwrap();
        let backends = Backends::from_config(&CommonArgs::local(dir.path()))
            .await
            .unwrap();
        let worker = Arc::new(Worker {
            backends: backends.clone(),
            settings: Arc::new(Settings::default()),
            visibility_timeout: Duration::from_secs(60),
            max_receives: 5,
        });
        let mut event = S3EventNotification::object_created("b", &keys::source("job-a"), 1);
        event
            .records
            .extend(S3EventNotification::object_created("b", &keys::source("job-b"), 1).records);
        let msg = ReceivedMessage {
            receipt_handle: "r".into(),
            body: serde_json::to_string(&event).unwrap(),
            receive_count: 1,
            message_id: "m".into(),
        };
        let ctx = Context::new(1, 5, CancellationToken::new());
        let outcome = Chunking(worker).handle(&msg, &ctx).await.unwrap();
        assert_eq!(outcome, Outcome::Done);
        let queue = backends.queue(QueueName::Chunking).receiver.clone();
        let mut ids = Vec::new();
        for m in queue.receive(10).await.unwrap() {
            ids.extend(ChunkingMessage::parse(&m.body).unwrap().job_ids());
        }
        ids.sort();
        assert_eq!(ids, ["job-a", "job-b"]);
    }
}
