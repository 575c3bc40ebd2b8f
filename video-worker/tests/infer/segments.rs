//! A task converted end to end and reported; the seam start (resumed or warmed up); a
//! duplicate task; depth stored with each segment and read back by a re-render.

use std::sync::Arc;
use std::time::Duration;

use parallax_core::keys::{self, QueueName};
use parallax_core::model::{JobStatus, SegmentOutput};
use parallax_core::storage::ObjectStorageExt as _;
use video_worker::converter::SeamStart;

use crate::util::*;
use crate::{convert_until_reported, job_with_segments, Running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converts_tasks_end_to_end_and_reports_them() {
    let b = local(30, 4).await;
    let job = job_with_segments(&b, b.path(), &[12, 9]).await;
    send_task(&b, &task(&job, 0, 12, 5)).await;
    send_task(&b, &task(&job, 1, 9, 5)).await;

    let seen = convert_until_reported(&b, 2).await;

    // Converted segments at their keys, with the source's frame count.
    for (i, frames) in [(0u32, 12u64), (1, 9)] {
        let got = stored_video(&b, &keys::output(&job.job_id, i), b.path()).await;
        assert_eq!(got, (frames, (128, 48)), "segment {i}");
        // And its browser-playable copy: the same frames, fragmented MP4 (for the job page).
        let key = keys::playable(&job.job_id, i);
        let got = stored_video(&b, &key, b.path()).await;
        assert_eq!(got, (frames, (128, 48)), "playable copy of segment {i}");
        let bytes = std::fs::read(b.path().join(key.replace('/', "_"))).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp", "segment {i}: MP4");
        assert!(
            bytes.windows(4).any(|w| w == b"moof"),
            "segment {i}: fragmented"
        );
    }
    // The job page's previews, from segment 0 only.
    assert!(
        b.storage
            .head(&keys::preview_frame(&job.job_id))
            .await
            .unwrap()
            .unwrap()
            > 0
    );
    assert!(
        b.storage
            .head(&keys::preview_depth(&job.job_id))
            .await
            .unwrap()
            .unwrap()
            > 0
    );
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(first.seam, SeamStart::Fresh);
    assert!(first.preview_dir.is_some());
    assert_eq!(first.expected_frames, Some(12));
    // The same worker converted segment 0 just before: segment 1 resumes from the depth
    // state segment 0 ended with, without a warm-up.
    let second = &seen[1];
    assert!(second.preview_dir.is_none());
    assert_eq!(second.seam, SeamStart::Resume(ending_state(12)));

    // Every task is deleted; the reports say what was converted.
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );
    let outputs = b.queue(QueueName::SegmentOutput).receiver.clone();
    let mut reported: Vec<SegmentOutput> = Vec::new();
    for m in outputs.receive(10).await.unwrap() {
        reported.push(serde_json::from_str(&m.body).unwrap());
        outputs
            .change_visibility(&m.receipt_handle, Duration::ZERO)
            .await
            .unwrap();
    }
    reported.sort_by_key(|o| o.segment_index);
    assert_eq!(
        reported
            .iter()
            .map(|o| (o.segment_index, o.frame_count, o.output_key.clone()))
            .collect::<Vec<_>>(),
        vec![
            (0, 12, keys::output(&job.job_id, 0)),
            (1, 9, keys::output(&job.job_id, 1))
        ]
    );

    // (media-worker's completion trigger takes it from there: media-worker/tests/trigger.rs.)
}

/// A converter that reports every frame handed over at once, then holds the segment (as an
/// encoder draining) until another conversion starts or `hold` passes, and copies the input.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_whose_predecessor_was_converted_elsewhere_warms_up_on_its_tail() {
    let b = local(30, 4).await;
    let job = job_with_segments(&b, b.path(), &[12, 9]).await;
    // Only segment 1 comes to this worker.
    send_task(&b, &task(&job, 1, 9, 5)).await;
    let seen = convert_until_reported(&b, 1).await;
    assert_eq!(seen.len(), 1);
    // Warmed up on segment 0's source (downloaded; the stand-in reads it), the task's frames.
    match &seen[0].seam {
        SeamStart::Warmup { previous, frames } => {
            assert_eq!(*frames, 5);
            assert!(previous.ends_with("previous.mkv"), "{}", previous.display());
        }
        other => panic!("expected a warm-up, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_task_is_harmless() {
    let b = local(30, 4).await;
    let job = chunked_job(&b, 1).await;
    let clip = b.path().join("0.mkv");
    segment_clip(&clip, 10, (64, 48)).await;
    b.storage
        .upload(&keys::segment(&job.job_id, 0), &clip)
        .await
        .unwrap();
    // The same task twice (a redelivery, or media-worker re-sending after a crash).
    send_task(&b, &task(&job, 0, 10, 0)).await;
    send_task(&b, &task(&job, 0, 10, 0)).await;

    let worker = Running::with_defaults(&b, Arc::new(HstackConverter::new(false)));
    wait_for_len(&b, QueueName::SegmentOutput, 2).await;
    worker.stop().await;

    // The same key was rewritten with a whole, correct segment: no second set of objects.
    assert_eq!(
        stored_video(&b, &keys::output(&job.job_id, 0), b.path()).await,
        (10, (128, 48))
    );
    assert!(b
        .storage
        .head(&keys::output(&job.job_id, 1))
        .await
        .unwrap()
        .is_none());
    // Both reports name the same segment, key and frame count: the completion trigger
    // records a segment once (set membership), so it counts once (media-worker's trigger
    // tests deliver every output twice).
    let reports: Vec<SegmentOutput> = drain(&b, QueueName::SegmentOutput)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0], reports[1]);
    assert_eq!((reports[0].segment_index, reports[0].frame_count), (0, 10));
}

/// Depth once, render many, at the worker: each converted segment's depth is stored at
/// `keys::depth(job, segment)` by the time its output is reported; a re-render's task (with
/// `depth_key`) hands the stored depth to the converter instead of a seam warm-up and stores
/// none of its own; a re-render whose stored depth is gone fails its job readably.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_is_stored_with_each_segment_and_a_rerender_reads_it() {
    let b = local(30, 4).await;
    let job = job_with_segments(&b, b.path(), &[12, 9]).await;
    send_task(&b, &task(&job, 0, 12, 5)).await;
    send_task(&b, &task(&job, 1, 9, 5)).await;
    let seen = convert_until_reported(&b, 2).await;
    for (i, w) in seen.iter().enumerate() {
        assert!(w.depth_out.is_some() && w.depth_in.is_none(), "segment {i}");
        let stored = b
            .storage
            .head(&keys::depth(&job.job_id, i as u32))
            .await
            .unwrap();
        assert!(stored.is_some_and(|n| n > 0), "segment {i}'s depth stored");
    }
    drain(&b, QueueName::SegmentOutput).await;

    // The re-render: the same source segments, the stored depth, another job's keys.
    let mut again = chunked_job(&b, 2).await;
    again.mode = parallax_core::model::StereoMode::HalfSbs;
    for (i, frames) in [(0u32, 12u64), (1, 9)] {
        let mut t = task(&again, i, frames, 5);
        t.source_key = keys::segment(&job.job_id, i);
        t.seam = Default::default();
        t.depth_key = Some(keys::depth(&job.job_id, i));
        send_task(&b, &t).await;
    }
    let seen = convert_until_reported(&b, 2).await;
    assert_eq!(seen.len(), 2);
    for (i, w) in seen.iter().enumerate() {
        assert_eq!(w.seam, SeamStart::Fresh, "segment {i}: no warm-up");
        assert!(w.seam_end.is_none(), "segment {i}");
        assert!(w.depth_out.is_none(), "segment {i}: nothing stored");
        // (The stand-in checks that it has the segment's frame count.)
        assert!(
            w.depth_in.is_some(),
            "segment {i}: the stored depth is handed over"
        );
        assert_eq!(w.mode, parallax_core::model::StereoMode::HalfSbs);
    }
    for i in 0..2 {
        let got = stored_video(&b, &keys::output(&again.job_id, i), b.path()).await;
        assert_eq!(got.0, [12, 9][i as usize], "segment {i}");
        assert!(b
            .storage
            .head(&keys::depth(&again.job_id, i))
            .await
            .unwrap()
            .is_none());
    }
    drain(&b, QueueName::SegmentOutput).await;

    // Stored depth that is gone: the job fails at once, saying which object.
    let orphan = chunked_job(&b, 1).await;
    let mut t = task(&orphan, 0, 12, 0);
    t.source_key = keys::segment(&job.job_id, 0);
    t.depth_key = Some(keys::depth("gone-job", 0));
    send_task(&b, &t).await;
    let conv = Arc::new(HstackConverter::new(false));
    let worker = Running::with_defaults(&b, conv.clone());
    wait_for_job(&b, &orphan.job_id, "the orphan to fail", |j| {
        j.status == JobStatus::Failed
    })
    .await;
    worker.stop().await;
    let err = b
        .jobs
        .get(&orphan.job_id)
        .await
        .unwrap()
        .unwrap()
        .error
        .unwrap();
    assert_eq!(err.code, "depth-missing");
    assert!(
        err.message.contains(&keys::depth("gone-job", 0)),
        "{}",
        err.message
    );
    assert!(conv.seen.lock().unwrap().is_empty(), "nothing converted");
}
