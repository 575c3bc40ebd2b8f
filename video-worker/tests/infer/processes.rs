//! Worker processes (this test binary run as a child, see [`child_infer_worker`]): one
//! SIGKILLed mid-segment and the segment redone by another worker once its lease has run out;
//! SIGTERM releasing the segment in hand when the grace period is over, or letting it finish
//! within it.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parallax_core::backends::Backends;
use parallax_core::config::CommonArgs;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{Job, JobStatus};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_testkit::TempBackends;
use video_worker::infer::{InferConfig, InferWorker};

use crate::util::*;
use crate::Running;

const CHILD_DIR: &str = "PARALLAX_TEST_CHILD_DATA_DIR";
const CHILD_VISIBILITY: &str = "PARALLAX_TEST_CHILD_VISIBILITY_SECS";
const CHILD_GRACE: &str = "PARALLAX_TEST_CHILD_GRACE_SECS";
/// The child's test name, as the test harness knows it.
const CHILD_TEST: &str = "processes::child_infer_worker";

/// Not a test: the entry point of the worker processes that the SIGKILL and SIGTERM tests
/// start (this test binary, run with `--ignored --exact processes::child_infer_worker`). It
/// runs the segment worker with the realtime stand-in converter until SIGTERM, logging JSON
/// lines to stderr.
#[test]
#[ignore = "entry point of the worker processes started by the kill tests"]
fn child_infer_worker() {
    let Ok(data_dir) = std::env::var(CHILD_DIR) else {
        eprintln!("child_infer_worker runs only as a child process of the SIGKILL/SIGTERM tests");
        return;
    };
    let visibility: u64 = std::env::var(CHILD_VISIBILITY).unwrap().parse().unwrap();
    let grace: u64 = std::env::var(CHILD_GRACE).unwrap().parse().unwrap();
    parallax_core::telemetry::init_tracing(parallax_core::config::LogFormat::Json);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        // The parent's DATA_DIR, on the system clock (two processes share the database).
        let mut args = CommonArgs::local(&data_dir);
        settings(&mut args, visibility, 4);
        let b = Backends::from_config(&args).await.expect("local backends");
        let mut cfg = InferConfig::from_common(&args);
        cfg.grace = Duration::from_secs(grace);
        let worker = InferWorker::new(&b, Arc::new(HstackConverter::new(true)), cfg);
        worker.run(parallax_core::worker::shutdown_token()).await;
    });
}

/// A worker process on `data_dir` with a shutdown grace period of `grace` seconds; returns
/// once it logs that it started converting a segment.
fn spawn_worker(data_dir: &Path, visibility: u64, grace: u64) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--ignored", "--nocapture"])
        .env(CHILD_DIR, data_dir)
        .env(CHILD_VISIBILITY, visibility.to_string())
        .env(CHILD_GRACE, grace.to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("converting segment") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the worker process starts converting");
    child
}

/// Sends SIGTERM to `child` and waits for it to exit cleanly.
fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "the worker exits cleanly on SIGTERM: {exit}"
    );
}

/// A slow segment for the process tests: `frames` frames, which the realtime stand-in reads
/// at their native 10 fps.
async fn slow_segment(b: &TempBackends, frames: u32) -> Job {
    let job = chunked_job(b, 1).await;
    let clip = b.path().join(format!("{}.mkv", job.job_id));
    segment_clip(&clip, frames, (64, 48)).await;
    b.storage
        .upload(&keys::segment(&job.job_id, 0), &clip)
        .await
        .unwrap();
    send_task(b, &task(&job, 0, u64::from(frames), 0)).await;
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_segment_is_replaced_and_the_segment_redone() {
    let (b, clock) = local_with_clock(2, 4).await;
    // 4 s of conversion: still converting after the wait below.
    let job = slow_segment(&b, 40).await;

    let mut first = spawn_worker(b.path(), 2, 30);
    // Past the 2 s visibility timeout: the heartbeat keeps the task away from others. (What
    // is asserted is that the task stays hidden for longer than the timeout, and the worker
    // process reads the wall clock, so this waits out the time; it waits for no state.)
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        b.queue(QueueName::Segments)
            .receiver
            .receive(1)
            .await
            .unwrap()
            .is_empty(),
        "the task stays invisible while its worker is alive"
    );
    first.kill().unwrap(); // SIGKILL: no chance to release anything
    first.wait().unwrap();
    assert_eq!(
        b.queue(QueueName::SegmentOutput)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );

    // The killed worker's lease runs out on the clock (no other process shares the database
    // now), and another worker takes the task over.
    clock.advance(Duration::from_secs(3));
    let second = Running::with_defaults(&b, Arc::new(HstackConverter::new(false)));
    wait_for_len(&b, QueueName::SegmentOutput, 1).await;
    second.stop().await;

    let outs = drain(&b, QueueName::SegmentOutput).await;
    assert_eq!(
        outs.len(),
        1,
        "the segment is reported once, by the second worker"
    );
    assert_eq!(
        stored_video(&b, &keys::output(&job.job_id, 0), b.path()).await,
        (40, (128, 48))
    );
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );
    assert_ne!(
        b.jobs.get(&job.job_id).await.unwrap().unwrap().status,
        JobStatus::Failed
    );
}

/// SIGTERM with no grace period (`SHUTDOWN_GRACE_SECS=0`, or a segment that outlasts it):
/// the segment in hand is released at once for another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_message_when_the_grace_period_is_over() {
    // A long lease: the task can only be back soon if the worker released it.
    let b = local(120, 4).await;
    let job = slow_segment(&b, 40).await;

    terminate(spawn_worker(b.path(), 120, 0));

    let back = b
        .queue(QueueName::Segments)
        .receiver
        .receive(1)
        .await
        .unwrap();
    assert_eq!(back.len(), 1, "the task is visible again at once");
    assert_eq!(back[0].receive_count, 2);
    assert!(back[0].body.contains(&job.job_id));
    assert_eq!(
        b.queue(QueueName::SegmentOutput)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );
    assert!(b
        .storage
        .head(&keys::output(&job.job_id, 0))
        .await
        .unwrap()
        .is_none());
}

/// SIGTERM within the grace period: the worker stops receiving, finishes the segment in
/// hand (converted, stored, reported, deleted), then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_segment_in_hand_finish_within_the_grace_period() {
    let b = local(120, 4).await;
    // 2 s of conversion: SIGTERM comes well within it.
    let job = slow_segment(&b, 20).await;
    let worker = spawn_worker(b.path(), 120, 60);
    // Sent after the first one is taken: it must not be started once SIGTERM has come.
    let next = chunked_job(&b, 1).await;
    send_task(&b, &task(&next, 0, 40, 0)).await;

    terminate(worker);

    let outs = drain(&b, QueueName::SegmentOutput).await;
    assert_eq!(
        outs.len(),
        1,
        "the segment in hand was finished and reported"
    );
    assert!(outs[0].body.contains(&job.job_id));
    assert_eq!(
        stored_video(&b, &keys::output(&job.job_id, 0), b.path()).await,
        (20, (128, 48))
    );
    let left = b
        .queue(QueueName::Segments)
        .receiver
        .receive(10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "only the task sent later is left");
    assert!(left[0].body.contains(&next.job_id));
    assert_eq!(left[0].receive_count, 1, "never taken");
}
