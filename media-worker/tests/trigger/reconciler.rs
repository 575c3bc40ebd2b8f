//! The reconciler: re-sent requests and the dead-letter sweep.

use std::sync::Arc;
use std::time::Duration;

use media_worker::trigger::{Handled, Trigger, TriggerConfig};
use parallax_core::backends::Backends;
use parallax_core::clock::TestClock;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{JobStatus, JobUpdate, SegmentCompletion};
use parallax_core::worker::CancellationToken;

use parallax_testkit::wait_until;

use parallax_testkit::TempBackends;

use crate::util::*;

/// A winner that claimed and died before sending: the reconciler re-sends after the timeout,
/// once per timeout (whichever process's reconciler asks), and never for jobs that moved on
/// to reassembly or finished.
#[tokio::test]
async fn reconciler_resends_claimed_but_unsent_requests() {
    // Claims age on a test clock, which the reconcilers read too: no waiting for the timeout.
    let clock = TestClock::new();
    let b = TempBackends::with_clock(Arc::new(clock.clone()), |c| settings(c, 60, 4)).await;
    let cfg = TriggerConfig {
        resend_after: Duration::from_secs(30),
        ..TriggerConfig::default()
    };
    let trigger = Trigger::new(&b, cfg.clone());
    // Another process's reconciler, on its own adapters.
    let other = Trigger::new(
        &Backends::from_config_with_clock(b.args(), Arc::new(clock.clone()))
            .await
            .unwrap(),
        cfg,
    );

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

/// A segment that crashed its worker on every attempt reaches the dead-letter queue without
/// any worker having failed its job: the reconciler's dead-letter sweep does, with a readable
/// reason, keeps the dead letter for inspection, and leaves jobs that already failed (with
/// their own reason) alone.
#[tokio::test]
async fn dead_letters_of_crashed_workers_fail_their_jobs() {
    let b = local(60, 2).await;
    let trigger = Trigger::new(&b, TriggerConfig::from_common(b.args()));
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
    let b = local(60, 2).await;
    let mut cfg = TriggerConfig::from_common(b.args());
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
    wait_until(Duration::from_secs(30), "the swept job to fail", || async {
        let job = b.jobs.get(&crashed.job_id).await.unwrap().unwrap();
        job.status == JobStatus::Failed
    })
    .await;
    shutdown.cancel();
    running.await.unwrap();
    let job = b.jobs.get(&crashed.job_id).await.unwrap().unwrap();
    assert_eq!(job.error.unwrap().code, "segment-failed");
}
