//! Many triggers at once, threads and processes: exactly one request per job.

use std::collections::HashMap;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use media_worker::trigger::{Handled, Trigger, TriggerConfig};
use parallax_core::keys::{self, QueueName};
use parallax_core::model::SegmentOutput;
use parallax_core::worker::CancellationToken;

use parallax_testkit::wait_until;

use crate::util::*;

/// 1,000 jobs of 2 segments; every SegmentOutput is sent twice and a job's two (= last two)
/// segments sit next to each other in the queue, so they are taken at the same moment by
/// different consumers: 8 trigger loops on threads of this process (on 4 separate adapter
/// sets, as separate workers would have) and 2 `media-worker trigger` processes, all on one
/// DATA_DIR. Exactly one reassembly request per job must come out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_request_per_job_across_threads_and_processes() {
    const JOBS: usize = 1000;
    let b = local(60, 4).await;

    let mut job_ids = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        job_ids.push(chunked_job(&b, 2).await.job_id);
    }

    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut children: Vec<Child> = (0..2)
        .map(|_| spawn_trigger_process(b.path(), lines.clone()))
        .collect();

    let shutdown = CancellationToken::new();
    let mut loops = Vec::new();
    for _ in 0..4 {
        let own = backends(b.args()).await;
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
    wait_until(
        Duration::from_secs(600),
        "the segment-output queue to drain",
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
    let b = local(60, 4).await;
    let t1 = Trigger::new(&backends(b.args()).await, TriggerConfig::default());
    let t2 = Trigger::new(&backends(b.args()).await, TriggerConfig::default());

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
