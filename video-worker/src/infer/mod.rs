//! The segment worker: receive a `SegmentTask`, download the segment (and the previous one for
//! the seam warm-up, unless this process has just converted it and hands its final depth state
//! over, see [`crate::seam`]), convert it, check its frame count, upload its depth maps to
//! `keys::depth(job, segment)` and the result to `task.output_key` (plus the preview images
//! for segment 0), report a `SegmentOutput`, delete the task.
//!
//! Depth once, render many: every converted segment's normalised depth is stored before its
//! `SegmentOutput` is sent (same key on a retry), so a completed job can be re-rendered. A
//! re-render's task carries `depth_key` (the stored depth of the job that computed it); the
//! worker then downloads that instead of a previous segment and renders from it: no model
//! run, no warm-up, nothing stored. The whole re-render flow is described in media-worker's
//! chunking step, which turns a re-render job into tasks.
//!
//! The loop runs on core's queue-worker runtime ([`parallax_core::worker`]), like every other
//! queue of the fleet; [`InferWorker`] is its [`Handler`]. What that means here, in the order
//! things can go wrong:
//! - The message stays invisible while converting (the runtime's heartbeat). If the lease is
//!   lost anyway, the runtime drops the conversion: another worker has the message.
//! - A crash mid-segment leaves the message to come back after its visibility timeout, and
//!   another worker redoes the segment to the same keys.
//! - Bad input (not a video, missing segment, invalid settings, an unknown model) is a
//!   [`HandlerError::Reject`]: the job fails at once with a code and a readable message, and
//!   the task is deleted.
//! - Anything else is a [`HandlerError::Retry`] (the message comes back after a short
//!   back-off). On the last receive the queue allows, a failure also marks the job failed
//!   (`segment-failed`, naming the segment and the cause, see [`Handler::give_up`]), so the
//!   copy that then lands in the dead-letter queue is never silent.
//! - On shutdown the segment in hand may finish within the grace period
//!   ([`InferConfig::grace`]); otherwise it is released (visibility 0) for another worker.
//! - A task for a model this worker does not hold is passed on (see [`crate::routing`]):
//!   copied to the queue and deleted, never counted towards the dead-letter queue.
//!
//! Overlap: once a segment has handed nine tenths of its frames to the encoder, it tells the
//! runtime it is draining ([`Context::draining`], with [`LoopConfig::overlap`]), and the slot
//! already takes the next task, so that task's download, probes and seam warm-up run while
//! the last frames and the encoder's lookahead drain and the result is checked and uploaded.
//! At most two segments are in flight per slot, the older one finishing.
//!
//! The module by concern: this file holds the worker, its settings and its [`Handler`];
//! `dispatch` decides what a received task leads to (skipped, passed on, rejected or
//! converted); `segment` converts one segment (inputs, seam start, the converter, the frame
//! check); `outputs` stores what a converted segment leaves (depth, result, playable copy,
//! previews, notes) and reports it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use parallax_core::backends::Backends;
use parallax_core::clock::Clock;
use parallax_core::jobs::JobStore;
use parallax_core::keys::QueueName;
use parallax_core::model::SegmentTask;
use parallax_core::queue::{QueueReceiver, QueueSender, QueueSettings, ReceivedMessage};
use parallax_core::storage::ObjectStorage;
use parallax_core::worker::{
    self, CancellationToken, Context, Handler, HandlerError, LoopConfig, Outcome,
};

use crate::converter::SegmentConverter;
use crate::routing::{self, HeldModels, HolderTiming};
use crate::seam::Handoffs;

mod dispatch;
mod outputs;
mod segment;

/// How the segment worker runs.
#[derive(Debug, Clone)]
pub struct InferConfig {
    /// Segments converted at once by this process.
    pub concurrency: usize,
    /// Start a slot's next segment while its current one finishes (see the module docs).
    pub overlap: bool,
    /// The queue's visibility timeout (what each heartbeat extends the lease to).
    pub visibility_timeout: Duration,
    /// Receives after which the queue moves a message to its dead-letter queue.
    pub max_receives: u32,
    /// How long the segments in hand may still run after shutdown before they are released
    /// for another worker.
    pub grace: Duration,
    /// A failed segment is tried again after this times its receive count (at most the
    /// visibility timeout); the runtime's back-off step.
    pub retry_backoff: Duration,
    /// Folder for the per-segment scratch directories (the system temp dir when `None`).
    pub work_dir: Option<PathBuf>,
    /// How long a job may wait for a worker holding the model it names, when no running
    /// worker holds it, before it fails with `no-worker-for-model`.
    pub model_wait: Duration,
    /// How long a task for a model this worker does not hold stays hidden before it is
    /// passed on (sent again for another worker), when some running worker holds the model.
    pub pass_on_pause: Duration,
    /// How often this worker renews its notes of the models it holds, and how fresh another
    /// worker's note must be to count.
    pub holders: HolderTiming,
}

impl InferConfig {
    /// Settings matching the queue settings of `common`.
    pub fn from_common(common: &parallax_core::config::CommonArgs) -> Self {
        let q = common.queue_settings();
        Self {
            concurrency: 1,
            overlap: true,
            visibility_timeout: q.visibility_timeout,
            max_receives: q.max_receives,
            grace: Duration::from_secs(30),
            retry_backoff: LoopConfig::new(QueueName::Segments.to_string(), &q).retry_backoff,
            work_dir: None,
            model_wait: Duration::from_secs(30 * 60),
            pass_on_pause: Duration::from_secs(2),
            holders: HolderTiming::default(),
        }
    }
}

/// The segment worker over one set of adapters and the depth models it holds: the
/// segments queue's [`Handler`].
#[derive(Debug, Clone)]
pub struct InferWorker {
    jobs: Arc<dyn JobStore>,
    storage: Arc<dyn ObjectStorage>,
    tasks: Arc<dyn QueueReceiver>,
    /// The segments queue's sender: a task this worker cannot serve goes back through it.
    own_queue: Arc<dyn QueueSender>,
    outputs: Arc<dyn QueueSender>,
    models: HeldModels,
    cfg: InferConfig,
    handoffs: Arc<Handoffs>,
    /// The adapters' clock: how long a job has waited for a model, how fresh a holder's
    /// note is (tests move it instead of waiting out `model_wait`).
    clock: Arc<dyn Clock>,
}

impl InferWorker {
    /// A worker with one (default) model, reading the segments queue and reporting to the
    /// segment-output queue.
    pub fn new(
        backends: &Backends,
        converter: Arc<dyn SegmentConverter>,
        cfg: InferConfig,
    ) -> Self {
        Self::with_models(backends, HeldModels::new(converter, None), cfg)
    }

    /// A worker holding `models` (see [`crate::routing`]).
    pub fn with_models(backends: &Backends, models: HeldModels, cfg: InferConfig) -> Self {
        Self {
            jobs: backends.jobs.clone(),
            storage: backends.storage.clone(),
            tasks: backends.queue(QueueName::Segments).receiver.clone(),
            own_queue: backends.queue(QueueName::Segments).sender.clone(),
            outputs: backends.queue(QueueName::SegmentOutput).sender.clone(),
            models,
            cfg,
            handoffs: Arc::default(),
            clock: backends.clock.clone(),
        }
    }

    /// Receives and converts segments until `shutdown`, `concurrency` at a time, on core's
    /// queue-worker runtime; meanwhile renews the notes of the models this worker holds.
    pub async fn run(&self, shutdown: CancellationToken) {
        let names: Vec<String> = self.models.names().map(str::to_owned).collect();
        tracing::info!(concurrency = self.cfg.concurrency, overlap = self.cfg.overlap, models = ?names, "segment worker started");
        let notes = tokio::spawn(routing::renew_notes_on(
            self.clock.clone(),
            self.storage.clone(),
            names,
            self.cfg.holders,
            shutdown.clone(),
        ));
        let cfg = LoopConfig {
            concurrency: self.cfg.concurrency.max(1),
            overlap: self.cfg.overlap,
            visibility_timeout: self.cfg.visibility_timeout,
            max_receives: self.cfg.max_receives,
            grace: self.cfg.grace,
            retry_backoff: self.cfg.retry_backoff,
            ..LoopConfig::new(QueueName::Segments.to_string(), &QueueSettings::default())
        };
        worker::run(self.tasks.clone(), Arc::new(self.clone()), cfg, shutdown).await;
        let _ = notes.await;
        tracing::info!("segment worker stopped");
    }

    fn task(msg: &ReceivedMessage) -> Option<SegmentTask> {
        serde_json::from_str(&msg.body).ok()
    }
}

#[async_trait]
impl Handler for InferWorker {
    async fn handle(&self, msg: &ReceivedMessage, ctx: &Context) -> Result<Outcome, HandlerError> {
        let Some(task) = Self::task(msg) else {
            tracing::error!(
                "segments message is not a SegmentTask; leaving it for the dead-letter queue"
            );
            return Ok(Outcome::Release(Duration::ZERO));
        };
        self.handle_task(&task, msg, ctx).await
    }

    async fn fail_job(
        &self,
        msg: &ReceivedMessage,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        if let Some(task) = Self::task(msg) {
            worker::fail_job(&*self.jobs, &task.job_id, code, message)
                .await
                .context("marking the job failed")?;
        }
        Ok(())
    }

    fn span(&self, msg: &ReceivedMessage) -> tracing::Span {
        match Self::task(msg) {
            Some(t) => {
                tracing::info_span!("segment", job_id = %t.job_id, segment = t.segment_index)
            }
            None => tracing::Span::none(),
        }
    }

    fn give_up(&self, msg: &ReceivedMessage, error: &anyhow::Error) -> (&'static str, String) {
        let what = Self::task(msg).map_or_else(
            || "a segment".to_owned(),
            |t| format!("segment {} of {}", t.segment_index + 1, t.total_segments),
        );
        (
            "segment-failed",
            format!(
                "{what} could not be converted after {} attempts: {error:#}",
                msg.receive_count
            ),
        )
    }
}
