//! What the viewer tests play: generated red and blue clips, and jobs (converting or
//! completed) with their segments or result stored as the workers leave them.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use parallax_core::keys;
use parallax_core::model::{ConversionSettings, Job, JobStatus, JobUpdate, StereoMode};

use crate::common::TestApp;

/// Runs ffmpeg quietly; panics with its message when it fails.
pub(crate) fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed (make setup installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 3 s side-by-side clip (H.264): the left view pure red, the right view pure blue, each
/// 160x90. The name's extension picks the container (`.mp4` as a result, `.mkv` as a
/// converted segment).
pub(crate) fn red_blue_sbs(dir: &Path, name: &str) -> PathBuf {
    red_blue(dir, name, "hstack")
}

/// Red and blue 160x90 pictures put together by `stack` (`hstack` or `vstack`), 3 s of H.264.
pub(crate) fn red_blue(dir: &Path, name: &str, stack: &str) -> PathBuf {
    let out = dir.join(name);
    let filter = format!("[0:v][1:v]{stack}=inputs=2,format=yuv420p");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x90:r=15:d=3",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=160x90:r=15:d=3",
        "-filter_complex",
        &filter,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "15",
        out.to_str().unwrap(),
    ]);
    out
}

/// The playable copy of a converted segment, made with the video-worker's remux.
pub(crate) fn playable_copy(segment: &Path) -> PathBuf {
    let out = segment.with_extension("play.mp4");
    ffmpeg(&[
        "-i",
        segment.to_str().unwrap(),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        "-f",
        "mp4",
        out.to_str().unwrap(),
    ]);
    out
}

/// A full side-by-side job that is converting: split into `total` segments, none done.
pub(crate) async fn converting_job(app: &TestApp, title: &str, total: u32) -> String {
    let job = Job::new(title, StereoMode::FullSbs, ConversionSettings::default());
    app.backends.jobs.put(&job).await.unwrap();
    let mut u = JobUpdate::status(JobStatus::ChunkingComplete);
    u.uploaded_at = Some(Utc::now());
    u.source_file_size_bytes = Some(1_000_000);
    u.total_segments = Some(total);
    app.backends.jobs.update(&job.job_id, &u).await.unwrap();
    job.job_id
}

/// What the workers leave when segment `index` is done: the converted segment, its playable
/// copy (unless `with_copy` is false) and its completion.
pub(crate) async fn finish_segment(
    app: &TestApp,
    job_id: &str,
    index: u32,
    segment: &Path,
    with_copy: bool,
) {
    app.put_file(&keys::output(job_id, index), segment).await;
    if with_copy {
        app.put_file(&keys::playable(job_id, index), &playable_copy(segment))
            .await;
    }
    app.record_segment(job_id, index, 45).await;
}

/// A completed job called `title` in `mode` whose result is `clip`.
pub(crate) async fn completed_job(
    app: &TestApp,
    title: &str,
    mode: StereoMode,
    clip: &Path,
) -> String {
    let job = Job::new(title, mode, ConversionSettings::default());
    app.backends.jobs.put(&job).await.unwrap();
    let key = keys::final_output(&job.job_id, "result.mp4");
    app.put_file(&key, clip).await;
    let mut u = JobUpdate::status(JobStatus::Completed);
    u.uploaded_at = Some(Utc::now());
    u.completed_at = Some(Utc::now());
    u.total_segments = Some(1);
    u.output_key = Some(key);
    app.backends.jobs.update(&job.job_id, &u).await.unwrap();
    job.job_id
}
