//! SegmentCompletionStore contract tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;

use super::{unique, Harness};
use crate::model::SegmentCompletion;

fn completion(job_id: &str, i: u32, uri: &str) -> SegmentCompletion {
    SegmentCompletion {
        job_id: job_id.to_owned(),
        segment_index: i,
        output_uri: uri.to_owned(),
        completed_at: Utc::now(),
        frame_count: Some(300),
    }
}

/// A second put of the same (job, segment) reports `false` and keeps the first.
pub async fn put_is_idempotent(h: &dyn Harness) {
    let store = h.completions();
    let job = unique("job");
    assert!(store.put(&completion(&job, 0, "first")).await.unwrap());
    assert!(!store.put(&completion(&job, 0, "second")).await.unwrap());
    let all = store.query_by_job(&job).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].output_uri, "first");
}

/// `query_by_job` returns completions by segment index, and only the job's.
pub async fn query_orders_by_segment_index(h: &dyn Harness) {
    let store = h.completions();
    let (job, other) = (unique("job"), unique("job"));
    for i in [7u32, 2, 11, 0, 5, 1, 10] {
        store
            .put(&completion(&job, i, &format!("o{i}")))
            .await
            .unwrap();
    }
    store.put(&completion(&other, 3, "x")).await.unwrap();
    let idx: Vec<u32> = store
        .query_by_job(&job)
        .await
        .unwrap()
        .iter()
        .map(|c| c.segment_index)
        .collect();
    assert_eq!(idx, vec![0, 1, 2, 5, 7, 10, 11]);
    assert!(store
        .query_by_job(&unique("none"))
        .await
        .unwrap()
        .is_empty());
}

/// The claim is refused until every segment is in, then won once, and its time is kept.
pub async fn claim_needs_every_segment(h: &dyn Harness) {
    let store = h.completions();
    let job = unique("job");
    assert!(!store.claim_reassembly(&job, 3).await.unwrap());
    store.put(&completion(&job, 0, "a")).await.unwrap();
    store.put(&completion(&job, 1, "b")).await.unwrap();
    assert!(!store.claim_reassembly(&job, 3).await.unwrap());
    assert_eq!(store.reassembly_claimed_at(&job).await.unwrap(), None);
    store.put(&completion(&job, 1, "dup")).await.unwrap();
    assert!(
        !store.claim_reassembly(&job, 3).await.unwrap(),
        "a duplicate counted twice"
    );
    store.put(&completion(&job, 2, "c")).await.unwrap();
    let before = Utc::now() - chrono::Duration::seconds(5);
    assert!(store.claim_reassembly(&job, 3).await.unwrap());
    assert!(!store.claim_reassembly(&job, 3).await.unwrap());
    let at = store.reassembly_claimed_at(&job).await.unwrap().unwrap();
    assert!(at >= before);
}

/// Many triggers finishing the last segments at once: exactly one claim per job.
pub async fn claim_is_won_once_under_concurrency(h: &dyn Harness) {
    let store = h.completions();
    let jobs: Vec<String> = (0..20).map(|_| unique("job")).collect();
    let wins = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for job in &jobs {
        for i in 0..4u32 {
            // Every segment output arrives twice, on different tasks.
            for _ in 0..2 {
                let (store, job, wins) = (store.clone(), job.clone(), wins.clone());
                tasks.push(tokio::spawn(async move {
                    store.put(&completion(&job, i, "o")).await.unwrap();
                    if store.claim_reassembly(&job, 4).await.unwrap() {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                }));
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(wins.load(Ordering::SeqCst), jobs.len());
    for job in &jobs {
        assert!(store.reassembly_claimed_at(job).await.unwrap().is_some());
    }
}

/// The reconcilers' shared memory of re-sent requests: nothing before the claim is old
/// enough, then one re-send per period, whoever asks, at once or later.
pub async fn resend_is_recorded_once_per_period(h: &dyn Harness) {
    let store = h.completions();
    let every = std::time::Duration::from_secs(300);
    let job = unique("job");
    let later = |mins: i64| Utc::now() + chrono::Duration::minutes(mins);
    assert!(
        !store.claim_resend(&job, later(10), every).await.unwrap(),
        "nothing to re-send before a claim"
    );
    store.put(&completion(&job, 0, "a")).await.unwrap();
    assert!(store.claim_reassembly(&job, 1).await.unwrap());
    assert!(
        !store.claim_resend(&job, Utc::now(), every).await.unwrap(),
        "the claim is too fresh"
    );
    assert_eq!(store.reassembly_resent_at(&job).await.unwrap(), None);

    // Ten minutes on, many reconcilers at once: one re-sends.
    let now = later(10);
    let wins = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, job, wins) = (store.clone(), job.clone(), wins.clone());
            tokio::spawn(async move {
                if store.claim_resend(&job, now, every).await.unwrap() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(wins.load(Ordering::SeqCst), 1);
    let at = store.reassembly_resent_at(&job).await.unwrap().unwrap();
    assert_eq!(at.timestamp_micros(), now.timestamp_micros());

    assert!(
        !store.claim_resend(&job, later(12), every).await.unwrap(),
        "not again within the period"
    );
    let again = later(16);
    assert!(
        store.claim_resend(&job, again, every).await.unwrap(),
        "again once the period has passed"
    );
    let at = store.reassembly_resent_at(&job).await.unwrap().unwrap();
    assert_eq!(at.timestamp_micros(), again.timestamp_micros());
}
