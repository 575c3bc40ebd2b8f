//! The conversion engine end to end: model contract, geometry, layouts, hole filling, frame
//! counts and timestamps, seams between segments, bad input, previews and the `convert` CLI.
//! Clips are made here with ffmpeg (testsrc2) and models by `models/make_models.py`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use parallax_core::model::{ConversionSettings, StereoMode};
use video_worker::engine::stereo::{
    output_size, warp_row, DepthMap, StereoParams, StereoRenderer, Yuv420,
};
use video_worker::engine::{BadInput, ConvertRequest, Engine, EngineConfig, SeamStart, StateSink};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// The tests' tiny models, written once per test process by the models script.
fn models() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = std::env::var_os("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{} is missing: run `make venv` (the models script needs onnx and numpy)",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new(&python)
            .arg(repo().join("models/make_models.py"))
            .arg("--test-models")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "models/make_models.py failed");
        dir
    })
    .path()
}

fn model(name: &str) -> PathBuf {
    models().join(name)
}

fn engine(name: &str, batch: usize) -> Engine {
    let mut cfg = EngineConfig::new(model(name));
    cfg.batch_size = batch;
    cfg.intra_threads = Some(1);
    cfg.preset = Some("ultrafast".to_owned());
    Engine::load(&cfg).unwrap_or_else(|e| panic!("loading {name}: {e:#}"))
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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

fn ffprobe(args: &[&str], path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn dims(path: &Path) -> (usize, usize) {
    let s = ffprobe(
        &["-show_entries", "stream=width,height", "-of", "csv=p=0"],
        path,
    );
    let mut it = s.trim().split(',').map(|v| v.parse::<usize>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn packet_times(path: &Path) -> Vec<f64> {
    let s = ffprobe(
        &["-show_entries", "packet=pts_time", "-of", "csv=p=0"],
        path,
    );
    let mut v: Vec<f64> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse().unwrap())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn frame_count(path: &Path) -> usize {
    packet_times(path).len()
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
        },
        StereoParams {
            divergence: 2.0,
            convergence: 0.5,
        },
        StereoParams {
            divergence: 3.3,
            convergence: 0.0,
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
    let mut src = Yuv420::new(w, h);
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
            StereoMode::FullSbs => (128, 48),
            StereoMode::FullTb => (64, 96),
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
    ffmpeg(&[
        "-i",
        src.to_str().unwrap(),
        "-map",
        "0:v",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_frames",
        "30,60",
        "-reset_timestamps",
        "1",
        d.join("seg%d.mkv").to_str().unwrap(),
    ]);
    let segs: Vec<PathBuf> = (0..3).map(|i| d.join(format!("seg{i}.mkv"))).collect();
    for s in &segs {
        assert_eq!(frame_count(s), 30, "{}", s.display());
    }
    let eng = engine("luma.onnx", 2);
    let settings = ConversionSettings {
        depth_resolution: Some(42),
        crf: 0,
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

#[test]
fn convert_cli_converts_a_clip_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "in.mp4", "64x48", "25", 6, &["-c:v", "libx264"]);
    let out = dir.path().join("out_LR_Half_TB.mkv");
    let st = Command::new(env!("CARGO_BIN_EXE_video-worker"))
        .arg("convert")
        .arg(&input)
        .arg(&out)
        .args([
            "--mode",
            "half_tb",
            "--divergence",
            "3",
            "--quiet",
            "--model",
        ])
        .arg(model("luma.onnx"))
        .args(["--depth-resolution", "28", "--batch-size", "2"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(stdout.contains("6 frames"), "{stdout}");
    assert_eq!(dims(&out), (64, 48));
    assert_eq!(frame_count(&out), 6);

    // A model that breaks the contract is refused with the reason.
    let st = Command::new(env!("CARGO_BIN_EXE_video-worker"))
        .arg("convert")
        .arg(&input)
        .arg(dir.path().join("x.mkv"))
        .args(["--quiet", "--model"])
        .arg(model("bad-rank.onnx"))
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("rank 3"), "{err}");
}
