//! Helpers shared by the worker tests, on top of the test kit (`parallax-testkit`): local
//! adapter sets on temporary folders with the tests' queue settings, segment-like clips, jobs
//! in a given state, waits for a queue or a job, and a cheap stand-in converter (ffmpeg
//! `hstack`: the frame beside itself) so the queue paths run in seconds instead of through
//! the depth model.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use parallax_core::backends::Backends;
use parallax_core::clock::{self, Clock, TestClock};
use parallax_core::config::CommonArgs;
use parallax_core::keys::QueueName;
use parallax_core::model::Job;
use parallax_core::queue::QueueReceiver;
use parallax_core::storage::ObjectStorageExt as _;
use parallax_engine::probe::count_frames;
use parallax_engine::temporal::{Normalizer, THUMB_H, THUMB_W};
use parallax_media::process::ToolCommand;
use parallax_testkit::media::{make_clip, probe, ClipSpec};
use parallax_testkit::{wait_until, TempBackends};
use video_worker::converter::{
    BadInput, ConvertReport, ConvertRequest, NormState, SeamStart, SegmentConverter,
};

// Not every test binary that includes this module uses all of them.
#[allow(unused_imports)]
pub use parallax_testkit::jobs::{chunked_job, drain, send_task, task};

/// Local adapters in a temporary DATA_DIR with the given visibility timeout and max receives,
/// and 1 s long polls.
pub async fn local(visibility_secs: u64, max_receives: u32) -> TempBackends {
    local_on(clock::system(), visibility_secs, max_receives).await
}

/// [`local`] reading a test clock (returned), which the test moves to let a lease or a wait
/// run out instead of waiting for it.
pub async fn local_with_clock(
    visibility_secs: u64,
    max_receives: u32,
) -> (TempBackends, TestClock) {
    let clock = TestClock::new();
    let b = local_on(Arc::new(clock.clone()), visibility_secs, max_receives).await;
    (b, clock)
}

async fn local_on(clock: Arc<dyn Clock>, visibility_secs: u64, max_receives: u32) -> TempBackends {
    TempBackends::with_clock(clock, |a| settings(a, visibility_secs, max_receives)).await
}

/// The tests' queue settings on `args`: the visibility timeout, max receives, 1 s long polls.
pub fn settings(args: &mut CommonArgs, visibility_secs: u64, max_receives: u32) {
    args.queue_visibility_timeout_secs = visibility_secs;
    args.queue_max_receives = max_receives;
    args.queue_wait_secs = 1;
}

/// Writes a clip like a segment: `frames` frames of a test pattern at 10 fps, `width` x
/// `height`, video only, in Matroska when `path` ends in `.mkv` (the kit's clip maker).
pub async fn segment_clip(path: &Path, frames: u32, (width, height): (u32, u32)) {
    let spec = ClipSpec {
        seconds: f64::from(frames) / 10.0,
        width,
        height,
        fps: "10".into(),
        audio_languages: Vec::new(),
        preset: "ultrafast".into(),
    };
    make_clip(path, &spec)
        .await
        .expect("ffmpeg makes a test clip");
}

/// Waits until `queue` holds at least `n` messages.
pub async fn wait_for_len(b: &Backends, queue: QueueName, n: u64) {
    let what = format!("{n} messages on {queue}");
    wait_for_queue(&*b.queue(queue).receiver, &what, |len| len >= n).await;
}

/// Waits until `q` holds a number of messages (waiting or in flight) that `ok` accepts.
pub async fn wait_for_queue(q: &dyn QueueReceiver, what: &str, ok: impl Fn(u64) -> bool) {
    wait_until(Duration::from_secs(120), what, || async {
        match q.approximate_len().await.unwrap() {
            n if ok(n) => Ok(()),
            n => Err(format!("{n} messages")),
        }
    })
    .await;
}

/// Waits until the job `id` satisfies `ok` (`what` names it in a timeout); returns it.
pub async fn wait_for_job(b: &Backends, id: &str, what: &str, ok: impl Fn(&Job) -> bool) -> Job {
    wait_until(Duration::from_secs(60), what, || async {
        let job = b.jobs.get(id).await.unwrap().expect("the job exists");
        if ok(&job) {
            Ok(job)
        } else {
            Err(format!(
                "the job is {} (waiting: {:?})",
                job.status, job.waiting
            ))
        }
    })
    .await
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

/// Frame count (decoded) and picture size of the video `key` in `b`'s storage, downloaded
/// into `dir`.
pub async fn stored_video(b: &Backends, key: &str, dir: &Path) -> (u64, (u32, u32)) {
    let local = dir.join(key.replace('/', "_"));
    b.storage.download(key, &local).await.unwrap();
    let p = probe(&local).await.unwrap();
    (p.frames, (p.width, p.height))
}
