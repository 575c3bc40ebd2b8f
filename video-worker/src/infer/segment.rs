//! Converting one segment: a scratch folder, the inputs (the segment, the stored depth of a
//! re-render, or the previous segment for the seam warm-up unless this process hands its
//! final depth state over, see [`crate::seam`]), the converter with the overlap signal, and
//! the frame-count check; [`super::outputs`] stores and reports the result.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use parallax_core::model::{SegmentOutput, SegmentTask};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_core::worker::{Context, HandlerError};
use parallax_core::Error;

use super::InferWorker;
use crate::converter::{BadInput, ConvertRequest, SeamStart, StateSink};
use crate::routing::Pick;

/// With overlap, the next segment starts once all but `1 / OVERLAP_DIVISOR` of the current
/// one's frames have reached the encoder.
const OVERLAP_DIVISOR: u64 = 10;

impl InferWorker {
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

        self.store_and_report(task, &work, &report).await
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
}
