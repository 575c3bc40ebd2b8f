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
//! Reliability, in the order things can go wrong:
//! - The message stays invisible while converting (a heartbeat in a `select!` with the work).
//!   If the lease is lost anyway, the work stops: another worker has the message.
//! - A crash mid-segment leaves the message to come back after its visibility timeout, and
//!   another worker redoes the segment to the same keys.
//! - Bad input (not a video, missing segment, invalid settings) fails the job at once with a
//!   code and a readable message, and the task is deleted.
//! - Anything else is retried (the message comes back after a short back-off). On the last
//!   receive the queue allows, a failure also marks the job failed (`segment-failed`, naming
//!   the segment and the cause), so the copy that then lands in the dead-letter queue is
//!   never silent.
//! - On shutdown the current message is released at once (visibility 0) for another worker.
//!
//! Overlap: once a segment has handed nine tenths of its frames to the encoder, the slot
//! already takes the next task, so that task's download, probes and seam warm-up run while
//! the last frames and the encoder's lookahead drain and the result is checked and uploaded.
//! At most two segments are in flight per slot, the older one finishing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use parallax_core::backends::Backends;
use parallax_core::jobs::JobStore;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{JobUpdate, SegmentOutput, SegmentTask};
use parallax_core::queue::{QueueReceiver, QueueSender, ReceivedMessage};
use parallax_core::storage::{ObjectStorage, ObjectStorageExt as _};
use parallax_core::Error;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::converter::{BadInput, ConvertRequest, SeamStart, SegmentConverter, StateSink};
use crate::routing::{self, HeldModels, HolderTiming, Pick};
use crate::seam::Handoffs;
use crate::worker;

/// With overlap, the next segment starts once all but `1 / OVERLAP_DIVISOR` of the current
/// one's frames have reached the encoder.
const OVERLAP_DIVISOR: u64 = 10;

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
            work_dir: None,
            model_wait: Duration::from_secs(30 * 60),
            pass_on_pause: Duration::from_secs(2),
            holders: HolderTiming::default(),
        }
    }
}

/// Why a segment could not be converted.
#[derive(Debug)]
pub enum SegmentFailure {
    /// The input is at fault; retrying cannot help. Fails the job with `code`.
    BadInput {
        /// Stable kebab-case code.
        code: &'static str,
        /// A reason a person can act on.
        message: String,
    },
    /// Infrastructure trouble (or something unexplained): retry.
    Retry(anyhow::Error),
}

impl From<anyhow::Error> for SegmentFailure {
    fn from(e: anyhow::Error) -> Self {
        SegmentFailure::Retry(e)
    }
}

impl std::fmt::Display for SegmentFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentFailure::BadInput { code, message } => write!(f, "{code}: {message}"),
            SegmentFailure::Retry(e) => write!(f, "{e:#}"),
        }
    }
}

/// The segment worker over one set of adapters and the depth models it holds.
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
        }
    }

    /// Receives and converts segments until `shutdown`, `concurrency` at a time.
    pub async fn run(&self, shutdown: CancellationToken) {
        let names: Vec<String> = self.models.names().map(str::to_owned).collect();
        tracing::info!(concurrency = self.cfg.concurrency, models = ?names, "segment worker started");
        let notes = tokio::spawn(routing::renew_notes(
            self.storage.clone(),
            names,
            self.cfg.holders,
            shutdown.clone(),
        ));
        let slots: Vec<_> = (0..self.cfg.concurrency.max(1))
            .map(|_| {
                let this = self.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { this.run_slot(shutdown).await })
            })
            .collect();
        for s in slots {
            let _ = s.await;
        }
        let _ = notes.await;
        tracing::info!("segment worker stopped");
    }

    async fn run_slot(&self, shutdown: CancellationToken) {
        // The previous segment, still finishing (encoder drain, checks, upload).
        let mut finishing: Option<(tokio::task::JoinHandle<()>, ReceivedMessage)> = None;
        while !shutdown.is_cancelled() {
            // Not raced against shutdown: a receive cut off midway could hide a message
            // without handing it over. It is a short poll (QUEUE_WAIT_SECS).
            let msgs = match self.tasks.receive(1).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving segment tasks failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            for msg in msgs {
                if shutdown.is_cancelled() {
                    worker::release(&*self.tasks, &msg, Duration::ZERO).await;
                    continue;
                }
                let this = self.clone();
                let token = shutdown.clone();
                let m = msg.clone();
                let fed = Arc::new(tokio::sync::Notify::new());
                let signal = self.cfg.overlap.then(|| fed.clone());
                // Its own task: a panic fails this message only (it comes back after its
                // visibility timeout), never the loop.
                let mut handle =
                    tokio::spawn(
                        async move { this.handle_message_signalling(&m, token, signal).await },
                    );
                let done = tokio::select! {
                    r = &mut handle => Some(r),
                    _ = fed.notified() => None,
                };
                if let Some((prev, prev_msg)) = finishing.take() {
                    log_panic(prev.await, &prev_msg);
                }
                match done {
                    Some(r) => log_panic(r, &msg),
                    None => finishing = Some((handle, msg)),
                }
            }
        }
        if let Some((prev, prev_msg)) = finishing.take() {
            log_panic(prev.await, &prev_msg);
        }
    }

    /// Handles one received task end to end: skip, convert, report, fail or release.
    pub async fn handle_message(&self, msg: &ReceivedMessage, shutdown: CancellationToken) {
        self.handle_message_signalling(msg, shutdown, None).await
    }

    /// [`Self::handle_message`], notifying `fed` once nine tenths of the segment's frames have
    /// been handed to the encoder.
    async fn handle_message_signalling(
        &self,
        msg: &ReceivedMessage,
        shutdown: CancellationToken,
        fed: Option<Arc<tokio::sync::Notify>>,
    ) {
        let task: SegmentTask = match serde_json::from_str(&msg.body) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(message_id = %msg.message_id, error = %e, "segments message is not a SegmentTask; leaving it for the dead-letter queue");
                worker::release(&*self.tasks, msg, Duration::ZERO).await;
                return;
            }
        };
        let span = tracing::info_span!("segment", job_id = %task.job_id, segment = task.segment_index, receives = msg.receive_count);
        self.handle_task(msg, &task, shutdown, fed)
            .instrument(span)
            .await
    }

    async fn handle_task(
        &self,
        msg: &ReceivedMessage,
        task: &SegmentTask,
        shutdown: CancellationToken,
        fed: Option<Arc<tokio::sync::Notify>>,
    ) {
        let job = match self.jobs.get(&task.job_id).await {
            Ok(Some(job)) if job.status.is_terminal() => {
                tracing::info!(status = %job.status, "job already finished; skipping the segment");
                worker::acknowledge(&*self.tasks, msg).await;
                return;
            }
            Ok(Some(job)) => job,
            Ok(None) => {
                tracing::warn!(
                    "segment task for a job that does not exist (deleted?); dropping it"
                );
                worker::acknowledge(&*self.tasks, msg).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the job; the task will be retried");
                worker::release(&*self.tasks, msg, self.backoff(msg)).await;
                return;
            }
        };
        match self.models.pick(task.settings.model.as_deref()) {
            Pick::Held(_) => {
                if job.waiting.is_some() {
                    let clear = JobUpdate {
                        waiting: Some(None),
                        ..JobUpdate::default()
                    };
                    if let Err(e) = self.jobs.update(&task.job_id, &clear).await {
                        tracing::warn!(error = %e, "could not clear the job's wait for a model");
                    }
                }
            }
            Pick::Unknown(name) => {
                let message = format!(
                    "the depth model {name:?} is not in the model catalogue; `video-worker models list` shows the known models"
                );
                tracing::warn!(%message, "bad input: failing the job");
                match self.fail_job(task, "unknown-model", &message).await {
                    Ok(()) => worker::acknowledge(&*self.tasks, msg).await,
                    Err(_) => worker::release(&*self.tasks, msg, self.backoff(msg)).await,
                }
                return;
            }
            Pick::NotHeld(name) => {
                let name = name.to_owned();
                self.pass_on(msg, task, &job, &name, shutdown).await;
                return;
            }
        }

        let frames_done = Arc::new(AtomicU64::new(0));
        let beat = worker::heartbeat(
            self.tasks.clone(),
            msg.clone(),
            self.cfg.visibility_timeout,
            worker::heartbeat_interval(self.cfg.visibility_timeout),
        );
        tracing::info!(frames = task.frame_count, "converting segment");
        let result = tokio::select! {
            r = self.process(task, frames_done.clone(), fed) => r,
            lost = beat => {
                tracing::warn!(error = %lost, frames_done = frames_done.load(Ordering::Relaxed), "lost the task's lease (another worker may have it now); stopping this conversion");
                return;
            }
            _ = shutdown.cancelled() => {
                tracing::info!(frames_done = frames_done.load(Ordering::Relaxed), "shutting down: releasing the segment for another worker");
                worker::release(&*self.tasks, msg, Duration::ZERO).await;
                return;
            }
        };

        match result {
            Ok(out) => {
                tracing::info!(frames = out.frame_count, key = %out.output_key, "segment converted and reported");
                worker::acknowledge(&*self.tasks, msg).await;
            }
            Err(SegmentFailure::BadInput { code, message }) => {
                tracing::warn!(code, %message, "bad input: failing the job");
                match self.fail_job(task, code, &message).await {
                    Ok(()) => worker::acknowledge(&*self.tasks, msg).await,
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "could not mark the job failed; the task will be retried"
                        );
                        worker::release(&*self.tasks, msg, self.backoff(msg)).await;
                    }
                }
            }
            Err(SegmentFailure::Retry(e)) if msg.receive_count >= self.cfg.max_receives => {
                let message = format!(
                    "segment {} of {} could not be converted after {} attempts: {e:#}",
                    task.segment_index + 1,
                    task.total_segments,
                    msg.receive_count
                );
                tracing::error!(%message, "giving up on the segment: failing the job; the task goes to the dead-letter queue");
                if let Err(e) = self.fail_job(task, "segment-failed", &message).await {
                    tracing::error!(error = format!("{e:#}"), "could not mark the job failed");
                }
                // Visible again at once: the next receive moves it to the dead-letter queue.
                worker::release(&*self.tasks, msg, Duration::ZERO).await;
            }
            Err(SegmentFailure::Retry(e)) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "segment failed; it will be retried"
                );
                worker::release(&*self.tasks, msg, self.backoff(msg)).await;
            }
        }
    }

    /// A task for a model this worker does not hold: passed on to the queue for a worker
    /// that holds it, or, when no running worker does, the job shows what it waits for and
    /// fails once the wait outlasts `model_wait` (see [`crate::routing`]).
    async fn pass_on(
        &self,
        msg: &ReceivedMessage,
        task: &SegmentTask,
        job: &parallax_core::model::Job,
        model: &str,
        shutdown: CancellationToken,
    ) {
        let held =
            routing::held_by_a_running_worker(&*self.storage, model, self.cfg.holders.fresh_for)
                .await;
        let mut pause = self.cfg.pass_on_pause;
        if !held {
            let now = chrono::Utc::now();
            let since = job
                .waiting
                .as_ref()
                .filter(|w| w.model == model)
                .map(|w| w.since);
            let waited = since.map_or(Duration::ZERO, |s| (now - s).to_std().unwrap_or_default());
            if waited > self.cfg.model_wait {
                let message = format!(
                    "no running video-worker holds the depth model {model} (waited {} min): start one that holds it (`video-worker --models {model}`, after `video-worker models fetch {model}`), or convert with another model",
                    waited.as_secs() / 60
                );
                tracing::warn!(%message, "failing the job");
                match self.fail_job(task, "no-worker-for-model", &message).await {
                    Ok(()) => worker::acknowledge(&*self.tasks, msg).await,
                    Err(_) => worker::release(&*self.tasks, msg, self.backoff(msg)).await,
                }
                return;
            }
            if since.is_none() {
                let wait = parallax_core::model::Waiting {
                    model: model.to_owned(),
                    since: now,
                };
                tracing::info!(%model, "no running worker holds the model: the job waits");
                let update = JobUpdate {
                    waiting: Some(Some(wait)),
                    ..JobUpdate::default()
                };
                if let Err(e) = self.jobs.update(&job.job_id, &update).await {
                    tracing::warn!(error = %e, "could not record the job's wait for a model");
                }
            }
            // Nobody to hand it to yet: look again less often.
            pause = pause.max(self.cfg.holders.renew_every);
        } else {
            tracing::debug!(%model, "passing the task on to a worker that holds its model");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                worker::release(&*self.tasks, msg, Duration::ZERO).await;
                return;
            }
            _ = tokio::time::sleep(pause) => {}
        }
        // A copy first, then the original: a crash in between leaves a harmless duplicate,
        // never a lost task.
        match self.own_queue.send(&msg.body).await {
            Ok(_) => worker::acknowledge(&*self.tasks, msg).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not pass the task on; it comes back after its visibility timeout");
            }
        }
    }

    /// Says that this segment is being converted (for the job page's segment bar); a failure
    /// to say so costs only the display.
    async fn note_started(&self, task: &SegmentTask) {
        let now = chrono::Utc::now().timestamp().to_string().into_bytes();
        let key = keys::segment_started(&task.job_id, task.segment_index);
        if let Err(e) = self
            .storage
            .put_stream(&key, Box::pin(std::io::Cursor::new(now)))
            .await
        {
            tracing::debug!(error = %e, "could not note the segment as started");
        }
    }

    /// How long a failed task waits before it is handed out again: grows with the receive
    /// count, never beyond the visibility timeout.
    fn backoff(&self, msg: &ReceivedMessage) -> Duration {
        (Duration::from_secs(2) * msg.receive_count.max(1)).min(self.cfg.visibility_timeout)
    }

    /// Puts what the conversion did to the picture on the job, for its page and the API; a
    /// failure to write them costs only the notes.
    async fn record_notes(&self, task: &SegmentTask, notes: &[String]) {
        if notes.is_empty() {
            return;
        }
        let update = JobUpdate {
            notes: Some(notes.to_vec()),
            ..JobUpdate::default()
        };
        if let Err(e) = self.jobs.update(&task.job_id, &update).await {
            tracing::warn!(job_id = %task.job_id, error = %e, "the job's picture notes were not saved");
        }
    }

    async fn fail_job(&self, task: &SegmentTask, code: &str, message: &str) -> anyhow::Result<()> {
        match self
            .jobs
            .update(&task.job_id, &JobUpdate::failed(code, message))
            .await
        {
            Ok(_) => Ok(()),
            // Already failed or completed (or gone): nothing left to mark.
            Err(Error::InvalidTransition { .. } | Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context("marking the job failed")),
        }
    }

    /// Converts one segment and reports it: the part of handling that the heartbeat covers.
    /// Returns the `SegmentOutput` it sent.
    pub async fn process(
        &self,
        task: &SegmentTask,
        frames_done: Arc<AtomicU64>,
        fed: Option<Arc<tokio::sync::Notify>>,
    ) -> Result<SegmentOutput, SegmentFailure> {
        task.settings
            .validate()
            .map_err(|e| SegmentFailure::BadInput {
                code: "invalid-settings",
                message: e.to_string(),
            })?;
        self.note_started(task).await;
        let scratch = match &self.cfg.work_dir {
            Some(d) => {
                tokio::fs::create_dir_all(d)
                    .await
                    .with_context(|| format!("creating the work folder {}", d.display()))?;
                tempfile::Builder::new().prefix("segment-").tempdir_in(d)
            }
            None => tempfile::Builder::new().prefix("segment-").tempdir(),
        }
        .context("creating a scratch folder")?;
        let dir = scratch.path();

        let input = dir.join("source.mkv");
        self.fetch(
            &task.source_key,
            &input,
            "source segment",
            "segment-missing",
        )
        .await?;
        // A re-render: the depth stored by the job that computed it, instead of the model.
        let depth_in = match &task.depth_key {
            Some(key) => {
                let path = dir.join("stored-depth.mkv");
                self.fetch(key, &path, "stored depth", "depth-missing")
                    .await?;
                Some(path)
            }
            None => None,
        };
        let seam = match (&task.seam.prev_source_key, task.seam.warmup_frames) {
            // Stored depth is normalised and continuous across seams already.
            _ if depth_in.is_some() => SeamStart::Fresh,
            (Some(prev), n) if n > 0 => {
                match self
                    .handoffs
                    .resume_state(&task.job_id, task.segment_index)
                    .await
                {
                    Some(state) => {
                        tracing::info!("resuming from the depth state the previous segment ended with (no warm-up)");
                        SeamStart::Resume(state)
                    }
                    None => {
                        let path = dir.join("previous.mkv");
                        self.fetch(
                            prev,
                            &path,
                            "previous segment (seam warm-up)",
                            "segment-missing",
                        )
                        .await?;
                        SeamStart::Warmup {
                            previous: path,
                            frames: n,
                        }
                    }
                }
            }
            _ => SeamStart::Fresh,
        };
        // What this segment ends with, for the next one if this process takes it.
        let handoff = Arc::new(self.handoffs.begin(&task.job_id, task.segment_index));
        let seam_end = {
            let handoff = handoff.clone();
            StateSink::new(move |state| handoff.done(state))
        };
        let preview_dir = (task.segment_index == 0).then(|| dir.join("preview"));
        if let Some(p) = &preview_dir {
            tokio::fs::create_dir_all(p)
                .await
                .context("creating the preview folder")?;
        }
        let work = ConvertRequest {
            input,
            output: dir.join("converted.mkv"),
            mode: task.mode,
            settings: task.settings.clone(),
            seam,
            seam_end: depth_in.is_none().then_some(seam_end),
            expected_frames: (task.frame_count > 0).then_some(task.frame_count),
            preview_dir,
            depth_out: depth_in.is_none().then(|| dir.join("depth.mkv")),
            depth_in,
        };
        // The next segment starts with the last tenth of this one still to go through the
        // pipeline: its probes and seam warm-up (decoding and depth, no encoding) then run
        // while this segment's last frames and the encoder's lookahead drain.
        let overlap_from = task.frame_count - task.frame_count / OVERLAP_DIVISOR;
        let signalled = std::sync::atomic::AtomicBool::new(false);
        let progress = move |n: u64| {
            frames_done.store(n, Ordering::Relaxed);
            if n >= overlap_from && !signalled.swap(true, Ordering::Relaxed) {
                handoff.ending();
                if let Some(fed) = &fed {
                    fed.notify_one();
                }
            }
        };
        let Pick::Held(converter) = self.models.pick(task.settings.model.as_deref()) else {
            return Err(SegmentFailure::Retry(anyhow::anyhow!(
                "this worker does not hold the depth model the task names"
            )));
        };
        let report = match converter.convert(&work, &progress).await {
            Ok(r) => r,
            Err(e) => {
                return Err(match BadInput::find(&e) {
                    Some(bad) => SegmentFailure::BadInput {
                        code: BadInput::code(&e, "bad-segment"),
                        message: format!(
                            "segment {} of {} cannot be converted: {bad}",
                            task.segment_index + 1,
                            task.total_segments
                        ),
                    },
                    None => SegmentFailure::Retry(e.context("converting the segment")),
                })
            }
        };

        // Reassembly depends on the frame count; the converter counted it on the written
        // file itself (its contract), so it is not probed a second time here.
        let written = report.frames;
        if task.frame_count > 0 && written != task.frame_count {
            return Err(anyhow::anyhow!(
                "the converted segment has {written} frames but the source segment has {}",
                task.frame_count
            )
            .into());
        }

        // The depth before the result: once the job completes, a re-render may read it.
        match (&work.depth_out, &report.depth) {
            (Some(_), Some(depth)) => {
                self.storage
                    .upload(&keys::depth(&task.job_id, task.segment_index), depth)
                    .await
                    .context("uploading the segment's depth maps")?;
            }
            (Some(_), None) => {
                tracing::warn!("the converter stored no depth maps; this job cannot be re-rendered")
            }
            _ => {}
        }
        self.storage
            .upload(&task.output_key, &work.output)
            .await
            .context("uploading the converted segment")?;
        self.store_playable_copy(task, &work.output).await;
        if task.segment_index == 0 {
            self.upload_previews(task, &report).await?;
            self.record_notes(task, &report.notes).await;
        }
        let out = SegmentOutput {
            job_id: task.job_id.clone(),
            segment_index: task.segment_index,
            output_key: task.output_key.clone(),
            frame_count: written,
        };
        self.outputs
            .send(&serde_json::to_string(&out).context("encoding the segment output")?)
            .await
            .context("sending the segment output")?;
        Ok(out)
    }

    /// Downloads `key` to `to`; a missing object fails the job with `code`.
    async fn fetch(
        &self,
        key: &str,
        to: &Path,
        what: &str,
        code: &'static str,
    ) -> Result<(), SegmentFailure> {
        match self.storage.download(key, to).await {
            Ok(_) => Ok(()),
            Err(e @ (Error::NotFound { .. } | Error::InvalidInput { .. })) => {
                Err(SegmentFailure::BadInput {
                    code,
                    message: format!("the {what} {key} cannot be read: {e}"),
                })
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("downloading the {what} {key}"))
                .into()),
        }
    }

    /// Stores a browser-playable copy of the converted segment at `keys::playable`: the same
    /// video stream, not re-encoded, remuxed into fragmented MP4, which a job page appends to
    /// a Media Source to play the finished segments while the rest converts. Only watching
    /// early depends on it, so a failure is logged and the segment still counts.
    async fn store_playable_copy(&self, task: &SegmentTask, converted: &Path) {
        let copy = converted.with_file_name("playable.mp4");
        let enc = task.settings.encoder.to_ascii_lowercase();
        // Safari and the headsets want HEVC tagged `hvc1` (parameter sets in the sample entry).
        let tag: &[&str] = if enc.contains("265") || enc.contains("hevc") {
            &["-tag:v", "hvc1"]
        } else {
            &[]
        };
        let remux = parallax_media::process::ToolCommand::ffmpeg(Duration::from_secs(300))
            .arg("-i")
            .arg(converted)
            .args(["-map", "0:v:0", "-c", "copy"])
            .args(tag)
            .args(["-movflags", "frag_keyframe+empty_moov+default_base_moof"])
            .args(["-f", "mp4"])
            .arg(&copy);
        let key = keys::playable(&task.job_id, task.segment_index);
        let stored = match remux.run().await {
            Ok(_) => self
                .storage
                .upload(&key, &copy)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = stored {
            tracing::warn!(%key, %error, "no playable copy of this segment: the job page cannot show it while converting");
        }
    }

    async fn upload_previews(
        &self,
        task: &SegmentTask,
        report: &crate::converter::ConvertReport,
    ) -> anyhow::Result<()> {
        let previews = [
            (&report.preview_sbs, keys::preview_frame(&task.job_id)),
            (&report.preview_depth, keys::preview_depth(&task.job_id)),
        ];
        for (path, key) in previews {
            match path {
                Some(p) => {
                    self.storage
                        .upload(&key, p)
                        .await
                        .with_context(|| format!("uploading the preview {key}"))?;
                }
                None => tracing::warn!(%key, "the converter wrote no preview image"),
            }
        }
        Ok(())
    }
}

fn log_panic(handled: Result<(), tokio::task::JoinError>, msg: &ReceivedMessage) {
    if let Err(e) = handled {
        tracing::error!(error = %e, message_id = %msg.message_id, "handling a segment task panicked; it will come back");
    }
}
