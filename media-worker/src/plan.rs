//! Where a source is cut: at clean keyframes, about every `--segment-secs`, planned from the
//! packet scan before anything is written; and which segments a preview keeps.

use parallax_core::model::PREVIEW_SAMPLE_SECS;
use parallax_media::packets::PacketScan;
use serde::Serialize;

use crate::failure::HandlerError;

/// A segment as planned from the packet scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedSegment {
    /// Zero-based index.
    pub index: u32,
    /// Index of its first frame (= its first packet in decoding order).
    pub first_frame: u64,
    /// Frames in it.
    pub frame_count: u64,
    /// Start on the source timeline, seconds from the video's first frame.
    pub start_secs: f64,
    /// Length up to the next segment's start (the last one: up to the end of its last frame).
    pub duration_secs: f64,
}

/// The samples of a preview: `n` segments of a plan cut at about `PREVIEW_SAMPLE_SECS`,
/// spread evenly over the video (the segments holding the times (2k+1)/2n of its length), in
/// order. A video too short for `n` separate samples is refused with a reason.
pub fn preview_samples(plan: &[PlannedSegment], n: usize) -> Result<Vec<usize>, HandlerError> {
    let total: f64 = plan.iter().map(|s| s.duration_secs).sum();
    let need = n as f64 * PREVIEW_SAMPLE_SECS;
    let mut picked: Vec<usize> = (0..n)
        .filter_map(|k| {
            let t = total * (2 * k + 1) as f64 / (2 * n) as f64;
            plan.iter()
                .position(|s| t >= s.start_secs && t < s.start_secs + s.duration_secs)
        })
        .collect();
    picked.dedup();
    if total < need || picked.len() < n {
        return Err(HandlerError::reject(
            "too-short-for-preview",
            format!(
                "the video is {total:.1} s long, too short for a preview of {n} separate samples of about {PREVIEW_SAMPLE_SECS} s ({need} s): convert it whole instead (it will not take long)"
            ),
        ));
    }
    Ok(picked)
}

/// Chooses the cuts: a new segment starts at the first clean keyframe at least
/// `segment_secs` after the current segment's start. With keyframes far apart segments get
/// longer; they are never cut elsewhere than at a clean keyframe.
pub fn plan_segments(scan: &PacketScan, time_base: f64, segment_secs: f64) -> Vec<PlannedSegment> {
    let first = scan.first_pts.unwrap_or(0);
    let secs = |pts: i64| (pts - first) as f64 * time_base;
    // A small tolerance so that 10 s of 29.97 fps material cut "at 10 s" is not pushed a GOP on.
    let eps = 1e-3;
    let mut cuts: Vec<(u64, f64)> = vec![(0, 0.0)];
    for kf in scan
        .keyframes
        .iter()
        .filter(|k| k.clean && k.packet_index > 0)
    {
        let t = secs(kf.pts);
        if t + eps >= cuts.last().expect("never empty").1 + segment_secs {
            cuts.push((kf.packet_index, t));
        }
    }
    let end = scan.end_pts.map_or(0.0, secs);
    (0..cuts.len())
        .map(|i| {
            let (first_frame, start) = cuts[i];
            let (next_frame, next_start) = cuts.get(i + 1).copied().unwrap_or((scan.count, end));
            PlannedSegment {
                index: i as u32,
                first_frame,
                frame_count: next_frame - first_frame,
                start_secs: start,
                duration_secs: (next_start - start).max(0.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parallax_media::packets::Packet;

    fn scan(gop: i64, frames: i64) -> PacketScan {
        let mut s = PacketScan::default();
        for i in 0..frames {
            s.push(Packet {
                pts: Some(i),
                dts: Some(i),
                duration: Some(1),
                key: i % gop == 0,
                discard: false,
            });
        }
        s
    }

    #[test]
    fn plan_covers_every_frame_once_and_cuts_on_keyframes() {
        // 30 fps, keyframe every 15 frames, 100 frames, 1 s segments.
        let s = scan(15, 100);
        let plan = plan_segments(&s, 1.0 / 30.0, 1.0);
        let starts: Vec<u64> = plan.iter().map(|p| p.first_frame).collect();
        assert_eq!(starts, vec![0, 30, 60, 90]);
        assert_eq!(plan.iter().map(|p| p.frame_count).sum::<u64>(), 100);
        assert!((plan[3].duration_secs - 10.0 / 30.0).abs() < 1e-9);
        assert!(starts.iter().all(|f| f % 15 == 0));
    }

    #[test]
    fn long_gops_make_longer_segments_never_broken_ones() {
        let s = scan(250, 300);
        let plan = plan_segments(&s, 1.0 / 25.0, 2.0);
        assert_eq!(
            plan.iter()
                .map(|p| (p.first_frame, p.frame_count))
                .collect::<Vec<_>>(),
            vec![(0, 250), (250, 50)]
        );
    }

    #[test]
    fn short_sources_are_one_segment() {
        let s = scan(30, 20);
        let plan = plan_segments(&s, 1.0 / 30.0, 10.0);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].frame_count, 20);
    }
}
