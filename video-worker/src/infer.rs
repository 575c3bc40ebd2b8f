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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use parallax_core::backends::Backends;
use parallax_core::jobs::JobStore;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{Job, JobUpdate, SegmentOutput, SegmentTask};
use parallax_core::queue::{QueueReceiver, QueueSender, QueueSettings, ReceivedMessage};
use parallax_core::storage::{ObjectStorage, ObjectStorageExt as _};
use parallax_core::worker::{
    self, CancellationToken, Context, Handler, HandlerError, LoopConfig, Outcome,
};
use parallax_core::Error;

use crate::converter::{BadInput, ConvertRequest, SeamStart, SegmentConverter, StateSink};
use crate::routing::{self, HeldModels, HolderTiming, Pick};
use crate::seam::Handoffs;

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
    /// How long the segments in hand may still run after shutdown before they are released
    /// for another worker.
    pub grace: Duration,
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

    /// Receives and converts segments until `shutdown`, `concurrency` at a time, on core's
    /// queue-worker runtime; meanwhile renews the notes of the models this worker holds.
    pub async fn run(&self, shutdown: CancellationToken) {
        let names: Vec<String> = self.models.names().map(str::to_owned).collect();
        tracing::info!(concurrency = self.cfg.concurrency, overlap = self.cfg.overlap, models = ?names, "segment worker started");
        let notes = tokio::spawn(routing::renew_notes(
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
            ..LoopConfig::new(QueueName::Segments.to_string(), &QueueSettings::default())
        };
        worker::run(self.tasks.clone(), Arc::new(self.clone()), cfg, shutdown).await;
        let _ = notes.await;
        tracing::info!("segment worker stopped");
    }

    fn task(msg: &ReceivedMessage) -> Option<SegmentTask> {
        serde_json::from_str(&msg.body).ok()
    }

    /// Handles one task: skip, pass on, or convert and report.
    async fn handle_task(
        &self,
        task: &SegmentTask,
        msg: &ReceivedMessage,
        ctx: &Context,
    ) -> Result<Outcome, HandlerError> {
        let job = match self
            .jobs
            .get(&task.job_id)
            .await
            .context("reading the job")?
        {
            Some(job) if job.status.is_terminal() => {
                tracing::info!(status = %job.status, "job already finished; skipping the segment");
                return Ok(Outcome::Done);
            }
            Some(job) => job,
            None => {
                tracing::warn!(
                    "segment task for a job that does not exist (deleted?); dropping it"
                );
                return Ok(Outcome::Done);
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
                return Err(HandlerError::reject(
                    "unknown-model",
                    format!("the depth model {name:?} is not in the model catalogue; `video-worker models list` shows the known models"),
                ));
            }
            Pick::NotHeld(name) => {
                let name = name.to_owned();
                return self.pass_on(msg, &job, &name, ctx).await;
            }
        }

        tracing::info!(frames = task.frame_count, "converting segment");
        let out = self.process(task, ctx).await?;
        tracing::info!(frames = out.frame_count, key = %out.output_key, "segment converted and reported");
        Ok(Outcome::Done)
    }

    /// A task for a model this worker does not hold: passed on to the queue for a worker
    /// that holds it, or, when no running worker does, the job shows what it waits for and
    /// fails once the wait outlasts `model_wait` (see [`crate::routing`]).
    async fn pass_on(
        &self,
        msg: &ReceivedMessage,
        job: &Job,
        model: &str,
        ctx: &Context,
    ) -> Result<Outcome, HandlerError> {
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
                return Err(HandlerError::reject(
                    "no-worker-for-model",
                    format!(
                        "no running video-worker holds the depth model {model} (waited {} min): start one that holds it (`video-worker --models {model}`, after `video-worker models fetch {model}`), or convert with another model",
                        waited.as_secs() / 60
                    ),
                ));
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
            // Back to the queue at once, for the next worker to look at.
            _ = ctx.shutdown.cancelled() => return Ok(Outcome::Release(Duration::ZERO)),
            _ = tokio::time::sleep(pause) => {}
        }
        // A copy first, then the original (deleted by the runtime on `Done`): a crash in
        // between leaves a harmless duplicate, never a lost task. The copy starts with a
        // fresh receive count, so passing on never moves a task towards the dead-letter queue.
        self.own_queue
            .send(&msg.body)
            .await
            .context("passing the task on (sending its copy to the segments queue)")?;
        Ok(Outcome::Done)
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

    /// Converts one segment and reports it. Tells `ctx` it is draining once nine tenths of
    /// the frames have reached the encoder (see the module docs). Returns the
    /// `SegmentOutput` it sent.
    pub async fn process(
        &self,
        task: &SegmentTask,
        ctx: &Context,
    ) -> Result<SegmentOutput, HandlerError> {
        task.settings
            .validate()
            .map_err(|e| HandlerError::reject("invalid-settings", e.to_string()))?;
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
            if n >= overlap_from && !signalled.swap(true, std::sync::atomic::Ordering::Relaxed) {
                handoff.ending();
                ctx.draining();
            }
        };
        let Pick::Held(converter) = self.models.pick(task.settings.model.as_deref()) else {
            return Err(HandlerError::Retry(anyhow::anyhow!(
                "this worker does not hold the depth model the task names"
            )));
        };
        let report = match converter.convert(&work, &progress).await {
            Ok(r) => r,
            Err(e) => {
                return Err(match BadInput::find(&e) {
                    Some(bad) => HandlerError::reject(
                        BadInput::code(&e, "bad-segment"),
                        format!(
                            "segment {} of {} cannot be converted: {bad}",
                            task.segment_index + 1,
                            task.total_segments
                        ),
                    ),
                    None => HandlerError::Retry(e.context("converting the segment")),
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
    ) -> Result<(), HandlerError> {
        match self.storage.download(key, to).await {
            Ok(_) => Ok(()),
            Err(e @ (Error::NotFound { .. } | Error::InvalidInput { .. })) => Err(
                HandlerError::reject(code, format!("the {what} {key} cannot be read: {e}")),
            ),
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
