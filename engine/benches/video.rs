//! `make bench-video`: the engine's figures, each a ratio taken side by side in one run
//! (these machines are shared and noisy), printed as a table and merged into
//! `target/bench/results.json`:
//!
//! - `frame_path_vs_ffmpeg`: a 30 s 720p clip to full SBS through the engine with a model that
//!   costs nothing (constant depth), as a ratio of its fps to ffmpeg alone doing decode +
//!   hstack + encode with the same encoder settings;
//! - `inference_vs_onnxruntime`: the engine's depth-model throughput as a ratio to
//!   onnxruntime's own Python API on the same model (a random-weight model with Depth
//!   Anything V2 Small's compute shape, from `../shared/models/`), size, threads and batch;
//! - `warp_mpix_per_s`: the stereo warp kernel (full SBS, source megapixels per second), with
//!   the CPU a frame costs it and the model input's preparation on one thread;
//!   `warp10_vs_warp8`, the same warp on 10-bit frames as a ratio to 8-bit ones, taken in
//!   turn (both have AVX2 kernels; 16-bit samples are gathered, 8-bit ones read from
//!   windows, and move twice the bytes);
//! - `rerender_vs_first`: a re-render from stored depth over the first conversion, with the
//!   real-size model (see `rerender`);
//! - `realmodel_cpu_speedup`, `realmodel_depth_error`: the CPU's fast depth path against the
//!   model on every frame, its speed with the real-size model and its depth error with the
//!   default model (see `realmodel`).
//!
//! Environment: `BENCH_SECONDS` (clip length, default 30), `BENCH_INFER_RUNS` (model runs
//! on each side, taken in turn; default 12), `BENCH_ROUNDS` (frame-path rounds of two
//! back-to-back runs, the median round reported; default 5), `BENCH_WARP_FRAMES` (default
//! 100), `BENCH_RERENDER_FRAMES` (default 24), `BENCH_REALMODEL_FRAMES` (default 40),
//! `BENCH_ONLY` (`quality`, `rerender`, `warp`, `inference`, `realmodel` or `frame_path`);
//! `BENCH_SWEEP=1` also prints
//! the artifact count of each edge fix width (for choosing its default). The picture's figures
//! (`disparity_error_px`, `edge_artifact_ratio`) are described in `video/quality.rs`.

#[path = "video/quality.rs"]
mod quality;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use parallax_core::model::{ConversionSettings, StereoMode};
use parallax_engine::preprocess::Preprocessor;
use parallax_engine::stereo::{
    output_size, DepthMap, Sample, StereoParams, StereoRenderer, Yuv420,
};
use parallax_engine::{ConvertRequest, Engine, EngineConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let d = target.join("bench");
    std::fs::create_dir_all(&d).expect("creating target/bench");
    d
}

fn python() -> PathBuf {
    let p = std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(p.exists(), "{} is missing: run `make venv`", p.display());
    p
}

fn run(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn frame_path(rt: &tokio::runtime::Runtime, dir: &Path) -> FramePath {
    let seconds = env_num("BENCH_SECONDS", 30);
    let frames = seconds * 30;
    let clip = dir.join(format!("clip-720p-{seconds}s.mp4"));
    if !clip.exists() {
        eprintln!("making a {seconds} s 720p test clip ...");
        run(Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
            .args(["-frames:v", &frames.to_string()])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&clip));
    }
    let models = dir.join("models");
    run(Command::new(python())
        .arg(repo().join("models/make_models.py"))
        .arg("--test-models")
        .arg(&models));
    let settings = ConversionSettings::default();
    let crf = settings.crf.to_string();
    let out_ff = dir.join("frame-path-ffmpeg.mkv");
    let out_engine = dir.join("frame-path-engine.mkv");

    let ffmpeg_alone = || {
        run(Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
            .arg(&clip)
            .args([
                "-filter_complex",
                "[0:v]split[a][b];[a][b]hstack[v]",
                "-map",
                "[v]",
            ])
            .args(["-c:v", &settings.encoder, "-crf", &crf, "-preset", "medium"])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&out_ff))
    };
    let mut cfg = EngineConfig::new(models.join("constant.onnx"));
    cfg.preset = Some("medium".to_owned());
    let engine = Engine::load(&cfg).expect("loading the constant model");
    let engine_run = || {
        let mut req = ConvertRequest::new(&clip, &out_engine);
        req.mode = StereoMode::FullSbs;
        req.settings = settings.clone();
        let t = Instant::now();
        let rep = rt
            .block_on(engine.convert(&req, &|_| {}))
            .expect("engine conversion");
        assert_eq!(rep.frames, frames);
        t.elapsed()
    };
    // Rounds of one run each, the order swapped every round; each round's ratios compare two
    // runs made back to back, and the median round's are reported. The machine's speed drifts
    // by more than the difference measured over minutes (ffmpeg alone has taken from 70 to
    // 79 ms of CPU a frame here), so pairing runs close in time beats each side's best, which
    // can come from different minutes. Also the CPU each side spends (this process and its
    // waited-for children: ffmpeg, ffprobe), which a busy machine disturbs far less than the
    // wall clock. Five rounds: the rounds of one run have spread by up to 0.11 here, and the
    // median of three moved by 0.085 between two runs of the same code.
    let rounds = env_num("BENCH_ROUNDS", 5).max(1);
    let timed_cpu = |f: &dyn Fn() -> Duration| {
        let c0 = cpu_seconds_with_children();
        let wall = f();
        let cpu = c0.and_then(|c0| Some(cpu_seconds_with_children()? - c0));
        (wall.as_secs_f64(), cpu.unwrap_or(f64::NAN))
    };
    // Per round: (wall ratio, CPU ratio, engine (wall, CPU), ffmpeg alone (wall, CPU)).
    let mut paired = Vec::new();
    for round in 0..rounds {
        let (ff, engine) = if round % 2 == 0 {
            let ff = timed_cpu(&ffmpeg_alone);
            (ff, timed_cpu(&engine_run))
        } else {
            let engine = timed_cpu(&engine_run);
            (timed_cpu(&ffmpeg_alone), engine)
        };
        paired.push((ff.0 / engine.0, ff.1 / engine.1, engine, ff));
    }
    let mut ratios: Vec<f64> = paired.iter().map(|p| p.0).collect();
    let ratio = median(&mut ratios);
    let mut cpu_ratios: Vec<f64> = paired.iter().map(|p| p.1).collect();
    let cpu_ratio = median(&mut cpu_ratios);
    // The rounds the medians came from, for their speeds and CPU times.
    let &(_, _, (wall_engine, _), (wall_ff, _)) = paired
        .iter()
        .find(|p| p.0 == ratio)
        .expect("the median is one of the rounds");
    let &(_, _, (_, cpu_engine), (_, cpu_ff)) = paired
        .iter()
        .find(|p| p.1 == cpu_ratio || cpu_ratio.is_nan())
        .expect("the median is one of the rounds");
    let fps_ff = frames as f64 / wall_ff;
    let fps_engine = frames as f64 / wall_engine;
    let _ = std::fs::remove_file(&out_ff);
    let _ = std::fs::remove_file(&out_engine);
    eprintln!(
        "frame path rounds (fps ratio / CPU ratio): {}",
        paired
            .iter()
            .map(|p| format!("{:.3}/{:.3}", p.0, p.1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    FramePath {
        ratio,
        fps_engine,
        fps_ff,
        cpu_ratio,
        cpu_ms_engine: cpu_engine * 1e3 / frames as f64,
        cpu_ms_ff: cpu_ff * 1e3 / frames as f64,
    }
}

struct FramePath {
    ratio: f64,
    fps_engine: f64,
    fps_ff: f64,
    /// ffmpeg alone's CPU time over the engine's (both including their ffmpeg processes).
    cpu_ratio: f64,
    cpu_ms_engine: f64,
    cpu_ms_ff: f64,
}

/// onnxruntime's own Python API, kept running: after a warm-up it answers each line on stdin
/// with the seconds one `run` took, so its runs can alternate with the engine's one by one.
const PY_BENCH: &str = r#"
import sys, time
import numpy as np
import onnxruntime as ort
path, n, h, w, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
x = np.random.default_rng(0).standard_normal((n, 3, h, w)).astype(np.float32)
s.run(None, {name: x})
print("ready", flush=True)
for _ in sys.stdin:
    t = time.perf_counter()
    s.run(None, {name: x})
    print(time.perf_counter() - t, flush=True)
"#;

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The random-weight model with Depth Anything V2 Small's compute shape (written once by
/// `../shared/models/make_vits14_dpt.py`), or `None`, saying why, when the script is not
/// there; `figure` names what is skipped.
fn vits14_model(dir: &Path, figure: &str) -> Option<PathBuf> {
    let script = repo().join("../shared/models/make_vits14_dpt.py");
    if !script.exists() {
        eprintln!("skipping {figure}: {} is not there", script.display());
        return None;
    }
    let model = dir.join("vits14-dpt-random.onnx");
    if !model.exists() {
        run(Command::new(python()).arg(&script).arg("--out").arg(&model));
    }
    Some(model)
}

/// `rerender_vs_first`: a 720p clip converted with the real-size model while its depth is
/// stored (as the fleet does), then re-rendered from that depth in another layout; the
/// re-render's time over the first conversion's. Also the model runs of each (the
/// re-render's must be 0).
fn rerender(rt: &tokio::runtime::Runtime, dir: &Path) -> Option<(f64, f64, f64)> {
    let model = vits14_model(dir, "rerender_vs_first")?;
    let frames = env_num("BENCH_RERENDER_FRAMES", 24);
    let clip = dir.join(format!("clip-720p-{frames}f.mp4"));
    if !clip.exists() {
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=1280x720:rate=24")
            .args(["-frames:v", &frames.to_string()])
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
            .arg(&clip));
    }
    let mut cfg = EngineConfig::new(&model);
    cfg.intra_threads = Some(2);
    let engine = Engine::load(&cfg).expect("loading the ViT-S/14 DPT model");
    let depth = dir.join("rerender-depth.mkv");
    let mut first = ConvertRequest::new(&clip, dir.join("rerender-first.mkv"));
    first.depth_out = Some(depth.clone());
    let t = Instant::now();
    rt.block_on(engine.convert(&first, &|_| {}))
        .expect("the first conversion");
    let first_s = t.elapsed().as_secs_f64();
    let runs = engine.model().runs();
    let mut again = ConvertRequest::new(&clip, dir.join("rerender-again.mkv"));
    again.mode = StereoMode::HalfSbs;
    again.depth_in = Some(depth);
    let t = Instant::now();
    rt.block_on(engine.convert(&again, &|_| {}))
        .expect("the re-render");
    let again_s = t.elapsed().as_secs_f64();
    assert_eq!(engine.model().runs(), runs, "the re-render ran the model");
    Some((again_s / first_s, first_s, again_s))
}

/// A 720p clip of `frames` frames with real motion: a panning textured background (a crop
/// window moving over `testsrc2`) with a textured square (`testsrc`) crossing it.
fn motion_clip(dir: &Path, frames: u64) -> PathBuf {
    let clip = dir.join(format!("motion-720p-{frames}f.mkv"));
    if !clip.exists() {
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1600x900:rate=30"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x320:rate=30"])
            .args([
                "-filter_complex",
                "[0:v]crop=1280:720:x='min(t*120,320)':y='min(t*50,180)'[bg];\
                 [bg][1:v]overlay=x='100+t*250':y='200+120*sin(2*t)',format=yuv420p[v]",
                "-map",
                "[v]",
            ])
            .args(["-frames:v", &frames.to_string()])
            .args(["-c:v", "libx264", "-crf", "12", "-preset", "veryfast"])
            .arg(&clip));
    }
    clip
}

/// The stored depth maps of `path` (see `ConvertRequest::depth_out`), as 0..1 values.
fn stored_depth(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray16le", "pipe:1"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "decoding {}", path.display());
    out.stdout
        .chunks_exact(2)
        .map(|b| f32::from(u16::from_le_bytes([b[0], b[1]])) / 65535.0)
        .collect()
}

/// The figures of the fast depth path (`fastdepth`), against the model on every frame.
struct RealModel {
    /// Fast fps over per-frame fps, with the ViT-S/14 DPT model.
    speedup: f64,
    fps_fast: f64,
    fps_every: f64,
    /// Model runs of the fast conversion, and its frames.
    fast_runs: u64,
    frames: u64,
    /// Mean absolute difference of the normalised depth maps, default model.
    depth_error: f64,
}

/// `realmodel_cpu_speedup` and `realmodel_depth_error` (`BENCH_ONLY=realmodel`): one 720p
/// clip with real motion (`BENCH_REALMODEL_FRAMES`, default 40) converted on the CPU with
/// the fast depth path (the default settings: `fast_depth` auto) and with the model on every
/// frame (`fast_depth: off`), both in this run. The speed-up uses the random-weight model
/// with Depth Anything V2 Small's compute shape (its cost is the real model's; its output is
/// noise); the depth error uses the classical default model (its depth is a function of the
/// picture), comparing the stored depth maps the renderer received.
fn realmodel(rt: &tokio::runtime::Runtime, dir: &Path) -> Option<RealModel> {
    use parallax_core::model::FastDepth;
    let model = vits14_model(dir, "realmodel_cpu_speedup")?;
    let frames = env_num("BENCH_REALMODEL_FRAMES", 40).max(2);
    let clip = motion_clip(dir, frames);
    let fast = ConversionSettings::default();
    let every = ConversionSettings {
        fast_depth: FastDepth::Off,
        ..ConversionSettings::default()
    };
    let convert = |engine: &Engine, settings: &ConversionSettings, name: &str, depth: bool| {
        let mut req = ConvertRequest::new(&clip, dir.join(format!("realmodel-{name}.mkv")));
        req.settings = settings.clone();
        req.depth_out = depth.then(|| dir.join(format!("realmodel-{name}-depth.mkv")));
        let runs = engine.model().runs();
        let t = Instant::now();
        let rep = rt
            .block_on(engine.convert(&req, &|_| {}))
            .expect("converting");
        assert_eq!(rep.frames, frames);
        let secs = t.elapsed().as_secs_f64();
        let _ = std::fs::remove_file(&req.output);
        (frames as f64 / secs, engine.model().runs() - runs)
    };

    let mut cfg = EngineConfig::new(&model);
    cfg.intra_threads = Some(2);
    cfg.preset = Some("veryfast".to_owned());
    let engine = Engine::load(&cfg).expect("loading the ViT-S/14 DPT model");
    eprintln!("realmodel: {frames} frames at 720p, fast path then every frame ...");
    let (fps_fast, fast_runs) = convert(&engine, &fast, "fast", false);
    let (fps_every, every_runs) = convert(&engine, &every, "every", false);
    assert_eq!(
        every_runs, frames,
        "the per-frame path ran the model on every frame"
    );

    let mut cfg = EngineConfig::new(repo().join("models/default-depth.onnx"));
    cfg.preset = Some("ultrafast".to_owned());
    let classical = Engine::load(&cfg).expect("loading models/default-depth.onnx");
    convert(&classical, &fast, "fast-classical", true);
    convert(&classical, &every, "every-classical", true);
    let every_depth = stored_depth(&dir.join("realmodel-every-classical-depth.mkv"));
    let error_of = |name: &str| {
        let a = stored_depth(&dir.join(format!("realmodel-{name}-depth.mkv")));
        assert_eq!(
            a.len(),
            every_depth.len(),
            "both depth files have the same maps"
        );
        a.iter()
            .zip(&every_depth)
            .map(|(x, y)| f64::from((x - y).abs()))
            .sum::<f64>()
            / a.len() as f64
    };
    let depth_error = error_of("fast-classical");
    if std::env::var_os("BENCH_SWEEP").is_some() {
        // Each fast path alone and other intervals and scales (for choosing the defaults).
        for (interval, scale) in [
            (8, 1.0),
            (1, 0.5),
            (4, 0.5),
            (12, 0.5),
            (24, 0.5),
            (8, 0.35),
            (8, 0.25),
        ] {
            let settings = ConversionSettings {
                fast_depth: FastDepth::On,
                keyframe_interval: interval,
                fast_depth_scale: scale,
                ..ConversionSettings::default()
            };
            let (_, runs) = convert(&classical, &settings, "sweep-classical", true);
            println!(
                "realmodel sweep: keyframe_interval {interval:>2}, fast_depth_scale {scale:.2}: depth error {:.4}, {runs} model runs",
                error_of("sweep-classical")
            );
        }
    }
    Some(RealModel {
        speedup: fps_fast / fps_every,
        fps_fast,
        fps_every,
        fast_runs,
        frames,
        depth_error,
    })
}

/// `make gpu-check` (`BENCH_ONLY=gpu`, never part of a plain run): the real-size model on
/// the execution provider `EXECUTION_PROVIDER` asks for (default cuda): which provider it
/// actually runs on (CPU after a fallback, which ONNX Runtime's log explains) and its frames
/// per second at 720p's model input (518x924), after two warm-up runs.
fn gpu_check(dir: &Path) {
    use parallax_engine::ExecutionProvider;
    let Some(model) = vits14_model(dir, "gpu-check") else {
        return;
    };
    let asked = match std::env::var("EXECUTION_PROVIDER").as_deref() {
        Ok("cpu") => ExecutionProvider::Cpu,
        Ok("tensorrt") => ExecutionProvider::Tensorrt,
        _ => ExecutionProvider::Cuda,
    };
    let mut cfg = EngineConfig::new(&model);
    cfg.provider = asked;
    let engine = Engine::load(&cfg).expect("loading the ViT-S/14 DPT model");
    let in_use = engine.model().provider();
    let (w, h) = engine.model().input_size(1280, 720, 518);
    let input = vec![0.1f32; 3 * w * h];
    let mut out = Vec::new();
    for _ in 0..2 {
        engine
            .model()
            .run(&input, 1, (w, h), &mut out)
            .expect("warm-up");
    }
    let n = env_num("GPU_CHECK_RUNS", 20).max(1);
    let t = Instant::now();
    for _ in 0..n {
        engine
            .model()
            .run(&input, 1, (w, h), &mut out)
            .expect("inference");
    }
    let fps = n as f64 / t.elapsed().as_secs_f64();
    println!("gpu-check: asked for {asked:?}, running on {in_use:?}");
    println!("gpu-check: {fps:.2} frames/s, ViT-S/14 DPT (Depth Anything V2 Small's shape) at {w}x{h}, batch 1");
    if in_use != asked {
        println!(
            "gpu-check: the {asked:?} provider is not in use: the ONNX Runtime library at ORT_DYLIB_PATH has none, or it could not start (it needs the onnxruntime-gpu wheel's library and a visible GPU)"
        );
    }
}

fn inference(dir: &Path) -> Option<(f64, f64, f64)> {
    use std::io::{BufRead as _, BufReader, Write as _};
    let model = vits14_model(dir, "inference_vs_onnxruntime")?;
    let (n, h, w, threads) = (1usize, 518usize, 518usize, 2usize);
    let mut cfg = EngineConfig::new(&model);
    cfg.intra_threads = Some(threads);
    cfg.batch_size = n;
    let engine = Engine::load(&cfg).expect("loading the ViT-S/14 DPT model");
    let input = vec![0.1f32; n * 3 * h * w];
    let mut out = Vec::new();
    let mut py = Command::new(python())
        .arg("-c")
        .arg(PY_BENCH)
        .arg(&model)
        .args([n, h, w, threads].map(|v| v.to_string()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut py_in = py.stdin.take().expect("piped");
    let mut py_out = BufReader::new(py.stdout.take().expect("piped")).lines();
    let mut py_line = || {
        py_out
            .next()
            .expect("python answers")
            .expect("reading python's answer")
    };
    assert_eq!(py_line(), "ready", "python's warm-up");
    engine
        .model()
        .run(&input, n, (w, h), &mut out)
        .expect("warm-up");
    // One run each in turn (BENCH_INFER_RUNS pairs, default 12), with a pause between so
    // neither side's threads are still winding down while the other runs; each side's
    // median is kept.
    let pairs = env_num("BENCH_INFER_RUNS", 12).max(1) as usize;
    let (mut rust, mut onnx) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        engine
            .model()
            .run(&input, n, (w, h), &mut out)
            .expect("inference");
        rust.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(100));
        writeln!(py_in, "run").expect("asking python for a run");
        let secs = py_line();
        onnx.push(secs.trim().parse::<f64>().expect("a time"));
    }
    drop(py_in);
    let status = py.wait().expect("python exits");
    assert!(status.success(), "the python side failed: {status}");
    let (rust, onnx) = (median(&mut rust), median(&mut onnx));
    Some((onnx / rust, n as f64 / rust, n as f64 / onnx))
}

/// A renderer for 1280x720 frames of `T` samples, a textured frame, a smooth depth map, the
/// full SBS output and the stereo parameters.
#[allow(clippy::type_complexity)]
fn warp_setup<T: Sample>() -> (
    StereoRenderer<T>,
    Yuv420<T>,
    DepthMap,
    Yuv420<T>,
    StereoParams,
) {
    let (w, h) = (1280usize, 720usize);
    let (dw, dh) = (924usize, 518usize);
    let mut src = Yuv420::<T>::new(w, h);
    for (i, p) in src.data.iter_mut().enumerate() {
        *p = T::from_f32_8bit((i * 31 % 251) as f32);
    }
    let mut depth = DepthMap::new(dw, dh);
    for (i, z) in depth.data.iter_mut().enumerate() {
        let (x, y) = (i % dw, i / dw);
        *z = ((x as f32 / 37.0).sin() * (y as f32 / 23.0).cos() * 0.5 + 0.5).clamp(0.0, 1.0);
    }
    let (ow, oh) = output_size(StereoMode::FullSbs, w, h);
    let out = Yuv420::<T>::new(ow, oh);
    let r = StereoRenderer::<T>::new(w, h, dw, dh);
    let params = StereoParams {
        divergence: 2.0,
        convergence: 0.5,
        ..StereoParams::default()
    };
    (r, src, depth, out, params)
}

/// Seconds for `n` full SBS renders.
fn warp_seconds<T: Sample>(
    (r, src, depth, out, params): &mut (
        StereoRenderer<T>,
        Yuv420<T>,
        DepthMap,
        Yuv420<T>,
        StereoParams,
    ),
    n: usize,
) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        r.render(src, depth, *params, StereoMode::FullSbs, out);
    }
    t.elapsed().as_secs_f64()
}

/// 10-bit warp speed over 8-bit, in alternating rounds (the median round).
fn warp10_vs_warp8() -> f64 {
    let mut eight = warp_setup::<u8>();
    let mut ten = warp_setup::<u16>();
    let n = (env_num("BENCH_WARP_FRAMES", 100).max(5) / 5) as usize;
    warp_seconds(&mut eight, 2);
    warp_seconds(&mut ten, 2);
    let mut ratios: Vec<f64> = (0..5)
        .map(|_| warp_seconds(&mut eight, n) / warp_seconds(&mut ten, n))
        .collect();
    median(&mut ratios)
}

fn warp() -> (f64, Option<f64>) {
    let (mut r, src, depth, mut out, params) = warp_setup::<u8>();
    let (w, h) = (src.width, src.height);
    for _ in 0..5 {
        r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
    }
    let n = env_num("BENCH_WARP_FRAMES", 100).max(1) as usize;
    let t = Instant::now();
    for _ in 0..n {
        r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
    }
    let mpix = (w * h * n) as f64 / t.elapsed().as_secs_f64() / 1e6;
    // The CPU a frame costs, on one thread (idle rayon workers spin, which would count).
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let cpu_ms = one.install(|| {
        let c0 = process_cpu_seconds()?;
        for _ in 0..n {
            r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
        }
        Some((process_cpu_seconds()? - c0) * 1e3 / n as f64)
    });
    (mpix, cpu_ms)
}

/// The CPU one 1280x720 frame's model input (924x518) costs, on one thread.
fn preprocess() -> Option<f64> {
    let mut src = Yuv420::new(1280, 720);
    for (i, p) in src.data.iter_mut().enumerate() {
        *p = (i * 31 % 251) as u8;
    }
    let mut pre = Preprocessor::new(1280, 720, 924, 518);
    let mut out = vec![0.0f32; 3 * 924 * 518];
    let n = env_num("BENCH_WARP_FRAMES", 100).max(1) as usize;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    one.install(|| {
        pre.fill(&src, &mut out);
        let c0 = process_cpu_seconds()?;
        for _ in 0..n {
            pre.fill(&src, &mut out);
        }
        Some((process_cpu_seconds()? - c0) * 1e3 / n as f64)
    })
}

/// This process's CPU time (user + system, all threads) from `/proc/self/stat`, on Linux.
fn process_cpu_seconds() -> Option<f64> {
    cpu_ticks(2)
}

/// [`process_cpu_seconds`] plus that of the children it has waited for.
fn cpu_seconds_with_children() -> Option<f64> {
    cpu_ticks(4)
}

/// The sum of the first `fields` of utime, stime, cutime, cstime, in seconds.
fn cpu_ticks(fields: usize) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let mut ticks = 0.0;
    for i in 11..11 + fields {
        ticks += f.get(i)?.parse::<f64>().ok()?;
    }
    // USER_HZ is 100 on every Linux target Rust supports.
    Some(ticks / 100.0)
}

fn merge_results(dir: &Path, values: &[(&str, f64)]) {
    let path = dir.join("results.json");
    let mut obj = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    for (k, v) in values {
        let rounded = (v * 1000.0).round() / 1000.0;
        obj.insert((*k).to_owned(), serde_json::json!(rounded));
    }
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&serde_json::Value::Object(obj)).expect("json"),
    )
    .expect("writing results.json");
    println!("merged into {}", path.display());
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` and test discovery: nothing to list.
        return;
    }
    let dir = bench_dir();
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut results = Vec::new();
    let mut rows = Vec::new();

    // BENCH_ONLY=quality|rerender|warp|inference|realmodel|frame_path runs one figure (for
    // working on it).
    let only = std::env::var("BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);

    if only.as_deref() == Some("gpu") {
        gpu_check(&dir);
        return;
    }

    if wanted("quality") {
        let err = quality::disparity_error_px();
        rows.push(format!(
            "{:<26} {:>8.3}   (planes at known depths, default settings; target <= 0.5)",
            "disparity_error_px", err
        ));
        results.push(("disparity_error_px", err));
        let (ratio, with, without) = quality::edge_artifact_ratio();
        rows.push(format!(
            "{:<26} {:>8.3}   ({} object artifact pixels with the edge fix, {} without; target <= 0.5)",
            "edge_artifact_ratio", ratio, with.0, without.0
        ));
        results.push(("edge_artifact_ratio", ratio));
        let cost = with.1 as f64 / without.1.max(1) as f64;
        rows.push(format!(
            "{:<26} {:>8.3}   ({} changed background pixels with the edge fix, {} without)",
            "edge_background_ratio", cost, with.1, without.1
        ));
        results.push(("edge_background_ratio", cost));
        let flicker = rt.block_on(quality::static_flicker(&dir));
        rows.push(format!(
            "{:<26} {:>8.3}   (a still scene's disparity change per frame, px at 1920 wide)",
            "static_flicker", flicker
        ));
        results.push(("static_flicker", flicker));
        let jump = rt.block_on(quality::seam_jump(&dir));
        rows.push(format!(
            "{:<26} {:>8.3}   (depth change across a segment seam / median inside; target <= 1.5)",
            "seam_jump", jump
        ));
        results.push(("seam_jump", jump));
        if std::env::var_os("BENCH_SWEEP").is_some() {
            for (r, (object, background)) in quality::edge_dilation_sweep() {
                println!("edge_dilation {r}: {object} object artifact pixels, {background} changed background pixels");
            }
        }
    }

    if wanted("rerender") {
        if let Some((ratio, first, again)) = rerender(&rt, &dir) {
            rows.push(format!(
                "{:<26} {:>8.3}   (re-render {again:.1} s from stored depth vs first conversion {first:.1} s; 720p, ViT-S/14 DPT model; target <= 0.2)",
                "rerender_vs_first", ratio
            ));
            results.push(("rerender_vs_first", ratio));
        }
    }

    if wanted("warp") {
        let (mpix, cpu_ms) = warp();
        rows.push(format!(
            "{:<26} {:>8.1}   (1280x720 full SBS, {} threads)",
            "warp_mpix_per_s",
            mpix,
            rayon::current_num_threads()
        ));
        results.push(("warp_mpix_per_s", mpix));
        if let Some(ms) = cpu_ms {
            rows.push(format!(
                "{:<26} {:>8.1}   (CPU per 1280x720 frame on one thread, depth 924x518)",
                "warp_cpu_ms_per_frame", ms
            ));
            results.push(("warp_cpu_ms_per_frame", ms));
        }
        let ratio = warp10_vs_warp8();
        rows.push(format!(
            "{:<26} {:>8.2}   (10-bit frames' warp speed over 8-bit ones, same run)",
            "warp10_vs_warp8", ratio
        ));
        results.push(("warp10_vs_warp8", ratio));
        if let Some(ms) = preprocess() {
            rows.push(format!(
                "{:<26} {:>8.2}   (CPU per 1280x720 frame's 924x518 model input, one thread)",
                "preprocess_cpu_ms", ms
            ));
            results.push(("preprocess_cpu_ms", ms));
        }
    }

    if let Some((ratio, rust_fps, py_fps)) = wanted("inference").then(|| inference(&dir)).flatten()
    {
        rows.push(format!(
            "{:<26} {:>8.3}   (engine {rust_fps:.3} fps vs onnxruntime python {py_fps:.3} fps; 518x518, batch 1, 2 threads)",
            "inference_vs_onnxruntime", ratio
        ));
        results.push(("inference_vs_onnxruntime", ratio));
    }

    if let Some(rm) = wanted("realmodel").then(|| realmodel(&rt, &dir)).flatten() {
        rows.push(format!(
            "{:<26} {:>8.3}   (fast path {:.2} fps, {} model runs for {} frames, vs every frame {:.2} fps; 720p, ViT-S/14 DPT, CPU; target >= 4)",
            "realmodel_cpu_speedup", rm.speedup, rm.fps_fast, rm.fast_runs, rm.frames, rm.fps_every
        ));
        results.push(("realmodel_cpu_speedup", rm.speedup));
        rows.push(format!(
            "{:<26} {:>8.4}   (mean |fast - every frame| of the normalised depth, 0..1; default model, moving clip; target <= 0.03)",
            "realmodel_depth_error", rm.depth_error
        ));
        results.push(("realmodel_depth_error", rm.depth_error));
    }

    if wanted("frame_path") {
        let fp = frame_path(&rt, &dir);
        rows.push(format!(
            "{:<26} {:>8.3}   (engine {:.1} fps vs ffmpeg hstack {:.1} fps; 720p -> full SBS, libx264 crf 20 medium)",
            "frame_path_vs_ffmpeg", fp.ratio, fp.fps_engine, fp.fps_ff
        ));
        results.push(("frame_path_vs_ffmpeg", fp.ratio));
        rows.push(format!(
            "{:<26} {:>8.3}   (CPU per frame: engine {:.1} ms vs ffmpeg hstack {:.1} ms, ffmpeg processes included)",
            "frame_path_cpu_vs_ffmpeg", fp.cpu_ratio, fp.cpu_ms_engine, fp.cpu_ms_ff
        ));
        results.push(("frame_path_cpu_vs_ffmpeg", fp.cpu_ratio));
    }

    println!("\nengine benchmarks");
    for r in rows {
        println!("  {r}");
    }
    merge_results(&dir, &results);
}
