//! Depth stored and depth skipped: `rerender_vs_first` (a re-render from stored depth over
//! the first conversion) and the fast depth path's `realmodel_cpu_speedup` and
//! `realmodel_depth_error`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use parallax_core::model::{ConversionSettings, StereoMode};
use parallax_engine::{ConvertRequest, Engine, EngineConfig};

use super::{default_engine, env_num, run, vits14_model};

/// `rerender_vs_first`: a 720p clip converted with the real-size model while its depth is
/// stored (as the fleet does), then re-rendered from that depth in another layout; the
/// re-render's time over the first conversion's. Also the model runs of each (the
/// re-render's must be 0).
pub(crate) fn rerender(rt: &tokio::runtime::Runtime, dir: &Path) -> Option<(f64, f64, f64)> {
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
pub(crate) fn motion_clip(dir: &Path, frames: u64) -> PathBuf {
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
pub(crate) fn stored_depth(path: &Path) -> Vec<f32> {
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
pub(crate) struct RealModel {
    /// Fast fps over per-frame fps, with the ViT-S/14 DPT model.
    pub(crate) speedup: f64,
    pub(crate) fps_fast: f64,
    pub(crate) fps_every: f64,
    /// Model runs of the fast conversion, and its frames.
    pub(crate) fast_runs: u64,
    pub(crate) frames: u64,
    /// Mean absolute difference of the normalised depth maps, default model.
    pub(crate) depth_error: f64,
}

/// `realmodel_cpu_speedup` and `realmodel_depth_error` (`BENCH_ONLY=realmodel`): one 720p
/// clip with real motion (`BENCH_REALMODEL_FRAMES`, default 40) converted on the CPU with
/// the fast depth path (the default settings: `fast_depth` auto) and with the model on every
/// frame (`fast_depth: off`), both in this run. The speed-up uses the random-weight model
/// with Depth Anything V2 Small's compute shape (its cost is the real model's; its output is
/// noise); the depth error uses the classical default model (its depth is a function of the
/// picture), comparing the stored depth maps the renderer received.
pub(crate) fn realmodel(rt: &tokio::runtime::Runtime, dir: &Path) -> Option<RealModel> {
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

    let classical = default_engine();
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
