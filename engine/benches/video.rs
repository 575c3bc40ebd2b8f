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
//!
//! Each family of figures is a module under `video/`: `frame_path`, `inference` (with
//! `make gpu-check`), `warp`, `depth` (`rerender_vs_first`, `realmodel_*`) and `quality`;
//! this file holds what they share, runs them and writes the results.

#[path = "video/depth.rs"]
mod depth;
#[path = "video/frame_path.rs"]
mod frame_path;
#[path = "video/inference.rs"]
mod inference;
#[path = "video/quality.rs"]
mod quality;
#[path = "video/warp.rs"]
mod warp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use parallax_engine::{Engine, EngineConfig};

use depth::{realmodel, rerender};
use frame_path::frame_path;
use inference::{gpu_check, inference};
use warp::{preprocess, warp, warp10_vs_warp8};

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

/// The engine with the committed default depth model (a function of the image, unlike a
/// random-weight model).
fn default_engine() -> Engine {
    let mut cfg = EngineConfig::new(repo().join("models/default-depth.onnx"));
    cfg.preset = Some("ultrafast".to_owned());
    Engine::load(&cfg).expect("loading models/default-depth.onnx")
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
    parallax_testkit::results::merge(&dir.join("results.json"), &results)
        .expect("writing results.json");
}
