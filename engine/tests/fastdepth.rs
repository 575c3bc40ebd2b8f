//! The CPU's fast depth path (`parallax_engine::fastdepth`): the guided upsampler, depth
//! carried by motion, keyframes at scene cuts and segment starts, and conversions through it
//! (frame counts, times, model runs, seams). Clips are made with ffmpeg, models by
//! `models/make_models.py` (the luma model: depth = brightness).

use std::path::{Path, PathBuf};

use parallax_core::model::{ConversionSettings, FastDepth};
use parallax_engine::colour::Matrix;
use parallax_engine::fastdepth::{FastDepthStage, FrameDepth, JointBilateral, KeyReason, Plan};
use parallax_engine::stereo::{DepthMap, Yuv420};
use parallax_engine::temporal::Normalizer;
use parallax_engine::{ConvertRequest, SeamStart};

mod util;
use util::*;

/// A pseudo-random value in 0..1 for (x, y, seed): texture without a period.
fn noise(x: usize, y: usize, seed: usize) -> f32 {
    let v =
        (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed.wrapping_mul(83_492_791))
            % 1009;
    v as f32 / 1009.0
}

/// Bilinear upsampling (pixel centres aligned), the baseline the guided upsampler must beat.
fn bilinear(src: &[f32], (sw, sh): (usize, usize), (dw, dh): (usize, usize)) -> Vec<f32> {
    let at = |i: usize, s: usize, d: usize| {
        let p = ((i as f32 + 0.5) * s as f32 / d as f32 - 0.5).clamp(0.0, (s - 1) as f32);
        let a = p.floor() as usize;
        (a, (a + 1).min(s - 1), p - a as f32)
    };
    let mut out = vec![0.0; dw * dh];
    for y in 0..dh {
        let (y0, y1, fy) = at(y, sh, dh);
        for x in 0..dw {
            let (x0, x1, fx) = at(x, sw, dw);
            let top = src[y0 * sw + x0] * (1.0 - fx) + src[y0 * sw + x1] * fx;
            let bottom = src[y1 * sw + x0] * (1.0 - fx) + src[y1 * sw + x1] * fx;
            out[y * dw + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

/// `src` (`w` x `h`) averaged over `f` x `f` blocks.
fn area_down(src: &[f32], (w, h): (usize, usize), f: usize) -> Vec<f32> {
    let (lw, lh) = (w / f, h / f);
    let mut out = vec![0.0; lw * lh];
    for y in 0..lh {
        for x in 0..lw {
            let mut s = 0.0;
            for dy in 0..f {
                for dx in 0..f {
                    s += src[(y * f + dy) * w + x * f + dx];
                }
            }
            out[y * lw + x] = s / (f * f) as f32;
        }
    }
    out
}

#[test]
fn the_guided_upsampler_keeps_a_depth_edge_on_the_luma_edge() {
    // A near disc on a far background, its outline off the coarse grid; luma has the same
    // outline (bright disc) plus texture on both sides.
    let (w, h, f) = (160usize, 96usize, 4usize);
    let inside = |x: usize, y: usize| {
        let (dx, dy) = (x as f32 - 81.3, y as f32 - 47.6);
        dx * dx + dy * dy < 29.7 * 29.7
    };
    let mut truth = vec![0.0; w * h];
    let mut luma = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let near = inside(x, y);
            truth[y * w + x] = if near { 0.9 } else { 0.2 };
            luma[y * w + x] = if near { 0.7 } else { 0.25 } + 0.05 * noise(x, y, 1);
        }
    }
    let (low, high) = ((w / f, h / f), (w, h));
    let depth_low = area_down(&truth, high, f);
    let luma_low = area_down(&luma, high, f);
    let mut guided = vec![0.0; w * h];
    JointBilateral::new(low, high).upsample(&depth_low, &luma_low, &luma, &mut guided);
    let plain = bilinear(&depth_low, low, high);
    let err = |v: &[f32]| {
        v.iter()
            .zip(&truth)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / v.len() as f32
    };
    let (eg, eb) = (err(&guided), err(&plain));
    assert!(eg < 0.6 * eb, "guided {eg} vs bilinear {eb}");
    // On each side of the outline, one pixel off it, the depth is that side's.
    for (x, want) in [
        (81 - 31, 0.2),
        (81 - 28, 0.9),
        (81 + 28, 0.9),
        (81 + 31, 0.2),
    ] {
        let got = guided[47 * w + x];
        assert!((got - want).abs() < 0.1, "x {x}: {got}, want {want}");
    }
}

/// A `w` x `h` frame: dark textured background, a bright textured square of side `s` at
/// (sx, sy) (its texture moves with it), and the whole picture's brightness raised by `lift`.
fn frame(w: usize, h: usize, (sx, sy): (usize, usize), s: usize, lift: f32) -> Yuv420 {
    let mut f = Yuv420::new(w, h);
    let (y, u, v) = f.planes_mut();
    for py in 0..h {
        for px in 0..w {
            let inside = (sx..sx + s).contains(&px) && (sy..sy + s).contains(&py);
            let l = if inside {
                180.0 + 50.0 * noise(px - sx, py - sy, 2)
            } else {
                40.0 + 50.0 * noise(px, py, 3)
            };
            y[py * w + px] = (l + lift).clamp(16.0, 235.0) as u8;
        }
    }
    u.fill(128);
    v.fill(128);
    f
}

/// The fast path over `frames` with the luma model; each frame's kind and depth map.
fn run_stage(plan: Plan, frames: &[(Yuv420, bool)]) -> (Vec<FrameDepth>, Vec<DepthMap>, u64) {
    let engine = engine("luma.onnx", 1);
    let model = engine.model();
    let (w, h) = (frames[0].0.width, frames[0].0.height);
    let depth = model.input_size(w, h, 518);
    let short = (depth.0.min(depth.1) as f32 * plan.scale) as u32;
    let low = model.input_size(w, h, short);
    let mut stage = FastDepthStage::with_plan(plan, model, (w, h), depth, low, Matrix::BT601);
    let mut norm = Normalizer::new(0.0);
    let runs = model.runs();
    let (mut kinds, mut maps) = (Vec::new(), Vec::new());
    for (f, warmup) in frames {
        let mut dm = DepthMap::new(0, 0);
        let out = (!warmup).then_some(&mut dm);
        kinds.push(stage.frame(model, f, *warmup, &mut norm, out).unwrap());
        if !warmup {
            assert_eq!((dm.width, dm.height), depth, "the depth maps' size");
            maps.push(dm);
        }
    }
    assert_eq!(
        model.runs() - runs,
        stage.keyframes(),
        "one run per keyframe"
    );
    (kinds, maps, stage.keyframes())
}

#[test]
fn depth_carried_by_motion_follows_a_moving_square() {
    let (w, h, s) = (256, 144, 48);
    let plan = Plan {
        keyframe_interval: 30,
        scale: 0.5,
    };
    let frames: Vec<_> = (0..4)
        .map(|i| (frame(w, h, (60 + 10 * i, 40 + 6 * i), s, 0.0), false))
        .collect();
    let (kinds, maps, keys) = run_stage(plan, &frames);
    assert_eq!(kinds[0], FrameDepth::Keyframe(KeyReason::Start));
    assert!(
        kinds[1..].iter().all(|k| *k == FrameDepth::Propagated),
        "{kinds:?}"
    );
    assert_eq!(keys, 1);
    // Depth (normalised, 1 = near = bright here) at a frame point, read from the map.
    let at = |dm: &DepthMap, x: usize, y: usize| {
        dm.data[(y * dm.height / h) * dm.width + x * dm.width / w]
    };
    let last = &maps[3];
    // Inside the square where it is now (90..138, 58..106), well away from where it was
    // at the keyframe (60..108, 40..88): near.
    for (x, y) in [(128, 98), (114, 82), (100, 100)] {
        assert!(at(last, x, y) > 0.8, "({x},{y}): {}", at(last, x, y));
    }
    // Where the square was and is no more: far.
    for (x, y) in [(66, 46), (75, 50), (64, 80)] {
        assert!(at(last, x, y) < 0.2, "({x},{y}): {}", at(last, x, y));
    }
}

#[test]
fn scene_cuts_and_the_interval_force_keyframes() {
    let (w, h) = (192, 108);
    let plan = Plan {
        keyframe_interval: 4,
        scale: 0.5,
    };
    // Still frames, a cut (a much brighter picture) at 6, still again.
    let frames: Vec<_> = (0..12)
        .map(|i| {
            (
                frame(w, h, (50, 30), 40, if i >= 6 { 120.0 } else { 0.0 }),
                false,
            )
        })
        .collect();
    let (kinds, _, keys) = run_stage(plan, &frames);
    use FrameDepth::{Keyframe as K, Propagated as P};
    let want = [
        K(KeyReason::Start),
        P,
        P,
        P,
        K(KeyReason::Interval),
        P,
        K(KeyReason::SceneCut),
        P,
        P,
        P,
        K(KeyReason::Interval),
        P,
    ];
    assert_eq!(kinds, want);
    assert_eq!(keys, 4);
}

#[test]
fn the_first_frame_after_warm_up_frames_is_a_keyframe() {
    let (w, h) = (192, 108);
    let plan = Plan {
        keyframe_interval: 8,
        scale: 0.5,
    };
    let frames: Vec<_> = (0..5)
        .map(|i| (frame(w, h, (50 + 2 * i, 30), 40, 0.0), i < 2))
        .collect();
    let (kinds, maps, _) = run_stage(plan, &frames);
    assert_eq!(kinds[0], FrameDepth::Keyframe(KeyReason::Start));
    assert_eq!(kinds[1], FrameDepth::Propagated);
    assert_eq!(kinds[2], FrameDepth::Keyframe(KeyReason::Start));
    assert_eq!(maps.len(), 3, "maps for the main frames only");
}

/// A clip whose brightness drifts slowly (so the luma model's depth range moves and the
/// normaliser's state matters) while things move in it; lossless, a keyframe every 8.
fn drifting_clip(dir: &Path, frames: u32) -> PathBuf {
    lossless_clip(
        &dir.join("drift.mkv"),
        "testsrc2=size=192x108:rate=25,eq=brightness='0.05*sin(2*PI*t/2)':eval=frame",
        frames,
        8,
    )
}

fn settings(fast: FastDepth, interval: u8) -> ConversionSettings {
    ConversionSettings {
        fast_depth: fast,
        keyframe_interval: interval,
        ..ConversionSettings::default()
    }
}

/// Converts `input` (full SBS) with `settings` from `seam`, storing its depth; the report's
/// frames, the model runs, the depth maps and the normalisation's end state.
async fn convert(
    engine: &parallax_engine::Engine,
    input: &Path,
    name: &str,
    settings: ConversionSettings,
    seam: SeamStart,
) -> (u64, u64, Vec<Vec<u16>>, parallax_engine::NormState) {
    let dir = input.parent().unwrap();
    let out = dir.join(format!("{name}.mkv"));
    let depth = dir.join(format!("{name}-depth.mkv"));
    let mut req = ConvertRequest::new(input, &out);
    req.settings = settings;
    req.seam = seam;
    req.depth_out = Some(depth.clone());
    let end = EndState::on(&mut req);
    let runs = engine.model().runs();
    let rep = engine.convert(&req, &|_| {}).await.unwrap();
    let runs = engine.model().runs() - runs;
    let (a, b) = (packet_times(input), packet_times(&out));
    assert_eq!(a.len(), b.len(), "{name}: the input's frame count");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 0.0015,
            "{name} frame {i}: {x}s in, {y}s out"
        );
    }
    (rep.frames, runs, stored_depth(&depth), end.take())
}

#[tokio::test]
async fn a_fast_conversion_keeps_frames_and_times_and_runs_the_model_on_keyframes_only() {
    let dir = tempfile::tempdir().unwrap();
    let input = drifting_clip(dir.path(), 40);
    let eng = engine("luma.onnx", 1);
    // The default (auto, on the CPU) is the fast path.
    let (frames, runs, fast, _) = convert(
        &eng,
        &input,
        "auto",
        ConversionSettings::default(),
        SeamStart::Fresh,
    )
    .await;
    assert_eq!(frames, 40);
    assert_eq!(fast.len(), 40, "a depth map per frame");
    assert!(
        (5..=10).contains(&runs),
        "{runs} model runs for 40 frames at an interval of 8"
    );
    // Off: the model on every frame (batch 1), and close to the fast path's depth.
    let (frames, runs, every, _) = convert(
        &eng,
        &input,
        "off",
        settings(FastDepth::Off, 8),
        SeamStart::Fresh,
    )
    .await;
    assert_eq!((frames, runs), (40, 40));
    assert_eq!(fast[0].len(), every[0].len(), "the same depth size");
    let n: usize = fast.iter().map(Vec::len).sum();
    let err = fast
        .iter()
        .flatten()
        .zip(every.iter().flatten())
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs() / 65535.0)
        .sum::<f64>()
        / n as f64;
    assert!(err < 0.05, "mean depth difference {err}");
}

#[tokio::test]
async fn segments_start_with_a_keyframe_and_continue_the_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = drifting_clip(d, 32);
    let segs = split_at(&src, d, &[16], 32);
    let eng = engine("luma.onnx", 1);
    let on = settings(FastDepth::On, 8);
    // One pass: keyframes at 0, 8, 16 and 24 (the clip moves little), so the second
    // segment's first frame is a keyframe in it too.
    let (_, runs, single, _) = convert(&eng, &src, "single", on.clone(), SeamStart::Fresh).await;
    assert_eq!(runs, 4);
    let (_, _, _, state) = convert(&eng, &segs[0], "first", on.clone(), SeamStart::Fresh).await;
    // Handed the state: exactly the one pass's depth.
    let (_, runs, resumed, _) = convert(
        &eng,
        &segs[1],
        "resumed",
        on.clone(),
        SeamStart::Resume(state),
    )
    .await;
    assert_eq!(runs, 2);
    assert!(
        resumed == single[16..],
        "the resumed segment's depth is the single pass's"
    );
    // From nothing, the normalisation differs: the state is what carried over.
    let (_, _, fresh, _) = convert(&eng, &segs[1], "fresh", on, SeamStart::Fresh).await;
    assert!(fresh != single[16..]);
    // After 2 warm-up frames (one run), the segment's own first frame is a keyframe again:
    // at an interval of 6, keyframes at its frames 0, 6 and 12, 1 + 3 runs (were the
    // warm-up's keyframe carried on, at 4 and 10: 1 + 2).
    let warmup = SeamStart::Warmup {
        previous: segs[0].clone(),
        frames: 2,
    };
    let every6 = settings(FastDepth::On, 6);
    let (frames, runs, _, _) = convert(&eng, &segs[1], "warm", every6, warmup).await;
    assert_eq!((frames, runs), (16, 4));
}

#[test]
fn the_settings_default_to_auto_parse_old_json_and_refuse_out_of_range_values() {
    // A job stored before the fast path existed.
    let old: ConversionSettings =
        serde_json::from_str(r#"{"divergence": 3.0, "crf": 18}"#).unwrap();
    assert_eq!(old.fast_depth, FastDepth::Auto);
    assert_eq!((old.keyframe_interval, old.fast_depth_scale), (8, 0.5));
    let json: ConversionSettings =
        serde_json::from_str(r#"{"fast_depth": "off", "keyframe_interval": 4}"#).unwrap();
    assert_eq!(
        (json.fast_depth, json.keyframe_interval),
        (FastDepth::Off, 4)
    );
    assert!(old.validate().is_ok());
    for bad in [
        ConversionSettings {
            keyframe_interval: 0,
            ..ConversionSettings::default()
        },
        ConversionSettings {
            keyframe_interval: 61,
            ..ConversionSettings::default()
        },
        ConversionSettings {
            fast_depth_scale: 0.2,
            ..ConversionSettings::default()
        },
        ConversionSettings {
            fast_depth_scale: f32::NAN,
            ..ConversionSettings::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}
