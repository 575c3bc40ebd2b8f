//! Chunking: cut the source's video stream at clean keyframes into MKV segments of about the
//! target length by stream copy (no re-encode), check that the segments' frame counts add up
//! to the source's, upload them, save the manifest and send one `SegmentTask` per segment.
//!
//! This module is the queue step around it; where the cuts go is [`crate::plan`], the cutting
//! of a local file [`crate::split`].
//!
//! Sources with rotation metadata are the one exception to stream copy: MKV cannot carry a
//! display matrix, so their segments are re-encoded upright, losslessly, at the same cuts.
//!
//! # Re-renders: depth once, render many
//!
//! Every segment a video-worker converts also stores its normalised depth maps, exactly as
//! its renderer received them (after temporal normalisation, seams included), at
//! `keys::depth(job, segment)`: a lossless 16-bit grey video at the depth map's resolution,
//! uploaded before the segment's `SegmentOutput` is sent, to the same key on a retry. A
//! completed job can then be rendered again, in another layout or with other stereo
//! settings, as a new job that runs no depth model:
//!
//! 1. `POST /api/jobs/{id}/rerender` (web-ui) checks that job `id` is completed and that its
//!    depth, source segments and segment list are still stored, then stores a new job with
//!    `rerender_of: Some(id)`, already `uploaded` (it has no upload of its own), and writes a
//!    small marker object at `keys::rerender_marker(new)`. That key is under the uploads
//!    prefix, so the storage event carries it to the chunking queue exactly as an upload's
//!    (the web-ui never talks to a queue).
//! 2. Chunking (here), seeing `job.rerender_of`, neither probes nor cuts: it reads the source
//!    job's manifest and saves it as the new job's ([`Manifest::rerender`]: the same source
//!    segments at their original keys, `depth_job` naming the job whose depth is stored and
//!    `source_key` the original upload; a re-render of a re-render names the original job
//!    and upload again). It checks that every segment and its stored depth are there, then,
//!    as for an upload, saves total_segments, sends one `SegmentTask` per segment, each with
//!    `depth_key: Some(keys::depth(depth_job, i))` and no seam warm-up, and marks chunking
//!    complete. A redelivered marker rewrites the same manifest and re-sends the same tasks.
//! 3. The video-worker downloads the stored depth and renders from it (the engine's
//!    `depth_in`): no model run, nothing stored. Frame counts are checked as for any
//!    segment; completions, the trigger and reassembly are those of any job, and reassembly
//!    takes the audio and subtitles from the manifest's `source_key`, the original upload.
//!
//! The stored depth is only as old as the segments: on AWS both expire with the bucket's
//! segment retention, after which a re-render is refused with a readable reason.
use std::path::PathBuf;

use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{
    DepthSeam, Job, JobStatus, JobUpdate, SegmentTask, PREVIEW_SAMPLES, PREVIEW_SAMPLE_SECS,
};
use parallax_core::storage::ObjectStorageExt as _;

use crate::batch::try_batched;
use crate::failure::{HandlerError, RetryContext};
use crate::inspect;
use crate::manifest::Manifest;
use crate::plan::preview_samples;
use crate::settings::Settings;
use crate::split::chunk_file;

/// What a chunking run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Segments uploaded and tasks sent.
    Chunked {
        /// How many segments.
        segments: u32,
    },
    /// A redelivered message: the saved manifest's tasks were sent again.
    Resent {
        /// How many segments.
        segments: u32,
    },
    /// Nothing to do (unknown job, already past chunking, no source yet, ...).
    Dropped(String),
}

/// The tasks of a manifest.
pub fn tasks(job: &Job, manifest: &Manifest, settings: &Settings) -> Vec<SegmentTask> {
    let total = manifest.segments.len() as u32;
    manifest
        .segments
        .iter()
        .map(|s| {
            // A re-render reads stored depth: no seam warm-up.
            let prev = s
                .index
                .checked_sub(1)
                .and_then(|p| manifest.segments.get(p as usize))
                .filter(|_| manifest.depth_job.is_none() && !manifest.preview);
            SegmentTask {
                job_id: job.job_id.clone(),
                segment_index: s.index,
                total_segments: total,
                source_key: s.key.clone(),
                output_key: keys::output(&job.job_id, s.index),
                first_frame: s.first_frame,
                frame_count: s.frame_count,
                mode: job.mode,
                settings: job.settings.clone(),
                seam: DepthSeam {
                    prev_source_key: prev.map(|p| p.key.clone()),
                    warmup_frames: prev.map_or(0, |p| {
                        (settings.seam_warmup_frames as u64).min(p.frame_count) as u32
                    }),
                },
                depth_key: manifest
                    .depth_job
                    .as_deref()
                    .map(|d| keys::depth(d, s.index)),
            }
        })
        .collect()
}

/// Moves the job's status; a refused (backwards) move means a late or duplicate message.
async fn advance(
    backends: &Backends,
    job_id: &str,
    update: &JobUpdate,
) -> Result<Option<Job>, HandlerError> {
    match backends.jobs.update(job_id, update).await {
        Ok(j) => Ok(Some(j)),
        Err(parallax_core::Error::InvalidTransition { .. }) => Ok(None),
        Err(e) => Err(HandlerError::Retry(
            anyhow::Error::new(e).context("updating the job"),
        )),
    }
}

/// Chunks one job: the whole step, idempotent under redelivery.
pub async fn chunk_job(
    backends: &Backends,
    settings: &Settings,
    job_id: &str,
) -> Result<ChunkOutcome, HandlerError> {
    let Some(job) = backends.jobs.get(job_id).await.retry("reading the job")? else {
        return Ok(ChunkOutcome::Dropped("unknown job".into()));
    };
    if job.status.is_terminal() || !job.status.can_become(JobStatus::Chunking) {
        return Ok(ChunkOutcome::Dropped(format!(
            "job is already {}",
            job.status
        )));
    }
    if job.status == JobStatus::ChunkingComplete {
        return Ok(ChunkOutcome::Dropped("job is already chunked".into()));
    }
    if let Some(original) = job.rerender_of.clone() {
        return chunk_rerender(backends, settings, job_id, &original).await;
    }
    // A preview's "Convert all" converts the preview's upload.
    let source_key = keys::source(job.upload_job());
    let Some(size) = backends
        .storage
        .head(&source_key)
        .await
        .retry("looking for the source")?
    else {
        return Ok(ChunkOutcome::Dropped("no source uploaded yet".into()));
    };
    inspect::check_size(size, settings)?;
    let Some(job) = advance(backends, job_id, &JobUpdate::status(JobStatus::Chunking)).await?
    else {
        return Ok(ChunkOutcome::Dropped("job moved on meanwhile".into()));
    };

    // A redelivered message after a crash: resend the saved set rather than cut a new one.
    if let Some(manifest) = Manifest::load(backends.storage.as_ref(), job_id)
        .await
        .retry("reading the manifest")?
    {
        let mut complete = !manifest.segments.is_empty();
        for s in &manifest.segments {
            complete &= backends
                .storage
                .head(&s.key)
                .await
                .retry("checking segments")?
                .is_some();
        }
        if complete {
            let n = send_and_finish(backends, settings, &job, &manifest).await?;
            return Ok(ChunkOutcome::Resent { segments: n });
        }
    }

    let dir = tempfile::Builder::new()
        .prefix("chunk-")
        .tempdir_in(&settings.work_dir)
        .retry("creating a work folder")?;
    let src = dir.path().join("source");
    backends
        .storage
        .download(&source_key, &src)
        .await
        .retry("downloading the source")?;
    // A preview cuts short segments and keeps a few spread over the video.
    let cut = if job.preview {
        let mut s = settings.clone();
        s.segment_secs = PREVIEW_SAMPLE_SECS;
        s
    } else {
        settings.clone()
    };
    let (inspection, mut plan, mut files) =
        chunk_file(&src, &dir.path().join("segments"), &cut).await?;
    if job.preview {
        let picked = preview_samples(&plan, PREVIEW_SAMPLES)?;
        let mut start = 0.0;
        (plan, files) = picked
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let mut seg = plan[p].clone();
                seg.index = i as u32;
                // One after the other in the preview.
                seg.start_secs = start;
                start += seg.duration_secs;
                (seg, files[p].clone())
            })
            .unzip();
    }
    tracing::info!(
        frames = inspection.info.video.frame_count,
        segments = plan.len(),
        codec = %inspection.info.video.codec,
        rotation = inspection.info.video.rotation,
        "source split"
    );
    let mut manifest = Manifest::new(job_id, inspection.info, cut.segment_secs, &plan);
    manifest.preview = job.preview;
    if job.upload_of.is_some() {
        manifest.source_key = Some(source_key.clone());
    }
    let uploads: Vec<(String, PathBuf)> = manifest
        .segments
        .iter()
        .map(|s| s.key.clone())
        .zip(files.iter().cloned())
        .collect();
    let storage = backends.storage.clone();
    try_batched(uploads, 4, |(key, file)| {
        let storage = storage.clone();
        async move { storage.upload(&key, &file).await }
    })
    .await
    .retry("uploading the segments")?;
    manifest
        .save(backends.storage.as_ref())
        .await
        .retry("saving the manifest")?;
    let n = send_and_finish(backends, settings, &job, &manifest).await?;
    Ok(ChunkOutcome::Chunked { segments: n })
}

/// Chunks a re-render (see the module docs): the source job's segments, rendered from its
/// stored depth. Idempotent under redelivery: the same manifest, the same tasks.
async fn chunk_rerender(
    backends: &Backends,
    settings: &Settings,
    job_id: &str,
    original: &str,
) -> Result<ChunkOutcome, HandlerError> {
    let Some(job) = advance(backends, job_id, &JobUpdate::status(JobStatus::Chunking)).await?
    else {
        return Ok(ChunkOutcome::Dropped("job moved on meanwhile".into()));
    };
    let gone = |what: &str| {
        HandlerError::reject(
            "rerender-source-missing",
            format!(
                "the job this re-renders ({original}) no longer has its {what} in storage; \
                 upload the video again to convert it"
            ),
        )
    };
    let source = Manifest::load(backends.storage.as_ref(), original)
        .await
        .retry("reading the source job's manifest")?
        .ok_or_else(|| gone("segment list"))?;
    let manifest = source.rerender(job_id);
    if manifest.segments.is_empty() {
        return Err(gone("segments"));
    }
    // Every segment and its stored depth, before any task is sent.
    let depth_job = manifest.depth_job().to_owned();
    let needed: Vec<(String, &'static str)> = manifest
        .segments
        .iter()
        .flat_map(|s| {
            [
                (s.key.clone(), "source segments"),
                (keys::depth(&depth_job, s.index), "stored depth"),
            ]
        })
        .collect();
    let storage = backends.storage.clone();
    let found = try_batched(needed, 8, |(key, what)| {
        let storage = storage.clone();
        async move { storage.head(&key).await.map(|size| (size, what)) }
    })
    .await
    .retry("checking the source job's segments and depth")?;
    if let Some((_, what)) = found.iter().find(|(size, _)| size.is_none()) {
        return Err(gone(what));
    }
    manifest
        .save(backends.storage.as_ref())
        .await
        .retry("saving the manifest")?;
    tracing::info!(
        rerender_of = original,
        depth_job = %depth_job,
        segments = manifest.segments.len(),
        "re-render: segments and stored depth of the source job"
    );
    let n = send_and_finish(backends, settings, &job, &manifest).await?;
    Ok(ChunkOutcome::Chunked { segments: n })
}

/// Saves total_segments, sends every task, then marks chunking complete.
async fn send_and_finish(
    backends: &Backends,
    settings: &Settings,
    job: &Job,
    manifest: &Manifest,
) -> Result<u32, HandlerError> {
    let total = manifest.segments.len() as u32;
    let update = JobUpdate {
        total_segments: Some(total),
        ..JobUpdate::default()
    };
    backends
        .jobs
        .update(&job.job_id, &update)
        .await
        .retry("saving total_segments")?;
    let bodies = tasks(job, manifest, settings)
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .retry("serialising tasks")?;
    backends
        .queue(QueueName::Segments)
        .sender
        .send_batch(&bodies)
        .await
        .retry("sending the segment tasks")?;
    advance(
        backends,
        &job.job_id,
        &JobUpdate::status(JobStatus::ChunkingComplete),
    )
    .await?;
    Ok(total)
}
