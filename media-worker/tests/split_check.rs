//! The split is checked against the plan without probing the segments: a cut that does not
//! land where planned is caught from the segment muxer's own list.

mod common;

use common::*;
use media_worker::failure::HandlerError;
use media_worker::inspect;
use media_worker::plan::{self, PlannedSegment};
use media_worker::split;

#[tokio::test]
async fn a_cut_off_its_planned_keyframe_is_refused() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30", 3.0),
            args("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 15"),
        ],
    );
    let s = settings(1.0);
    let inspection = inspect::inspect(&src, &s).await.unwrap();
    let info = &inspection.info;
    let plan = plan::plan_segments(&inspection.scan, info.video.time_base.as_f64(), 1.0);
    assert_eq!(
        plan.iter().map(|p| p.first_frame).collect::<Vec<_>>(),
        vec![0, 30, 60]
    );
    // The planned split passes its own check.
    split::split(
        &src,
        info,
        &inspection.scan.keyframes,
        &plan,
        &d.path().join("good"),
        &s,
    )
    .await
    .unwrap();
    // A plan whose second cut is 5 frames past a keyframe: ffmpeg can only cut at the next
    // keyframe, and the check sees that the segment does not start where planned.
    let mut bad: Vec<PlannedSegment> = plan.clone();
    bad[1].first_frame += 5;
    bad[1].frame_count -= 5;
    bad[0].frame_count += 5;
    match split::split(
        &src,
        info,
        &inspection.scan.keyframes,
        &bad,
        &d.path().join("bad"),
        &s,
    )
    .await
    {
        Err(HandlerError::Reject { code, .. }) => assert_eq!(code, "split-failed"),
        Err(HandlerError::Retry(e)) => panic!("retry instead of a rejection: {e:#}"),
        Ok(_) => panic!("a split off the plan was accepted"),
    }
}

/// (pts_time, flags) of every video packet, decoding order.
fn packet_list(path: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time,flags,size", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Chunks `src` (an MP4) in-process and compares every segment with ffmpeg's segment muxer.
async fn same_as_ffmpeg(src: &std::path::Path, dir: &std::path::Path) {
    let s = settings(1.0);
    let (inspection, plan, ours) = split::chunk_file(src, &dir.join("ours"), &s).await.unwrap();
    assert!(inspection.video_track.is_some(), "split from the index");
    assert!(plan.len() >= 2);
    let theirs = split::split(
        src,
        &inspection.info,
        &inspection.scan.keyframes,
        &plan,
        &dir.join("theirs"),
        &s,
    )
    .await
    .unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        // Same packets (size and keyframe flag) at the same times, in the same order.
        assert_eq!(packet_list(a), packet_list(b), "{}", a.display());
        assert_eq!(decoded_frames(a), decoded_frames(b));
    }
}

#[tokio::test]
async fn in_process_segments_hold_what_ffmpeg_segments_hold() {
    let d = scratch();
    let h264 = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30000/1001", 3.0),
            sine_input(440, 3.0),
            args("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 15 -bf 2"),
            args("-c:a aac -b:a 64k"),
        ],
    );
    same_as_ffmpeg(&h264, &d.path().join("h264")).await;
    let hevc = clip(
        d.path(),
        "hevc.mp4",
        &[
            video_input("160x96", "24", 2.0),
            args("-c:v libx265 -preset ultrafast -pix_fmt yuv420p10le -tag:v hvc1"),
            args("-x265-params keyint=12:min-keyint=12:open-gop=0:log-level=error"),
        ],
    );
    same_as_ffmpeg(&hevc, &d.path().join("hevc")).await;
}
