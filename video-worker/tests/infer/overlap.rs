//! Overlap: with it, a slot takes its next segment while the last one drains; without it,
//! segments run one after the other.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::Job;
use parallax_core::storage::ObjectStorageExt as _;
use parallax_testkit::{wait_until, TempBackends};
use tokio::sync::Semaphore;
use video_worker::converter::{ConvertReport, ConvertRequest, SegmentConverter};
use video_worker::infer::InferConfig;

use crate::util::*;
use crate::Running;

/// A converter that reports every frame handed over at once (so the worker says it is
/// draining), then holds the segment, as an encoder draining, until the test lets it finish,
/// and copies the input. Counts the conversions that said they drain, those in flight, and
/// the most in flight at once.
#[derive(Debug)]
struct DrainingConverter {
    draining: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// One permit lets one conversion finish.
    finish: Semaphore,
}

impl Default for DrainingConverter {
    fn default() -> Self {
        Self {
            draining: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            finish: Semaphore::new(0),
        }
    }
}

#[async_trait]
impl SegmentConverter for DrainingConverter {
    async fn convert(
        &self,
        work: &ConvertRequest,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<ConvertReport> {
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most_in_flight.fetch_max(now, SeqCst);
        let frames = work.expected_frames.expect("tasks carry their frame count");
        progress(frames);
        self.draining.fetch_add(1, SeqCst);
        self.finish.acquire().await?.forget();
        std::fs::copy(&work.input, &work.output)?;
        self.in_flight.fetch_sub(1, SeqCst);
        Ok(ConvertReport {
            frames,
            preview_sbs: None,
            preview_depth: None,
            notes: Vec::new(),
            depth: None,
        })
    }
}

/// Two tasks of one job on the queue and a worker (overlapping or not) converting them with
/// a [`DrainingConverter`].
async fn two_tasks(overlap: bool) -> (TempBackends, Job, Arc<DrainingConverter>, Running) {
    let b = local(60, 4).await;
    let job = chunked_job(&b, 2).await;
    let clip = b.path().join("clip.mkv");
    segment_clip(&clip, 8, (64, 48)).await;
    for i in 0..2 {
        let key = keys::segment(&job.job_id, i);
        b.storage.upload(&key, &clip).await.unwrap();
        send_task(&b, &task(&job, i, 8, 0)).await;
    }
    let conv = Arc::new(DrainingConverter::default());
    let mut cfg = InferConfig::from_common(b.args());
    cfg.overlap = overlap;
    let worker = Running::start(&b, conv.clone(), cfg);
    (b, job, conv, worker)
}

/// Waits until `count` of `conv` reaches `n`.
async fn wait_for_count(what: &str, count: &AtomicUsize, n: usize) {
    wait_until(Duration::from_secs(60), what, || async {
        match count.load(SeqCst) {
            got if got == n => Ok(()),
            got => Err(format!("{got}")),
        }
    })
    .await;
}

/// Waits for both outputs, stops the worker and checks that both segments were converted,
/// reported and deleted.
async fn both_done(b: &TempBackends, job: &Job, worker: Running) {
    wait_for_len(b, QueueName::SegmentOutput, 2).await;
    worker.stop().await;
    for i in 0..2 {
        let got = stored_video(b, &keys::output(&job.job_id, i), b.path()).await;
        assert_eq!(got.0, 8, "segment {i}");
    }
    let segments = &b.queue(QueueName::Segments).receiver;
    assert_eq!(segments.approximate_len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_overlap_the_next_segment_starts_while_the_last_one_drains() {
    let (b, job, conv, worker) = two_tasks(true).await;
    // Neither may finish yet: the second starts while the first is still draining.
    wait_for_count("both segments in flight at once", &conv.in_flight, 2).await;
    conv.finish.add_permits(2);
    both_done(&b, &job, worker).await;
    assert_eq!(conv.most_in_flight.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_overlap_segments_run_one_after_the_other() {
    let (b, job, conv, worker) = two_tasks(false).await;
    wait_for_count("the first segment draining", &conv.draining, 1).await;
    // What is asserted is that nothing starts while the first segment drains, so this waits
    // out a span (with overlap the next one starts within it, see above), not for a state.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(conv.in_flight.load(SeqCst), 1, "the second waits");
    conv.finish.add_permits(1);
    wait_for_count("the second segment draining", &conv.draining, 2).await;
    conv.finish.add_permits(1);
    both_done(&b, &job, worker).await;
    assert_eq!(conv.most_in_flight.load(SeqCst), 1);
}
