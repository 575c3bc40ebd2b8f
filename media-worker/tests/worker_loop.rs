//! The worker loops against the local adapters: uploads start chunking through the storage
//! event, a bad upload fails its job while the worker keeps going, a stand-in video-worker
//! converts the segments, reassembly waits for the full set, and redelivered messages change
//! nothing.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fleet::*;
use common::*;
use media_worker::chunk::{self, ChunkOutcome};
use media_worker::manifest::Manifest;
use media_worker::settings::Settings;
use media_worker::split;
use media_worker::worker::{Step, Worker};
use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::*;
use parallax_core::storage::ObjectStorageExt as _;

fn worker(backends: &Backends, dir: &Path) -> Arc<Worker> {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    Arc::new(Worker {
        backends: backends.clone(),
        settings: Arc::new(Settings {
            segment_secs: 1.0,
            work_dir: work,
            ..Settings::default()
        }),
        visibility_timeout: Duration::from_secs(2),
        max_receives: 50,
    })
}

async fn new_job(b: &Backends, title: &str) -> Job {
    let job = Job::new(title, StereoMode::FullSbs, ConversionSettings::default());
    b.jobs.put(&job).await.unwrap();
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loops_convert_a_job_end_to_end_and_survive_bad_input() {
    let d = scratch();
    let (b, clock) = local_backends(d.path()).await;
    let w = worker(&b, d.path());
    let shutdown = parallax_core::worker::CancellationToken::new();
    let stop = shutdown.clone();
    let loops = [
        tokio::spawn(w.clone().run(Step::Chunking, shutdown.clone())),
        tokio::spawn(w.clone().run(Step::Reassembly, shutdown.clone())),
    ];

    // Noise the loop must log and drop: S3's test event, an unknown job, garbage.
    let chunking = &b.queue(QueueName::Chunking).sender;
    chunking
        .send(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#)
        .await
        .unwrap();
    chunking.send(r#"{"job_id":"no-such-job"}"#).await.unwrap();
    chunking.send("not json at all").await.unwrap();

    // A bad upload first, then a good one: the bad one fails its job, the good one goes on.
    let bad = new_job(&b, "bad").await;
    let junk = d.path().join("junk.bin");
    std::fs::write(&junk, "this is a text file, not a video\n".repeat(100)).unwrap();
    b.storage
        .upload(&keys::source(&bad.job_id), &junk)
        .await
        .unwrap();

    let good = new_job(&b, "Holiday in Rome").await;
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30", 3.0),
            sine_input(440, 3.0),
            args("-c:v libx264 -preset ultrafast -g 15 -c:a aac -b:a 64k -metadata:s:a:0 language=ita"),
        ],
    );
    b.storage
        .upload(&keys::source(&good.job_id), &src)
        .await
        .unwrap();

    let failed = wait_for(&b, &bad.job_id, "the bad job to fail", |j| {
        j.status == JobStatus::Failed
    })
    .await;
    assert_eq!(failed.error.as_ref().unwrap().code, "not-a-video");

    let chunked = wait_for(&b, &good.job_id, "chunking", |j| {
        j.status == JobStatus::ChunkingComplete
    })
    .await;
    let total = chunked.total_segments.unwrap();
    assert_eq!(total, 3, "3 s in 1 s segments with a keyframe every 0.5 s");

    // A reassembly request before the segments are converted is left for later.
    b.queue(QueueName::Reassembly)
        .sender
        .send(
            &serde_json::to_string(&ReassemblyRequest {
                job_id: good.job_id.clone(),
                total_segments: Some(total),
            })
            .unwrap(),
        )
        .await
        .unwrap();

    let manifest = Manifest::load(b.storage.as_ref(), &good.job_id)
        .await
        .unwrap()
        .expect("manifest saved");
    assert_eq!(manifest.total_frames(), 90);
    let conv = d.path().join("conv");
    std::fs::create_dir_all(&conv).unwrap();
    let tasks = convert_segments(&b, &conv, total as usize).await;
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(t.segment_index as usize, i);
        assert_eq!(t.total_segments, total);
        assert_eq!(t.source_key, keys::segment(&good.job_id, i as u32));
        assert_eq!(t.output_key, keys::output(&good.job_id, i as u32));
        assert_eq!(t.first_frame, manifest.segments[i].first_frame);
        if i == 0 {
            assert_eq!(t.seam, DepthSeam::default());
        } else {
            assert_eq!(
                t.seam.prev_source_key.as_deref(),
                Some(keys::segment(&good.job_id, i as u32 - 1).as_str())
            );
            assert_eq!(t.seam.warmup_frames, 30);
        }
    }
    assert!(
        b.jobs.get(&good.job_id).await.unwrap().unwrap().status != JobStatus::Completed,
        "not completed before every segment was there"
    );

    // The trigger's request (the early one also comes back and now succeeds).
    assert!(b
        .completions
        .claim_reassembly(&good.job_id, total)
        .await
        .unwrap());
    b.queue(QueueName::Reassembly)
        .sender
        .send(&format!(r#"{{"job_id":"{}"}}"#, good.job_id))
        .await
        .unwrap();
    let done = wait_for(&b, &good.job_id, "completion", |j| {
        j.status == JobStatus::Completed
    })
    .await;
    let key = done.output_key.clone().unwrap();
    assert_eq!(
        key,
        keys::final_output(&good.job_id, "holiday-in-rome_LR.mp4")
    );
    assert!(done.completed_at.is_some());
    let result = d.path().join("result.mp4");
    b.storage.download(&key, &result).await.unwrap();
    assert_eq!(decoded_frames(&result), 90);
    let r = probe(&result);
    assert_eq!(streams(&r, "video")[0].width, Some(320));
    assert_eq!(streams(&r, "audio")[0].tag("language"), Some("ita"));
    assert!(moov_before_mdat(&result));

    // The early request, released with a back-off, comes back now (its lease runs out on
    // the clock) and is dropped: the job is complete.
    clock.advance(Duration::from_secs(2));
    wait_drained(&b, QueueName::Reassembly).await;
    // Redeliveries: chunking again sends no second set; reassembly again changes nothing.
    chunking
        .send(&format!(r#"{{"job_id":"{}"}}"#, good.job_id))
        .await
        .unwrap();
    b.queue(QueueName::Reassembly)
        .sender
        .send(&format!(r#"{{"job_id":"{}"}}"#, good.job_id))
        .await
        .unwrap();
    wait_drained(&b, QueueName::Chunking).await;
    wait_drained(&b, QueueName::Reassembly).await;
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0,
        "no new tasks"
    );
    let again = b.jobs.get(&good.job_id).await.unwrap().unwrap();
    assert_eq!(again, done, "a completed job is left alone");
    for q in [QueueName::Chunking, QueueName::Reassembly] {
        assert_eq!(
            b.queue(q).dead_letters.approximate_len().await.unwrap(),
            0,
            "nothing dead-lettered on {q}"
        );
    }

    stop.cancel();
    for l in loops {
        tokio::time::timeout(Duration::from_secs(30), l)
            .await
            .expect("loop stops on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_chunking_message_resends_the_saved_set() {
    let d = scratch();
    let (b, _clock) = local_backends(d.path()).await;
    let w = worker(&b, d.path());
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("160x90", "25", 3.0),
            args("-c:v libx264 -preset ultrafast -g 10"),
        ],
    );
    // What a worker that died after saving the manifest left behind: segments, manifest,
    // status chunking, no tasks sent.
    let job = new_job(&b, "crashed").await;
    b.storage
        .upload(&keys::source(&job.job_id), &src)
        .await
        .unwrap();
    let (inspection, plan, files) = split::chunk_file(&src, &d.path().join("segs"), &w.settings)
        .await
        .unwrap();
    let manifest = Manifest::new(&job.job_id, inspection.info, w.settings.segment_secs, &plan);
    for (s, f) in manifest.segments.iter().zip(&files) {
        b.storage.upload(&s.key, f).await.unwrap();
    }
    manifest.save(b.storage.as_ref()).await.unwrap();
    b.jobs
        .update(&job.job_id, &JobUpdate::status(JobStatus::Chunking))
        .await
        .unwrap();

    let outcome = chunk::chunk_job(&b, &w.settings, &job.job_id)
        .await
        .unwrap();
    let n = manifest.segments.len() as u32;
    assert_eq!(outcome, ChunkOutcome::Resent { segments: n });
    let job = b.jobs.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::ChunkingComplete);
    assert_eq!(job.total_segments, Some(n));
    let mut sent = Vec::new();
    let q = &b.queue(QueueName::Segments).receiver;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.len() < n as usize {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} tasks",
            sent.len()
        );
        for m in q.receive(10).await.unwrap() {
            sent.push(serde_json::from_str::<SegmentTask>(&m.body).unwrap());
            q.delete(&m.receipt_handle).await.unwrap();
        }
    }
    sent.sort_by_key(|t| t.segment_index);
    assert_eq!(
        sent,
        chunk::tasks(&job, &manifest, &w.settings),
        "the saved set, resent"
    );

    // Once chunking is complete, another delivery does nothing at all.
    let again = chunk::chunk_job(&b, &w.settings, &job.job_id)
        .await
        .unwrap();
    assert!(matches!(again, ChunkOutcome::Dropped(_)), "{again:?}");
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_message_in_progress() {
    let d = scratch();
    let (b, _clock) = local_backends(d.path()).await;
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let w = Arc::new(Worker {
        backends: b.clone(),
        settings: Arc::new(Settings {
            segment_secs: 1.0,
            work_dir: work,
            shutdown_grace: Duration::ZERO,
            ..Settings::default()
        }),
        visibility_timeout: Duration::from_secs(30),
        max_receives: 50,
    });
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("640x360", "30", 20.0),
            args("-c:v libx264 -preset ultrafast -g 15"),
        ],
    );
    let job = new_job(&b, "interrupted").await;
    b.storage
        .upload(&keys::source(&job.job_id), &src)
        .await
        .unwrap();
    let shutdown = parallax_core::worker::CancellationToken::new();
    let stop = shutdown.clone();
    let run = tokio::spawn(w.clone().run(Step::Chunking, shutdown));
    wait_for(&b, &job.job_id, "chunking to start", |j| {
        j.status == JobStatus::Chunking
    })
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the loop stops")
        .unwrap();
    // Released at once (visibility 0), not after the 30 s timeout: another worker can take it.
    let again = b
        .queue(QueueName::Chunking)
        .receiver
        .receive(1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the message is visible again");
    assert_eq!(again[0].receive_count, 2);
    let job = b.jobs.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(
        job.status,
        JobStatus::Chunking,
        "the interrupted step did not finish"
    );
}
