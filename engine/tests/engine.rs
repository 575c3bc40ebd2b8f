//! The conversion engine end to end: model contract, geometry, layouts, hole filling, frame
//! counts and timestamps, seams between segments, bad input, previews and the `convert` CLI.
//! Clips are made here with ffmpeg (testsrc2) and models by `models/make_models.py`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use parallax_core::model::{ConversionSettings, FastDepth, StereoMode, SyntheticView};
use parallax_engine::stereo::{
    output_size, warp_row, DepthMap, StereoParams, StereoRenderer, Yuv420,
};
use parallax_engine::{BadInput, ConvertRequest, Engine, EngineConfig, SeamStart, StateSink};

mod util;
use util::*;

/// A testsrc2 clip.
fn clip(dir: &Path, name: &str, size: &str, rate: &str, frames: u32, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let src = format!("testsrc2=size={size}:rate={rate}");
    let n = frames.to_string();
    let mut args = vec!["-f", "lavfi", "-i", &src, "-frames:v", &n];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-pix_fmt", "yuv420p", path.to_str().unwrap()]);
    ffmpeg(&args);
    path
}

/// Every frame's luma plane.
fn luma_frames(path: &Path) -> Vec<Vec<u8>> {
    let (w, h) = dims(path);
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let frame = Yuv420::byte_len(w, h);
    assert_eq!(out.stdout.len() % frame, 0);
    out.stdout
        .chunks(frame)
        .map(|f| f[..w * h].to_vec())
        .collect()
}

fn request(input: &Path, output: &Path, mode: StereoMode) -> ConvertRequest {
    let mut r = ConvertRequest::new(input, output);
    r.mode = mode;
    r.settings = ConversionSettings {
        depth_resolution: Some(42),
        ..ConversionSettings::default()
    };
    r
}

// ---------------------------------------------------------------- the model contract

#[test]
fn contract_accepts_dynamic_fixed_and_4d_models() {
    let dynamic = engine("luma.onnx", 1);
    assert_eq!(dynamic.model().input_size(1280, 720, 518), (924, 518));
    assert_eq!(dynamic.model().input_size(720, 1280, 518), (518, 924));
    // Never larger than the frame itself.
    assert_eq!(dynamic.model().input_size(64, 48, 518), (70, 42));
    assert_eq!(dynamic.model().batch_size(4), 4);
    let fixed = engine("luma-fixed.onnx", 4);
    assert_eq!(fixed.model().input_size(1280, 720, 518), (126, 70));
    assert_eq!(fixed.model().batch_size(4), 1, "a fixed batch of 1 wins");
    engine("luma-4d.onnx", 2);
    let default = Engine::load(&EngineConfig::new(repo().join("models/default-depth.onnx")))
        .expect("the committed default model fits the contract");
    assert_eq!(default.model().info().input, "image");
    assert_eq!(default.model().info().output, "depth");
}

#[test]
fn an_fp16_model_runs_in_half_precision_and_gives_the_same_depth() {
    let full = engine("luma.onnx", 2);
    let half = engine("luma-fp16.onnx", 2);
    let info = half.model().info();
    assert!(info.half_input && info.half_output, "{info:?}");
    assert!(!full.model().info().half_input);
    // Two frames of 28x14, a ramp in each channel.
    let (n, w, h) = (2, 28, 14);
    let input: Vec<f32> = (0..n * 3 * w * h)
        .map(|i| ((i % 97) as f32 / 97.0 - 0.45) / 0.226)
        .collect();
    let mut a = Vec::new();
    let mut b = Vec::new();
    assert_eq!(full.model().run(&input, n, (w, h), &mut a).unwrap(), (w, h));
    assert_eq!(half.model().run(&input, n, (w, h), &mut b).unwrap(), (w, h));
    assert_eq!(a.len(), n * w * h);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    // Brightness 0..1 in half precision: 11 significant bits.
    assert!(worst < 2e-3, "fp16 depth differs by up to {worst}");
    assert!(a.iter().any(|v| *v > 0.1), "the depth is not all zero");
}

#[test]
fn contract_refuses_a_wrong_rank_or_channel_count_saying_what_is_wrong() {
    let err = Engine::load(&EngineConfig::new(model("bad-rank.onnx"))).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("does not fit the depth-model contract"),
        "{msg}"
    );
    assert!(msg.contains("rank 3"), "{msg}");
    assert!(msg.contains("[N,3,H,W]"), "{msg}");
    let err = Engine::load(&EngineConfig::new(model("bad-channels.onnx"))).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("1 channels") && msg.contains("3 (RGB)"),
        "{msg}"
    );
    let err = Engine::load(&EngineConfig::new(models().join("nope.onnx"))).unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
}

#[tokio::test]
async fn fixed_size_and_4d_models_convert_and_batches_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(
        dir.path(),
        "in.mkv",
        "96x64",
        "25",
        10,
        &["-c:v", "libx264", "-qp", "0"],
    );
    for m in ["luma-fixed.onnx", "luma-4d.onnx"] {
        let out = dir.path().join(format!("{m}.mkv"));
        let rep = engine(m, 3)
            .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
            .await
            .unwrap();
        assert_eq!(rep.frames, 10);
        assert_eq!(dims(&out), (192, 64));
    }
    // Batch 1 and batch 4 (with a short last batch) give the same depth, frame for frame.
    let mut outputs = Vec::new();
    for batch in [1, 4] {
        let out = dir.path().join(format!("depth-b{batch}.mkv"));
        let mut req = request(&input, &out, StereoMode::DepthMap);
        req.settings.crf = 0;
        engine("luma.onnx", batch)
            .convert(&req, &|_| {})
            .await
            .unwrap();
        outputs.push(luma_frames(&out));
    }
    assert_eq!(outputs[0].len(), 10);
    assert_eq!(outputs[0], outputs[1]);
}

// ---------------------------------------------------------------- geometry and holes

/// A random texture, blurred a little along rows so sub-pixel shifts are measurable.
fn texture(w: usize, h: usize, seed: u64) -> Yuv420 {
    let mut f = Yuv420::new(w, h);
    let mut s = seed;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    let (y, u, v) = f.planes_mut();
    let raw: Vec<u32> = (0..w * h).map(|_| 16 + rnd() % 220).collect();
    for r in 0..h {
        for x in 0..w {
            let i = |dx: isize| raw[r * w + (x as isize + dx).clamp(0, w as isize - 1) as usize];
            y[r * w + x] = ((i(-2) + 2 * i(-1) + 3 * i(0) + 2 * i(1) + i(2)) / 9) as u8;
        }
    }
    u.fill(100);
    v.fill(150);
    f
}

/// The shift `s` (sub-pixel) that best maps `r` onto `l`: `l[x] ≈ r[x - s]`.
fn measure_shift(l: &[u8], r: &[u8], margin: usize, max: i32) -> f64 {
    let w = l.len();
    let cost = |s: i32| -> f64 {
        (margin..w - margin)
            .map(|x| {
                let d = l[x] as f64 - r[(x as i32 - s) as usize] as f64;
                d * d
            })
            .sum()
    };
    let best = (-max..=max)
        .min_by(|a, b| cost(*a).total_cmp(&cost(*b)))
        .unwrap();
    let (cm, c0, cp) = (cost(best - 1), cost(best), cost(best + 1));
    let den = cm - 2.0 * c0 + cp;
    best as f64
        + if den > 0.0 {
            0.5 * (cm - cp) / den
        } else {
            0.0
        }
}

#[test]
fn planes_at_known_depths_are_shifted_by_the_configured_disparity_within_half_a_pixel() {
    let (w, h) = (320, 96);
    let src = texture(w, h, 7);
    // Three planes (bands of rows) at known normalised depths, on a half-resolution map so
    // the upsampling is exercised too.
    let planes = [0.1f32, 0.5, 0.95];
    let mut depth = DepthMap::new(w / 2, h / 2);
    for (i, z) in depth.data.iter_mut().enumerate() {
        *z = planes[(i / (w / 2)) / (h / 2 / 3)];
    }
    let mut checked = 0;
    for params in [
        StereoParams {
            divergence: 5.0,
            convergence: 0.4,
            ..StereoParams::default()
        },
        StereoParams {
            divergence: 2.0,
            convergence: 0.5,
            ..StereoParams::default()
        },
        StereoParams {
            divergence: 3.3,
            convergence: 0.0,
            ..StereoParams::default()
        },
    ] {
        let mut r = StereoRenderer::new(w, h, w / 2, h / 2);
        let (ow, oh) = output_size(StereoMode::FullSbs, w, h);
        let mut out = Yuv420::new(ow, oh);
        r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
        let (y, _, _) = out.planes();
        for (band, &z) in planes.iter().enumerate() {
            let want = params.disparity_px(z, w) as f64;
            // Rows well inside the band.
            let rows = band * h / 3 + 6..(band + 1) * h / 3 - 6;
            for row in rows {
                let line = &y[row * ow..(row + 1) * ow];
                let (left, right) = line.split_at(w);
                let got = measure_shift(left, right, 24, 20);
                assert!(
                    (got - want).abs() <= 0.5,
                    "{params:?} plane z={z} row {row}: measured {got:.3} px, configured {want:.3} px"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100);
}

#[test]
fn strong_depth_edges_leave_no_holes_in_any_layout() {
    let (w, h) = (128, 64);
    let mut src = Yuv420::<u8>::new(w, h);
    {
        let (y, u, v) = src.planes_mut();
        y.fill(200);
        u.fill(90);
        v.fill(160);
    }
    // 8x8 blocks at depth 0 or 1: edges everywhere, the largest allowed divergence.
    let mut depth = DepthMap::new(w, h);
    for (i, z) in depth.data.iter_mut().enumerate() {
        let (x, y) = (i % w, i / w);
        *z = if (x / 8 * 7 + y / 8 * 3) % 5 < 2 {
            1.0
        } else {
            0.0
        };
    }
    let params = StereoParams {
        divergence: 10.0,
        convergence: 0.5,
        ..StereoParams::default()
    };
    let mut r = StereoRenderer::new(w, h, w, h);
    for mode in [
        StereoMode::FullSbs,
        StereoMode::FullTb,
        StereoMode::HalfSbs,
        StereoMode::HalfTb,
    ] {
        let (ow, oh) = output_size(mode, w, h);
        let mut out = Yuv420 {
            width: ow,
            height: oh,
            data: vec![0; Yuv420::byte_len(ow, oh)],
        };
        r.render(&src, &depth, params, mode, &mut out);
        let (y, u, v) = out.planes();
        assert!(
            y.iter().all(|&p| p == 200),
            "{mode}: a luma hole or a wrong sample"
        );
        assert!(u.iter().all(|&p| p == 90), "{mode}: a chroma hole");
        assert!(v.iter().all(|&p| p == 160), "{mode}: a chroma hole");
    }
}

#[test]
fn a_hole_is_filled_from_the_background_and_no_wider_than_the_disparity_step() {
    // A textured far background with a near object; the uncovered strip must show
    // background colour and be exactly as wide as the disparity difference.
    let w = 200;
    let src: Vec<u8> = (0..w)
        .map(|x| {
            if (80..120).contains(&x) {
                250
            } else {
                20 + (x % 7) as u8
            }
        })
        .collect();
    for (sign, k) in [(0.5f32, 16.0f32), (-0.5, 16.0), (0.5, 6.0), (-0.5, 10.0)] {
        let disp: Vec<f32> = (0..w)
            .map(|x| if (80..120).contains(&x) { k } else { 0.0 })
            .collect();
        let mut out = vec![0u8; w];
        warp_row(&src, &disp, sign, &mut out);
        let object: Vec<usize> = (0..w).filter(|&x| out[x] == 250).collect();
        let shift = (sign * k).round() as i32;
        assert_eq!(object.len(), 40, "the object keeps its width");
        assert_eq!(object[0] as i32, 80 + shift);
        // Everything else is background-coloured (no object smear).
        assert!((0..w).filter(|x| !object.contains(x)).all(|x| out[x] < 30));
    }
}

// ---------------------------------------------------------------- layouts, counts, time

#[tokio::test]
async fn every_layout_has_the_right_size_and_the_input_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "in.mp4", "64x48", "25", 8, &["-c:v", "libx264"]);
    let eng = engine("luma.onnx", 2);
    for mode in StereoMode::ALL {
        let out = dir.path().join(format!("out-{mode}.mkv"));
        let rep = eng
            .convert(&request(&input, &out, mode), &|_| {})
            .await
            .unwrap();
        assert_eq!(rep.frames, 8, "{mode}");
        assert_eq!(frame_count(&out), 8, "{mode}");
        let want = match mode {
            StereoMode::FullSbs | StereoMode::FullCross | StereoMode::Rgbd => (128, 48),
            StereoMode::FullTb => (64, 96),
            // Each eye a square 180 / 120 times the source's width.
            StereoMode::Vr180 => (192, 96),
            _ => (64, 48),
        };
        assert_eq!(dims(&out), want, "{mode}");
    }
}

#[tokio::test]
async fn frame_count_and_timestamps_equal_the_input() {
    let dir = tempfile::tempdir().unwrap();
    // NTSC rate, odd size (cropped to even), x265 to check the other encoder too.
    let input = clip(
        dir.path(),
        "in.mp4",
        "99x57",
        "30000/1001",
        45,
        &["-c:v", "libx264"],
    );
    let out = dir.path().join("out.mkv");
    let mut req = request(&input, &out, StereoMode::HalfSbs);
    req.settings.encoder = "libx265".to_owned();
    req.expected_frames = Some(45);
    let seen = std::sync::Mutex::new(Vec::new());
    let rep = engine("luma.onnx", 1)
        .convert(&req, &|n| seen.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(rep.frames, 45);
    assert_eq!(
        *seen.lock().unwrap(),
        (1..=45).collect::<Vec<u64>>(),
        "progress per frame"
    );
    assert_eq!(dims(&out), (98, 56));
    let (a, b) = (packet_times(&input), packet_times(&out));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 0.0015,
            "frame {i}: input at {x}s, output at {y}s"
        );
    }
    let rate = ffprobe(
        &["-show_entries", "stream=r_frame_rate", "-of", "csv=p=0"],
        &out,
    );
    assert_eq!(rate.trim(), "30000/1001");
}

// ---------------------------------------------------------------- seams

/// Mean absolute change of the depth (hence disparity) between consecutive frames.
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
    let src = d.join("src.mkv");
    ffmpeg(&[
        "-f", "lavfi", "-i",
        "testsrc2=size=128x72:rate=25,eq=brightness='0.3*sin(2*PI*t/5)':contrast='1+0.4*sin(2*PI*t/3)':eval=frame",
        "-frames:v", "90", "-c:v", "libx264", "-qp", "0", "-g", "30", "-keyint_min", "30",
        "-sc_threshold", "0", "-pix_fmt", "yuv420p", src.to_str().unwrap(),
    ]);
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
            let end = Arc::new(Mutex::new(None));
            req.seam_end = Some(StateSink::new({
                let end = end.clone();
                move |s| *end.lock().unwrap() = Some(s)
            }));
            eng.convert(&req, &|_| {}).await.unwrap();
            let end = end
                .lock()
                .unwrap()
                .take()
                .expect("the end state was handed over");
            (luma_frames(&out), end)
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

// ---------------------------------------------------------------- bad input, previews, CLI

#[tokio::test]
async fn unusable_input_is_reported_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video").unwrap();
    let eng = engine("luma.onnx", 1);
    let err = eng
        .convert(
            &request(&text, &dir.path().join("o.mkv"), StereoMode::FullSbs),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");

    let input = clip(dir.path(), "in.mp4", "64x48", "25", 5, &["-c:v", "libx264"]);
    let out = dir.path().join("o.mkv");
    let mut req = request(&input, &out, StereoMode::FullSbs);
    req.expected_frames = Some(6);
    let err = eng.convert(&req, &|_| {}).await.unwrap_err();
    let bad = BadInput::find(&err).expect("a frame-count mismatch is bad input");
    assert!(bad.0.contains("5 frames, expected 6"), "{bad}");
    assert!(!out.exists(), "no partial output is left behind");
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".partial")));

    let mut req = request(&input, &out, StereoMode::FullSbs);
    req.settings.divergence = 50.0;
    let err = eng.convert(&req, &|_| {}).await.unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
}

#[tokio::test]
async fn previews_of_the_first_frame_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "in.mp4", "64x48", "25", 4, &["-c:v", "libx264"]);
    let mut req = request(&input, &dir.path().join("o.mkv"), StereoMode::Anaglyph);
    req.preview_dir = Some(dir.path().join("previews"));
    let rep = engine("luma.onnx", 1).convert(&req, &|_| {}).await.unwrap();
    let sbs = rep.preview_sbs.expect("sbs preview");
    let depth = rep.preview_depth.expect("depth preview");
    assert_eq!(sbs.file_name().unwrap(), "preview-sbs.jpg");
    assert_eq!(depth.file_name().unwrap(), "preview-depth.png");
    // Side by side even though the video is an anaglyph.
    assert_eq!(dims(&sbs), (128, 48));
    assert_eq!(dims(&depth), (64, 48));
}

/// One stream entry of `path`'s first video stream, as ffprobe prints it.
fn stream_entry(path: &Path, entry: &str) -> String {
    ffprobe(
        &[
            "-show_entries",
            &format!("stream={entry}"),
            "-of",
            "csv=p=0",
        ],
        path,
    )
    .trim()
    .to_owned()
}

/// A 10-bit HEVC clip of `frames` frames of the lavfi `source`, tagged with `transfer` and
/// BT.2020 (and HDR10 mastering metadata for PQ); `x265` adds parameters.
fn x265_clip(
    dir: &Path,
    name: &str,
    transfer: &str,
    source: &str,
    frames: u32,
    x265: &str,
) -> PathBuf {
    let path = dir.join(name);
    let mut params =
        format!("log-level=error{x265}:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc");
    if transfer == "smpte2084" {
        params.push_str(
            ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
        );
    }
    let n = frames.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
        &n,
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        &params,
        "-color_primaries",
        "bt2020",
        "-color_trc",
        transfer,
        "-colorspace",
        "bt2020nc",
        path.to_str().unwrap(),
    ]);
    path
}

/// A 10-frame HDR test pattern (see [`x265_clip`]).
fn hdr_clip(dir: &Path, name: &str, transfer: &str) -> PathBuf {
    x265_clip(dir, name, transfer, "testsrc2=size=128x72:rate=25", 10, "")
}

/// HDR10 (PQ) and HLG sources come out as 8-bit BT.709 SDR, tone-mapped, never 8-bit with
/// PQ/HLG tags; the report says so.
#[tokio::test]
async fn hdr_sources_are_tone_mapped_to_bt709_sdr_for_8_bit_output() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    for (transfer, what) in [("smpte2084", "HDR10"), ("arib-std-b67", "HLG")] {
        let input = hdr_clip(dir.path(), &format!("{what}.mp4"), transfer);
        assert_eq!(
            stream_entry(&input, "pix_fmt,color_transfer"),
            format!("yuv420p10le,{transfer}")
        );
        let out = dir.path().join(format!("{what}-out.mp4"));
        let report = eng
            .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
            .await
            .unwrap();
        assert_eq!(
            stream_entry(
                &out,
                "pix_fmt,color_range,color_space,color_transfer,color_primaries"
            ),
            "yuv420p,tv,bt709,bt709,bt709",
            "{what}"
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains(what) && n.contains("tone-mapped")),
            "{what}: {:?}",
            report.notes
        );
        // A picture, not a flat or clipped field.
        let luma = &luma_frames(&out)[0];
        let mean = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / luma.len() as f64;
        let spread = luma.iter().max().unwrap() - luma.iter().min().unwrap();
        assert!(
            (30.0..220.0).contains(&mean) && spread > 100,
            "{what}: mean {mean}, spread {spread}"
        );
    }
}

/// A full-range (JPEG levels) source is converted to limited range and tagged so: its white
/// (255) becomes limited range's white (235), not clipped or left at full-range levels.
#[tokio::test]
async fn a_full_range_source_is_converted_to_limited_range() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("full.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=white:size=64x48:rate=25",
        "-frames:v",
        "5",
        "-vf",
        "scale=out_range=pc",
        "-pix_fmt",
        "yuvj420p",
        "-color_range",
        "pc",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        input.to_str().unwrap(),
    ]);
    assert_eq!(stream_entry(&input, "color_range"), "pc");
    let out = dir.path().join("out.mkv");
    let eng = engine("luma.onnx", 1);
    let report = eng
        .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
        .await
        .unwrap();
    assert_eq!(stream_entry(&out, "color_range"), "tv");
    assert!(
        report.notes.iter().any(|n| n.contains("full-range")),
        "{:?}",
        report.notes
    );
    let luma = &luma_frames(&out)[0];
    let mean = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / luma.len() as f64;
    assert!((mean - 235.0).abs() < 2.5, "white at {mean}");
}

/// Mean absolute difference between each luma row and the average of its neighbours: the
/// comb of interlaced motion.
fn combing(luma: &[u8], w: usize) -> f64 {
    let rows: Vec<&[u8]> = luma.chunks(w).collect();
    let mut sum = 0.0;
    let mut n = 0.0;
    for r in rows.windows(3) {
        for ((&a, &b), &c) in r[0].iter().zip(r[1]).zip(r[2]) {
            let mid = (f64::from(a) + f64::from(c)) / 2.0;
            sum += (f64::from(b) - mid).abs();
            n += 1.0;
        }
    }
    sum / n
}

/// An interlaced source is detected and deinterlaced (bwdif) before depth, one frame per
/// frame at the source's times; the setting turns it off.
#[tokio::test]
async fn an_interlaced_source_is_deinterlaced_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("interlaced.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:rate=50",
        "-frames:v",
        "24",
        "-vf",
        "scroll=h=0.03,tinterlace=mode=interleave_top,fieldorder=tff,format=yuv420p",
        "-c:v",
        "libx264",
        "-qp",
        "4",
        "-flags",
        "+ildct+ilme",
        "-x264-params",
        "tff=1",
        input.to_str().unwrap(),
    ]);
    assert_eq!(stream_entry(&input, "field_order"), "tt");
    let eng = engine("luma.onnx", 1);
    let mut results = Vec::new();
    for deinterlace in [true, false] {
        let out = dir.path().join(format!("out-{deinterlace}.mkv"));
        let mut req = request(&input, &out, StereoMode::FullSbs);
        req.settings.deinterlace = deinterlace;
        let report = eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(frame_count(&out), frame_count(&input));
        let said = report
            .notes
            .iter()
            .any(|n| n.contains("deinterlaced (bwdif"));
        assert_eq!(said, deinterlace, "{:?}", report.notes);
        let (w, _) = dims(&out);
        let frames = luma_frames(&out);
        let comb = frames.iter().map(|f| combing(f, w)).sum::<f64>() / frames.len() as f64;
        results.push(comb);
    }
    assert!(
        results[0] < 0.7 * results[1],
        "combing with bwdif {} vs without {}",
        results[0],
        results[1]
    );
}

/// 4:2:2 and 4:4:4 sources are written as 4:2:0 and the report says so; a transfer the
/// engine cannot map is bad input with its own code, and nothing is written.
#[tokio::test]
async fn chroma_is_reported_and_an_unmappable_transfer_is_refused_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    for (pix_fmt, says) in [("yuv422p", "4:2:2"), ("yuv444p", "4:4:4")] {
        let input = dir.path().join(format!("{pix_fmt}.mkv"));
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=25",
            "-frames:v",
            "5",
            "-pix_fmt",
            pix_fmt,
            "-c:v",
            "libx264",
            input.to_str().unwrap(),
        ]);
        let out = dir.path().join(format!("{pix_fmt}-out.mkv"));
        let report = eng
            .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
            .await
            .unwrap();
        assert_eq!(stream_entry(&out, "pix_fmt"), "yuv420p");
        assert!(
            report.notes.iter().any(|n| n.contains(says)),
            "{:?}",
            report.notes
        );
    }
    let log = dir.path().join("log.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "5",
        "-pix_fmt",
        "yuv420p",
        "-color_trc",
        "log100",
        "-c:v",
        "libx264",
        log.to_str().unwrap(),
    ]);
    let out = dir.path().join("log-out.mkv");
    let err = eng
        .convert(&request(&log, &out, StereoMode::FullSbs), &|_| {})
        .await
        .unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
    assert_eq!(BadInput::code(&err, "bad-segment"), "unsupported-transfer");
    assert!(!out.exists());
}

/// Every frame's luma plane of a 10-bit file, as 10-bit levels.
fn luma10_frames(path: &Path) -> Vec<Vec<u16>> {
    let (w, h) = dims(path);
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray10le", "pipe:1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let frame = 2 * w * h;
    assert_eq!(out.stdout.len() % frame, 0);
    out.stdout
        .chunks(frame)
        .map(|f| {
            f.chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect()
        })
        .collect()
}

/// The first frame's side data (mastering display, content light level) as ffprobe prints
/// it, one `key=value` per line.
fn first_frame_side_data(path: &Path) -> String {
    ffprobe(
        &[
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame_side_data_list",
            "-of",
            "flat",
        ],
        path,
    )
}

/// A 10-bit HEVC clip (lossless) whose luma is a fine horizontal ramp (about 200 levels over
/// 128 pixels, 50 at 8 bits), tagged with `transfer` and BT.2020, with HDR10 metadata for PQ.
fn ramp_clip(dir: &Path, name: &str, transfer: &str) -> PathBuf {
    x265_clip(
        dir,
        name,
        transfer,
        "nullsrc=s=128x72:r=25,format=yuv420p10le,geq=lum='300+X*1.6':cb=512:cr=512",
        6,
        ":lossless=1",
    )
}

/// Distinct luma levels along the middle row of the left view.
fn distinct_levels(frame: &[u16], w: usize, h: usize, view_w: usize) -> usize {
    let row = &frame[(h / 2) * w..][..view_w];
    let mut levels: Vec<u16> = row.to_vec();
    levels.sort_unstable();
    levels.dedup();
    levels.len()
}

/// With an HEVC encoder, HDR10 (PQ) and HLG sources stay 10-bit HDR: main10, their BT.2020
/// and transfer tags, PQ's mastering display and content light level read back from the
/// output, and a ramp finer than 8 bits can hold survives decode, depth, warp and encode.
#[tokio::test]
async fn hdr_sources_stay_10_bit_hdr_with_an_hevc_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    for (transfer, what) in [("smpte2084", "HDR10"), ("arib-std-b67", "HLG")] {
        let input = ramp_clip(dir.path(), &format!("{what}.mkv"), transfer);
        let out = dir.path().join(format!("{what}-out.mkv"));
        let mut req = request(&input, &out, StereoMode::FullSbs);
        req.settings.encoder = "libx265".to_owned();
        req.settings.crf = 4;
        req.settings.divergence = 0.0;
        let report = eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(
            stream_entry(
                &out,
                "profile,pix_fmt,color_range,color_space,color_transfer,color_primaries"
            ),
            format!("Main 10,yuv420p10le,tv,bt2020nc,{transfer},bt2020"),
            "{what}"
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains(what) && n.contains("kept as 10-bit HDR")),
            "{what}: {:?}",
            report.notes
        );
        let side = first_frame_side_data(&out);
        if transfer == "smpte2084" {
            for want in [
                "red_x=\"34000/50000\"",
                "green_y=\"34500/50000\"",
                "white_point_x=\"15635/50000\"",
                "max_luminance=\"10000000/10000\"",
                "min_luminance=\"1/10000\"",
                "max_content=1000",
                "max_average=400",
            ] {
                assert!(side.contains(want), "{what}: {want} missing in\n{side}");
            }
        }
        // At zero divergence the left view is the source: its ramp keeps 10-bit steps.
        let (w, h) = dims(&out);
        let src = &luma10_frames(&input)[0];
        let got = &luma10_frames(&out)[0];
        let (src_levels, got_levels) = (
            distinct_levels(src, w / 2, h, w / 2),
            distinct_levels(got, w, h, w / 2),
        );
        assert!(
            got_levels * 10 >= src_levels * 8 && got_levels > 100,
            "{what}: {got_levels} levels out of {src_levels} (8 bits would leave about 50)"
        );
        let row = (h / 2) * w;
        let err = (0..w / 2)
            .map(|x| (i32::from(got[row + x]) - i32::from(src[(h / 2) * (w / 2) + x])).abs())
            .max()
            .unwrap();
        assert!(
            err <= 4,
            "{what}: the left view is {err} levels off the source"
        );
    }
}

/// Asked to tone-map, an HDR source becomes BT.709 SDR at 10 bits; a 10-bit SDR source stays
/// 10-bit with HEVC unless 8 bits are asked for; 10 bits with H.264 is refused.
#[tokio::test]
async fn tone_mapping_and_bit_depth_follow_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    let pq = ramp_clip(dir.path(), "pq.mkv", "smpte2084");
    let out = dir.path().join("pq-sdr.mkv");
    let mut req = request(&pq, &out, StereoMode::HalfSbs);
    req.settings.encoder = "libx265".to_owned();
    req.settings.tone_map = true;
    let report = eng.convert(&req, &|_| {}).await.unwrap();
    assert_eq!(
        stream_entry(&out, "pix_fmt,color_transfer,color_primaries"),
        "yuv420p10le,bt709,bt709"
    );
    assert!(
        first_frame_side_data(&out).trim().is_empty()
            || !first_frame_side_data(&out).contains("Mastering"),
        "an SDR output carries no mastering display"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("as the job asked")),
        "{:?}",
        report.notes
    );

    let sdr10 = dir.path().join("sdr10.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=25",
        "-frames:v",
        "4",
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        sdr10.to_str().unwrap(),
    ]);
    for (bits, want) in [(None, "yuv420p10le"), (Some(8), "yuv420p")] {
        let out = dir.path().join(format!("sdr10-{bits:?}.mkv"));
        let mut req = request(&sdr10, &out, StereoMode::Anaglyph);
        req.settings.encoder = "libx265".to_owned();
        req.settings.bit_depth = bits;
        eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(stream_entry(&out, "pix_fmt"), want, "{bits:?}");
    }

    let mut req = request(&sdr10, &dir.path().join("never.mkv"), StereoMode::FullSbs);
    req.settings.bit_depth = Some(10);
    let err = eng.convert(&req, &|_| {}).await.unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
    assert!(format!("{err:#}").contains("HEVC"), "{err:#}");
}
// ---------------------------------------------------------------- layout metadata

/// The Stereo 3D side data of the first video stream as ffprobe prints it (`type=side by
/// side`, `inverted=0`, ...), or "" when there is none.
fn stream_stereo_side_data(path: &Path) -> String {
    let text = ffprobe(&["-show_streams"], path);
    text.split("[SIDE_DATA]")
        .skip(1)
        .filter_map(|sd| sd.split("[/SIDE_DATA]").next())
        .find(|sd| sd.contains("side_data_type=Stereo 3D"))
        .unwrap_or("")
        .to_owned()
}

/// Every stereo layout says what it is inside the file, MKV (StereoMode) and MP4 (`st3d`)
/// alike, as ffprobe's Stereo 3D side data shows; half layouts with libx264 also carry the
/// H.264 frame-packing SEI (Stereo 3D side data on the decoded frames), full ones do not,
/// nor does HEVC; outputs that are not a stereo pair declare nothing.
#[tokio::test]
async fn every_stereo_layout_is_declared_inside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "in.mp4", "64x48", "25", 3, &["-c:v", "libx264"]);
    let eng = engine("luma.onnx", 1);
    for mode in StereoMode::ALL {
        // (type, right view first, frame-packing SEI with libx264)
        let want = match mode {
            StereoMode::FullSbs | StereoMode::Vr180 => Some(("side by side", false, false)),
            StereoMode::HalfSbs => Some(("side by side", false, true)),
            StereoMode::FullTb => Some(("top and bottom", false, false)),
            StereoMode::HalfTb => Some(("top and bottom", false, true)),
            StereoMode::FullCross | StereoMode::HalfCross => Some(("side by side", true, false)),
            StereoMode::Anaglyph | StereoMode::DepthMap | StereoMode::Rgbd => None,
        };
        for ext in ["mkv", "mp4"] {
            let out = dir.path().join(format!("{mode}.{ext}"));
            eng.convert(&request(&input, &out, mode), &|_| {})
                .await
                .unwrap_or_else(|e| panic!("{mode} {ext}: {e:#}"));
            let sd = stream_stereo_side_data(&out);
            match want {
                // MP4's `st3d` has no eye order: a right-first layout is declared in MKV only.
                Some((_, true, _)) if ext == "mp4" => assert_eq!(sd, "", "{mode} {ext}"),
                Some((kind, inverted, _)) => {
                    assert!(
                        sd.contains(&format!("type={kind}\n")),
                        "{mode} {ext}: {sd:?}"
                    );
                    let inv = format!("inverted={}", u8::from(inverted));
                    assert!(sd.contains(&inv), "{mode} {ext}: {sd:?}");
                }
                None => assert_eq!(sd, "", "{mode} {ext}"),
            }
            let sei = first_frame_side_data(&out).contains("Stereo 3D");
            let want_sei = want.is_some_and(|(_, _, sei)| sei);
            assert_eq!(sei, want_sei, "{mode} {ext}: frame-packing SEI");
        }
    }

    // x265 writes no frame-packing SEI: the container's declaration stands alone.
    let out = dir.path().join("half_tb-hevc.mkv");
    let mut req = request(&input, &out, StereoMode::HalfTb);
    req.settings.encoder = "libx265".to_owned();
    eng.convert(&req, &|_| {}).await.unwrap();
    assert!(stream_stereo_side_data(&out).contains("type=top and bottom\n"));
    assert!(!first_frame_side_data(&out).contains("Stereo 3D"));
}

/// The knobs and layouts of the renderer: cross-eyed layouts are the side-by-side ones with
/// the views swapped; RGB-D is the source beside its depth; a synthetic view leaves one eye
/// the untouched source and moves the other by the whole disparity; the IPD offset adds its
/// parallax to every pixel; the screen border brings parallax to zero at the frame's edges.
#[test]
fn knobs_and_layouts_do_what_they_say() {
    let (w, h) = (320, 96);
    let src = texture(w, h, 9);
    // Two planes: the top half far (0.2), the bottom half near (0.9).
    let mut depth = DepthMap::new(w / 2, h / 2);
    for (i, z) in depth.data.iter_mut().enumerate() {
        *z = if i / (w / 2) < h / 4 { 0.2 } else { 0.9 };
    }
    let base = StereoParams {
        divergence: 4.0,
        convergence: 0.5,
        ..StereoParams::default()
    };
    let render = |params: StereoParams, mode: StereoMode| {
        let (ow, oh) = output_size(mode, w, h);
        let mut out = Yuv420::new(ow, oh);
        StereoRenderer::new(w, h, w / 2, h / 2).render(&src, &depth, params, mode, &mut out);
        out
    };
    let halves = |f: &Yuv420, row: usize| {
        let ow = f.width;
        let line = &f.planes().0[row * ow..(row + 1) * ow];
        (line[..ow / 2].to_vec(), line[ow / 2..].to_vec())
    };

    // Cross-eyed = side by side with the halves swapped, full and half.
    for (sbs, cross) in [
        (StereoMode::FullSbs, StereoMode::FullCross),
        (StereoMode::HalfSbs, StereoMode::HalfCross),
    ] {
        let (a, b) = (render(base, sbs), render(base, cross));
        for row in [5, 70] {
            let (l, r) = halves(&a, row);
            let (cl, cr) = halves(&b, row);
            assert!(l == cr && r == cl, "{cross} row {row}");
        }
    }

    // RGB-D: the source, then its depth as grey (16 + 219 z).
    let rgbd = render(base, StereoMode::Rgbd);
    for row in [5, 70] {
        let (colour, z) = halves(&rgbd, row);
        assert_eq!(colour, src.planes().0[row * w..(row + 1) * w]);
        let want: f32 = if row < h / 2 {
            16.0 + 219.0 * 0.2
        } else {
            16.0 + 219.0 * 0.9
        };
        assert!(
            z[w / 2].abs_diff(want.round() as u8) <= 1,
            "row {row}: {}",
            z[w / 2]
        );
    }

    // A synthetic right view: the left eye is the source, the right carries all the shift.
    let synthetic = StereoParams {
        synthetic: SyntheticView::Left,
        ..base
    };
    let out = render(synthetic, StereoMode::FullSbs);
    for row in [10, 80] {
        let (l, r) = halves(&out, row);
        assert_eq!(l, src.planes().0[row * w..(row + 1) * w], "row {row}");
        let z = if row < h / 2 { 0.2 } else { 0.9 };
        let want = f64::from(base.disparity_px(z, w));
        let got = measure_shift(&l, &r, 24, 20);
        assert!((got - want).abs() <= 0.5, "row {row}: {got} vs {want}");
    }

    // The IPD offset: every pixel 2 % of the width further behind the screen.
    let offset = StereoParams {
        ipd_offset: 2.0,
        ..base
    };
    let (plain, moved) = (
        render(base, StereoMode::FullSbs),
        render(offset, StereoMode::FullSbs),
    );
    for row in [10, 80] {
        let (l, r) = halves(&plain, row);
        let (ol, or) = halves(&moved, row);
        let delta = measure_shift(&ol, &or, 24, 20) - measure_shift(&l, &r, 24, 20);
        assert!((delta + 0.02 * w as f64).abs() <= 0.5, "row {row}: {delta}");
    }

    // The screen border: the near plane's parallax fades to zero at both edges.
    let border = StereoParams {
        preserve_border: true,
        ..base
    };
    let out = render(border, StereoMode::FullSbs);
    let (l, r) = halves(&out, 80);
    assert_eq!(l[0], r[0], "the left edge sits on the screen");
    assert_eq!(l[w - 1], r[w - 1], "the right edge sits on the screen");
    let middle = measure_shift(&l[w / 4..3 * w / 4], &r[w / 4..3 * w / 4], 24, 20);
    let want = f64::from(base.disparity_px(0.9, w));
    assert!(
        (middle - want).abs() <= 0.5,
        "inside, the near plane keeps its parallax: {middle} vs {want}"
    );

    // Settings are refused with a reason.
    let mut s = ConversionSettings {
        foreground_scale: 4.0,
        ..ConversionSettings::default()
    };
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("foreground_scale"));
    s.foreground_scale = 0.0;
    s.max_output_width = Some(101);
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("max_output_width"));
}

/// The output size cap scales a larger output down, aspect kept; a smaller one is left alone.
#[tokio::test]
async fn the_output_size_cap_scales_large_outputs_down() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "in.mkv", "160x90", "25", 4, &[]);
    let eng = engine("luma.onnx", 1);
    for (cap, want) in [
        (Some(160), (160, 46)),
        (Some(640), (320, 90)),
        (None, (320, 90)),
    ] {
        let out = dir.path().join(format!("out-{cap:?}.mkv"));
        let mut req = request(&input, &out, StereoMode::FullSbs);
        req.settings.max_output_width = cap;
        eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(dims(&out), want, "{cap:?}");
        assert_eq!(frame_count(&out), 4);
    }
}

/// VR180: each view projected onto a half-equirectangular square (180 / 120 times the
/// source's width, even), side by side, declared as side by side and as an equirectangular
/// projection bounded to 180 degrees (MKV `Projection`, MP4 `sv3d`), with the source's frame
/// count; the middle of each eye shows the picture, the corners the black around it.
#[tokio::test]
async fn vr180_is_projected_and_declared_for_headsets() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "in.mp4", "96x54", "25", 3, &["-c:v", "libx264"]);
    let eng = engine("luma.onnx", 1);
    for ext in ["mkv", "mp4"] {
        let out = dir.path().join(format!("vr180.{ext}"));
        eng.convert(&request(&input, &out, StereoMode::Vr180), &|_| {})
            .await
            .unwrap();
        assert_eq!(dims(&out), (288, 144), "{ext}");
        assert_eq!(frame_count(&out), 3, "{ext}");
        let text = ffprobe(&["-show_streams"], &out);
        for want in [
            "side_data_type=Spherical Mapping",
            "projection=tiled equirectangular",
            "bound_top=0\n",
            "bound_bottom=0\n",
            "type=side by side",
        ] {
            assert!(text.contains(want), "{ext}: {want} missing in\n{text}");
        }
        // ffprobe prints the bounds in pixels of the full 360-degree frame: a 180-degree
        // frame crops as much as it keeps.
        let bound = |k: &str| -> u64 {
            let at = text.find(k).unwrap() + k.len();
            text[at..].lines().next().unwrap().parse().unwrap()
        };
        assert_eq!(
            bound("bound_left=") + bound("bound_right="),
            288,
            "{ext}: {text}"
        );
        let luma = &luma_frames(&out)[0];
        let at = |x: usize, y: usize| luma[y * 288 + x];
        assert!(
            at(2, 2) < 20 && at(146, 141) < 20,
            "{ext}: corners are black"
        );
        assert!(
            at(72, 72) > 20 && at(216, 72) > 20,
            "{ext}: the picture is in the middle"
        );
    }
}

/// A video whose packets decode to no picture at all (every keyframe dropped) is bad input
/// saying so, not an encoder failure to retry; nothing is written.
#[tokio::test]
async fn a_video_that_decodes_to_no_frames_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let ok = clip(
        dir.path(),
        "ok.mp4",
        "64x48",
        "25",
        20,
        &["-c:v", "libx264"],
    );
    let input = dir.path().join("nokey.mkv");
    ffmpeg(&[
        "-i",
        ok.to_str().unwrap(),
        "-c",
        "copy",
        "-bsf:v",
        "noise=drop=key",
        input.to_str().unwrap(),
    ]);
    assert!(frame_count(&input) > 0, "the packets are there");
    let out = dir.path().join("out.mkv");
    let err = engine("luma.onnx", 1)
        .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
        .await
        .unwrap_err();
    let bad = BadInput::find(&err).unwrap_or_else(|| panic!("not bad input: {err:#}"));
    assert!(bad.0.contains("no video frames"), "{bad}");
    assert!(!out.exists());
}
