//! `frame_path_vs_ffmpeg`: the whole frame path (decode, depth with a model that costs
//! nothing, warp, encode) against ffmpeg alone doing decode + hstack + encode.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use parallax_core::model::{ConversionSettings, StereoMode};
use parallax_engine::{ConvertRequest, Engine, EngineConfig};

use super::{cpu_seconds_with_children, env_num, median, python, repo, run};

pub(crate) fn frame_path(rt: &tokio::runtime::Runtime, dir: &Path) -> FramePath {
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

pub(crate) struct FramePath {
    pub(crate) ratio: f64,
    pub(crate) fps_engine: f64,
    pub(crate) fps_ff: f64,
    /// ffmpeg alone's CPU time over the engine's (both including their ffmpeg processes).
    pub(crate) cpu_ratio: f64,
    pub(crate) cpu_ms_engine: f64,
    pub(crate) cpu_ms_ff: f64,
}
