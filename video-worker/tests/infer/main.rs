//! The segment worker against the local adapters, with a stand-in converter (ffmpeg hstack) so
//! every queue path runs in seconds. By concern:
//!
//! - `segments`: a task converted end to end and reported; the seam (a resumed depth state or
//!   a warm-up on the previous segment); a duplicate task harmless; depth stored with each
//!   segment and read back by a re-render;
//! - `overlap`: with overlap the next segment starts while the last one drains, without it
//!   one after the other;
//! - `failures`: bad input failing the job at once; a segment that always fails ending in the
//!   dead-letter queue with its job failed and readable, while another job completes;
//! - `processes`: worker processes: one SIGKILLed mid-segment and the segment redone by
//!   another worker once its lease runs out; SIGTERM letting the segment in hand finish
//!   within the grace period, and releasing it when the grace is over.

#[path = "../util/mod.rs"]
mod util;

mod failures;
mod overlap;
mod processes;
mod segments;

use std::path::Path;
use std::sync::Arc;

use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::Job;
use parallax_core::storage::ObjectStorageExt as _;
use parallax_core::worker::CancellationToken;
use parallax_testkit::TempBackends;
use video_worker::converter::{ConvertRequest, SegmentConverter};
use video_worker::infer::{InferConfig, InferWorker};

use util::{chunked_job, segment_clip, wait_for_len, HstackConverter};

/// An in-process segment worker running until [`Running::stop`].
struct Running {
    stop: CancellationToken,
    run: tokio::task::JoinHandle<()>,
}

impl Running {
    /// A worker on `b` with `cfg`, converting with `conv`.
    fn start(b: &Backends, conv: Arc<dyn SegmentConverter>, cfg: InferConfig) -> Self {
        let worker = InferWorker::new(b, conv, cfg);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let run = tokio::spawn(async move { worker.run(token).await });
        Self { stop, run }
    }

    /// A worker on `b` with the settings of its adapters, converting with `conv`.
    fn with_defaults(b: &TempBackends, conv: Arc<dyn SegmentConverter>) -> Self {
        Self::start(b, conv, InferConfig::from_common(b.args()))
    }

    /// Shuts the worker down and waits for it to stop.
    async fn stop(self) {
        self.stop.cancel();
        self.run.await.unwrap();
    }
}

/// Runs a worker with the stand-in converter until `n` segment outputs are reported; returns
/// the work items it converted, in order.
async fn convert_until_reported(b: &TempBackends, n: u64) -> Vec<ConvertRequest> {
    let conv = Arc::new(HstackConverter::new(false));
    let worker = Running::with_defaults(b, conv.clone());
    wait_for_len(b, QueueName::SegmentOutput, n).await;
    worker.stop().await;
    let seen = conv.seen.lock().unwrap().clone();
    seen
}

/// A chunked job whose segments (64x48 clips with these frame counts, made in `dir`) are
/// stored where media-worker puts them.
async fn job_with_segments(b: &Backends, dir: &Path, frames: &[u32]) -> Job {
    let job = chunked_job(b, frames.len() as u32).await;
    for (i, &n) in frames.iter().enumerate() {
        let clip = dir.join(format!("{}-{i}.mkv", job.job_id));
        segment_clip(&clip, n, (64, 48)).await;
        b.storage
            .upload(&keys::segment(&job.job_id, i as u32), &clip)
            .await
            .unwrap();
    }
    job
}
