//! Re-renders at chunking and reassembly, on the local adapters: the marker object a
//! re-render job's creation writes starts chunking through the storage event; chunking sends
//! the source job's segments with their stored depth (no probing, no cutting, no warm-up),
//! saving total_segments and the manifest first; reassembly muxes the original upload's
//! audio into the result; a re-render of a re-render still reads the original's depth and
//! upload; a source job without stored depth fails the re-render readably.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::fleet::*;
use common::*;
use media_worker::chunk::{self, ChunkOutcome};
use media_worker::failure::HandlerError;
use media_worker::manifest::Manifest;
use media_worker::reassemble::{self, ReassemblyOutcome};
use media_worker::settings::Settings;
use media_worker::worker::{Step, Worker};
use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::*;
use parallax_core::storage::ObjectStorageExt as _;

fn test_settings(dir: &Path) -> Arc<Settings> {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    Arc::new(Settings {
        segment_secs: 1.0,
        work_dir: work,
        ..Settings::default()
    })
}

/// What the web-ui stores for a re-render of `of`.
async fn rerender_job(b: &Backends, of: &str, title: &str, mode: StereoMode) -> Job {
    let mut job = Job::new(title, mode, ConversionSettings::default());
    job.status = JobStatus::Uploaded;
    job.uploaded_at = Some(Utc::now());
    job.rerender_of = Some(of.to_owned());
    b.jobs.put(&job).await.unwrap();
    job
}

async fn wait_status(b: &Backends, job_id: &str, status: JobStatus) -> Job {
    wait_for(b, job_id, status.as_str(), |j| j.status == status).await
}

async fn reassemble(b: &Backends, settings: &Settings, job_id: &str) -> String {
    let req = ReassemblyRequest {
        job_id: job_id.to_owned(),
        total_segments: None,
    };
    match reassemble::reassemble_job(b, settings, &req).await {
        Ok(ReassemblyOutcome::Completed { output_key }) => output_key,
        other => panic!("reassembly of {job_id}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerender_sends_the_source_jobs_segments_with_their_stored_depth() {
    let d = scratch();
    let (b, _clock) = local_backends(d.path()).await;
    let settings = test_settings(d.path());
    let conv = d.path().join("conv");
    std::fs::create_dir_all(&conv).unwrap();

    // The original: uploaded, chunked, converted (with depth stored), reassembled.
    let original = Job::new(
        "Holiday in Rome",
        StereoMode::FullSbs,
        ConversionSettings::default(),
    );
    b.jobs.put(&original).await.unwrap();
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30", 3.0),
            sine_input(440, 3.0),
            args("-c:v libx264 -preset ultrafast -g 15 -c:a aac -b:a 64k -metadata:s:a:0 language=ita"),
        ],
    );
    // Chunked by hand (its upload's event is dropped later by the loop: already done).
    b.storage
        .upload(&keys::source(&original.job_id), &src)
        .await
        .unwrap();
    let outcome = chunk::chunk_job(&b, &settings, &original.job_id)
        .await
        .unwrap();
    assert_eq!(outcome, ChunkOutcome::Chunked { segments: 3 });
    let tasks = convert_segments(&b, &conv, 3).await;
    assert!(tasks.iter().all(|t| t.depth_key.is_none()));
    reassemble(&b, &settings, &original.job_id).await;
    let source_manifest = Manifest::load(b.storage.as_ref(), &original.job_id)
        .await
        .unwrap()
        .unwrap();

    // The re-render: started by its marker object through the storage event.
    let shutdown = parallax_core::worker::CancellationToken::new();
    let stop = shutdown.clone();
    let w = Arc::new(Worker {
        backends: b.clone(),
        settings: settings.clone(),
        visibility_timeout: Duration::from_secs(2),
        max_receives: 50,
    });
    let chunking = tokio::spawn(w.clone().run(Step::Chunking, shutdown.clone()));
    let again = rerender_job(&b, &original.job_id, "Rome again", StereoMode::HalfSbs).await;
    b.storage
        .put_stream(
            &keys::rerender_marker(&again.job_id),
            Box::pin(std::io::Cursor::new(b"{}".to_vec())),
        )
        .await
        .unwrap();
    let chunked = wait_status(&b, &again.job_id, JobStatus::ChunkingComplete).await;
    assert_eq!(chunked.total_segments, Some(3));
    assert!(
        b.storage
            .head(&keys::source(&again.job_id))
            .await
            .unwrap()
            .is_none(),
        "a re-render has no upload of its own"
    );
    let manifest = Manifest::load(b.storage.as_ref(), &again.job_id)
        .await
        .unwrap()
        .expect("the re-render's manifest is saved");
    assert_eq!(manifest.segments, source_manifest.segments);
    assert_eq!(manifest.source_key(), keys::source(&original.job_id));
    assert_eq!(manifest.depth_job(), original.job_id);

    let tasks = convert_segments(&b, &conv, 3).await;
    for (i, t) in tasks.iter().enumerate() {
        let i = i as u32;
        assert_eq!(t.job_id, again.job_id);
        assert_eq!(t.source_key, keys::segment(&original.job_id, i));
        assert_eq!(t.output_key, keys::output(&again.job_id, i));
        assert_eq!(
            t.depth_key.as_deref(),
            Some(keys::depth(&original.job_id, i).as_str())
        );
        assert_eq!(t.seam, DepthSeam::default(), "no warm-up");
        assert_eq!(t.mode, StereoMode::HalfSbs);
    }
    // A redelivered marker changes nothing.
    b.queue(QueueName::Chunking)
        .sender
        .send(&format!(r#"{{"job_id":"{}"}}"#, again.job_id))
        .await
        .unwrap();
    let key = reassemble(&b, &settings, &again.job_id).await;
    assert_eq!(
        key,
        keys::final_output(&again.job_id, "rome-again_Half_LR.mp4")
    );
    let result = d.path().join("again.mp4");
    b.storage.download(&key, &result).await.unwrap();
    assert_eq!(decoded_frames(&result), 90);
    let r = probe(&result);
    assert_eq!(
        streams(&r, "audio")[0].tag("language"),
        Some("ita"),
        "the original upload's audio"
    );
    // The marker is handled (and deleted) before the count.
    wait_drained(&b, QueueName::Chunking).await;
    assert_eq!(
        b.queue(QueueName::Chunking)
            .dead_letters
            .approximate_len()
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0,
        "no second set of tasks"
    );

    // A re-render of the re-render: still the original's depth and upload.
    let third = rerender_job(&b, &again.job_id, "third", StereoMode::Anaglyph).await;
    b.storage
        .put_stream(
            &keys::rerender_marker(&third.job_id),
            Box::pin(std::io::Cursor::new(b"{}".to_vec())),
        )
        .await
        .unwrap();
    wait_status(&b, &third.job_id, JobStatus::ChunkingComplete).await;
    let tasks = convert_segments(&b, &conv, 3).await;
    assert!(tasks.iter().all(|t| t.job_id == third.job_id));
    assert_eq!(
        tasks[2].depth_key.as_deref(),
        Some(keys::depth(&original.job_id, 2).as_str())
    );
    let manifest = Manifest::load(b.storage.as_ref(), &third.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest.source_key(), keys::source(&original.job_id));
    let key = reassemble(&b, &settings, &third.job_id).await;
    b.storage
        .download(&key, &d.path().join("third.mp4"))
        .await
        .unwrap();
    assert_eq!(decoded_frames(&d.path().join("third.mp4")), 90);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), chunking)
        .await
        .expect("the loop stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerender_of_a_job_without_stored_depth_fails_readably() {
    let d = scratch();
    let (b, _clock) = local_backends(d.path()).await;
    let settings = test_settings(d.path());
    let original = Job::new("old", StereoMode::FullSbs, ConversionSettings::default());
    b.jobs.put(&original).await.unwrap();
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("160x90", "25", 2.0),
            args("-c:v libx264 -preset ultrafast -g 10"),
        ],
    );
    b.storage
        .upload(&keys::source(&original.job_id), &src)
        .await
        .unwrap();
    chunk::chunk_job(&b, &settings, &original.job_id)
        .await
        .unwrap();
    // Segments and manifest, but no depth: a job converted before depth was stored.
    let again = rerender_job(&b, &original.job_id, "again", StereoMode::HalfSbs).await;
    match chunk::chunk_job(&b, &settings, &again.job_id).await {
        Err(HandlerError::Reject { code, message }) => {
            assert_eq!(code, "rerender-source-missing");
            assert!(message.contains("stored depth"), "{}", message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        chunk::tasks(
            &original,
            &Manifest::load(b.storage.as_ref(), &original.job_id)
                .await
                .unwrap()
                .unwrap(),
            &settings
        )
        .len() as u64,
        "only the original's tasks were sent"
    );

    // And a source job with no segment list at all.
    let ghost = rerender_job(&b, "0000-gone", "ghost", StereoMode::HalfSbs).await;
    match chunk::chunk_job(&b, &settings, &ghost.job_id).await {
        Err(HandlerError::Reject { code, message }) => {
            assert_eq!(code, "rerender-source-missing");
            assert!(message.contains("segment list"), "{}", message);
        }
        other => panic!("{other:?}"),
    }
}

/// A preview of `secs` seconds of 160x90 video with sound, uploaded; returns the job.
async fn uploaded_preview(b: &Backends, dir: &Path, secs: f64) -> Job {
    let mut job = Job::new(
        "Preview me",
        StereoMode::FullSbs,
        ConversionSettings::default(),
    );
    job.preview = true;
    b.jobs.put(&job).await.unwrap();
    let src = clip(
        dir,
        &format!("preview-{secs}.mp4"),
        &[
            video_input("160x90", "30", secs),
            sine_input(440, secs),
            args("-c:v libx264 -preset ultrafast -g 15 -c:a aac -b:a 64k"),
        ],
    );
    b.storage
        .upload(&keys::source(&job.job_id), &src)
        .await
        .unwrap();
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_converts_three_short_samples_spread_over_the_video_then_convert_all_uses_its_upload(
) {
    let d = scratch();
    let (b, _clock) = local_backends(d.path()).await;
    let settings = test_settings(d.path());
    let conv = d.path().join("conv");
    std::fs::create_dir_all(&conv).unwrap();
    let job = uploaded_preview(&b, d.path(), 30.0).await;

    let outcome = chunk::chunk_job(&b, &settings, &job.job_id).await.unwrap();
    assert_eq!(
        outcome,
        ChunkOutcome::Chunked {
            segments: PREVIEW_SAMPLES as u32
        }
    );
    let manifest = Manifest::load(b.storage.as_ref(), &job.job_id)
        .await
        .unwrap()
        .unwrap();
    assert!(manifest.preview);
    let frames: Vec<u64> = manifest.segments.iter().map(|s| s.frame_count).collect();
    // Two seconds at 30 fps with a keyframe every half second: 60 frames each.
    assert_eq!(frames, vec![60; PREVIEW_SAMPLES], "{manifest:?}");
    let firsts: Vec<u64> = manifest.segments.iter().map(|s| s.first_frame).collect();
    // Spread: around 5 s, 15 s and 25 s of the 30 s video (900 frames).
    for (first, around) in firsts.iter().zip([150u64, 450, 750]) {
        assert!(
            first.abs_diff(around) <= 60,
            "sample at frame {first}, expected near {around}: {firsts:?}"
        );
    }
    let tasks = convert_segments(&b, &conv, PREVIEW_SAMPLES).await;
    assert!(
        tasks.iter().all(|t| t.seam.warmup_frames == 0),
        "samples are not contiguous: no warm-up between them"
    );
    let key = reassemble(&b, &settings, &job.job_id).await;
    assert!(key.contains("-preview"), "{key}");
    let out = d.path().join("preview-result");
    b.storage.download(&key, &out).await.unwrap();
    let p = probe(&out);
    assert!(streams(&p, "audio").is_empty(), "a preview has no sound");
    assert_eq!(decoded_frames(&out), 60 * PREVIEW_SAMPLES as u64);
    assert!(
        (duration(&p) - 6.0).abs() < 0.2,
        "the samples play one after the other: {}",
        duration(&p)
    );

    // "Convert all": a new job converting the preview's upload, whole, with sound.
    let mut all = Job::new(
        "Preview me",
        StereoMode::HalfSbs,
        ConversionSettings::default(),
    );
    all.status = JobStatus::Uploaded;
    all.upload_of = Some(job.job_id.clone());
    b.jobs.put(&all).await.unwrap();
    let outcome = chunk::chunk_job(&b, &settings, &all.job_id).await.unwrap();
    assert_eq!(outcome, ChunkOutcome::Chunked { segments: 30 });
    convert_segments(&b, &conv, 30).await;
    let key = reassemble(&b, &settings, &all.job_id).await;
    let out = d.path().join("all-result");
    b.storage.download(&key, &out).await.unwrap();
    let p = probe(&out);
    assert_eq!(
        streams(&p, "audio").len(),
        1,
        "the whole video keeps its sound"
    );
    assert_eq!(decoded_frames(&out), 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_of_a_video_shorter_than_its_samples_is_refused_readably() {
    let d = scratch();
    let (b, _clock) = local_backends(d.path()).await;
    let settings = test_settings(d.path());
    let job = uploaded_preview(&b, d.path(), 4.0).await;
    match chunk::chunk_job(&b, &settings, &job.job_id).await {
        Err(HandlerError::Reject { code, message }) => {
            assert_eq!(code, "too-short-for-preview");
            assert!(message.contains("4.0 s"), "{}", message);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}
