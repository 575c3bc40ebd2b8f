//! Jobs and queue messages in the states the worker tests start from: a job chunked into
//! segments, the task media-worker would send for one of them, and draining a queue to see
//! what was sent.

use std::sync::Mutex;
use std::time::Duration;

use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{
    ConversionSettings, DepthSeam, Job, JobStatus, JobUpdate, SegmentTask, StereoMode,
};
use parallax_core::queue::ReceivedMessage;

use crate::wait_until;

/// Stores a job that has been chunked into `total` segments (full side-by-side, default
/// settings) and returns it as stored.
pub async fn chunked_job(b: &Backends, total: u32) -> Job {
    let job = Job::new(
        "test clip",
        StereoMode::FullSbs,
        ConversionSettings::default(),
    );
    b.jobs.put(&job).await.expect("storing the job");
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
        .expect("marking the job chunked")
}

/// The task media-worker would send for segment `index` of `job` (a job from
/// [`chunked_job`]): `frame_count` frames, `warmup_frames` of the previous segment.
pub fn task(job: &Job, index: u32, frame_count: u64, warmup_frames: u32) -> SegmentTask {
    SegmentTask {
        job_id: job.job_id.clone(),
        segment_index: index,
        total_segments: job.total_segments.expect("a chunked job"),
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
        .send(&serde_json::to_string(task).expect("a task serialises"))
        .await
        .expect("sending the task");
}

/// Receives and deletes every message on `queue` until it holds none (the workers are
/// stopped, so every message left is visible); returns them.
pub async fn drain(b: &Backends, queue: QueueName) -> Vec<ReceivedMessage> {
    let q = &b.queue(queue).receiver;
    let all = Mutex::new(Vec::new());
    wait_until(
        Duration::from_secs(60),
        &format!("queue {queue} drained"),
        || async {
            for m in q.receive(10).await.expect("receiving") {
                q.delete(&m.receipt_handle).await.expect("deleting");
                all.lock().expect("not poisoned").push(m);
            }
            match q.approximate_len().await.expect("counting") {
                0 => Ok(()),
                n => Err(format!("{n} messages left")),
            }
        },
    )
    .await;
    all.into_inner().expect("not poisoned")
}
