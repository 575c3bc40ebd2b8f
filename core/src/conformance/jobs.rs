//! JobStore contract tests.

use std::collections::HashSet;

use chrono::{Duration, Utc};

use super::{unique, Harness};
use crate::model::{ConversionSettings, Job, JobStatus, JobUpdate, StereoMode};
use crate::Error;

fn new_job(title: &str) -> Job {
    let mut j = Job::new(title, StereoMode::HalfSbs, ConversionSettings::default());
    j.job_id = unique("job");
    j
}

/// `get` of an unknown id is `None`.
pub async fn get_missing_is_none(h: &dyn Harness) {
    assert_eq!(h.jobs().get(&unique("nope")).await.unwrap(), None);
}

/// What `put` stores, `get` returns unchanged.
pub async fn put_get_round_trip(h: &dyn Harness) {
    let store = h.jobs();
    let mut job = new_job("Attack on Titan <3>");
    job.settings.divergence = 3.5;
    job.source_file_size_bytes = Some(123_456_789_012);
    store.put(&job).await.unwrap();
    let got = store.get(&job.job_id).await.unwrap().expect("stored job");
    assert_eq!(got.job_id, job.job_id);
    assert_eq!(got.title, job.title);
    assert_eq!(got.mode, StereoMode::HalfSbs);
    assert_eq!(got.status, JobStatus::AwaitingUpload);
    assert_eq!(got.settings, job.settings);
    assert_eq!(got.source_file_size_bytes, Some(123_456_789_012));
    assert_eq!(
        got.created_at.timestamp_micros(),
        job.created_at.timestamp_micros()
    );
}

/// A second `put` of the same id is a conflict and keeps the first.
pub async fn put_twice_conflicts(h: &dyn Harness) {
    let store = h.jobs();
    let job = new_job("first");
    store.put(&job).await.unwrap();
    let mut second = job.clone();
    second.title = "second".into();
    assert!(matches!(
        store.put(&second).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        store.get(&job.job_id).await.unwrap().unwrap().title,
        "first"
    );
}

/// `update` writes the given fields and nothing else.
pub async fn update_touches_only_given_fields(h: &dyn Harness) {
    let store = h.jobs();
    let mut job = new_job("keep me");
    job.source_file_size_bytes = Some(42);
    store.put(&job).await.unwrap();
    let now = Utc::now();
    let updated = store
        .update(
            &job.job_id,
            &JobUpdate {
                status: Some(JobStatus::Uploaded),
                uploaded_at: Some(now),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.status, JobStatus::Uploaded);
    let got = store.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(got.title, "keep me");
    assert_eq!(got.source_file_size_bytes, Some(42));
    assert_eq!(got.total_segments, None);
    assert_eq!(
        got.uploaded_at.map(|t| t.timestamp_micros()),
        Some(now.timestamp_micros())
    );
    let got = store
        .update(
            &job.job_id,
            &JobUpdate {
                total_segments: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(got.status, JobStatus::Uploaded, "status untouched");
    assert_eq!(got.total_segments, Some(7));
    assert_eq!(got.title, "keep me");
}

/// What a job waits for is set, kept by other updates, and cleared.
pub async fn waiting_is_set_kept_and_cleared(h: &dyn Harness) {
    let store = h.jobs();
    let job = new_job("waits");
    store.put(&job).await.unwrap();
    let since = Utc::now();
    let wait = crate::model::Waiting {
        model: "video-depth-anything-small".into(),
        since,
    };
    let set = JobUpdate {
        waiting: Some(Some(wait.clone())),
        ..Default::default()
    };
    store.update(&job.job_id, &set).await.unwrap();
    let other = JobUpdate {
        total_segments: Some(3),
        ..Default::default()
    };
    store.update(&job.job_id, &other).await.unwrap();
    let got = store.get(&job.job_id).await.unwrap().unwrap();
    let got_wait = got.waiting.expect("the wait is kept");
    assert_eq!(got_wait.model, wait.model);
    assert_eq!(got_wait.since.timestamp(), since.timestamp());
    let clear = JobUpdate {
        waiting: Some(None),
        ..Default::default()
    };
    store.update(&job.job_id, &clear).await.unwrap();
    let got = store.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(got.waiting, None);
    assert_eq!(got.total_segments, Some(3));
}

/// A backwards or out-of-terminal status change is an error and writes nothing.
pub async fn illegal_transition_writes_nothing(h: &dyn Harness) {
    let store = h.jobs();
    let job = new_job("forward only");
    store.put(&job).await.unwrap();
    store
        .update(&job.job_id, &JobUpdate::status(JobStatus::ChunkingComplete))
        .await
        .unwrap();
    let back = JobUpdate {
        status: Some(JobStatus::Uploaded),
        title: Some("must not be written".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.update(&job.job_id, &back).await,
        Err(Error::InvalidTransition {
            from: JobStatus::ChunkingComplete,
            to: JobStatus::Uploaded,
            ..
        })
    ));
    store
        .update(&job.job_id, &JobUpdate::failed("test", "failed on purpose"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .update(&job.job_id, &JobUpdate::status(JobStatus::Completed))
            .await,
        Err(Error::InvalidTransition { .. })
    ));
    let got = store.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(got.status, JobStatus::Failed);
    assert_eq!(got.title, "forward only");
    assert_eq!(got.error.unwrap().code, "test");
}

/// `update` of an unknown id is `NotFound`.
pub async fn update_unknown_is_not_found(h: &dyn Harness) {
    let r = h
        .jobs()
        .update(&unique("ghost"), &JobUpdate::status(JobStatus::Uploaded))
        .await;
    assert!(
        matches!(r, Err(Error::NotFound { what: "job", .. })),
        "{r:?}"
    );
}

/// Concurrent updates of different fields are all kept (no lost update).
pub async fn concurrent_updates_keep_every_field(h: &dyn Harness) {
    let store = h.jobs();
    let job = new_job("racing");
    store.put(&job).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let (store, id) = (store.clone(), job.job_id.clone());
        tasks.push(tokio::spawn(async move {
            let u = match i % 4 {
                0 => JobUpdate {
                    title: Some("new title".into()),
                    ..Default::default()
                },
                1 => JobUpdate {
                    total_segments: Some(9),
                    ..Default::default()
                },
                2 => JobUpdate {
                    source_file_size_bytes: Some(1000),
                    ..Default::default()
                },
                _ => JobUpdate {
                    output_key: Some("final/x".into()),
                    ..Default::default()
                },
            };
            store.update(&id, &u).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = store.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(got.title, "new title");
    assert_eq!(got.total_segments, Some(9));
    assert_eq!(got.source_file_size_bytes, Some(1000));
    assert_eq!(got.output_key.as_deref(), Some("final/x"));
}

/// Paging through completed jobs returns each exactly once, newest first.
pub async fn list_completed_pages_without_duplicates_or_gaps(h: &dyn Harness) {
    let store = h.jobs();
    let base = Utc::now() + Duration::days(3650);
    let mut mine = Vec::new();
    for i in 0..23 {
        let job = new_job(&format!("done {i}"));
        store.put(&job).await.unwrap();
        // Two jobs share each completion time, to exercise the tie-break.
        let at = base - Duration::seconds(i / 2);
        store
            .update(
                &job.job_id,
                &JobUpdate {
                    status: Some(JobStatus::Completed),
                    completed_at: Some(at),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        mine.push(job.job_id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list_completed(5, cursor.as_deref()).await.unwrap();
        assert!(page.items.len() <= 5);
        assert!(page.items.iter().all(|j| j.status == JobStatus::Completed));
        seen.extend(
            page.items
                .iter()
                .map(|j| (j.completed_at.unwrap(), j.job_id.clone())),
        );
        pages += 1;
        match page.next_key {
            Some(k) => cursor = Some(k),
            None => break,
        }
        assert!(pages < 10_000, "paging does not end");
    }
    let ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let unique_ids: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique_ids.len(), "a job was listed twice");
    for id in &mine {
        assert!(unique_ids.contains(id), "job {id} skipped");
    }
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "not newest first"
    );
    // Our jobs come first (they finish in the future) and in the order we made them.
    let first: Vec<&String> = ids.iter().take(mine.len()).copied().collect();
    let mut expected = mine.clone();
    expected.sort_by(|a, b| {
        let ia = mine.iter().position(|x| x == a).unwrap() as i64 / 2;
        let ib = mine.iter().position(|x| x == b).unwrap() as i64 / 2;
        ia.cmp(&ib).then_with(|| b.cmp(a))
    });
    assert_eq!(first, expected.iter().collect::<Vec<_>>());
}

/// Paging through failed jobs returns each exactly once, newest created first.
pub async fn list_failed_pages_without_duplicates_or_gaps(h: &dyn Harness) {
    let store = h.jobs();
    let base = Utc::now() + Duration::days(3650);
    let mut mine = Vec::new();
    for i in 0..11 {
        let mut job = new_job(&format!("bad {i}"));
        // Two jobs share each creation time, to exercise the tie-break.
        job.created_at = base - Duration::seconds(i / 2);
        store.put(&job).await.unwrap();
        store
            .update(
                &job.job_id,
                &JobUpdate::failed("not-a-video", "no video stream"),
            )
            .await
            .unwrap();
        mine.push(job.job_id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 0.. {
        assert!(pages < 10_000, "paging does not end");
        let page = store.list_failed(4, cursor.as_deref()).await.unwrap();
        assert!(page.items.len() <= 4);
        assert!(page.items.iter().all(|j| j.status == JobStatus::Failed));
        seen.extend(page.items.iter().map(|j| (j.created_at, j.job_id.clone())));
        match page.next_key {
            Some(k) => cursor = Some(k),
            None => break,
        }
    }
    let ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let unique_ids: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique_ids.len(), "a job was listed twice");
    // Ours were made in the future: they come first, in the order made.
    let first: Vec<&String> = ids.iter().take(mine.len()).copied().collect();
    for id in &mine {
        assert!(first.contains(&id), "job {id} skipped or out of order");
    }
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "not newest first"
    );
    let r = store.list_failed(5, Some("not-a-cursor")).await;
    assert!(matches!(r, Err(Error::InvalidInput { .. })), "{r:?}");
}

/// A cursor the store did not make is `InvalidInput`.
pub async fn list_completed_rejects_foreign_cursor(h: &dyn Harness) {
    for bad in ["not-a-cursor", "eyJ4IjoxfQ", "%%%"] {
        let r = h.jobs().list_completed(5, Some(bad)).await;
        assert!(matches!(r, Err(Error::InvalidInput { .. })), "{bad}: {r:?}");
    }
}

/// In-progress excludes completed and failed jobs; failed lists failed ones.
pub async fn list_in_progress_and_failed(h: &dyn Harness) {
    let store = h.jobs();
    let live = new_job("live");
    let done = new_job("done");
    let bad = new_job("bad");
    for j in [&live, &done, &bad] {
        store.put(j).await.unwrap();
    }
    store
        .update(&live.job_id, &JobUpdate::status(JobStatus::Chunking))
        .await
        .unwrap();
    store
        .update(
            &done.job_id,
            &JobUpdate {
                status: Some(JobStatus::Completed),
                completed_at: Some(Utc::now()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .update(
            &bad.job_id,
            &JobUpdate::failed("not-a-video", "no video stream"),
        )
        .await
        .unwrap();
    let live_ids: HashSet<String> = store
        .list_in_progress(1000)
        .await
        .unwrap()
        .into_iter()
        .inspect(|j| assert!(!j.status.is_terminal()))
        .map(|j| j.job_id)
        .collect();
    assert!(live_ids.contains(&live.job_id));
    assert!(!live_ids.contains(&done.job_id));
    assert!(!live_ids.contains(&bad.job_id));
    let failed = store.list_failed(1000, None).await.unwrap().items;
    let mine = failed
        .iter()
        .find(|j| j.job_id == bad.job_id)
        .expect("failed job listed");
    assert_eq!(mine.error.as_ref().unwrap().message, "no video stream");
    assert!(failed.iter().all(|j| j.status == JobStatus::Failed));
}
