//! Chunking: cut the source's video stream at clean keyframes into MKV segments of about the
//! target length by stream copy (no re-encode), check that the segments' frame counts add up
//! to the source's, upload them, save the manifest and send one `SegmentTask` per segment.
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

use std::path::{Path, PathBuf};

use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{
    DepthSeam, Job, JobStatus, JobUpdate, SegmentTask, PREVIEW_SAMPLES, PREVIEW_SAMPLE_SECS,
};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_media::process::ToolCommand;
use serde::Serialize;

use crate::failure::{Failure, RetryContext};
use crate::manifest::Manifest;
use crate::probe::{self, Inspection, Keyframe, PacketScan, SourceInfo};
use crate::settings::Settings;

/// A segment as planned from the packet scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedSegment {
    /// Zero-based index.
    pub index: u32,
    /// Index of its first frame (= its first packet in decoding order).
    pub first_frame: u64,
    /// Frames in it.
    pub frame_count: u64,
    /// Start on the source timeline, seconds from the video's first frame.
    pub start_secs: f64,
    /// Length up to the next segment's start (the last one: up to the end of its last frame).
    pub duration_secs: f64,
}

/// The samples of a preview: `n` segments of a plan cut at about `PREVIEW_SAMPLE_SECS`,
/// spread evenly over the video (the segments holding the times (2k+1)/2n of its length), in
/// order. A video too short for `n` separate samples is refused with a reason.
pub fn preview_samples(plan: &[PlannedSegment], n: usize) -> Result<Vec<usize>, Failure> {
    let total: f64 = plan.iter().map(|s| s.duration_secs).sum();
    let need = n as f64 * PREVIEW_SAMPLE_SECS;
    let mut picked: Vec<usize> = (0..n)
        .filter_map(|k| {
            let t = total * (2 * k + 1) as f64 / (2 * n) as f64;
            plan.iter()
                .position(|s| t >= s.start_secs && t < s.start_secs + s.duration_secs)
        })
        .collect();
    picked.dedup();
    if total < need || picked.len() < n {
        return Err(Failure::reject(
            "too-short-for-preview",
            format!(
                "the video is {total:.1} s long, too short for a preview of {n} separate samples of about {PREVIEW_SAMPLE_SECS} s ({need} s): convert it whole instead (it will not take long)"
            ),
        ));
    }
    Ok(picked)
}

/// Chooses the cuts: a new segment starts at the first clean keyframe at least
/// `segment_secs` after the current segment's start. With keyframes far apart segments get
/// longer; they are never cut elsewhere than at a clean keyframe.
pub fn plan_segments(scan: &PacketScan, time_base: f64, segment_secs: f64) -> Vec<PlannedSegment> {
    let first = scan.first_pts.unwrap_or(0);
    let secs = |pts: i64| (pts - first) as f64 * time_base;
    // A small tolerance so that 10 s of 29.97 fps material cut "at 10 s" is not pushed a GOP on.
    let eps = 1e-3;
    let mut cuts: Vec<(u64, f64)> = vec![(0, 0.0)];
    for kf in scan
        .keyframes
        .iter()
        .filter(|k| k.clean && k.packet_index > 0)
    {
        let t = secs(kf.pts);
        if t + eps >= cuts.last().expect("never empty").1 + segment_secs {
            cuts.push((kf.packet_index, t));
        }
    }
    let end = scan.end_pts.map_or(0.0, secs);
    (0..cuts.len())
        .map(|i| {
            let (first_frame, start) = cuts[i];
            let (next_frame, next_start) = cuts.get(i + 1).copied().unwrap_or((scan.count, end));
            PlannedSegment {
                index: i as u32,
                first_frame,
                frame_count: next_frame - first_frame,
                start_secs: start,
                duration_secs: (next_start - start).max(0.0),
            }
        })
        .collect()
}

/// Splits `source` into `plan.len()` MKV files `out_dir/00000.mkv`, ... (video only) and
/// checks each one's frame count against the plan. Returns the files in order.
pub async fn split(
    source: &Path,
    info: &SourceInfo,
    keyframes: &[Keyframe],
    plan: &[PlannedSegment],
    out_dir: &Path,
    settings: &Settings,
) -> Result<Vec<PathBuf>, Failure> {
    tokio::fs::create_dir_all(out_dir)
        .await
        .retry("creating the segment folder")?;
    let map = format!("0:{}", info.video.index);
    let mut cmd = ToolCommand::ffmpeg(settings.ffmpeg_timeout).args(["-v", "error"]);
    if info.format_name == crate::mp4::FORMAT_NAME && info.video.rotation == 0 {
        // Stream copy from MP4/MOV: the header has every parameter the Matroska muxer
        // needs, so ffmpeg need not decode pictures to probe the streams.
        cmd = cmd.arg("-nofind_stream_info");
    }
    cmd = cmd.arg("-i").arg(source).args([
        "-map",
        &map,
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
    ]);
    let cuts: Vec<String> = plan
        .iter()
        .skip(1)
        .map(|s| s.first_frame.to_string())
        .collect();
    if info.video.rotation != 0 {
        // Autorotation (ffmpeg's default) makes the frames upright; lossless x264 keeps them
        // as they were, and a keyframe is forced at every planned cut.
        let force = if cuts.is_empty() {
            "expr:eq(n,0)".to_owned()
        } else {
            format!(
                "expr:{}",
                plan.iter()
                    .map(|s| format!("eq(n,{})", s.first_frame))
                    .collect::<Vec<_>>()
                    .join("+")
            )
        };
        cmd = cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-qp",
            "0",
            "-bf",
            "0",
            "-fps_mode",
            "passthrough",
            "-force_key_frames",
            &force,
        ]);
    } else {
        cmd = cmd.args(["-c", "copy"]);
    }
    let pattern = out_dir.join("%05d.mkv");
    let single = out_dir.join("00000.mkv");
    let list = out_dir.join("segments.csv");
    if cuts.is_empty() {
        cmd = cmd
            .args(["-write_crc32", "0", "-f", "matroska"])
            .arg(&single);
    } else {
        cmd = cmd
            .args(["-f", "segment", "-segment_format", "matroska"])
            // Matroska's optional CRC-32 elements cost a pass over every byte written.
            .args(["-segment_format_options", "write_crc32=0"])
            .args(["-segment_frames", &cuts.join(",")])
            // Every segment starts at time zero: its place on the timeline is in the manifest,
            // and a file's own start time is not always known to readers (short MKV tails).
            .args(["-reset_timestamps", "1", "-segment_start_number", "0"])
            .arg("-segment_list")
            .arg(&list)
            .args(["-segment_list_type", "csv"])
            .arg(&pattern);
    }
    cmd.run().await.retry("splitting the source with ffmpeg")?;

    let files: Vec<PathBuf> = plan
        .iter()
        .map(|s| out_dir.join(format!("{:05}.mkv", s.index)))
        .collect();
    if cuts.is_empty() {
        let n = count_frames(&single, settings)
            .await
            .retry("counting the segment's frames")?;
        if n != plan[0].frame_count {
            return Err(split_mismatch(0, Some(n), plan[0].frame_count));
        }
        return Ok(files);
    }
    // The muxer's own list says where each segment really starts; each start must be the
    // planned keyframe (then every segment holds exactly the planned packets).
    let text = tokio::fs::read_to_string(&list)
        .await
        .retry("reading the segment list")?;
    let starts: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split(',').nth(1)?.trim().parse().ok())
        .collect();
    if starts.len() != plan.len() {
        return Err(Failure::reject(
            "split-failed",
            format!(
                "ffmpeg cut the video into {} segments where {} were planned; the keyframe flags of the file are inconsistent (re-encode it and upload again)",
                starts.len(),
                plan.len()
            ),
        ));
    }
    let tb = info.video.time_base.as_f64();
    let frame = info
        .video
        .frame_rate
        .map_or(0.002, |r| 1.0 / r.as_f64())
        .max(0.002);
    // The muxer may shift every timestamp by a constant (it keeps decoding times
    // non-negative for B-frames), so the starts are compared up to one small common offset,
    // taken from the first cut and bounded well below a keyframe interval.
    let kf_time = |index: u64| {
        keyframes
            .iter()
            .find(|k| k.packet_index == index)
            .map(|k| k.pts as f64 * tb)
    };
    let first_kf = kf_time(0).unwrap_or(0.0);
    let min_gap = keyframes
        .windows(2)
        .map(|w| (w[1].pts - w[0].pts) as f64 * tb)
        .fold(f64::INFINITY, f64::min);
    let max_offset = (min_gap / 2.0).min(0.5);
    let offset =
        kf_time(plan[1].first_frame).map_or(f64::NAN, |k| (starts[1] - starts[0]) - (k - first_kf));
    if !offset.is_finite() || offset.abs() >= max_offset {
        return Err(split_mismatch(plan[1].index, None, plan[1].frame_count));
    }
    for (seg, t) in plan.iter().zip(&starts).skip(1) {
        let expected = kf_time(seg.first_frame).map(|k| k - first_kf + offset);
        if expected.is_none_or(|e| ((t - starts[0]) - e).abs() >= frame / 2.0) {
            return Err(split_mismatch(seg.index, None, seg.frame_count));
        }
    }
    for f in &files {
        if !tokio::fs::try_exists(f).await.unwrap_or(false) {
            return Err(Failure::Retry(anyhow::anyhow!(
                "segment {} was not written",
                f.display()
            )));
        }
    }
    Ok(files)
}

/// Writes the planned segments from the source's MP4/MOV index without ffmpeg: each segment
/// holds exactly its planned samples, the first of which must be a keyframe.
pub async fn split_in_process(
    source: &Path,
    track: std::sync::Arc<crate::mp4::VideoTrack>,
    plan: &[PlannedSegment],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    tokio::fs::create_dir_all(out_dir)
        .await
        .retry("creating the segment folder")?;
    for seg in plan {
        let starts_on_key = track
            .samples
            .get(seg.first_frame as usize)
            .is_some_and(|s| s.key);
        if !starts_on_key || seg.first_frame + seg.frame_count > track.samples.len() as u64 {
            return Err(split_mismatch(seg.index, None, seg.frame_count));
        }
    }
    let files: Vec<PathBuf> = plan
        .iter()
        .map(|s| out_dir.join(format!("{:05}.mkv", s.index)))
        .collect();
    let jobs: Vec<(PlannedSegment, PathBuf)> = plan.iter().cloned().zip(files.clone()).collect();
    let source = source.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        jobs.iter()
            .map(|(seg, file)| {
                crate::mkv::write_segment(
                    &source,
                    &track,
                    seg.first_frame as usize,
                    seg.frame_count as usize,
                    file,
                )
            })
            .collect::<std::io::Result<Vec<u64>>>()
    })
    .await
    .retry("writing the segments")?
    .retry("writing the segments")?;
    for (seg, n) in plan.iter().zip(written) {
        if n != seg.frame_count {
            return Err(split_mismatch(seg.index, Some(n), seg.frame_count));
        }
    }
    Ok(files)
}

fn split_mismatch(index: u32, got: Option<u64>, planned: u64) -> Failure {
    Failure::reject(
        "split-failed",
        format!(
            "segment {index} does not hold the {planned} planned frames{}; the file cannot be cut without losing frames (re-encode it and upload again)",
            got.map_or(String::new(), |g| format!(" (it has {g})"))
        ),
    )
}

/// Counts the packets of the first video stream (one demuxing pass, no decoding).
pub async fn count_frames(
    path: &Path,
    settings: &Settings,
) -> Result<u64, parallax_media::process::ProcessError> {
    let out = ToolCommand::ffprobe(settings.probe_timeout)
        .args(["-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse::<u64>().ok())
        .unwrap_or(0))
}

/// The pure part of chunking: inspect, plan and split a local file. Returns the probe, the
/// plan and the segment files.
pub async fn chunk_file(
    source: &Path,
    out_dir: &Path,
    settings: &Settings,
) -> Result<(Inspection, Vec<PlannedSegment>, Vec<PathBuf>), Failure> {
    let inspection = probe::inspect_headers(source, settings).await?;
    let info = &inspection.info;
    let plan = plan_segments(
        &inspection.scan,
        info.video.time_base.as_f64(),
        settings.segment_secs,
    );
    let total: u64 = plan.iter().map(|s| s.frame_count).sum();
    if total != info.video.frame_count {
        return Err(Failure::Retry(anyhow::anyhow!(
            "planned {total} frames for a source of {}",
            info.video.frame_count
        )));
    }
    let splitting = async {
        match &inspection.video_track {
            // Stream copy from an MP4/MOV index: the segments are written in-process.
            Some(track) if info.video.rotation == 0 => {
                split_in_process(source, track.clone(), &plan, out_dir).await
            }
            _ => {
                split(
                    source,
                    info,
                    &inspection.scan.keyframes,
                    &plan,
                    out_dir,
                    settings,
                )
                .await
            }
        }
    };
    let files = if inspection.pictures_checked {
        splitting.await?
    } else {
        // The index path has not decoded any picture yet: decode the first ones while the
        // split runs (two processes side by side), and refuse the file if they do not decode,
        // before anything is uploaded or sent.
        let (files, pictures) = tokio::join!(splitting, probe::check_pictures(source, settings));
        pictures?;
        files?
    };
    Ok((inspection, plan, files))
}

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
) -> Result<Option<Job>, Failure> {
    match backends.jobs.update(job_id, update).await {
        Ok(j) => Ok(Some(j)),
        Err(parallax_core::Error::InvalidTransition { .. }) => Ok(None),
        Err(e) => Err(Failure::Retry(
            anyhow::Error::new(e).context("updating the job"),
        )),
    }
}

/// Chunks one job: the whole step, idempotent under redelivery.
pub async fn chunk_job(
    backends: &Backends,
    settings: &Settings,
    job_id: &str,
) -> Result<ChunkOutcome, Failure> {
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
    probe::check_size(size, settings)?;
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
    crate::try_batched(uploads, 4, |(key, file)| {
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
) -> Result<ChunkOutcome, Failure> {
    let Some(job) = advance(backends, job_id, &JobUpdate::status(JobStatus::Chunking)).await?
    else {
        return Ok(ChunkOutcome::Dropped("job moved on meanwhile".into()));
    };
    let gone = |what: &str| {
        Failure::reject(
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
    let found = crate::try_batched(needed, 8, |(key, what)| {
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
) -> Result<u32, Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Packet;

    fn scan(gop: i64, frames: i64) -> PacketScan {
        let mut s = PacketScan::default();
        for i in 0..frames {
            s.push(Packet {
                pts: Some(i),
                dts: Some(i),
                duration: Some(1),
                key: i % gop == 0,
                discard: false,
            });
        }
        s
    }

    #[test]
    fn plan_covers_every_frame_once_and_cuts_on_keyframes() {
        // 30 fps, keyframe every 15 frames, 100 frames, 1 s segments.
        let s = scan(15, 100);
        let plan = plan_segments(&s, 1.0 / 30.0, 1.0);
        let starts: Vec<u64> = plan.iter().map(|p| p.first_frame).collect();
        assert_eq!(starts, vec![0, 30, 60, 90]);
        assert_eq!(plan.iter().map(|p| p.frame_count).sum::<u64>(), 100);
        assert!((plan[3].duration_secs - 10.0 / 30.0).abs() < 1e-9);
        assert!(starts.iter().all(|f| f % 15 == 0));
    }

    #[test]
    fn long_gops_make_longer_segments_never_broken_ones() {
        let s = scan(250, 300);
        let plan = plan_segments(&s, 1.0 / 25.0, 2.0);
        assert_eq!(
            plan.iter()
                .map(|p| (p.first_frame, p.frame_count))
                .collect::<Vec<_>>(),
            vec![(0, 250), (250, 50)]
        );
    }

    #[test]
    fn short_sources_are_one_segment() {
        let s = scan(30, 20);
        let plan = plan_segments(&s, 1.0 / 30.0, 10.0);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].frame_count, 20);
    }
}
