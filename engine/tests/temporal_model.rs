//! Temporal depth models (windows of frames, Video Depth Anything's contract): the contract
//! read and checked at load, windows aligned to each other, conversions through the windowed
//! stage, and seams between segments. Models come from `models/make_models.py`: the temporal
//! luma models give each window its own scale and shift, set by the window's brightness.

use std::path::{Path, PathBuf};

use parallax_core::model::StereoMode;
use parallax_engine::model::{Dim, ModelKind, DEFAULT_WINDOW};
use parallax_engine::window::{overlap, Chain};
use parallax_engine::{BadInput, ConvertRequest, Engine, NormState, SeamStart};

mod util;
use util::*;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// An engine on the test model `name` with `window` frames per window for a dynamic `T`.
fn temporal_engine(name: &str, window: Option<usize>) -> Engine {
    let mut cfg = config(name);
    cfg.window = window;
    load(&cfg)
}

/// A 128x72 clip of `frames` frames at 25 fps whose brightness drifts slowly (so the test
/// models' window scales differ), lossless, a keyframe every 30 frames.
fn drifting_clip(dir: &Path, frames: u32) -> PathBuf {
    lossless_clip(
        &dir.join("drift.mkv"),
        "testsrc2=size=128x72:rate=25,eq=brightness='-0.25+0.2*t':eval=frame",
        frames,
        30,
    )
}

/// The depth maps stored by a conversion (`depth_out`), as 0..1.
fn depth_maps(path: &Path) -> Vec<Vec<f32>> {
    stored_depth(path)
        .into_iter()
        .map(|f| f.into_iter().map(|v| v as f32 / 65535.0).collect())
        .collect()
}

/// Mean absolute difference of two maps.
fn mad(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

fn median(v: &[f32]) -> f32 {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Converts `input` to a depth-map video, storing the depth; returns the maps and the state
/// the conversion ended with.
async fn convert(
    eng: &Engine,
    input: &Path,
    dir: &Path,
    name: &str,
    seam: SeamStart,
) -> (Vec<Vec<f32>>, NormState) {
    let mut req = request(
        input,
        &dir.join(format!("{name}.mkv")),
        StereoMode::DepthMap,
    );
    req.seam = seam;
    let depth = dir.join(format!("{name}-depth.mkv"));
    req.depth_out = Some(depth.clone());
    let end = EndState::on(&mut req);
    let report = eng
        .convert(&req, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("converting {name}: {e:#}"));
    let maps = depth_maps(&depth);
    assert_eq!(maps.len() as u64, report.frames, "{name}: a map per frame");
    (maps, end.take())
}

// ---------------------------------------------------------------- the contract

#[test]
fn a_temporal_model_is_read_as_temporal_with_its_window() {
    let dynamic = temporal_engine("temporal-luma.onnx", None);
    let info = dynamic.model().info();
    assert_eq!(
        (info.kind, info.window),
        (ModelKind::Temporal, Dim::Dynamic)
    );
    assert_eq!(
        (info.input.as_str(), info.output.as_str()),
        ("image", "depth")
    );
    assert_eq!(dynamic.model().kind(), ModelKind::Temporal);
    assert_eq!(dynamic.model().window(None), DEFAULT_WINDOW);
    assert_eq!(dynamic.model().window(Some(12)), 12);
    assert_eq!(dynamic.model().input_size(1280, 720, 518), (924, 518));

    let fixed = temporal_engine("temporal-fixed.onnx", Some(12));
    let info = fixed.model().info();
    assert_eq!(
        (info.kind, info.window, info.batch),
        (ModelKind::Temporal, Dim::Fixed(8), Dim::Fixed(1))
    );
    assert_eq!(fixed.model().window(Some(12)), 8, "the model's own T wins");

    let per_frame = engine("luma.onnx", 1);
    assert_eq!(per_frame.model().kind(), ModelKind::PerFrame);
    assert_eq!(per_frame.model().window(Some(12)), 1);
}

#[test]
fn bad_temporal_contracts_are_refused_saying_what_is_wrong() {
    let msg = load_error("temporal-bad-channels.onnx");
    assert!(
        msg.contains("does not fit the depth-model contract"),
        "{msg}"
    );
    assert!(
        msg.contains("1 channels") && msg.contains("3 (RGB) as [N,T,3,H,W]"),
        "{msg}"
    );
    let msg = load_error("temporal-bad-output.onnx");
    assert!(
        msg.contains("[?,?,?]") && msg.contains("[N,T,H,W] or [N,T,1,H,W]"),
        "{msg}"
    );
    let msg = load_error("temporal-t-mismatch.onnx");
    assert!(
        msg.contains("windows of 8 frames") && msg.contains("has 4") && msg.contains("same T"),
        "{msg}"
    );
    // A rank that is neither contract names both.
    let msg = load_error("bad-rank.onnx");
    assert!(
        msg.contains("rank 3") && msg.contains("[N,T,3,H,W]"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- alignment

/// `frames` normalised model inputs (`[3,h,w]` each) whose grey level is a horizontal ramp
/// that brightens slowly over time; and each frame's grey levels.
fn drifting_frames(frames: usize, (w, h): (usize, usize)) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut tensor = Vec::with_capacity(frames * 3 * w * h);
    let mut greys = Vec::new();
    for f in 0..frames {
        let grey: Vec<f32> = (0..w * h)
            .map(|i| 0.1 + 0.4 * (i % w) as f32 / w as f32 + 0.01 * f as f32)
            .collect();
        for c in 0..3 {
            tensor.extend(grey.iter().map(|g| (g - MEAN[c]) / STD[c]));
        }
        greys.push(grey);
    }
    (tensor, greys)
}

#[test]
fn aligned_windows_are_continuous_where_raw_windows_jump() {
    let eng = temporal_engine("temporal-luma.onnx", None);
    let model = eng.model();
    let (w, h) = (28, 14);
    let (t, n) = (8, 40);
    let o = overlap(t);
    assert_eq!(o, 2);
    let (tensor, greys) = drifting_frames(n, (w, h));
    let stride = 3 * w * h;
    let plane = w * h;

    // Windows at 0, 6, 12, ...: the chain, and the raw windows cut end to end.
    let mut chain = Chain::new(o);
    let mut aligned = Vec::new();
    let mut plain: Vec<f32> = Vec::new();
    let mut boundaries = Vec::new();
    let mut start = 0;
    loop {
        let frames = t.min(n - start);
        let mut input = tensor[start * stride..(start + frames) * stride].to_vec();
        for _ in frames..t {
            input.extend_from_within((frames - 1) * stride..frames * stride);
        }
        model
            .run_windows_with(&input, (1, t), (w, h), |raw, size| {
                assert_eq!(size, (w, h));
                chain.push(raw, frames, size, &mut aligned);
                // Plain: each window's frames past the previous window's, unaligned.
                let skip = if start == 0 { 0 } else { o };
                plain.extend_from_slice(&raw[skip * plane..frames * plane]);
            })
            .unwrap();
        if start + frames == n {
            break;
        }
        start += t - o;
        boundaries.push(start + o - 1);
    }
    chain.finish(&mut aligned);
    assert_eq!(aligned.len(), n * plane);
    assert_eq!(plain.len(), n * plane);
    let maps = |v: &[f32]| -> Vec<Vec<f32>> { v.chunks(plane).map(<[f32]>::to_vec).collect() };
    let (aligned, plain) = (maps(&aligned), maps(&plain));

    // Frame-to-frame change, relative to the depth range of a frame.
    let changes = |m: &[Vec<f32>]| -> Vec<f32> {
        let range = m[0].iter().fold(f32::MIN, |a, &b| a.max(b))
            - m[0].iter().fold(f32::MAX, |a, &b| a.min(b));
        m.windows(2).map(|p| mad(&p[0], &p[1]) / range).collect()
    };
    let inside = |c: &[f32]| -> f32 {
        let v: Vec<f32> = c
            .iter()
            .enumerate()
            .filter(|(i, _)| !boundaries.contains(i))
            .map(|(_, v)| *v)
            .collect();
        median(&v)
    };
    let (ca, cp) = (changes(&aligned), changes(&plain));
    let (ia, ip) = (inside(&ca), inside(&cp));
    // Unaligned, the windows jump: several times the change inside a window.
    let worst_plain = boundaries.iter().map(|&b| cp[b]).fold(0.0, f32::max);
    assert!(
        worst_plain > 10.0 * ip,
        "raw windows do not jump ({worst_plain:.4} vs {ip:.4} inside): the model does not test alignment"
    );
    // Aligned, every change is like the changes inside a window.
    for (i, c) in ca.iter().enumerate() {
        assert!(
            *c <= 1.5 * ia + 1e-4,
            "frame {i} to {}: change {c:.4}, {ia:.4} inside windows",
            i + 1
        );
    }
    // And the whole clip is one affine map of the true grey levels (one scale for all).
    let all_grey: Vec<f32> = greys.concat();
    let all_aligned: Vec<f32> = aligned.concat();
    let fit = parallax_engine::window::Affine::fit(&all_grey, &all_aligned);
    let mut mapped = vec![0.0; all_grey.len()];
    fit.apply(&all_grey, &mut mapped);
    let span = all_aligned.iter().fold(f32::MIN, |a, &b| a.max(b))
        - all_aligned.iter().fold(f32::MAX, |a, &b| a.min(b));
    let err = mad(&mapped, &all_aligned) / span;
    assert!(err < 0.01, "{err:.4} of the range off one affine map");
}

// ---------------------------------------------------------------- conversions and seams

#[tokio::test]
async fn a_conversion_runs_windows_and_gives_every_frame_a_continuous_depth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = drifting_clip(d, 45);
    let eng = temporal_engine("temporal-fixed.onnx", None);
    let (maps, end) = convert(&eng, &src, d, "whole", SeamStart::Fresh).await;
    assert_eq!(maps.len(), 45);
    assert_eq!(frame_count(&d.join("whole.mkv")), 45);
    assert_eq!(dims(&d.join("whole-depth.mkv")), (70, 42));
    // Windows of 8 frames, 6 new each: 8 + 6 * 7 >= 45.
    assert_eq!(eng.model().runs(), 8);
    assert!(end.seam_depth().is_some(), "the last depth is handed on");
    // The depth is not flat, and has no jumps at window boundaries.
    let spread = maps[20].iter().fold(0.0f32, |a, &b| a.max(b))
        - maps[20].iter().fold(1.0f32, |a, &b| a.min(b));
    assert!(spread > 0.5, "{spread}");
    let changes: Vec<f32> = maps.windows(2).map(|p| mad(&p[0], &p[1])).collect();
    let limit = 2.0 * median(&changes) + 1e-3;
    for (i, c) in changes.iter().enumerate() {
        assert!(*c <= limit, "frame {i} to {}: {c:.4} > {limit:.4}", i + 1);
    }
}

#[tokio::test]
async fn two_segments_with_warmup_or_a_handed_state_match_one_pass_at_the_seam() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = drifting_clip(d, 60);
    let segs = split_at(&src, d, &[30], 60);
    let eng = temporal_engine("temporal-luma.onnx", Some(8));
    let (single, _) = convert(&eng, &src, d, "single", SeamStart::Fresh).await;
    let (first, end) = convert(&eng, &segs[0], d, "first", SeamStart::Fresh).await;
    // A warm-up over 10 frames: its windows do not start where the single pass's do.
    let warmup = SeamStart::Warmup {
        previous: segs[0].clone(),
        frames: 10,
    };
    let (warm, _) = convert(&eng, &segs[1], d, "warm", warmup).await;
    let (handed, _) = convert(&eng, &segs[1], d, "handed", SeamStart::Resume(end)).await;
    let (cold, _) = convert(&eng, &segs[1], d, "cold", SeamStart::Fresh).await;
    assert_eq!(
        (
            single.len(),
            first.len(),
            warm.len(),
            handed.len(),
            cold.len()
        ),
        (60, 30, 30, 30, 30)
    );
    // The first segment is the single pass's start (its last frames are not blended with a
    // window after them, so they may differ a little).
    for f in 0..30 {
        let diff = mad(&single[f], &first[f]);
        assert!(diff < 0.02, "frame {f}: {diff:.4} from the single pass");
    }
    let seam_frames = 0..8;
    let worst = |seg: &[Vec<f32>]| -> f32 {
        seam_frames
            .clone()
            .map(|f| mad(&single[30 + f], &seg[f]))
            .fold(0.0, f32::max)
    };
    let (w, hd, c) = (worst(&warm), worst(&handed), worst(&cold));
    assert!(w < 0.02, "warm-up: {w:.4} from the single pass at the seam");
    assert!(
        hd < 0.01,
        "handed state: {hd:.4} from the single pass at the seam"
    );
    // Without either, the seam is visibly off: the test can tell.
    assert!(
        c > 2.5 * w.max(hd) && c > 0.02,
        "cold start only {c:.4} off ({w:.4}, {hd:.4})"
    );
}

#[tokio::test]
async fn clips_shorter_than_a_window_convert_and_an_empty_one_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eng = temporal_engine("temporal-fixed.onnx", None);
    for frames in [1u32, 5] {
        let src = d.join(format!("short{frames}.mkv"));
        let n = frames.to_string();
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=128x72:rate=25",
            "-frames:v",
            &n,
            "-pix_fmt",
            "yuv420p",
            src.to_str().unwrap(),
        ]);
        let (maps, _) = convert(&eng, &src, d, &format!("short{frames}"), SeamStart::Fresh).await;
        assert_eq!(maps.len(), frames as usize);
    }
    assert_eq!(eng.model().runs(), 2, "one padded window each");
    // Every packet there, no frame decodable: bad input, not a crash in the windows.
    let ok = d.join("ok.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "20",
        "-c:v",
        "libx264",
        ok.to_str().unwrap(),
    ]);
    let input = d.join("nokey.mkv");
    ffmpeg(&[
        "-i",
        ok.to_str().unwrap(),
        "-c",
        "copy",
        "-bsf:v",
        "noise=drop=key",
        input.to_str().unwrap(),
    ]);
    let err = eng
        .convert(&ConvertRequest::new(&input, d.join("out.mkv")), &|_| {})
        .await
        .unwrap_err();
    let bad = BadInput::find(&err).unwrap_or_else(|| panic!("not bad input: {err:#}"));
    assert!(bad.0.contains("no video frames"), "{bad}");
}
