//! The fleet around media-worker in tests, on the local adapters: the backends (on a test
//! clock, so that a lease runs out when a test says so), a stand-in video-worker, and waits
//! for a job's state or a queue to drain under a deadline.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parallax_core::backends::Backends;
use parallax_core::clock::TestClock;
use parallax_core::config::CommonArgs;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{Job, SegmentCompletion, SegmentTask};
use parallax_core::storage::ObjectStorageExt as _;

use super::{packets, stand_in};

/// Local adapters under `dir/data` with 2 s leases (visibility timeout) and room for many
/// retries, reading the returned clock.
pub async fn local_backends(dir: &Path) -> (Backends, TestClock) {
    let mut args = CommonArgs::local(dir.join("data"));
    args.queue_visibility_timeout_secs = 2;
    args.queue_max_receives = 50;
    let clock = TestClock::new();
    let backends = Backends::from_config_with_clock(&args, Arc::new(clock.clone()))
        .await
        .unwrap();
    (backends, clock)
}

/// A stand-in video-worker: converts every task on the segments queue until `n` are done,
/// records their completions (and, for a job that computes depth, a stand-in depth object,
/// as a video-worker stores depth) and returns the tasks in segment order.
pub async fn convert_segments(b: &Backends, dir: &Path, n: usize) -> Vec<SegmentTask> {
    let q = b.queue(QueueName::Segments);
    let mut tasks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while tasks.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} tasks arrived",
            tasks.len()
        );
        for m in q.receiver.receive(10).await.unwrap() {
            let task: SegmentTask = serde_json::from_str(&m.body).unwrap();
            let name = format!("{}-{}", task.job_id, task.segment_index);
            let seg = dir.join(format!("in-{name}.mkv"));
            let out = dir.join(format!("out-{name}.mkv"));
            b.storage.download(&task.source_key, &seg).await.unwrap();
            assert_eq!(packets(&seg), task.frame_count, "task frame count");
            if let Some(depth) = &task.depth_key {
                assert!(
                    b.storage.head(depth).await.unwrap().is_some(),
                    "{depth} is stored"
                );
            } else {
                b.storage
                    .upload(&keys::depth(&task.job_id, task.segment_index), &seg)
                    .await
                    .unwrap();
            }
            stand_in(&seg, &out);
            b.storage.upload(&task.output_key, &out).await.unwrap();
            b.completions
                .put(&SegmentCompletion {
                    job_id: task.job_id.clone(),
                    segment_index: task.segment_index,
                    output_uri: task.output_key.clone(),
                    completed_at: Utc::now(),
                    frame_count: Some(packets(&out)),
                })
                .await
                .unwrap();
            q.receiver.delete(&m.receipt_handle).await.unwrap();
            tasks.push(task);
        }
    }
    tasks.sort_by_key(|t| t.segment_index);
    tasks
}

/// Waits until the job satisfies `ok` (`what` names it in the failure), at most 3 minutes.
pub async fn wait_for(b: &Backends, job_id: &str, what: &str, ok: impl Fn(&Job) -> bool) -> Job {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let job = b.jobs.get(job_id).await.unwrap().unwrap();
        if ok(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; job is {:?} ({:?})",
            job.status,
            job.error
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until queue `q` holds no message, waiting or in flight: every message sent to it
/// has been handled and deleted (or dead-lettered, which the caller checks).
pub async fn wait_drained(b: &Backends, q: QueueName) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.queue(q).receiver.approximate_len().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "queue {q} did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
