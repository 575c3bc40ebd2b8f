//! `video-worker convert IN OUT [options]`: converts one whole file on this machine with the
//! same engine the segment worker uses, showing a progress bar.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use parallax_core::model::{
    AnaglyphMethod, ConversionSettings, FastDepth, StereoMode, SyntheticView, DEFAULT_EDGE_DILATION,
};

use parallax_engine::{ConvertRequest, Engine, EngineConfig, ExecutionProvider, SeamStart};

/// The engine's settings, shared by `convert` and the segment worker.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// The ONNX depth model (Depth Anything V2 Small, or the default depth-cue model).
    #[arg(long, env = "DEPTH_MODEL", default_value = "models/default-depth.onnx")]
    pub model: PathBuf,
    /// Where the model runs: cpu, cuda or tensorrt (falls back to cpu, logged).
    #[arg(long, env = "EXECUTION_PROVIDER", value_enum, default_value_t = ExecutionProvider::Cpu)]
    pub provider: ExecutionProvider,
    /// Default short side of the frames given to the model, in pixels (rounded to a multiple
    /// of 14; a fixed-size model uses its own size). A job's setting wins.
    #[arg(long, env = "DEPTH_RESOLUTION")]
    pub depth_resolution: Option<u32>,
    /// Frames per model run.
    #[arg(long, env = "DEPTH_BATCH_SIZE", default_value_t = 1)]
    pub batch_size: usize,
    /// ONNX Runtime threads (default: one per core).
    #[arg(long, env = "ORT_INTRA_THREADS")]
    pub intra_threads: Option<usize>,
    /// Encoder preset (default: medium for x264/x265, p4 for NVENC).
    #[arg(long, env = "ENCODER_PRESET")]
    pub preset: Option<String>,
    /// Frames per window for a temporal (video-depth) model whose export leaves the window
    /// open; a fixed-window model uses its own. Models of the catalogue use its `window`.
    #[arg(long, env = "DEPTH_WINDOW")]
    pub window: Option<usize>,
}

impl EngineArgs {
    /// The engine configuration these flags describe.
    pub fn config(&self) -> EngineConfig {
        let mut cfg = EngineConfig::new(self.model.clone());
        cfg.provider = self.provider;
        cfg.depth_resolution = self.depth_resolution;
        cfg.batch_size = self.batch_size;
        cfg.intra_threads = self.intra_threads;
        cfg.preset = self.preset.clone();
        cfg.window = self.window;
        cfg
    }
}

/// `video-worker convert`: one file from 2D to 3D.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Input video.
    pub input: PathBuf,
    /// Output video (video only; `.mkv` or `.mp4`).
    pub output: PathBuf,
    /// 3D format: full_sbs, half_sbs, full_tb, half_tb, full_cross, half_cross, anaglyph,
    /// rgbd or depth_map.
    #[arg(long, default_value = "full_sbs", value_parser = parse_mode)]
    pub mode: StereoMode,
    /// 3D strength: the largest disparity in percent of the frame width.
    #[arg(long, default_value_t = 2.0)]
    pub divergence: f32,
    /// The normalised depth (0 far .. 1 near) that sits on the screen plane.
    #[arg(long, default_value_t = 0.5)]
    pub convergence: f32,
    /// Temporal smoothing of the depth range (0 = none, closer to 1 = smoother).
    #[arg(long, default_value_t = 0.9)]
    pub ema_decay: f32,
    /// Encoder: libx264, libx265, h264_nvenc or hevc_nvenc.
    #[arg(long, default_value = "libx264")]
    pub encoder: String,
    /// Encoder quality (CRF; lower = better).
    #[arg(long, default_value_t = 20)]
    pub crf: u8,
    /// Also write preview-sbs.jpg and preview-depth.png of the first frame into this folder.
    #[arg(long)]
    pub preview_dir: Option<PathBuf>,
    /// Leave an interlaced source's frames as they are (by default it is deinterlaced with
    /// bwdif before depth).
    #[arg(long)]
    pub no_deinterlace: bool,
    /// Output bits per sample, 8 or 10 (10 needs libx265 or hevc_nvenc). By default a source
    /// above 8 bits stays 10-bit with an HEVC encoder and H.264 output is 8-bit.
    #[arg(long, value_parser = clap::value_parser!(u8).range(8..=10))]
    pub bit_depth: Option<u8>,
    /// Edge fix: widen the near side of depth edges by this many depth-map pixels (0 = off).
    #[arg(long, default_value_t = DEFAULT_EDGE_DILATION, value_parser = clap::value_parser!(u8).range(0..=10))]
    pub edge_dilation: u8,
    /// Turn off depth anti-aliasing (a light blur of the depth map's edges).
    #[arg(long)]
    pub no_depth_antialias: bool,
    /// Foreground scale, -3..3: more (positive) or less (negative) 3D for near things.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub foreground_scale: f32,
    /// IPD offset in percent of the width, -5..5: constant parallax added to every pixel
    /// (positive = the scene further behind the screen).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub ipd_offset: f32,
    /// Fade parallax to zero at the left and right frame edges (a floating window).
    #[arg(long)]
    pub preserve_screen_border: bool,
    /// Synthesised views: both, left (the left eye sees the original) or right.
    #[arg(long, default_value = "both", value_parser = parse_synthetic)]
    pub synthetic_view: SyntheticView,
    /// Convergence from each frame's depth distribution instead of --convergence.
    #[arg(long)]
    pub auto_convergence: bool,
    /// The largest output width in pixels (larger outputs are scaled down).
    #[arg(long)]
    pub max_output_width: Option<u32>,
    /// Anaglyph method: dubois, color, half_color, gray or wimmer.
    #[arg(long, default_value = "dubois", value_parser = parse_anaglyph)]
    pub anaglyph_method: AnaglyphMethod,
    /// The fast depth path (model on keyframes at a lower resolution, depth carried between
    /// them by motion): auto (on the CPU provider, off on a GPU), on or off.
    #[arg(long, default_value = "auto", value_parser = parse_fast_depth)]
    pub fast_depth: FastDepth,
    /// Fast depth: the model runs at least every this many frames (1..=60).
    #[arg(long, default_value_t = parallax_core::model::DEFAULT_KEYFRAME_INTERVAL)]
    pub keyframe_interval: u8,
    /// Fast depth: the model input's short side as a fraction (0.25..=1) of the depth map's.
    #[arg(long, default_value_t = parallax_core::model::DEFAULT_FAST_DEPTH_SCALE)]
    pub fast_depth_scale: f32,
    /// Tone-map an HDR (PQ or HLG) source to BT.709 SDR even when the output could keep HDR
    /// (10-bit HEVC). An 8-bit output of an HDR source is always tone-mapped.
    #[arg(long)]
    pub tone_map: bool,
    /// Also store the depth maps the renderer was given in this file (a lossless 16-bit grey
    /// video, Matroska), so that the same input can be rendered again with --depth-in.
    #[arg(long, conflicts_with = "depth_in")]
    pub depth_out: Option<PathBuf>,
    /// Render from depth maps stored by --depth-out for this same input instead of running
    /// the model (another layout or other 3D settings, no inference; the depth-making
    /// settings are the stored depth's).
    #[arg(long)]
    pub depth_in: Option<PathBuf>,
    /// No progress bar (for scripts).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn parse_mode(s: &str) -> Result<StereoMode, String> {
    StereoMode::parse(s).map_err(|e| e.to_string())
}

/// Runs `convert`.
pub async fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let settings = ConversionSettings {
        divergence: args.divergence,
        convergence: args.convergence,
        ema_decay: args.ema_decay,
        depth_resolution: None,
        encoder: args.encoder.clone(),
        crf: args.crf,
        deinterlace: !args.no_deinterlace,
        bit_depth: args.bit_depth,
        tone_map: args.tone_map,
        edge_dilation: args.edge_dilation,
        depth_antialias: !args.no_depth_antialias,
        foreground_scale: args.foreground_scale,
        ipd_offset: args.ipd_offset,
        preserve_screen_border: args.preserve_screen_border,
        synthetic_view: args.synthetic_view,
        auto_convergence: args.auto_convergence,
        max_output_width: args.max_output_width,
        anaglyph_method: args.anaglyph_method,
        fast_depth: args.fast_depth,
        keyframe_interval: args.keyframe_interval,
        fast_depth_scale: args.fast_depth_scale,
        ..ConversionSettings::default()
    };
    settings.validate().context("checking the settings")?;
    let engine = Engine::load(&args.engine.config())
        .with_context(|| format!("loading the depth model {}", args.engine.model.display()))?;
    let total = parallax_engine::probe::count_frames(&args.input).await.ok();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames ({per_sec}, eta {eta})",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let req = ConvertRequest {
        input: args.input.clone(),
        output: args.output.clone(),
        mode: args.mode,
        settings,
        seam: SeamStart::Fresh,
        seam_end: None,
        expected_frames: None,
        preview_dir: args.preview_dir.clone(),
        depth_out: args.depth_out.clone(),
        depth_in: args.depth_in.clone(),
    };
    let report = engine
        .convert(&req, &|done| bar.set_position(done))
        .await
        .with_context(|| format!("converting {}", args.input.display()))?;
    bar.finish_and_clear();
    println!(
        "{} -> {}: {} frames, {}",
        args.input.display(),
        args.output.display(),
        report.frames,
        args.mode
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    if let (Some(s), Some(d)) = (&report.preview_sbs, &report.preview_depth) {
        println!("previews: {} {}", s.display(), d.display());
    }
    if let Some(d) = &args.depth_out {
        println!("depth stored: {}", d.display());
    }
    Ok(())
}

/// A snake_case value of a settings enum, through its serde name.
fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.replace('-', "_")))
        .map_err(|_| format!("unknown value {s:?}"))
}

fn parse_fast_depth(s: &str) -> Result<FastDepth, String> {
    parse_enum(s).map_err(|e| format!("{e}; use auto, on or off"))
}

fn parse_synthetic(s: &str) -> Result<SyntheticView, String> {
    parse_enum(s).map_err(|e| format!("{e}; use both, left or right"))
}

fn parse_anaglyph(s: &str) -> Result<AnaglyphMethod, String> {
    parse_enum(s).map_err(|e| format!("{e}; use dubois, color, half_color, gray or wimmer"))
}
