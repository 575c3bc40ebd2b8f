//! Failures: bad input fails its job at once (and a finished job's task is skipped); a
//! segment that always fails ends in the dead-letter queue with its job failed and a readable
//! reason, while another job completes.

use std::sync::Arc;
use std::time::Duration;

use parallax_core::keys::{self, QueueName};
use parallax_core::model::{JobStatus, JobUpdate};
use parallax_core::storage::ObjectStorageExt as _;
use video_worker::infer::InferConfig;

use crate::util::*;
use crate::Running;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_the_job_at_once_and_failed_jobs_are_skipped() {
    let b = local(30, 4).await;

    // A "segment" that is not a video.
    let garbage_job = chunked_job(&b, 1).await;
    let garbage = b.path().join("garbage.mkv");
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
    let clip = b.path().join("0.mkv");
    segment_clip(&clip, 10, (64, 48)).await;
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
    let worker = Running::with_defaults(&b, conv.clone());
    let tasks = &*b.queue(QueueName::Segments).receiver;
    wait_for_queue(tasks, "every task deleted", |n| n == 0).await;
    worker.stop().await;

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
    // Three receives; the retries' back-off is shortened (the runtime's own tests cover its
    // growth), so they run at once instead of after seconds.
    let b = local(30, 3).await;
    let clip = b.path().join("0.mkv");
    segment_clip(&clip, 10, (64, 48)).await;

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
    let mut cfg = InferConfig::from_common(b.args());
    cfg.retry_backoff = Duration::from_millis(10);
    let worker = Running::start(&b, conv.clone(), cfg);
    let dlq = b.queue(QueueName::Segments).dead_letters.clone();
    wait_for_queue(&*dlq, "the doomed task in the dead-letter queue", |n| {
        n == 1
    })
    .await;
    wait_for_len(&b, QueueName::SegmentOutput, 1).await;
    worker.stop().await;

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
        stored_video(&b, &keys::output(&healthy.job_id, 0), b.path())
            .await
            .0,
        10
    );
}
