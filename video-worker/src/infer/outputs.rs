//! What a converted segment leaves, and its report: the depth maps (before the result, so a
//! completed job can be re-rendered), the result at `task.output_key`, a browser-playable
//! copy, segment 0's previews and picture notes, then the `SegmentOutput` that media-worker's
//! completion trigger counts. Also the "started" note the job page's segment bar reads.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use parallax_core::keys;
use parallax_core::model::{JobUpdate, SegmentOutput, SegmentTask};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_core::worker::HandlerError;

use super::InferWorker;
use crate::converter::{ConvertReport, ConvertRequest};

impl InferWorker {
    /// Stores what the conversion `work` wrote (as `report` says) and sends the segment's
    /// `SegmentOutput`; returns it.
    pub(super) async fn store_and_report(
        &self,
        task: &SegmentTask,
        work: &ConvertRequest,
        report: &ConvertReport,
    ) -> Result<SegmentOutput, HandlerError> {
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
            self.upload_previews(task, report).await?;
            self.record_notes(task, &report.notes).await;
        }
        let out = SegmentOutput {
            job_id: task.job_id.clone(),
            segment_index: task.segment_index,
            output_key: task.output_key.clone(),
            frame_count: report.frames,
        };
        self.outputs
            .send(&serde_json::to_string(&out).context("encoding the segment output")?)
            .await
            .context("sending the segment output")?;
        Ok(out)
    }

    /// Says that this segment is being converted (for the job page's segment bar); a failure
    /// to say so costs only the display.
    pub(super) async fn note_started(&self, task: &SegmentTask) {
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

    /// Uploads the preview images the converter wrote (segment 0's side-by-side frame and
    /// its depth) for the job page.
    async fn upload_previews(
        &self,
        task: &SegmentTask,
        report: &ConvertReport,
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
