//! The conversion engine: one video file in, its stereoscopic 3D version out. The same code
//! serves `video-worker convert IN OUT` on a whole file and the segment worker on each segment.
//!
//! Per frame: decode (ffmpeg, YUV 4:2:0 through a pipe) -> depth (an ONNX model through ONNX
//! Runtime, fed a downscaled copy, in batches) -> temporal normalisation (EMA, reset at scene
//! cuts) -> stereo warp and layout ([`stereo`]) -> encode (ffmpeg, YUV through a pipe).
//! Decoding, inference, rendering and encoding run at the same time on separate threads,
//! handing reusable buffers to each other; nothing is allocated per frame.
//!
//! Depth once, render many: a conversion can store its depth maps ([`ConvertRequest::depth_out`])
//! and a later one render the same input from them ([`ConvertRequest::depth_in`]) in another
//! layout or with other stereo settings, without running the model (see `depthfile`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use parallax_engine::{ConvertRequest, Engine, EngineConfig};
//! let engine = Engine::load(&EngineConfig::new("models/default-depth.onnx"))?;
//! let report = engine
//!     .convert(&ConvertRequest::new("in.mp4", "out.mkv"), &|frames| println!("{frames}"))
//!     .await?;
//! println!("{} frames", report.frames);
//!
//! // Store the depth, then render the same clip again as half SBS from it: no model run.
//! let mut first = ConvertRequest::new("in.mp4", "out_LR.mkv");
//! first.depth_out = Some("depth.mkv".into());
//! engine.convert(&first, &|_| {}).await?;
//! let mut again = ConvertRequest::new("in.mp4", "out_Half_LR.mkv");
//! again.mode = parallax_core::model::StereoMode::HalfSbs;
//! again.depth_in = Some("depth.mkv".into());
//! engine.convert(&again, &|_| {}).await?;
//! # Ok(()) }
//! ```

pub mod colour;
pub mod cpu;
mod depthfile;
pub mod fastdepth;
mod feed;
mod io;
mod metadata;
pub mod model;
mod pipeline;
pub mod preprocess;
pub mod probe;
mod rawmkv;
pub mod stereo;
pub mod temporal;
pub mod window;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parallax_core::model::{ConversionSettings, StereoMode};

use model::DepthModel;
pub use temporal::NormState;

/// The input itself is unusable (not a video, undecodable, a picture the engine cannot
/// map, ...): retrying cannot help, so a worker fails the job with this message instead of
/// retrying. The engine returns it inside `anyhow`; any other error is worth a retry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

impl BadInput {
    /// The bad-input reason somewhere in `err`'s chain, if there is one.
    pub fn find(err: &anyhow::Error) -> Option<&BadInput> {
        // A context (`anyhow::Error::context(BadInput(..))`) is found by downcasting the
        // error itself; a cause, in the chain.
        err.downcast_ref::<BadInput>()
            .or_else(|| err.chain().find_map(|e| e.downcast_ref::<BadInput>()))
    }

    /// The stable code of a bad input that has one (an unsupported picture), else `fallback`.
    pub fn code(err: &anyhow::Error, fallback: &'static str) -> &'static str {
        err.downcast_ref::<parallax_core::picture::Unsupported>()
            .map_or(fallback, |u| u.code)
    }
}

/// The depth model's short side when neither the job nor the engine sets one (Depth
/// Anything's native 518 px).
pub const DEFAULT_DEPTH_RESOLUTION: u32 = 518;

/// Where the depth model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// NVIDIA CUDA (needs the onnxruntime-gpu library); falls back to CPU, logged.
    Cuda,
    /// NVIDIA TensorRT, then CUDA; falls back to CPU, logged.
    Tensorrt,
}

/// How the engine is set up (per process; the per-job knobs are in [`ConvertRequest`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The ONNX depth model.
    pub model: PathBuf,
    /// Execution provider.
    pub provider: ExecutionProvider,
    /// Default short side of the model input (a job's `depth_resolution` wins); `None` = 518.
    pub depth_resolution: Option<u32>,
    /// Frames per model run (a fixed-batch model uses its own).
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads; `None` lets ONNX Runtime choose (one per core).
    pub intra_threads: Option<usize>,
    /// Encoder preset (`medium` for x264/x265, `p4` for NVENC when unset).
    pub preset: Option<String>,
    /// Longest time one ffmpeg process may run.
    pub ffmpeg_timeout: Duration,
    /// Frames per window for a temporal model that leaves its window `T` open (a fixed `T`
    /// wins); `None` = [`model::DEFAULT_WINDOW`]. Per-frame models ignore it.
    pub window: Option<usize>,
}

impl EngineConfig {
    /// Defaults for `model`: CPU, 518 px, batch 1, ONNX Runtime's threads, 6 h per process.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            provider: ExecutionProvider::Cpu,
            depth_resolution: None,
            batch_size: 1,
            intra_threads: None,
            preset: None,
            ffmpeg_timeout: Duration::from_secs(6 * 3600),
            window: None,
        }
    }
}

/// One conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertRequest {
    /// Input video (its first video stream is converted; other streams are ignored).
    pub input: PathBuf,
    /// Output video (video only); its extension picks the container (`.mkv`, `.mp4`).
    pub output: PathBuf,
    /// Layout.
    pub mode: StereoMode,
    /// Quality knobs.
    pub settings: ConversionSettings,
    /// Where the depth normalisation starts, so a segment's seam has no depth jump.
    pub seam: SeamStart,
    /// Gets the normalisation state once the last frame's depth is done and the input has
    /// decoded cleanly (before encoding finishes), for the next segment to resume from.
    pub seam_end: Option<StateSink>,
    /// Frames the input must have (checked).
    pub expected_frames: Option<u64>,
    /// Write `preview-sbs.jpg` and `preview-depth.png` of the first frame here.
    pub preview_dir: Option<PathBuf>,
    /// Also store this conversion's depth maps here, exactly as the renderer receives them
    /// (after temporal normalisation, seams included), as a lossless 16-bit grey video
    /// (FFV1 in Matroska, `gray16le`, levels `round(z * 65535)`) at the depth map's own
    /// resolution, one frame per input frame. Written whole or not at all. The renderer then
    /// gets the stored levels themselves, so a re-render from the file reproduces this
    /// conversion's depth exactly.
    pub depth_out: Option<PathBuf>,
    /// Render from depth maps stored by an earlier conversion of the same input (see
    /// `depth_out`) instead of running the model: the model is not run at all, and `seam`
    /// and `seam_end` do not apply (the stored depth is already normalised and continuous at
    /// the seams), nor do the depth-making settings (`depth_resolution`, `ema_decay`). Its
    /// frame count must equal the input's, else the conversion fails as a [`BadInput`].
    pub depth_in: Option<PathBuf>,
}

impl ConvertRequest {
    /// Full SBS with default settings, no warm-up, no checks, no previews, depth from the
    /// model and not stored.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            output: output.into(),
            mode: StereoMode::FullSbs,
            settings: ConversionSettings::default(),
            seam: SeamStart::Fresh,
            seam_end: None,
            expected_frames: None,
            preview_dir: None,
            depth_out: None,
            depth_in: None,
        }
    }
}

/// Where a conversion's depth normalisation starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SeamStart {
    /// From nothing: the start of a video.
    #[default]
    Fresh,
    /// Run the last `frames` frames of `previous` (the previous segment) through depth and
    /// normalisation first, without output: close to where a single pass would be.
    Warmup {
        /// The previous segment's file.
        previous: PathBuf,
        /// How many of its last frames.
        frames: u32,
    },
    /// Continue from the state the previous segment's conversion ended with: exactly where a
    /// single pass would be, with no warm-up work.
    Resume(NormState),
}

/// Receives the normalisation state a conversion ends with (see [`ConvertRequest::seam_end`]).
#[derive(Clone)]
pub struct StateSink(Arc<dyn Fn(NormState) + Send + Sync>);

impl StateSink {
    /// A sink calling `f`.
    pub fn new(f: impl Fn(NormState) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Hands `state` over.
    pub fn put(&self, state: NormState) {
        (self.0)(state)
    }
}

impl std::fmt::Debug for StateSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSink")
    }
}

impl PartialEq for StateSink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    /// Frames written (equal to the input's).
    pub frames: u64,
    /// The side-by-side preview of the first frame, when asked for.
    pub preview_sbs: Option<PathBuf>,
    /// The depth map of the first frame, when asked for.
    pub preview_depth: Option<PathBuf>,
    /// What the conversion did to the source's picture (tone-mapped HDR, deinterlaced,
    /// chroma or range converted), in words; empty for a plain source.
    pub notes: Vec<String>,
    /// The stored depth file, when [`ConvertRequest::depth_out`] was asked for (written).
    pub depth: Option<PathBuf>,
}

/// The conversion engine: holds the loaded model, reused for every conversion.
#[derive(Debug, Clone)]
pub struct Engine {
    model: Arc<DepthModel>,
    cfg: EngineConfig,
}

impl Engine {
    /// Loads the model and checks it against the contract; a model that does not fit is
    /// refused with a message saying what is wrong.
    pub fn load(cfg: &EngineConfig) -> anyhow::Result<Engine> {
        if cfg.batch_size == 0 {
            anyhow::bail!("batch size must be at least 1");
        }
        let model = DepthModel::load(&cfg.model, cfg.provider, cfg.intra_threads)?;
        Ok(Engine {
            model: Arc::new(model),
            cfg: cfg.clone(),
        })
    }

    /// The loaded model.
    pub fn model(&self) -> &DepthModel {
        &self.model
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Converts `req.input` into `req.output`; `progress` gets the number of frames written
    /// so far. An unusable input (not a video, undecodable, wrong frame count, invalid
    /// settings) is a [`BadInput`] in the error chain; anything else is worth a retry.
    /// Dropping the future stops the conversion and kills its ffmpeg processes.
    pub async fn convert(
        &self,
        req: &ConvertRequest,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<ConvertReport> {
        pipeline::convert(self, req, progress).await
    }
}
