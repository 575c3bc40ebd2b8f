//! Helpers shared by the worker tests: local adapter sets on temporary folders, generated clips,
//! jobs in a given state, and a cheap stand-in converter (ffmpeg `hstack`: the frame beside
//! itself) so the queue paths run in seconds instead of through the depth model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parallax_core::backends::Backends;
use parallax_core::config::CommonArgs;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{
    ConversionSettings, DepthSeam, Job, JobStatus, JobUpdate, SegmentTask, StereoMode,
};
use parallax_core::queue::ReceivedMessage;
use parallax_engine::probe::count_frames;
use parallax_engine::temporal::{Normalizer, THUMB_H, THUMB_W};
use parallax_media::process::ToolCommand;
use video_worker::converter::{
    BadInput, ConvertReport, ConvertRequest, NormState, SeamStart, SegmentConverter,
};

/// Local adapter settings on `dir` with the given visibility timeout and max receives.
pub fn common(dir: &Path, visibility_secs: u64, max_receives: u32) -> CommonArgs {
    let mut c = CommonArgs::local(dir);
    c.queue_visibility_timeout_secs = visibility_secs;
    c.queue_max_receives = max_receives;
    c.queue_wait_secs = 1;
    c
}

/// An adapter set on `dir`.
pub async fn backends(common: &CommonArgs) -> Backends {
    Backends::from_config(common).await.expect("local backends")
}

/// Stores a job that has been chunked into `total` segments.
pub async fn chunked_job(b: &Backends, total: u32) -> Job {
    let job = Job::new(
        "test clip",
        StereoMode::FullSbs,
        ConversionSettings::default(),
    );
    b.jobs.put(&job).await.unwrap();
    b.jobs
        .update(
            &job.job_id,
            &JobUpdate {
                status: Some(JobStatus::ChunkingComplete),
                total_segments: Some(total),
                ..JobUpdate::default()
            },
        )
        .await
        .unwrap()
}

/// Writes a test clip of `frames` frames at 10 fps (Matroska, video only, like a segment).
pub async fn make_clip(path: &Path, frames: u32, size: &str) {
    ToolCommand::ffmpeg(Duration::from_secs(60))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=10"))
        .args(["-frames:v", &frames.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-an"])
        .arg(path)
        .run()
        .await
        .expect("ffmpeg makes a test clip");
}

/// The task media-worker would send for segment `index` of `job`.
pub fn task(job: &Job, index: u32, frame_count: u64, warmup_frames: u32) -> SegmentTask {
    SegmentTask {
        job_id: job.job_id.clone(),
        segment_index: index,
        total_segments: job.total_segments.unwrap(),
        source_key: keys::segment(&job.job_id, index),
        output_key: keys::output(&job.job_id, index),
        first_frame: 0,
        frame_count,
        mode: job.mode,
        settings: job.settings.clone(),
        seam: DepthSeam {
            prev_source_key: (index > 0).then(|| keys::segment(&job.job_id, index - 1)),
            warmup_frames,
        },
        depth_key: None,
    }
}

/// Sends `task` to the segments queue.
pub async fn send_task(b: &Backends, task: &SegmentTask) {
    b.queue(QueueName::Segments)
        .sender
        .send(&serde_json::to_string(task).unwrap())
        .await
        .unwrap();
}

/// Receives and deletes everything on `queue` until it has been empty for one poll.
pub async fn drain(b: &Backends, queue: QueueName) -> Vec<ReceivedMessage> {
    let q = &b.queue(queue).receiver;
    let mut all = Vec::new();
    loop {
        let got = q.receive(10).await.unwrap();
        if got.is_empty() {
            return all;
        }
        for m in got {
            q.delete(&m.receipt_handle).await.unwrap();
            all.push(m);
        }
    }
}

/// Waits until `cond` holds, failing the test with `what` after `limit` (a guard against a
/// hang, not a timing assertion).
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stand-in converter: puts each frame beside itself with ffmpeg (the output has the source's
/// frame count and twice its width), writes the two preview images, "stores depth" as a copy
/// of the input when asked and hands on [`ending_state`] as its final depth state. Records
/// every work item it was given.
#[derive(Debug, Default)]
pub struct HstackConverter {
    /// Read the input at its native frame rate (`-re`), so a conversion takes as long as the
    /// clip: time for a test to kill the worker mid-segment.
    pub realtime: bool,
    /// Every work item received, in order.
    pub seen: Mutex<Vec<ConvertRequest>>,
}

impl HstackConverter {
    /// A converter that reads at native speed when `realtime`.
    pub fn new(realtime: bool) -> Self {
        Self {
            realtime,
            seen: Mutex::default(),
        }
    }
}

#[async_trait]
impl SegmentConverter for HstackConverter {
    async fn convert(
        &self,
        work: &ConvertRequest,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<ConvertReport> {
        self.seen.lock().unwrap().push(work.clone());
        let input_frames = count_frames(&work.input)
            .await
            .map_err(|e| BadInput(format!("the segment is not a readable video ({e:#})")))?;
        if let Some(depth) = &work.depth_in {
            let n = count_frames(depth)
                .await
                .map_err(|e| BadInput(format!("the stored depth is not a video ({e:#})")))?;
            if n != input_frames {
                return Err(
                    BadInput(format!("{n} stored depth maps for {input_frames} frames")).into(),
                );
            }
        }
        if let SeamStart::Warmup { previous: prev, .. } = &work.seam {
            count_frames(prev)
                .await
                .map_err(|e| BadInput(format!("the previous segment is not a video ({e:#})")))?;
        }
        let mut cmd = ToolCommand::ffmpeg(Duration::from_secs(120));
        if self.realtime {
            cmd = cmd.arg("-re");
        }
        cmd.arg("-i")
            .arg(&work.input)
            .args(["-filter_complex", "[0:v]split[a][b];[a][b]hstack"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "35",
                "-an",
            ])
            .args(["-f", "matroska"])
            .arg(&work.output)
            .run()
            .await?;
        let (mut preview_sbs, mut preview_depth) = (None, None);
        if let Some(dir) = &work.preview_dir {
            let sbs = dir.join("preview-sbs.jpg");
            let depth = dir.join("preview-depth.png");
            ToolCommand::ffmpeg(Duration::from_secs(60))
                .arg("-i")
                .arg(&work.output)
                .args(["-frames:v", "1"])
                .arg(&sbs)
                .run()
                .await?;
            ToolCommand::ffmpeg(Duration::from_secs(60))
                .arg("-i")
                .arg(&work.input)
                .args(["-vf", "format=gray", "-frames:v", "1"])
                .arg(&depth)
                .run()
                .await?;
            (preview_sbs, preview_depth) = (Some(sbs), Some(depth));
        }
        let frames = count_frames(&work.output).await?;
        let depth = match &work.depth_out {
            Some(d) => {
                std::fs::copy(&work.input, d)?;
                Some(d.clone())
            }
            None => None,
        };
        if let Some(sink) = &work.seam_end {
            sink.put(ending_state(frames));
        }
        progress(frames.min(input_frames));
        Ok(ConvertReport {
            frames,
            preview_sbs,
            preview_depth,
            notes: Vec::new(),
            depth,
        })
    }
}

/// The normalisation state [`HstackConverter`] says a segment of `frames` frames ended with.
pub fn ending_state(frames: u64) -> NormState {
    let mut n = Normalizer::new(0.5);
    let v = frames as f32;
    n.observe(&[v, v + 1.0, v + 2.0], &[0.5; THUMB_W * THUMB_H]);
    n.state()
}

/// Width and height of the first video stream of `path`.
pub async fn video_size(path: &Path) -> (u32, u32) {
    let out = ToolCommand::ffprobe(Duration::from_secs(30))
        .args(["-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .await
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    // A stream with side data (a stereo output's Stereo 3D) ends with an empty field.
    let (w, h) = s.trim().trim_end_matches(',').split_once(',').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

/// A fresh file path in `dir`.
pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
