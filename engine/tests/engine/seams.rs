//! Segments converted one by one as the fleet does: no depth jump at their seams.

use std::path::PathBuf;

use parallax_core::model::{ConversionSettings, FastDepth, StereoMode};
use parallax_engine::SeamStart;

use crate::util::*;

fn changes(frames: &[Vec<u8>]) -> Vec<f64> {
    frames
        .windows(2)
        .map(|p| {
            let s: f64 = p[0]
                .iter()
                .zip(&p[1])
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum();
            s / p[0].len() as f64
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test]
async fn segments_converted_with_warmup_have_no_depth_jump_at_their_seams() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 90 frames whose brightness (hence the luma model's depth range) drifts over time,
    // keyframes every 30 frames so the segments are stream copies, as media-worker cuts them.
    let src = lossless_clip(
        &d.join("src.mkv"),
        "testsrc2=size=128x72:rate=25,eq=brightness='0.3*sin(2*PI*t/5)':contrast='1+0.4*sin(2*PI*t/3)':eval=frame",
        90,
        30,
    );
    let segs = split_at(&src, d, &[30, 60], 90);
    let eng = engine("luma.onnx", 2);
    let settings = ConversionSettings {
        depth_resolution: Some(42),
        crf: 0,
        // The model on every frame, whose seams are exact; the fast path starts each segment
        // with a keyframe (tests/fastdepth.rs).
        fast_depth: FastDepth::Off,
        ..ConversionSettings::default()
    };
    // Converts `input` starting from `seam`; returns its depth frames and the state its
    // normalisation ended with.
    let convert = |input: PathBuf, out: PathBuf, seam: SeamStart| {
        let eng = eng.clone();
        let settings = settings.clone();
        async move {
            let mut req = request(&input, &out, StereoMode::DepthMap);
            req.settings = settings;
            req.seam = seam;
            let end = EndState::on(&mut req);
            eng.convert(&req, &|_| {}).await.unwrap();
            (luma_frames(&out), end.take())
        }
    };
    let (single, _) = convert(src.clone(), d.join("single.mkv"), SeamStart::Fresh).await;
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    let mut handed = Vec::new();
    let mut handed_state = None;
    for (i, s) in segs.iter().enumerate() {
        let prev = match i {
            0 => SeamStart::Fresh,
            _ => SeamStart::Warmup {
                previous: segs[i - 1].clone(),
                frames: 30,
            },
        };
        warm.extend(
            convert(s.clone(), d.join(format!("warm{i}.mkv")), prev)
                .await
                .0,
        );
        let fresh = SeamStart::Fresh;
        cold.extend(
            convert(s.clone(), d.join(format!("cold{i}.mkv")), fresh)
                .await
                .0,
        );
        let resume = handed_state
            .take()
            .map_or(SeamStart::Fresh, SeamStart::Resume);
        let (frames, end) = convert(s.clone(), d.join(format!("handed{i}.mkv")), resume).await;
        handed.extend(frames);
        handed_state = Some(end);
    }
    assert_eq!(
        (single.len(), warm.len(), cold.len(), handed.len()),
        (90, 90, 90, 90)
    );
    // Segments resuming from the state the previous one ended with are the single pass,
    // frame for frame (the depth-map video is lossless here).
    for (f, (a, b)) in single.iter().zip(&handed).enumerate() {
        let diff = changes(&[a.clone(), b.clone()])[0];
        assert!(
            diff < 0.01,
            "frame {f}: {diff:.3} grey levels from the single pass"
        );
    }

    let inside = |c: &[f64]| -> Vec<f64> {
        c.iter()
            .enumerate()
            .filter(|(i, _)| *i != 29 && *i != 59)
            .map(|(_, v)| *v)
            .collect()
    };
    let warm_changes = changes(&warm);
    let limit = 1.5 * median(&inside(&warm_changes));
    for seam in [29, 59] {
        assert!(
            warm_changes[seam] <= limit,
            "seam after frame {seam}: change {:.3} > 1.5 x median {:.3}",
            warm_changes[seam],
            limit / 1.5
        );
    }
    // The warmed-up segments start where the single pass is.
    for f in [30, 60] {
        let diff = changes(&[single[f].clone(), warm[f].clone()])[0];
        assert!(
            diff < 1.0,
            "frame {f}: {diff:.3} grey levels from the single pass"
        );
    }
    // Without the warm-up the same seams jump: the test can tell the difference.
    let cold_changes = changes(&cold);
    let cold_limit = 1.5 * median(&inside(&cold_changes));
    assert!(
        [29, 59].iter().any(|&s| cold_changes[s] > cold_limit),
        "no jump without warm-up either ({:.3}, {:.3} vs {:.3}): the clip does not test seams",
        cold_changes[29],
        cold_changes[59],
        cold_limit
    );
}
