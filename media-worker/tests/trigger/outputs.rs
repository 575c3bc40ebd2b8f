//! Outputs that must not count: finished jobs, bad messages, outputs that keep failing.

use media_worker::trigger::{Handled, Trigger, TriggerConfig};
use parallax_core::keys::QueueName;
use parallax_core::model::{JobStatus, JobUpdate};

use crate::util::*;

/// Jobs that are gone or finished record nothing; a segment index beyond the job's segment
/// count is a bad message: it is not recorded (it would block the count) and ends in the
/// dead-letter queue instead of being deleted.
#[tokio::test]
async fn skips_finished_jobs_and_dead_letters_bad_messages() {
    let b = local(60, 2).await;
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
    run_until_dead_lettered(
        &trigger,
        &b,
        2,
        "both bad messages in the dead-letter queue",
    )
    .await;
    assert!(b
        .completions
        .query_by_job(&job.job_id)
        .await
        .unwrap()
        .is_empty());
    assert!(reassembly_requests(&b).await.is_empty());
}

/// An output that cannot be recorded however often it is retried (here: its job never got a
/// segment count) fails the job with a readable reason on the last allowed receive, and the
/// message lands in the dead-letter queue: the job does not wait forever in silence.
#[tokio::test]
async fn an_output_that_keeps_failing_fails_its_job_on_the_last_receive() {
    let b = local(1, 3).await;
    let trigger = Trigger::new(&b, TriggerConfig::from_common(b.args()));
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

    run_until_dead_lettered(&trigger, &b, 1, "the output in the dead-letter queue").await;

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
