//! The segment worker against the local adapters, with a stand-in converter (ffmpeg hstack) so
//! every queue path runs in seconds: a task converted end to end and reported; a duplicate
//! task harmless; bad input failing the job at once; a segment that always fails ending in the
//! dead-letter queue with its job failed and readable, while another job completes; a worker
//! SIGKILLed mid-segment and the segment redone by another process; SIGTERM letting the
//! segment in hand finish within the grace period, and releasing it when the grace is over.

mod util;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{Job, JobStatus, JobUpdate, SegmentOutput};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_core::worker::CancellationToken;
use parallax_engine::probe::count_frames;
use util::*;
use video_worker::converter::SeamStart;
use video_worker::infer::{InferConfig, InferWorker};

/// Starts an in-process worker with the stand-in converter; returns its shutdown token and
/// task.
fn start_worker(
    b: &Backends,
    common: &parallax_core::config::CommonArgs,
    conv: Arc<HstackConverter>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let worker = InferWorker::new(b, conv, InferConfig::from_common(common));
    let token = CancellationToken::new();
    let t = token.clone();
    (token, tokio::spawn(async move { worker.run(t).await }))
}

async fn outputs_sent(b: &Backends, n: u64) {
    let q = b.queue(QueueName::SegmentOutput).receiver.clone();
    wait_for("segment outputs", Duration::from_secs(120), || {
        let q = q.clone();
        async move { q.approximate_len().await.unwrap() >= n }
    })
    .await;
}

/// Runs a worker with the stand-in converter until `n` segment outputs are reported; returns
/// the work items it converted, in order.
async fn convert_until_reported(
    b: &Backends,
    common: &parallax_core::config::CommonArgs,
    n: u64,
) -> Vec<video_worker::converter::ConvertRequest> {
    let conv = Arc::new(HstackConverter::new(false));
    let (stop, run) = start_worker(b, common, conv.clone());
    outputs_sent(b, n).await;
    stop.cancel();
    run.await.unwrap();
    let seen = conv.seen.lock().unwrap().clone();
    seen
}

/// A chunked job whose segments (64x48 clips with these frame counts, made in `dir`) are
/// stored where media-worker puts them.
async fn job_with_segments(b: &Backends, dir: &std::path::Path, frames: &[u32]) -> Job {
    let job = chunked_job(b, frames.len() as u32).await;
    for (i, &n) in frames.iter().enumerate() {
        let clip = dir.join(format!("{i}.mkv"));
        make_clip(&clip, n, "64x48").await;
        b.storage
            .upload(&keys::segment(&job.job_id, i as u32), &clip)
            .await
            .unwrap();
    }
    job
}

async fn stored_frames(b: &Backends, key: &str, dir: &std::path::Path) -> (u64, (u32, u32)) {
    let local = dir.join(key.replace('/', "_"));
    b.storage.download(key, &local).await.unwrap();
    (
        count_frames(&local).await.unwrap(),
        video_size(&local).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converts_tasks_end_to_end_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 4);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();
    let job = job_with_segments(&b, clips.path(), &[12, 9]).await;
    send_task(&b, &task(&job, 0, 12, 5)).await;
    send_task(&b, &task(&job, 1, 9, 5)).await;

    let seen = convert_until_reported(&b, &common, 2).await;

    // Converted segments at their keys, with the source's frame count.
    for (i, frames) in [(0u32, 12u64), (1, 9)] {
        let got = stored_frames(&b, &keys::output(&job.job_id, i), clips.path()).await;
        assert_eq!(got, (frames, (128, 48)), "segment {i}");
        // And its browser-playable copy: the same frames, fragmented MP4 (for the job page).
        let key = keys::playable(&job.job_id, i);
        let got = stored_frames(&b, &key, clips.path()).await;
        assert_eq!(got, (frames, (128, 48)), "playable copy of segment {i}");
        let bytes = std::fs::read(clips.path().join(key.replace('/', "_"))).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp", "segment {i}: MP4");
        assert!(
            bytes.windows(4).any(|w| w == b"moof"),
            "segment {i}: fragmented"
        );
    }
    // The job page's previews, from segment 0 only.
    assert!(
        b.storage
            .head(&keys::preview_frame(&job.job_id))
            .await
            .unwrap()
            .unwrap()
            > 0
    );
    assert!(
        b.storage
            .head(&keys::preview_depth(&job.job_id))
            .await
            .unwrap()
            .unwrap()
            > 0
    );
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(first.seam, SeamStart::Fresh);
    assert!(first.preview_dir.is_some());
    assert_eq!(first.expected_frames, Some(12));
    // The same worker converted segment 0 just before: segment 1 resumes from the depth
    // state segment 0 ended with, without a warm-up.
    let second = &seen[1];
    assert!(second.preview_dir.is_none());
    assert_eq!(second.seam, SeamStart::Resume(ending_state(12)));

    // Every task is deleted; the reports say what was converted.
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );
    let outputs = b.queue(QueueName::SegmentOutput).receiver.clone();
    let mut reported: Vec<SegmentOutput> = Vec::new();
    for m in outputs.receive(10).await.unwrap() {
        reported.push(serde_json::from_str(&m.body).unwrap());
        outputs
            .change_visibility(&m.receipt_handle, Duration::ZERO)
            .await
            .unwrap();
    }
    reported.sort_by_key(|o| o.segment_index);
    assert_eq!(
        reported
            .iter()
            .map(|o| (o.segment_index, o.frame_count, o.output_key.clone()))
            .collect::<Vec<_>>(),
        vec![
            (0, 12, keys::output(&job.job_id, 0)),
            (1, 9, keys::output(&job.job_id, 1))
        ]
    );

    // (media-worker's completion trigger takes it from there: media-worker/tests/trigger.rs.)
}

/// A converter that reports every frame handed over at once, then holds the segment (as an
/// encoder draining) until another conversion starts or `hold` passes, and copies the input.
/// Records the most conversions it saw in flight at once.
#[derive(Debug)]
struct DrainingConverter {
    hold: Duration,
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
    started: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl video_worker::converter::SegmentConverter for DrainingConverter {
    async fn convert(
        &self,
        work: &video_worker::converter::ConvertRequest,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<video_worker::converter::ConvertReport> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most_in_flight.fetch_max(now, SeqCst);
        self.started.notify_waiters();
        let frames = work.expected_frames.expect("tasks carry their frame count");
        progress(frames);
        let _ = tokio::time::timeout(self.hold, self.started.notified()).await;
        std::fs::copy(&work.input, &work.output)?;
        self.in_flight.fetch_sub(1, SeqCst);
        Ok(video_worker::converter::ConvertReport {
            frames,
            preview_sbs: None,
            preview_depth: None,
            notes: Vec::new(),
            depth: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_whose_predecessor_was_converted_elsewhere_warms_up_on_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 4);
    let b = backends(&common).await;
    let job = job_with_segments(&b, dir.path(), &[12, 9]).await;
    // Only segment 1 comes to this worker.
    send_task(&b, &task(&job, 1, 9, 5)).await;
    let seen = convert_until_reported(&b, &common, 1).await;
    assert_eq!(seen.len(), 1);
    // Warmed up on segment 0's source (downloaded; the stand-in reads it), the task's frames.
    match &seen[0].seam {
        SeamStart::Warmup { previous, frames } => {
            assert_eq!(*frames, 5);
            assert!(previous.ends_with("previous.mkv"), "{}", previous.display());
        }
        other => panic!("expected a warm-up, got {other:?}"),
    }
}

/// Converts two tasks of one job with a [`DrainingConverter`]; returns the most conversions
/// in flight at once.
async fn most_in_flight(overlap: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 4);
    let b = backends(&common).await;
    let job = chunked_job(&b, 2).await;
    let clip = dir.path().join("clip.mkv");
    make_clip(&clip, 8, "64x48").await;
    for i in 0..2 {
        let key = keys::segment(&job.job_id, i);
        b.storage.upload(&key, &clip).await.unwrap();
        send_task(&b, &task(&job, i, 8, 0)).await;
    }
    let conv = Arc::new(DrainingConverter {
        hold: Duration::from_secs(3),
        in_flight: Default::default(),
        most_in_flight: Default::default(),
        started: Default::default(),
    });
    let mut cfg = InferConfig::from_common(&common);
    cfg.overlap = overlap;
    let worker = InferWorker::new(&b, conv.clone(), cfg);
    let stop = CancellationToken::new();
    let run = {
        let t = stop.clone();
        tokio::spawn(async move { worker.run(t).await })
    };
    outputs_sent(&b, 2).await;
    stop.cancel();
    run.await.unwrap();
    // Both converted, reported and deleted either way.
    for i in 0..2 {
        let got = stored_frames(&b, &keys::output(&job.job_id, i), dir.path()).await;
        assert_eq!(got.0, 8, "segment {i}");
    }
    let segments = b.queue(QueueName::Segments).receiver.clone();
    assert_eq!(segments.approximate_len().await.unwrap(), 0);
    conv.most_in_flight
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_overlap_the_next_segment_starts_while_the_last_one_drains() {
    assert_eq!(most_in_flight(true).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_overlap_segments_run_one_after_the_other() {
    assert_eq!(most_in_flight(false).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_task_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 4);
    let b = backends(&common).await;
    let job = chunked_job(&b, 1).await;
    let clips = tempfile::tempdir().unwrap();
    let clip = clips.path().join("0.mkv");
    make_clip(&clip, 10, "64x48").await;
    b.storage
        .upload(&keys::segment(&job.job_id, 0), &clip)
        .await
        .unwrap();
    // The same task twice (a redelivery, or media-worker re-sending after a crash).
    send_task(&b, &task(&job, 0, 10, 0)).await;
    send_task(&b, &task(&job, 0, 10, 0)).await;

    let (stop, run) = start_worker(&b, &common, Arc::new(HstackConverter::new(false)));
    outputs_sent(&b, 2).await;
    stop.cancel();
    run.await.unwrap();

    // The same key was rewritten with a whole, correct segment: no second set of objects.
    assert_eq!(
        stored_frames(&b, &keys::output(&job.job_id, 0), clips.path()).await,
        (10, (128, 48))
    );
    assert!(b
        .storage
        .head(&keys::output(&job.job_id, 1))
        .await
        .unwrap()
        .is_none());
    // Both reports name the same segment, key and frame count: the completion trigger
    // records a segment once (set membership), so it counts once (media-worker's trigger
    // tests deliver every output twice).
    let reports: Vec<SegmentOutput> = drain(&b, QueueName::SegmentOutput)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0], reports[1]);
    assert_eq!((reports[0].segment_index, reports[0].frame_count), (0, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_the_job_at_once_and_failed_jobs_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 4);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();

    // A "segment" that is not a video.
    let garbage_job = chunked_job(&b, 1).await;
    let garbage = clips.path().join("garbage.mkv");
    std::fs::write(&garbage, b"this is not a video at all").unwrap();
    b.storage
        .upload(&keys::segment(&garbage_job.job_id, 0), &garbage)
        .await
        .unwrap();
    send_task(&b, &task(&garbage_job, 0, 10, 0)).await;
    // A segment whose object is missing.
    let missing_job = chunked_job(&b, 1).await;
    send_task(&b, &task(&missing_job, 0, 10, 0)).await;
    // A job the user cancelled: its task is dropped without converting.
    let cancelled = chunked_job(&b, 1).await;
    let clip = clips.path().join("0.mkv");
    make_clip(&clip, 10, "64x48").await;
    b.storage
        .upload(&keys::segment(&cancelled.job_id, 0), &clip)
        .await
        .unwrap();
    b.jobs
        .update(
            &cancelled.job_id,
            &JobUpdate::failed("cancelled", "cancelled by the user"),
        )
        .await
        .unwrap();
    send_task(&b, &task(&cancelled, 0, 10, 0)).await;

    let conv = Arc::new(HstackConverter::new(false));
    let (stop, run) = start_worker(&b, &common, conv.clone());
    let tasks = b.queue(QueueName::Segments).receiver.clone();
    wait_for("every task deleted", Duration::from_secs(60), || {
        let q = tasks.clone();
        async move { q.approximate_len().await.unwrap() == 0 }
    })
    .await;
    stop.cancel();
    run.await.unwrap();

    let job = b.jobs.get(&garbage_job.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let err = job.error.unwrap();
    assert_eq!(err.code, "bad-segment");
    assert!(err.message.contains("segment 1 of 1"), "{}", err.message);
    assert!(
        err.message.contains("not a readable video"),
        "{}",
        err.message
    );

    let job = b.jobs.get(&missing_job.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let err = job.error.unwrap();
    assert_eq!(err.code, "segment-missing");
    assert!(
        err.message.contains(&keys::segment(&missing_job.job_id, 0)),
        "{}",
        err.message
    );

    // Failed at the first attempt: nothing went to the dead-letter queue or was retried.
    assert_eq!(
        b.queue(QueueName::Segments)
            .dead_letters
            .approximate_len()
            .await
            .unwrap(),
        0
    );
    let converted: Vec<_> = conv
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|w| w.input.clone())
        .collect();
    assert_eq!(
        converted.len(),
        1,
        "only the garbage segment reached the converter, once"
    );
    assert!(b
        .storage
        .head(&keys::output(&cancelled.job_id, 0))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        b.queue(QueueName::SegmentOutput)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_always_fails_ends_in_the_dlq_and_fails_its_job() {
    let dir = tempfile::tempdir().unwrap();
    // Short leases and three receives, so the retries run in seconds.
    let common = common(dir.path(), 2, 3);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();
    let clip = clips.path().join("0.mkv");
    make_clip(&clip, 10, "64x48").await;

    // The manifest says 99 frames but the segment converts to 10: the frame-count check fails
    // every attempt.
    let doomed = chunked_job(&b, 3).await;
    b.storage
        .upload(&keys::segment(&doomed.job_id, 1), &clip)
        .await
        .unwrap();
    b.storage
        .upload(&keys::segment(&doomed.job_id, 0), &clip)
        .await
        .unwrap();
    send_task(&b, &task(&doomed, 1, 99, 0)).await;
    let healthy = chunked_job(&b, 1).await;
    b.storage
        .upload(&keys::segment(&healthy.job_id, 0), &clip)
        .await
        .unwrap();
    send_task(&b, &task(&healthy, 0, 10, 0)).await;

    let conv = Arc::new(HstackConverter::new(false));
    let (stop, run) = start_worker(&b, &common, conv.clone());
    let dlq = b.queue(QueueName::Segments).dead_letters.clone();
    wait_for(
        "the doomed task in the dead-letter queue",
        Duration::from_secs(120),
        || {
            let q = dlq.clone();
            async move { q.approximate_len().await.unwrap() == 1 }
        },
    )
    .await;
    stop.cancel();
    run.await.unwrap();

    let job = b.jobs.get(&doomed.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let err = job.error.unwrap();
    assert_eq!(err.code, "segment-failed");
    for part in ["segment 2 of 3", "after 3 attempts", "10 frames", "99"] {
        assert!(
            err.message.contains(part),
            "{part:?} not in {:?}",
            err.message
        );
    }
    let dead = dlq.receive(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains(&doomed.job_id));
    let attempts = conv
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.expected_frames == Some(99))
        .count();
    assert_eq!(attempts, 3, "tried exactly max-receives times");

    // The other job went through meanwhile.
    let outs = drain(&b, QueueName::SegmentOutput).await;
    assert_eq!(outs.len(), 1);
    assert!(outs[0].body.contains(&healthy.job_id));
    assert_eq!(
        b.jobs.get(&healthy.job_id).await.unwrap().unwrap().status,
        JobStatus::ChunkingComplete
    );
    assert_eq!(
        stored_frames(&b, &keys::output(&healthy.job_id, 0), clips.path())
            .await
            .0,
        10
    );
}

// ---- worker processes ---------------------------------------------------------------------

const CHILD_DIR: &str = "PARALLAX_TEST_CHILD_DATA_DIR";
const CHILD_VISIBILITY: &str = "PARALLAX_TEST_CHILD_VISIBILITY_SECS";
const CHILD_GRACE: &str = "PARALLAX_TEST_CHILD_GRACE_SECS";

/// Not a test: the entry point of the worker processes that the SIGKILL and SIGTERM tests
/// start (this test binary, run with `--ignored --exact child_infer_worker`). It runs the
/// segment worker with the realtime stand-in converter until SIGTERM, logging JSON lines to
/// stderr.
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
        let common = common(std::path::Path::new(&data_dir), visibility, 4);
        let b = backends(&common).await;
        let mut cfg = InferConfig::from_common(&common);
        cfg.grace = Duration::from_secs(grace);
        let worker = InferWorker::new(&b, Arc::new(HstackConverter::new(true)), cfg);
        worker.run(parallax_core::worker::shutdown_token()).await;
    });
}

/// A worker process on `data_dir` with a shutdown grace period of `grace` seconds; returns
/// once it logs that it started converting a segment (or, with `wait_for_convert` false, at
/// once).
fn spawn_worker(
    data_dir: &std::path::Path,
    visibility: u64,
    grace: u64,
    wait_for_convert: bool,
) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_infer_worker", "--exact", "--ignored", "--nocapture"])
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
    if wait_for_convert {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the worker process starts converting");
    }
    child
}

/// A slow segment (read at its native 10 fps: 4 s) for the process tests.
async fn slow_segment(b: &Backends, dir: &std::path::Path) -> parallax_core::model::Job {
    let job = chunked_job(b, 1).await;
    let clip = dir.join("slow.mkv");
    make_clip(&clip, 40, "64x48").await;
    b.storage
        .upload(&keys::segment(&job.job_id, 0), &clip)
        .await
        .unwrap();
    send_task(b, &task(&job, 0, 40, 0)).await;
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_segment_is_replaced_and_the_segment_redone() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 2, 4);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();
    let job = slow_segment(&b, clips.path()).await;

    let mut first = spawn_worker(dir.path(), 2, 30, true);
    // Past the 2 s visibility timeout: the heartbeat keeps the task away from others. (What
    // is asserted is that the task stays hidden for longer than the timeout, so this waits
    // out the time; it waits for no state.)
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

    let mut second = spawn_worker(dir.path(), 2, 30, false);
    outputs_sent(&b, 1).await;
    let _ = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    second.wait().unwrap();

    let outs = drain(&b, QueueName::SegmentOutput).await;
    assert_eq!(
        outs.len(),
        1,
        "the segment is reported once, by the second worker"
    );
    assert_eq!(
        stored_frames(&b, &keys::output(&job.job_id, 0), clips.path()).await,
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
    let dir = tempfile::tempdir().unwrap();
    // A long lease: the task can only be back soon if the worker released it.
    let common = common(dir.path(), 120, 4);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();
    let job = slow_segment(&b, clips.path()).await;

    let mut worker = spawn_worker(dir.path(), 120, 0, true);
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = worker.wait().unwrap();
    assert!(
        exit.success(),
        "the worker exits cleanly on SIGTERM: {exit}"
    );

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
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 120, 4);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();
    let job = slow_segment(&b, clips.path()).await;
    // Sent after the first one is taken: it must not be started once SIGTERM has come.
    let mut worker = spawn_worker(dir.path(), 120, 60, true);
    let next = chunked_job(&b, 1).await;
    send_task(&b, &task(&next, 0, 40, 0)).await;

    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = worker.wait().unwrap();
    assert!(
        exit.success(),
        "the worker exits cleanly on SIGTERM: {exit}"
    );

    let outs = drain(&b, QueueName::SegmentOutput).await;
    assert_eq!(
        outs.len(),
        1,
        "the segment in hand was finished and reported"
    );
    assert!(outs[0].body.contains(&job.job_id));
    assert_eq!(
        stored_frames(&b, &keys::output(&job.job_id, 0), clips.path()).await,
        (40, (128, 48))
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

/// Depth once, render many, at the worker: each converted segment's depth is stored at
/// `keys::depth(job, segment)` by the time its output is reported; a re-render's task (with
/// `depth_key`) hands the stored depth to the converter instead of a seam warm-up and stores
/// none of its own; a re-render whose stored depth is gone fails its job readably.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_is_stored_with_each_segment_and_a_rerender_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 4);
    let b = backends(&common).await;
    let clips = tempfile::tempdir().unwrap();
    let job = job_with_segments(&b, clips.path(), &[12, 9]).await;
    send_task(&b, &task(&job, 0, 12, 5)).await;
    send_task(&b, &task(&job, 1, 9, 5)).await;
    let seen = convert_until_reported(&b, &common, 2).await;
    for (i, w) in seen.iter().enumerate() {
        assert!(w.depth_out.is_some() && w.depth_in.is_none(), "segment {i}");
        let stored = b
            .storage
            .head(&keys::depth(&job.job_id, i as u32))
            .await
            .unwrap();
        assert!(stored.is_some_and(|n| n > 0), "segment {i}'s depth stored");
    }
    drain(&b, QueueName::SegmentOutput).await;

    // The re-render: the same source segments, the stored depth, another job's keys.
    let mut again = chunked_job(&b, 2).await;
    again.mode = parallax_core::model::StereoMode::HalfSbs;
    for (i, frames) in [(0u32, 12u64), (1, 9)] {
        let mut t = task(&again, i, frames, 5);
        t.source_key = keys::segment(&job.job_id, i);
        t.seam = Default::default();
        t.depth_key = Some(keys::depth(&job.job_id, i));
        send_task(&b, &t).await;
    }
    let seen = convert_until_reported(&b, &common, 2).await;
    assert_eq!(seen.len(), 2);
    for (i, w) in seen.iter().enumerate() {
        assert_eq!(w.seam, SeamStart::Fresh, "segment {i}: no warm-up");
        assert!(w.seam_end.is_none(), "segment {i}");
        assert!(w.depth_out.is_none(), "segment {i}: nothing stored");
        // (The stand-in checks that it has the segment's frame count.)
        assert!(
            w.depth_in.is_some(),
            "segment {i}: the stored depth is handed over"
        );
        assert_eq!(w.mode, parallax_core::model::StereoMode::HalfSbs);
    }
    for i in 0..2 {
        let got = stored_frames(&b, &keys::output(&again.job_id, i), clips.path()).await;
        assert_eq!(got.0, [12, 9][i as usize], "segment {i}");
        assert!(b
            .storage
            .head(&keys::depth(&again.job_id, i))
            .await
            .unwrap()
            .is_none());
    }
    drain(&b, QueueName::SegmentOutput).await;

    // Stored depth that is gone: the job fails at once, saying which object.
    let orphan = chunked_job(&b, 1).await;
    let mut t = task(&orphan, 0, 12, 0);
    t.source_key = keys::segment(&job.job_id, 0);
    t.depth_key = Some(keys::depth("gone-job", 0));
    send_task(&b, &t).await;
    let conv = Arc::new(HstackConverter::new(false));
    let (stop, run) = start_worker(&b, &common, conv.clone());
    wait_for("the orphan to fail", Duration::from_secs(60), || {
        let b = b.clone();
        let id = orphan.job_id.clone();
        async move { b.jobs.get(&id).await.unwrap().unwrap().status == JobStatus::Failed }
    })
    .await;
    stop.cancel();
    run.await.unwrap();
    let err = b
        .jobs
        .get(&orphan.job_id)
        .await
        .unwrap()
        .unwrap()
        .error
        .unwrap();
    assert_eq!(err.code, "depth-missing");
    assert!(
        err.message.contains(&keys::depth("gone-job", 0)),
        "{}",
        err.message
    );
    assert!(conv.seen.lock().unwrap().is_empty(), "nothing converted");
}
