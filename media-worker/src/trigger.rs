//! The completion trigger: for each `SegmentOutput`, record the segment as converted and,
//! when the job's last segment is in, send exactly one `ReassemblyRequest`.
//!
//! Exactly-once does not rest on this process: completions are set membership
//! ([`SegmentCompletionStore::put`] writes a segment only if absent, so a message delivered
//! twice never counts twice), and the decision is ONE conditional write
//! ([`SegmentCompletionStore::claim_reassembly`]) that only one caller per job can win, however
//! many triggers run in however many processes, also when the last two segments finish at
//! the same moment. Only the winner sends.
//!
//! The winner may die between its claim and its send. Its message then comes back, but the
//! claim is already taken, so nobody would send: the [`Trigger::reconcile_once`] pass re-sends
//! the request for jobs claimed longer ago than a timeout that have not moved on to
//! reassembly. Which job was re-sent when is kept in the completion store
//! ([`SegmentCompletionStore::claim_resend`], one conditional write), not in this process, so
//! however many reconcilers run, a job is re-sent at most once per timeout. (A re-sent
//! request can duplicate one that is merely waiting in a long queue; media-worker treats
//! repeated requests as the at-least-once deliveries they are.) The same pass fails the jobs
//! of dead letters whose worker never got to say why ([`Trigger::sweep_dead_letters`]).
//!
//! The segment-output loop runs on core's queue-worker runtime ([`parallax_core::worker`]):
//! heartbeat, panic boundary, back-off, failing the job on the last allowed receive, and the
//! shutdown grace period are the same as every other loop's. It needs no GPU, so it runs in
//! media-worker next to chunking and reassembly (`media-worker trigger` alone).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::Utc;
use parallax_core::backends::Backends;
use parallax_core::clock::Clock;
use parallax_core::completions::SegmentCompletionStore;
use parallax_core::jobs::JobStore;
use parallax_core::keys::QueueName;
use parallax_core::model::{
    JobStatus, JobUpdate, ReassemblyRequest, SegmentCompletion, SegmentOutput, SegmentTask,
};
use parallax_core::queue::{QueueReceiver, QueueSender, QueueSettings, ReceivedMessage};
use parallax_core::worker::{
    self, CancellationToken, Context, Handler, HandlerError, LoopConfig, Outcome,
};
use parallax_core::Error;

/// How long the heartbeat keeps a segment output invisible at a time (renewed every third of
/// it). Handling one is a few small writes, far shorter than the queue's own visibility
/// timeout (a minute by default), so the heartbeat only matters for a stalled store; a
/// handler that outlives a shorter queue timeout is harmless, as handling is idempotent.
const LEASE: Duration = Duration::from_secs(60);

/// The back-off step of a segment output that could not be recorded.
const RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// How long the outputs in hand may still run after shutdown before they are released.
const GRACE: Duration = Duration::from_secs(10);

/// How the trigger runs.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// Segment outputs handled at once (1..=10); each in its own task.
    pub batch: usize,
    /// How often the reconciler looks for claimed-but-not-started reassemblies.
    pub reconcile_interval: Duration,
    /// How long after its claim a job that has not started reassembling gets its request
    /// re-sent (and at most once per this period after that, counted across every process:
    /// the completion store keeps the last re-send).
    pub resend_after: Duration,
    /// How many in-progress jobs one reconciler pass looks at (newest first).
    pub reconcile_scan_limit: usize,
    /// Receives after which the queue moves a message to its dead-letter queue: a failure on
    /// that last receive also fails the job, so it does not wait forever.
    pub max_receives: u32,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            batch: 10,
            reconcile_interval: Duration::from_secs(60),
            resend_after: Duration::from_secs(300),
            reconcile_scan_limit: 1000,
            max_receives: 4,
        }
    }
}

/// What handling one `SegmentOutput` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The completion is recorded (now or before); `requested` is true when this call won
    /// the claim and sent the job's `ReassemblyRequest`.
    Recorded {
        /// Whether this call sent the reassembly request.
        requested: bool,
    },
    /// The job is gone, failed or completed: nothing to record.
    Skipped,
}

/// Why a message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The message is malformed or contradicts the job (a bug upstream, never fixed by a
    /// retry): it is left to reach the dead-letter queue for a person to look at.
    #[error("bad segment-output message: {0}")]
    BadMessage(String),
    /// Storage or queue trouble: the message comes back and is handled again.
    #[error(transparent)]
    Retry(#[from] anyhow::Error),
}

/// The completion trigger over one set of adapters.
#[derive(Debug, Clone)]
pub struct Trigger {
    jobs: Arc<dyn JobStore>,
    completions: Arc<dyn SegmentCompletionStore>,
    outputs: Arc<dyn QueueReceiver>,
    reassembly: Arc<dyn QueueSender>,
    dead_tasks: Arc<dyn QueueReceiver>,
    dead_outputs: Arc<dyn QueueReceiver>,
    /// The adapters' clock: claims are stamped with it, so their age is read with it too.
    clock: Arc<dyn Clock>,
    cfg: TriggerConfig,
}

impl TriggerConfig {
    /// Defaults, with the queue behaviour of `common`.
    pub fn from_common(common: &parallax_core::config::CommonArgs) -> Self {
        Self {
            max_receives: common.queue_settings().max_receives,
            ..Self::default()
        }
    }
}

impl Trigger {
    /// A trigger reading the segment-output queue and sending to the reassembly queue.
    pub fn new(backends: &Backends, cfg: TriggerConfig) -> Self {
        Self {
            jobs: backends.jobs.clone(),
            completions: backends.completions.clone(),
            outputs: backends.queue(QueueName::SegmentOutput).receiver.clone(),
            reassembly: backends.queue(QueueName::Reassembly).sender.clone(),
            dead_tasks: backends.queue(QueueName::Segments).dead_letters.clone(),
            dead_outputs: backends
                .queue(QueueName::SegmentOutput)
                .dead_letters
                .clone(),
            clock: backends.clock.clone(),
            cfg,
        }
    }

    /// Records one converted segment and, if it completes the job, claims and sends the
    /// reassembly request. Idempotent: handling the same output again records nothing new
    /// and sends nothing.
    pub async fn handle(&self, out: &SegmentOutput) -> Result<Handled, TriggerError> {
        let job = self
            .jobs
            .get(&out.job_id)
            .await
            .context("reading the job")?;
        let Some(job) = job else {
            tracing::warn!("segment output for a job that does not exist (deleted?); dropping it");
            return Ok(Handled::Skipped);
        };
        if job.status.is_terminal() {
            tracing::info!(status = %job.status, "job already finished; dropping the segment output");
            return Ok(Handled::Skipped);
        }
        let Some(total) = job.total_segments else {
            // media-worker saves total_segments before it sends any task, so this is a
            // storage that has not caught up yet: retry.
            return Err(anyhow::anyhow!("the job has no total_segments yet").into());
        };
        if out.segment_index >= total {
            return Err(TriggerError::BadMessage(format!(
                "segment index {} but the job has {total} segments",
                out.segment_index
            )));
        }
        let completion = SegmentCompletion {
            job_id: out.job_id.clone(),
            segment_index: out.segment_index,
            output_uri: out.output_key.clone(),
            completed_at: Utc::now(),
            frame_count: Some(out.frame_count),
        };
        let new = self
            .completions
            .put(&completion)
            .await
            .context("recording the segment completion")?;
        // Claim even when the completion was already there: a previous delivery may have
        // recorded it and died before claiming.
        let won = self
            .completions
            .claim_reassembly(&out.job_id, total)
            .await
            .context("claiming the reassembly")?;
        tracing::debug!(new, won, total, "segment completion recorded");
        if won {
            self.send_request(&out.job_id, total).await?;
            tracing::info!(total, "last segment converted; reassembly requested");
        }
        Ok(Handled::Recorded { requested: won })
    }

    async fn send_request(&self, job_id: &str, total: u32) -> anyhow::Result<()> {
        let body = serde_json::to_string(&ReassemblyRequest {
            job_id: job_id.to_owned(),
            total_segments: Some(total),
        })?;
        self.reassembly
            .send(&body)
            .await
            .context("sending the reassembly request")?;
        Ok(())
    }

    /// Receives and handles segment outputs until `shutdown`, on core's queue-worker
    /// runtime: up to `batch` at once, each in its own task. On shutdown it stops receiving
    /// and lets the outputs in hand finish (each is a few small writes).
    pub async fn run(&self, shutdown: CancellationToken) {
        tracing::info!("completion trigger started");
        let cfg = LoopConfig {
            concurrency: self.cfg.batch.clamp(1, 10),
            visibility_timeout: LEASE,
            max_receives: self.cfg.max_receives,
            grace: GRACE,
            retry_backoff: RETRY_BACKOFF,
            ..LoopConfig::new(
                QueueName::SegmentOutput.to_string(),
                &QueueSettings::default(),
            )
        };
        let handler = Arc::new(SegmentOutputs(self.clone()));
        worker::run(self.outputs.clone(), handler, cfg, shutdown).await;
        tracing::info!("completion trigger stopped");
    }

    /// One reconciler pass: re-sends the reassembly request of every in-progress job whose
    /// claim is older than `resend_after` and that has not started reassembling (its
    /// claimer may have died before sending). Returns how many requests it re-sent.
    pub async fn reconcile_once(&self) -> anyhow::Result<usize> {
        let jobs = self
            .jobs
            .list_in_progress(self.cfg.reconcile_scan_limit)
            .await
            .context("listing jobs in progress")?;
        let now = self.clock.now();
        let mut sent = 0;
        for item in jobs {
            if item.status != JobStatus::ChunkingComplete {
                continue;
            }
            let Some(total) = item.total_segments else {
                continue;
            };
            // Claimed at least `resend_after` ago and not re-sent within it, by any process.
            if !self
                .completions
                .claim_resend(&item.job_id, now, self.cfg.resend_after)
                .await
                .context("recording a re-send")?
            {
                continue;
            }
            self.send_request(&item.job_id, total).await?;
            tracing::warn!(job_id = %item.job_id, "reassembly claimed but not started; request re-sent");
            sent += 1;
        }
        Ok(sent)
    }

    /// Fails the jobs of messages that reached the segments or segment-output dead-letter
    /// queue while their job is still live. A segment worker fails the job itself when a
    /// segment fails on its last allowed receive; this covers the case where it never got the
    /// chance (the segment crashed or stalled its worker every time, e.g. out of memory), so a
    /// dead letter is never silent. The messages stay in the dead-letter queues for a person
    /// to inspect (hidden for an hour after each sweep). Returns how many jobs it failed.
    pub async fn sweep_dead_letters(&self) -> anyhow::Result<usize> {
        let tasks = self
            .sweep(&*self.dead_tasks, |body| {
                let t: SegmentTask = serde_json::from_str(body).ok()?;
                let message = format!(
                    "segment {} of {} was given up after repeated attempts: the worker stopped while converting it each time (for example it ran out of memory)",
                    t.segment_index + 1,
                    t.total_segments
                );
                Some((t.job_id, "segment-failed", message))
            })
            .await
            .context("sweeping the segments dead-letter queue")?;
        let outputs = self
            .sweep(&*self.dead_outputs, |body| {
                let o: SegmentOutput = serde_json::from_str(body).ok()?;
                let message = format!(
                    "the completion of segment {} could not be recorded after repeated attempts",
                    o.segment_index + 1
                );
                Some((o.job_id, "trigger-failed", message))
            })
            .await
            .context("sweeping the segment-output dead-letter queue")?;
        Ok(tasks + outputs)
    }

    async fn sweep(
        &self,
        dlq: &dyn QueueReceiver,
        describe: impl Fn(&str) -> Option<(String, &'static str, String)>,
    ) -> anyhow::Result<usize> {
        const HOLD: Duration = Duration::from_secs(3600);
        let mut failed = 0;
        // Bounded: each sweep looks at up to 1,000 dead letters.
        for _ in 0..100 {
            let msgs = dlq.receive(10).await?;
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                if let Some((job_id, code, message)) = describe(&m.body) {
                    let live = self
                        .jobs
                        .get(&job_id)
                        .await?
                        .is_some_and(|j| !j.status.is_terminal());
                    if live {
                        match self
                            .jobs
                            .update(&job_id, &JobUpdate::failed(code, &message))
                            .await
                        {
                            Ok(_) => {
                                tracing::error!(%job_id, code, %message, "dead letter of a live job: job failed");
                                failed += 1;
                            }
                            Err(Error::InvalidTransition { .. } | Error::NotFound { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                worker::release(dlq, &m, HOLD).await;
            }
        }
        Ok(failed)
    }

    /// Runs [`Trigger::reconcile_once`] and [`Trigger::sweep_dead_letters`] every
    /// `reconcile_interval` until `shutdown`.
    pub async fn run_reconciler(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.cfg.reconcile_interval) => {}
            }
            if let Err(e) = self.reconcile_once().await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "reconciler pass failed; trying again next interval"
                );
            }
            match self.sweep_dead_letters().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(jobs = n, "failed jobs whose messages were dead-lettered"),
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "dead-letter sweep failed; trying again next interval"
                ),
            }
        }
    }
}

/// The segment-output queue's [`Handler`]: parse, [`Trigger::handle`], classify.
#[derive(Debug)]
struct SegmentOutputs(Trigger);

impl SegmentOutputs {
    fn output(msg: &ReceivedMessage) -> Option<SegmentOutput> {
        serde_json::from_str(&msg.body).ok()
    }
}

#[async_trait]
impl Handler for SegmentOutputs {
    async fn handle(&self, msg: &ReceivedMessage, _: &Context) -> Result<Outcome, HandlerError> {
        let out: SegmentOutput = match serde_json::from_str(&msg.body) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "segment-output message is not a SegmentOutput; leaving it for the dead-letter queue");
                return Ok(Outcome::Release(Duration::ZERO));
            }
        };
        match self.0.handle(&out).await {
            Ok(_) => Ok(Outcome::Done),
            Err(TriggerError::BadMessage(reason)) => {
                tracing::error!(%reason, "bad segment-output message; leaving it for the dead-letter queue");
                Ok(Outcome::Release(Duration::ZERO))
            }
            Err(TriggerError::Retry(e)) => Err(HandlerError::Retry(e)),
        }
    }

    async fn fail_job(
        &self,
        msg: &ReceivedMessage,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        if let Some(out) = Self::output(msg) {
            worker::fail_job(&*self.0.jobs, &out.job_id, code, message).await?;
        }
        Ok(())
    }

    fn span(&self, msg: &ReceivedMessage) -> tracing::Span {
        match Self::output(msg) {
            Some(o) => {
                tracing::info_span!("segment_output", job_id = %o.job_id, segment = o.segment_index)
            }
            None => tracing::Span::none(),
        }
    }

    fn give_up(&self, msg: &ReceivedMessage, error: &anyhow::Error) -> (&'static str, String) {
        let what = Self::output(msg).map_or_else(
            || "a segment".to_owned(),
            |o| format!("segment {}", o.segment_index + 1),
        );
        (
            "trigger-failed",
            format!(
                "the completion of {what} could not be recorded after {} attempts: {error:#}",
                msg.receive_count
            ),
        )
    }
}
