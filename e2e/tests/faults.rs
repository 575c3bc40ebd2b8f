//! Faults through the whole local fleet, each with nothing lost: workers killed mid-work,
//! every message delivered twice, a segment that always fails, web-ui restarted mid-upload.
//!
//! The tests look into the fleet's SQLite database (core's `Db`) only to observe queues and
//! to duplicate messages; the processes under test are the real binaries.

mod common;

use std::time::Duration;

use common::*;
use parallax_core::Db;
use parallax_launcher::fleet::{Role, Supervisor};
use parallax_launcher::{Client, Fleet};
use parallax_testkit::media::probe;
use parallax_testkit::wait::{try_wait_until, wait_until, POLL};

/// Messages of `queue` that some process has received and not yet deleted or released.
async fn in_flight(db: &Db, queue: &'static str) -> i64 {
    db.call(move |c| {
        let now = chrono::Utc::now().timestamp_micros();
        Ok(c.query_row(
            "SELECT COUNT(*) FROM messages WHERE queue = ?1 AND receive_count > 0 AND visible_at > ?2",
            (queue, now),
            |r| r.get::<_, i64>(0),
        )?)
    })
    .await
    .unwrap()
}

/// Waits until a message of `queue` is being worked on (asking often: the work may be short).
async fn wait_in_flight(db: &Db, queue: &'static str, within: Duration) {
    let what = format!("a message of {queue} picked up");
    try_wait_until(within, Duration::from_millis(5), &what, || async {
        in_flight(db, queue).await > 0
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Messages waiting or in flight in every queue but the dead-letter ones, by queue.
async fn queued(db: &Db) -> Vec<(String, i64)> {
    db.call(|c| {
        let mut st = c.prepare(
            "SELECT queue, COUNT(*) FROM messages WHERE queue NOT LIKE '%-dlq' GROUP BY queue",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
    .unwrap()
}

fn open_db(scratch: &Scratch) -> Db {
    Db::open(&scratch.data().join("parallax.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn video_worker_killed_mid_segment() {
    let scratch = Scratch::new("fault-vw-kill");
    let source = clip(scratch.path(), "kill.mp4", 6.0).await;
    let src = probe(&source).await.unwrap();
    let db = open_db(&scratch);
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let job = client.submit(&source, "kill me", "full_sbs").await.unwrap();
    wait_in_flight(&db, "segments", Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.kill(Role::VideoWorker).unwrap();
    fleet.spawn(Role::VideoWorker).unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    let got = probe(&out).await.unwrap();
    assert_eq!(got.frames, src.frames, "a segment missing or doubled");
    let state = client.job(&job).await.unwrap();
    assert_eq!(state.progress().0, state.progress().1.unwrap());
    fleet.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn media_worker_killed_during_chunking_and_reassembly() {
    let scratch = Scratch::new("fault-mw-kill");
    let source = clip(scratch.path(), "kill.mp4", 6.0).await;
    let src = probe(&source).await.unwrap();
    let db = open_db(&scratch);
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let job = client
        .submit(&source, "kill twice", "half_sbs")
        .await
        .unwrap();
    wait_in_flight(&db, "chunking", Duration::from_secs(60)).await;
    fleet.kill(Role::MediaWorker).unwrap();
    fleet.spawn(Role::MediaWorker).unwrap();
    wait_in_flight(&db, "reassembly", Duration::from_secs(300)).await;
    fleet.kill(Role::MediaWorker).unwrap();
    fleet.spawn(Role::MediaWorker).unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    let got = probe(&out).await.unwrap();
    assert_eq!(got.frames, src.frames);
    assert_eq!(got.width, src.width, "half SBS keeps the width");
    assert_eq!(got.audio_languages, vec!["eng", "fra"]);
    fleet.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_delivered_twice() {
    let scratch = Scratch::new("fault-dup");
    let source = clip(scratch.path(), "dup.mp4", 5.0).await;
    let src = probe(&source).await.unwrap();
    let db = open_db(&scratch);
    // Every message any process sends is copied in the same transaction, so each is
    // delivered (at least) twice; the originals are logged to count what the fleet sent.
    db.call(|c| {
        c.execute_batch(
            "CREATE TABLE sent_log (queue TEXT, message_id TEXT, body TEXT);
             CREATE TRIGGER duplicate AFTER INSERT ON messages
             WHEN NEW.message_id NOT LIKE 'dup-%'
             BEGIN
               INSERT INTO sent_log VALUES (NEW.queue, NEW.message_id, NEW.body);
               INSERT INTO messages (queue, message_id, body, sent_at, visible_at)
               VALUES (NEW.queue, 'dup-' || NEW.message_id, NEW.body, NEW.sent_at, NEW.visible_at);
             END;",
        )?;
        Ok(())
    })
    .await
    .unwrap();
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let job = client.submit(&source, "twice", "full_sbs").await.unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    let got = probe(&out).await.unwrap();
    assert_eq!(got.frames, src.frames, "same result");
    assert_eq!(got.width, 2 * src.width);
    // Every copy handled (each deleted once its worker is done with it), then count.
    wait_until(
        Duration::from_secs(120),
        "every duplicate handled",
        || async {
            let left = queued(&db).await;
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?} left"))
            }
        },
    )
    .await;
    let (reassembly, dup_copies): (i64, i64) = db
        .call(|c| {
            let r = c.query_row(
                "SELECT COUNT(*) FROM sent_log WHERE queue = 'reassembly'",
                [],
                |r| r.get(0),
            )?;
            let d = c.query_row(
                "SELECT COUNT(*) FROM sent_log WHERE queue IN ('segments', 'segment-output')",
                [],
                |r| r.get(0),
            )?;
            Ok((r, d))
        })
        .await
        .unwrap();
    assert_eq!(reassembly, 1, "reassembly requested more than once");
    assert!(
        dup_copies >= 4,
        "segments were not duplicated: {dup_copies}"
    );
    let state = client.job(&job).await.unwrap();
    assert_eq!(
        state.status(),
        "completed",
        "a late duplicate changed the job"
    );
    fleet.check_alive().unwrap();
    fleet.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn always_failing_segment_dead_letters_while_others_complete() {
    let scratch = Scratch::new("fault-dlq");
    let bad_source = clip(scratch.path(), "bad.mp4", 5.0).await;
    let good_source = clip(scratch.path(), "good.mp4", 3.0).await;
    let db = open_db(&scratch);
    let cfg = local_config(&scratch)
        .with_env("QUEUE_MAX_RECEIVES", "2")
        .with_env("QUEUE_VISIBILITY_TIMEOUT_SECS", "4");
    let mut fleet = start(cfg).await;
    let client = Client::new(fleet.url());
    let (bad, upload) = client
        .create(&bad_source, "doomed", "full_sbs")
        .await
        .unwrap();
    // Storage refuses to store segment 1's output: a directory stands where the file must go,
    // so every attempt fails at the upload (an infrastructure failure, retried each time).
    let blocked = scratch
        .data()
        .join("objects")
        .join(parallax_core::keys::output(&bad, 1));
    std::fs::create_dir_all(blocked.join("in-the-way")).unwrap();
    client
        .upload(&bad, &upload, &bad_source, "doomed")
        .await
        .unwrap();
    let good = client
        .submit(&good_source, "fine", "full_sbs")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &good).await;
    let state = wait_done(&mut fleet, &client, &bad).await;
    assert_eq!(state.status(), "failed", "{}", fleet.logs());
    let (code, message) = state.error().unwrap();
    assert!(!code.is_empty(), "{code}");
    assert!(
        message.contains("segment"),
        "reason names the segment: {message}"
    );
    // The task itself ends in the dead-letter queue.
    let dead_letters = || async {
        let id = bad.clone();
        let dead: i64 = db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM messages WHERE queue = 'segments-dlq' AND body LIKE '%' || ?1 || '%'",
                    [id],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        dead > 0
    };
    wait_until(
        Duration::from_secs(120),
        "the failing task in the dead-letter queue",
        dead_letters,
    )
    .await;
    fleet.check_alive().unwrap();
    fleet.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn web_ui_restarted_during_an_upload() {
    let scratch = Scratch::new("fault-webui");
    let source = clip(scratch.path(), "restart.mp4", 4.0).await;
    let src = probe(&source).await.unwrap();
    let db = open_db(&scratch);
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let (job, upload) = client
        .create(&source, "interrupted", "full_sbs")
        .await
        .unwrap();
    // A slow upload: the first half of the file trickles in, then the server dies.
    let bytes = std::fs::read(&source).unwrap();
    let size = bytes.len() as u64;
    let half = bytes[..bytes.len() / 2].to_vec();
    let slow = trickle(half);
    let put = {
        let client = client.clone();
        let upload = upload.clone();
        tokio::spawn(async move {
            client
                .put(&upload, size, reqwest::Body::wrap_stream(slow))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    fleet.kill(Role::WebUi).unwrap();
    assert!(
        put.await.unwrap().is_err(),
        "the interrupted upload cannot succeed"
    );
    // Nothing half-written became the source, and chunking was not started.
    let source_key = parallax_core::keys::source(&job);
    assert!(!scratch.data().join("objects").join(&source_key).exists());
    let queued: i64 = db
        .call(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM messages WHERE queue = 'chunking'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(queued, 0, "a partial upload started chunking");
    // web-ui comes back on the same port and DATA_DIR; the same presigned URL still works.
    fleet.spawn(Role::WebUi).unwrap();
    fleet.wait_healthy(Duration::from_secs(30)).await.unwrap();
    assert_eq!(client.job(&job).await.unwrap().status(), "awaiting_upload");
    client
        .upload(&job, &upload, &source, "interrupted")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    assert_eq!(probe(&out).await.unwrap().frames, src.frames);
    fleet.stop(Duration::from_secs(20));
}

/// A body that sends `data` in 16 KiB pieces, 40 ms apart, and then stays open without
/// ending (the server is killed before it would end).
fn trickle(data: Vec<u8>) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for c in data.chunks(16 * 1024) {
            if tx.send(Ok(c.to_vec())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        tx.closed().await;
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Supervises `fleet` (as `make up` does) until `done` says so, collecting the lines the
/// supervisor prints; panics after `within` with those lines and the fleet's logs.
async fn supervise_until<F, Fut>(
    fleet: &mut Fleet,
    supervisor: &mut Supervisor,
    lines: &mut Vec<String>,
    within: Duration,
    what: &str,
    mut done: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = try_wait_until(within, POLL, what, || {
        lines.extend(supervisor.tick(fleet).expect("the supervisor gave up"));
        done()
    })
    .await;
    if let Err(e) = waited {
        panic!("{e}; supervisor said {lines:?}\n{}", fleet.logs());
    }
}

/// `make up` keeps the local fleet alive: each kind of process, SIGKILLed while a job is
/// under way (as the kernel's OOM killer would), is started again by the supervisor with a
/// line naming it and how it ended, and the job completes with nothing lost and no manual
/// step.
#[tokio::test(flavor = "multi_thread")]
async fn the_local_fleet_restarts_what_dies_and_the_job_completes() {
    let scratch = Scratch::new("fault-supervised");
    let source = clip(scratch.path(), "supervised.mp4", 6.0).await;
    let src = probe(&source).await.unwrap();
    let db = open_db(&scratch);
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let job = client
        .submit(&source, "keep going", "full_sbs")
        .await
        .unwrap();
    let mut supervisor = Supervisor::default();
    let mut lines = Vec::new();

    // The web front, right after the upload; the video-worker mid-segment; the media-worker
    // after that (it still has the reassembly to do).
    fleet.oom_kill(Role::WebUi).unwrap();
    let in_segments = || async { in_flight(&db, "segments").await > 0 };
    supervise_until(
        &mut fleet,
        &mut supervisor,
        &mut lines,
        Duration::from_secs(120),
        "a segment being converted",
        in_segments,
    )
    .await;
    fleet.oom_kill(Role::VideoWorker).unwrap();
    fleet.oom_kill(Role::MediaWorker).unwrap();

    let done = || async {
        matches!(client.job(&job).await, Ok(s) if s.status() == "completed" || s.status() == "failed")
    };
    supervise_until(
        &mut fleet,
        &mut supervisor,
        &mut lines,
        Duration::from_secs(400),
        "the job to end",
        done,
    )
    .await;
    let state = client.job(&job).await.unwrap();
    assert_eq!(
        state.status(),
        "completed",
        "{:?}\n{}",
        state.error(),
        fleet.logs()
    );
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    assert_eq!(
        probe(&out).await.unwrap().frames,
        src.frames,
        "a segment missing or doubled"
    );
    for role in [Role::WebUi, Role::VideoWorker, Role::MediaWorker] {
        let name = role.binary();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name} #0 killed by signal 9 (SIGKILL)"))),
            "no line for {name}'s death: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name} #0 restarted"))),
            "{name} not restarted: {lines:?}"
        );
    }
    fleet.check_alive().unwrap();
    fleet.stop(Duration::from_secs(20));
}
