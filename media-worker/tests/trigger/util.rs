//! What these tests share with each other (the worker tests' helpers of media-worker are
//! about media; these are about jobs and queues).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use parallax_core::model::{ReassemblyRequest, SegmentOutput};
use std::path::Path;
use std::time::{Duration, Instant};

use parallax_core::backends::Backends;
use parallax_core::config::CommonArgs;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{
    ConversionSettings, DepthSeam, Job, JobStatus, JobUpdate, SegmentTask, StereoMode,
};
use parallax_core::queue::ReceivedMessage;

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

/// The task media-worker sends for segment `index` of `job`.
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

/// Workers that die mid-segment: each of the `n` queued tasks is received and never
/// deleted, `receives` times, until the queue moves them all to its dead-letter queue.
pub async fn crash_on_every_receive(b: &Backends, n: usize, receives: u32) {
    let tasks = b.queue(QueueName::Segments).receiver.clone();
    for _ in 0..receives {
        let got = tasks.receive(10).await.unwrap();
        assert_eq!(got.len(), n);
        for m in got {
            tasks
                .change_visibility(&m.receipt_handle, Duration::ZERO)
                .await
                .unwrap();
        }
    }
    assert!(
        tasks.receive(10).await.unwrap().is_empty(),
        "all moved to the DLQ"
    );
}

/// Waits until `cond` holds, failing the test with `what` after `limit` (a guard against
/// a hang, not a timing assertion).
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

pub fn output_body(job_id: &str, index: u32) -> String {
    serde_json::to_string(&SegmentOutput {
        job_id: job_id.to_owned(),
        segment_index: index,
        output_key: keys::output(job_id, index),
        frame_count: 25,
    })
    .unwrap()
}

/// Receives every reassembly request and counts them per job.
pub async fn reassembly_requests(b: &parallax_core::backends::Backends) -> HashMap<String, usize> {
    let mut per_job = HashMap::new();
    for m in drain(b, QueueName::Reassembly).await {
        let r: ReassemblyRequest = serde_json::from_str(&m.body).unwrap();
        *per_job.entry(r.job_id).or_default() += 1;
    }
    per_job
}

/// A `media-worker trigger` process on `data_dir`; returns it once it says it has started.
/// Its log lines (JSON) are collected into the returned vector as they arrive.
pub fn spawn_trigger_process(
    data_dir: &std::path::Path,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_media-worker"))
        .arg("trigger")
        .env("DATA_DIR", data_dir)
        .env("WORK_DIR", data_dir.join("work"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("QUEUE_WAIT_SECS", "1")
        .env("QUEUE_VISIBILITY_TIMEOUT_SECS", "60")
        .env("RECONCILE_INTERVAL_SECS", "3600")
        .env("REASSEMBLY_RESEND_AFTER_SECS", "3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the media-worker binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut started = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("completion trigger started") {
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
            lines.lock().unwrap().push(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the trigger process starts");
    child
}

pub fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "trigger process exited with {exit}");
}
