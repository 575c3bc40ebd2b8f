//! The completion trigger: exactly one ReassemblyRequest per job, whatever the concurrency,
//! duplication and timing of SegmentOutputs, plus the reconciler that re-sends requests whose
//! sender died between claim and send.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use media_worker::trigger::{Handled, Trigger, TriggerConfig};
use parallax_core::backends::Backends;
use parallax_core::clock::TestClock;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{
    JobStatus, JobUpdate, ReassemblyRequest, SegmentCompletion, SegmentOutput,
};
use parallax_core::worker::CancellationToken;
use util::*;

fn output_body(job_id: &str, index: u32) -> String {
    serde_json::to_string(&SegmentOutput {
        job_id: job_id.to_owned(),
        segment_index: index,
        output_key: keys::output(job_id, index),
        frame_count: 25,
    })
    .unwrap()
}

/// Receives every reassembly request and counts them per job.
async fn reassembly_requests(b: &parallax_core::backends::Backends) -> HashMap<String, usize> {
    let mut per_job = HashMap::new();
    for m in drain(b, QueueName::Reassembly).await {
        let r: ReassemblyRequest = serde_json::from_str(&m.body).unwrap();
        *per_job.entry(r.job_id).or_default() += 1;
    }
    per_job
}

/// A `media-worker trigger` process on `data_dir`; returns it once it says it has started.
/// Its log lines (JSON) are collected into the returned vector as they arrive.
fn spawn_trigger_process(
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

fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "trigger process exited with {exit}");
}

/// 1,000 jobs of 2 segments; every SegmentOutput is sent twice and a job's two (= last two)
/// segments sit next to each other in the queue, so they are taken at the same moment by
/// different consumers: 8 trigger loops on threads of this process (on 4 separate adapter
/// sets, as separate workers would have) and 2 `media-worker trigger` processes, all on one
/// DATA_DIR. Exactly one reassembly request per job must come out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_request_per_job_across_threads_and_processes() {
    const JOBS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 4);
    let b = backends(&common).await;

    let mut job_ids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        job_ids.push(chunked_job(&b, 2).await.job_id);
    }

    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut children: Vec<Child> = (0..2)
        .map(|_| spawn_trigger_process(dir.path(), lines.clone()))
        .collect();

    let shutdown = CancellationToken::new();
    let mut loops = Vec::new();
    for _ in 0..4 {
        let own = backends(&common).await;
        for _ in 0..2 {
            let t = Trigger::new(&own, TriggerConfig::default());
            let s = shutdown.clone();
            loops.push(tokio::spawn(async move { t.run(s).await }));
        }
    }

    // First delivery: both segments of a job back to back; then every output again.
    let mut bodies = Vec::with_capacity(JOBS * 4);
    for id in &job_ids {
        bodies.push(output_body(id, 0));
        bodies.push(output_body(id, 1));
    }
    for id in &job_ids {
        bodies.push(output_body(id, 1));
        bodies.push(output_body(id, 0));
    }
    let sender = &b.queue(QueueName::SegmentOutput).sender;
    for chunk in bodies.chunks(500) {
        sender.send_batch(chunk).await.unwrap();
    }

    let outputs = b.queue(QueueName::SegmentOutput).receiver.clone();
    wait_for(
        "the segment-output queue to drain",
        Duration::from_secs(600),
        || {
            let q = outputs.clone();
            async move { q.approximate_len().await.unwrap() == 0 }
        },
    )
    .await;

    shutdown.cancel();
    for l in loops {
        l.await.unwrap();
    }
    for c in &mut children {
        terminate(c);
    }

    let per_job = reassembly_requests(&b).await;
    assert_eq!(per_job.len(), JOBS, "every job gets a reassembly request");
    let repeated: Vec<_> = per_job.iter().filter(|(_, &n)| n != 1).collect();
    assert!(
        repeated.is_empty(),
        "jobs with more than one request: {repeated:?}"
    );
    for id in &job_ids {
        let done = b.completions.query_by_job(id).await.unwrap();
        assert_eq!(
            done.iter().map(|c| c.segment_index).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }
    let lines = lines.lock().unwrap();
    let by_processes = lines
        .iter()
        .filter(|l| l.contains("reassembly requested"))
        .count();
    assert!(
        by_processes > 0,
        "the trigger processes took part (won at least one claim)"
    );
    assert!(by_processes < JOBS, "the in-process triggers took part too");
}

/// The last two segments of each job are handled at the same instant by two triggers on
/// separate adapter sets (a barrier releases both), then both again as duplicates: exactly
/// one of the four calls per job sends the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_two_segments_at_the_same_moment() {
    const JOBS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 4);
    let b = backends(&common).await;
    let t1 = Trigger::new(&backends(&common).await, TriggerConfig::default());
    let t2 = Trigger::new(&backends(&common).await, TriggerConfig::default());

    let mut wins = HashMap::new();
    for _ in 0..JOBS {
        let job = chunked_job(&b, 3).await;
        let out = |i: u32| SegmentOutput {
            job_id: job.job_id.clone(),
            segment_index: i,
            output_key: keys::output(&job.job_id, i),
            frame_count: 10,
        };
        assert_eq!(
            t1.handle(&out(0)).await.unwrap(),
            Handled::Recorded { requested: false }
        );
        let mut won = 0;
        for _round in 0..2 {
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let (a, b2) = (t1.clone(), t2.clone());
            let (o1, o2) = (out(1), out(2));
            let (bar1, bar2) = (barrier.clone(), barrier.clone());
            let h1 = tokio::spawn(async move {
                bar1.wait().await;
                a.handle(&o1).await.unwrap()
            });
            let h2 = tokio::spawn(async move {
                bar2.wait().await;
                b2.handle(&o2).await.unwrap()
            });
            for h in [h1.await.unwrap(), h2.await.unwrap()] {
                if h == (Handled::Recorded { requested: true }) {
                    won += 1;
                }
            }
        }
        wins.insert(job.job_id.clone(), won);
    }
    assert!(wins.values().all(|&w| w == 1), "{wins:?}");
    let per_job = reassembly_requests(&b).await;
    assert_eq!(per_job.len(), JOBS);
    assert!(per_job.values().all(|&n| n == 1));
}

/// Jobs that are gone or finished record nothing; a segment index beyond the job's segment
/// count is a bad message: it is not recorded (it would block the count) and ends in the
/// dead-letter queue instead of being deleted.
#[tokio::test]
async fn skips_finished_jobs_and_dead_letters_bad_messages() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 2);
    let b = backends(&common).await;
    let trigger = Trigger::new(&b, TriggerConfig::default());

    let failed = chunked_job(&b, 1).await;
    b.jobs
        .update(
            &failed.job_id,
            &JobUpdate::failed("cancelled", "cancelled by the user"),
        )
        .await
        .unwrap();
    assert_eq!(
        trigger
            .handle(&serde_json::from_str(&output_body(&failed.job_id, 0)).unwrap())
            .await
            .unwrap(),
        Handled::Skipped
    );
    assert!(b
        .completions
        .query_by_job(&failed.job_id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        trigger
            .handle(&serde_json::from_str(&output_body("no-such-job", 0)).unwrap())
            .await
            .unwrap(),
        Handled::Skipped
    );

    let job = chunked_job(&b, 2).await;
    let sender = &b.queue(QueueName::SegmentOutput).sender;
    sender.send(&output_body(&job.job_id, 7)).await.unwrap();
    sender.send("{not json").await.unwrap();
    let shutdown = CancellationToken::new();
    let run = {
        let (t, s) = (trigger.clone(), shutdown.clone());
        tokio::spawn(async move { t.run(s).await })
    };
    let dlq = b.queue(QueueName::SegmentOutput).dead_letters.clone();
    wait_for(
        "both bad messages in the dead-letter queue",
        Duration::from_secs(60),
        || {
            let q = dlq.clone();
            async move { q.approximate_len().await.unwrap() == 2 }
        },
    )
    .await;
    shutdown.cancel();
    run.await.unwrap();
    assert!(b
        .completions
        .query_by_job(&job.job_id)
        .await
        .unwrap()
        .is_empty());
    assert!(reassembly_requests(&b).await.is_empty());
}

/// A winner that claimed and died before sending: the reconciler re-sends after the timeout,
/// once per timeout (whichever process's reconciler asks), and never for jobs that moved on
/// to reassembly or finished.
#[tokio::test]
async fn reconciler_resends_claimed_but_unsent_requests() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 4);
    // Claims age on a test clock, which the reconcilers read too: no waiting for the timeout.
    let clock = TestClock::new();
    let on_clock = || Backends::from_config_with_clock(&common, Arc::new(clock.clone()));
    let b = on_clock().await.unwrap();
    let cfg = TriggerConfig {
        resend_after: Duration::from_secs(30),
        ..TriggerConfig::default()
    };
    let trigger = Trigger::new(&b, cfg.clone());
    // Another process's reconciler, on its own adapters.
    let other = Trigger::new(&on_clock().await.unwrap(), cfg);

    // Three jobs whose claim was taken but whose request was never sent.
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let job = chunked_job(&b, 1).await;
        b.completions
            .put(&SegmentCompletion {
                job_id: job.job_id.clone(),
                segment_index: 0,
                output_uri: keys::output(&job.job_id, 0),
                completed_at: chrono::Utc::now(),
                frame_count: Some(10),
            })
            .await
            .unwrap();
        assert!(b
            .completions
            .claim_reassembly(&job.job_id, 1)
            .await
            .unwrap());
        jobs.push(job);
    }
    // One of them has started reassembling meanwhile; one is not claimed at all.
    b.jobs
        .update(&jobs[2].job_id, &JobUpdate::status(JobStatus::Reassembling))
        .await
        .unwrap();
    let unclaimed = chunked_job(&b, 1).await;

    assert_eq!(
        trigger.reconcile_once().await.unwrap(),
        0,
        "claims are too fresh"
    );
    clock.advance(Duration::from_secs(29));
    assert_eq!(
        trigger.reconcile_once().await.unwrap(),
        0,
        "claims are still younger than the timeout"
    );
    // Once the claims are older than the timeout, the two claimed jobs that have not moved on
    // are re-sent.
    clock.advance(Duration::from_secs(2));
    assert_eq!(trigger.reconcile_once().await.unwrap(), 2);
    assert_eq!(
        trigger.reconcile_once().await.unwrap(),
        0,
        "not again within the timeout"
    );
    assert_eq!(
        other.reconcile_once().await.unwrap(),
        0,
        "the re-sends are remembered in the store, not in the process that made them"
    );
    let per_job = reassembly_requests(&b).await;
    assert_eq!(per_job.len(), 2);
    assert_eq!(per_job.get(&jobs[0].job_id), Some(&1));
    assert_eq!(per_job.get(&jobs[1].job_id), Some(&1));
    assert!(!per_job.contains_key(&unclaimed.job_id));

    // The redelivered SegmentOutput of a dead winner sends nothing itself (the claim is
    // taken): the reconciler is what covers that gap.
    let out = serde_json::from_str(&output_body(&jobs[0].job_id, 0)).unwrap();
    assert_eq!(
        trigger.handle(&out).await.unwrap(),
        Handled::Recorded { requested: false }
    );
}

/// An output that cannot be recorded however often it is retried (here: its job never got a
/// segment count) fails the job with a readable reason on the last allowed receive, and the
/// message lands in the dead-letter queue: the job does not wait forever in silence.
#[tokio::test]
async fn an_output_that_keeps_failing_fails_its_job_on_the_last_receive() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 1, 3);
    let b = backends(&common).await;
    let trigger = Trigger::new(&b, TriggerConfig::from_common(&common));
    let job = parallax_core::model::Job::new(
        "no count",
        parallax_core::model::StereoMode::FullSbs,
        Default::default(),
    );
    b.jobs.put(&job).await.unwrap();
    b.jobs
        .update(&job.job_id, &JobUpdate::status(JobStatus::Chunking))
        .await
        .unwrap();
    b.queue(QueueName::SegmentOutput)
        .sender
        .send(&output_body(&job.job_id, 4))
        .await
        .unwrap();

    let shutdown = CancellationToken::new();
    let run = {
        let (t, s) = (trigger.clone(), shutdown.clone());
        tokio::spawn(async move { t.run(s).await })
    };
    let dlq = b.queue(QueueName::SegmentOutput).dead_letters.clone();
    wait_for(
        "the output in the dead-letter queue",
        Duration::from_secs(60),
        || {
            let q = dlq.clone();
            async move { q.approximate_len().await.unwrap() == 1 }
        },
    )
    .await;
    shutdown.cancel();
    run.await.unwrap();

    let failed = b.jobs.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    let err = failed.error.unwrap();
    assert_eq!(err.code, "trigger-failed");
    for part in ["segment 5", "after 3 attempts", "no total_segments"] {
        assert!(
            err.message.contains(part),
            "{part:?} not in {:?}",
            err.message
        );
    }
    assert!(reassembly_requests(&b).await.is_empty());
}

/// A segment that crashed its worker on every attempt reaches the dead-letter queue without
/// any worker having failed its job: the reconciler's dead-letter sweep does, with a readable
/// reason, keeps the dead letter for inspection, and leaves jobs that already failed (with
/// their own reason) alone.
#[tokio::test]
async fn dead_letters_of_crashed_workers_fail_their_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 2);
    let b = backends(&common).await;
    let trigger = Trigger::new(&b, TriggerConfig::from_common(&common));
    let crashed = chunked_job(&b, 2).await;
    let already = chunked_job(&b, 1).await;
    b.jobs
        .update(
            &already.job_id,
            &JobUpdate::failed("bad-segment", "segment 1 of 1 cannot be converted"),
        )
        .await
        .unwrap();
    send_task(&b, &task(&crashed, 1, 10, 0)).await;
    send_task(&b, &task(&already, 0, 10, 0)).await;
    crash_on_every_receive(&b, 2, 2).await;
    let dlq = b.queue(QueueName::Segments).dead_letters.clone();
    assert_eq!(dlq.approximate_len().await.unwrap(), 2);

    assert_eq!(trigger.sweep_dead_letters().await.unwrap(), 1);
    let job = b.jobs.get(&crashed.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let err = job.error.unwrap();
    assert_eq!(err.code, "segment-failed");
    assert!(err.message.contains("segment 2 of 2"), "{}", err.message);
    let kept = b
        .jobs
        .get(&already.job_id)
        .await
        .unwrap()
        .unwrap()
        .error
        .unwrap();
    assert_eq!(
        kept.code, "bad-segment",
        "an earlier reason is not overwritten"
    );
    assert_eq!(trigger.sweep_dead_letters().await.unwrap(), 0);
    assert_eq!(
        dlq.approximate_len().await.unwrap(),
        2,
        "dead letters are kept"
    );
}

/// The media-worker runs the sweep: each pass of the running reconciler fails the job of a
/// dead-lettered segment, with no call from outside.
#[tokio::test]
async fn the_running_reconciler_sweeps_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 60, 2);
    let b = backends(&common).await;
    let mut cfg = TriggerConfig::from_common(&common);
    cfg.reconcile_interval = Duration::from_millis(50);
    let trigger = Trigger::new(&b, cfg);
    let crashed = chunked_job(&b, 3).await;
    send_task(&b, &task(&crashed, 0, 10, 0)).await;
    crash_on_every_receive(&b, 1, 2).await;

    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (t, s) = (trigger.clone(), shutdown.clone());
        async move { t.run_reconciler(s).await }
    });
    wait_for("the swept job to fail", Duration::from_secs(30), || async {
        let job = b.jobs.get(&crashed.job_id).await.unwrap().unwrap();
        job.status == JobStatus::Failed
    })
    .await;
    shutdown.cancel();
    running.await.unwrap();
    let job = b.jobs.get(&crashed.job_id).await.unwrap().unwrap();
    assert_eq!(job.error.unwrap().code, "segment-failed");
}

/// What these tests share with each other (the worker tests' helpers of media-worker are
/// about media; these are about jobs and queues).
mod util {
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
}
