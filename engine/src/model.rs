//! The depth model: an ONNX graph run through ONNX Runtime (`ort`, loaded at run time from
//! `ORT_DYLIB_PATH`). The model contract (Depth Anything V1/V2 exports; MiDaS differs only in
//! size) is checked when the model is loaded, and every name and size is read from the model:
//! one input `[N,3,H,W]` f32 (RGB/255 normalised with ImageNet mean/std), first output
//! `[N,H',W']` or `[N,1,H',W']` f32 relative inverse depth (larger = nearer). Fixed-size
//! exports get frames resized to what they declare; dynamic ones get the configured size.
//!
//! A second contract, for temporal models (Video Depth Anything exports), takes windows of
//! frames: input `[N,T,3,H,W]` with the same per-frame normalisation, output `[N,T,H',W']` or
//! `[N,T,1,H',W']`. The input's rank tells the two apart ([`ModelKind`]); the window length
//! `T` is fixed by the model or chosen by the engine (see `window`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context as _};
use ort::ep::ExecutionProvider as _;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, Value, ValueTypeMarker};

use super::ExecutionProvider;

/// The environment variable naming the ONNX Runtime library.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
fn environment() -> anyhow::Result<&'static ort::environment::Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        let path = std::env::var_os(ORT_DYLIB_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| {
                format!(
                    "{ORT_DYLIB_ENV} is not set: point it at ONNX Runtime's library \
                 (libonnxruntime.so.* from the onnxruntime PyPI wheel; `make venv` installs it \
                 and the Makefile exports the path)"
                )
            })?;
        if !path.is_file() {
            return Err(format!(
                "{ORT_DYLIB_ENV}={} does not exist: run `make venv` (it installs onnxruntime) \
                 or point {ORT_DYLIB_ENV} at a libonnxruntime.so",
                path.display()
            ));
        }
        let builder = ort::init_from(&path)
            .map_err(|e| format!("loading ONNX Runtime from {}: {e}", path.display()))?;
        builder
            .with_name("parallax")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("creating the ONNX Runtime environment: {e}"))
    });
    env.as_ref().map_err(|e| anyhow!("{e}"))
}

/// A dimension as the model declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Any size.
    Dynamic,
    /// Exactly this size.
    Fixed(usize),
}

impl Dim {
    fn from_i64(d: i64) -> Self {
        if d > 0 {
            Dim::Fixed(d as usize)
        } else {
            Dim::Dynamic
        }
    }
}

/// Which contract a model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// One frame at a time: input `[N,3,H,W]`, output `[N,H,W]` or `[N,1,H,W]`.
    PerFrame,
    /// Windows of frames: input `[N,T,3,H,W]`, output `[N,T,H,W]` or `[N,T,1,H,W]`, each
    /// window's depth on its own scale (aligned across windows by the engine).
    Temporal,
}

/// The window length a temporal model with a dynamic `T` gets when none is configured.
pub const DEFAULT_WINDOW: usize = 32;

/// What was read from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Per-frame or temporal.
    pub kind: ModelKind,
    /// Frames per window `T` (temporal models; `Fixed(1)` for per-frame ones).
    pub window: Dim,
    /// The input's name.
    pub input: String,
    /// The output's name.
    pub output: String,
    /// Batch dimension.
    pub batch: Dim,
    /// Input height.
    pub height: Dim,
    /// Input width.
    pub width: Dim,
    /// The input is float16 (an fp16 export): frames are given in half precision.
    pub half_input: bool,
    /// The output is float16: depth is read back in half precision.
    pub half_output: bool,
}

/// A loaded depth model.
#[derive(Debug)]
pub struct DepthModel {
    session: Mutex<Session>,
    info: ModelInfo,
    path: PathBuf,
    runs: AtomicU64,
    provider: ExecutionProvider,
}

fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|&d| if d > 0 { d.to_string() } else { "?".to_owned() })
        .collect();
    format!("[{}]", dims.join(","))
}

impl DepthModel {
    /// Loads `path` with the execution provider (falling back to CPU, logged, when it cannot
    /// be used) and checks the model contract.
    pub fn load(
        path: &Path,
        provider: ExecutionProvider,
        intra_threads: Option<usize>,
    ) -> anyhow::Result<Self> {
        if !path.is_file() {
            bail!(
                "depth model {} does not exist (the default model is models/default-depth.onnx; \
                 see the README's \"Depth models\")",
                path.display()
            );
        }
        let env = environment()?;
        let build = |with_ep: bool| -> anyhow::Result<Session> {
            let mut b = Session::builder(env).map_err(|e| anyhow!("session builder: {e}"))?;
            // ONNX Runtime's threads spin while a run is going (handing work from one operator
            // to the next without a sleep and a wake-up; sleeping costs the ViT-S/14 DPT model
            // 3-6% of its speed here) and stop spinning the moment the run ends: the cores are
            // shared with the decoder, the encoder and the warp between runs.
            for (key, value) in [
                ("session.intra_op.allow_spinning", "1"),
                ("session.force_spinning_stop", "1"),
            ] {
                b = b
                    .with_config_entry(key, value)
                    .map_err(|e| anyhow!("configuring the session ({key}): {e}"))?;
            }
            if let Some(n) = intra_threads {
                b = b
                    .with_intra_threads(n)
                    .map_err(|e| anyhow!("setting {n} intra-op threads: {e}"))?;
            }
            if with_ep {
                let eps = match provider {
                    ExecutionProvider::Cpu => vec![],
                    ExecutionProvider::Cuda => {
                        vec![ort::ep::CUDA::default().build().error_on_failure()]
                    }
                    ExecutionProvider::Tensorrt => vec![
                        ort::ep::TensorRT::default().build().error_on_failure(),
                        ort::ep::CUDA::default().build().error_on_failure(),
                    ],
                };
                if !eps.is_empty() {
                    b = b
                        .with_execution_providers(eps)
                        .map_err(|e| anyhow!("registering the {provider:?} provider: {e}"))?;
                }
            }
            b.commit_from_file(path)
                .map_err(|e| anyhow!("loading {} as an ONNX model: {e}", path.display()))
        };
        let mut in_use = provider;
        let session = match provider {
            ExecutionProvider::Cpu => build(false)?,
            _ => {
                let available = match provider {
                    ExecutionProvider::Cuda => ort::ep::CUDA::is_available(),
                    _ => ort::ep::TensorRT::is_available(),
                }
                .unwrap_or(false);
                if !available {
                    tracing::warn!(
                        ?provider,
                        "this ONNX Runtime library has no {provider:?} execution provider \
                         (the GPU needs the onnxruntime-gpu wheel); falling back to CPU"
                    );
                    in_use = ExecutionProvider::Cpu;
                    build(false)?
                } else {
                    match build(true) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(?provider, error = %e, "the execution provider failed to start; falling back to CPU");
                            in_use = ExecutionProvider::Cpu;
                            build(false)?
                        }
                    }
                }
            }
        };
        let info = check_contract(&session)
            .with_context(|| format!("{} does not fit the depth-model contract", path.display()))?;
        tracing::info!(model = %path.display(), ?info, "depth model loaded");
        Ok(Self {
            session: Mutex::new(session),
            info,
            path: path.to_path_buf(),
            runs: AtomicU64::new(0),
            provider: in_use,
        })
    }

    /// What the model declares.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The execution provider the model runs on: the one asked for, or CPU after a fallback.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// How many times the model has been run (one run per batch) since it was loaded: a
    /// conversion from stored depth adds none.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// The input size (width, height) for frames of `frame_w` x `frame_h`: what a fixed-size
    /// model declares, else `short_side` (never more than the frame's own short side) on the
    /// short side, rounded to a multiple of 14, with the aspect ratio kept.
    pub fn input_size(&self, frame_w: usize, frame_h: usize, short_side: u32) -> (usize, usize) {
        const MULTIPLE: usize = 14;
        let round = |v: f64| ((v / MULTIPLE as f64).round() as usize).max(1) * MULTIPLE;
        let s = f64::from(short_side).min(frame_w.min(frame_h) as f64);
        let (aw, ah) = if frame_w >= frame_h {
            (round(s * frame_w as f64 / frame_h as f64), round(s))
        } else {
            (round(s), round(s * frame_h as f64 / frame_w as f64))
        };
        let w = match self.info.width {
            Dim::Fixed(w) => w,
            Dim::Dynamic => aw,
        };
        let h = match self.info.height {
            Dim::Fixed(h) => h,
            Dim::Dynamic => ah,
        };
        (w, h)
    }

    /// Per-frame or temporal.
    pub fn kind(&self) -> ModelKind {
        self.info.kind
    }

    /// The frames per model run of a temporal model: the `T` it declares, else `configured`
    /// (at least 1), else [`DEFAULT_WINDOW`]. 1 for a per-frame model.
    pub fn window(&self, configured: Option<usize>) -> usize {
        match (self.info.kind, self.info.window) {
            (ModelKind::PerFrame, _) => 1,
            (ModelKind::Temporal, Dim::Fixed(t)) => t,
            (ModelKind::Temporal, Dim::Dynamic) => configured.unwrap_or(DEFAULT_WINDOW).max(1),
        }
    }

    /// The batch size to use when `wanted` frames per batch are asked for.
    pub fn batch_size(&self, wanted: usize) -> usize {
        match self.info.batch {
            Dim::Fixed(n) => n,
            Dim::Dynamic => wanted.max(1),
        }
    }

    /// Runs the model on `input` (`n` frames of `[3,h,w]`); writes the `n` depth maps into
    /// `out` (resized as needed; its capacity is reused) and returns their (width, height).
    pub fn run(
        &self,
        input: &[f32],
        n: usize,
        size: (usize, usize),
        out: &mut Vec<f32>,
    ) -> anyhow::Result<(usize, usize)> {
        self.run_with(input, n, size, |data, depth_size| {
            out.clear();
            out.extend_from_slice(data);
            depth_size
        })
    }

    /// Runs the model on `input` (`n` frames of `[3,h,w]`) and calls `f` with the `n` depth
    /// maps (one slice, frame after frame) and their (width, height) while they are still
    /// the runtime's output: read in place, not copied. The session stays locked until `f`
    /// returns, so `f` should only compute.
    pub fn run_with<R>(
        &self,
        input: &[f32],
        n: usize,
        (w, h): (usize, usize),
        f: impl FnOnce(&[f32], (usize, usize)) -> R,
    ) -> anyhow::Result<R> {
        if self.info.kind != ModelKind::PerFrame {
            bail!("a temporal model runs on windows of frames, not on single frames");
        }
        self.run_input(vec![n, 3, h, w], input, n, 1, (w, h), f)
    }

    /// Runs a temporal model on `input` (`n` windows of `t` frames of `[3,h,w]`, window
    /// after window) and calls `f` with the `n * t` depth maps (frame after frame, in place
    /// in the runtime's output) and their (width, height). As [`DepthModel::run_with`].
    pub fn run_windows_with<R>(
        &self,
        input: &[f32],
        (n, t): (usize, usize),
        (w, h): (usize, usize),
        f: impl FnOnce(&[f32], (usize, usize)) -> R,
    ) -> anyhow::Result<R> {
        if self.info.kind != ModelKind::Temporal {
            bail!("a per-frame model runs on frames, not on windows of frames");
        }
        self.run_input(vec![n, t, 3, h, w], input, n, t, (w, h), f)
    }

    /// Makes the input tensor of `shape` from `input`: as it is, or in half precision for a
    /// model whose input is float16.
    #[allow(clippy::too_many_arguments)]
    fn run_input<R>(
        &self,
        shape: Vec<usize>,
        input: &[f32],
        n: usize,
        t: usize,
        size: (usize, usize),
        f: impl FnOnce(&[f32], (usize, usize)) -> R,
    ) -> anyhow::Result<R> {
        // Owned tensors: an IO binding takes a borrowed one only by copying it first.
        let bad = |e: ort::Error| anyhow!("making the input tensor: {e}");
        if self.info.half_input {
            let half: Vec<half::f16> = input.iter().map(|&v| half::f16::from_f32(v)).collect();
            let tensor = Tensor::from_array((shape, half)).map_err(bad)?;
            self.run_tensor(&tensor, n, t, size, f)
        } else {
            let tensor = Tensor::from_array((shape, input.to_vec())).map_err(bad)?;
            self.run_tensor(&tensor, n, t, size, f)
        }
    }

    /// Where the runtime puts the depth output: host memory for the CPU provider; page-locked
    /// host memory for CUDA and TensorRT, which the device copies into directly (faster than
    /// a copy into pageable memory, and no second copy afterwards).
    fn output_memory(&self) -> ort::Result<MemoryInfo<'static>> {
        match self.provider {
            ExecutionProvider::Cpu => MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            ),
            ExecutionProvider::Cuda | ExecutionProvider::Tensorrt => MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                0,
                AllocatorType::Device,
                MemoryType::CPUOutput,
            ),
        }
    }

    /// Runs the model on `tensor` (`n` batches of `t` frames) through an IO binding (the
    /// input bound as it is, only the depth output bound, in [`Self::output_memory`]) and
    /// checks the output's shape.
    fn run_tensor<T: ValueTypeMarker + ?Sized, R>(
        &self,
        tensor: &Value<T>,
        n: usize,
        t: usize,
        (w, h): (usize, usize),
        f: impl FnOnce(&[f32], (usize, usize)) -> R,
    ) -> anyhow::Result<R> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let mut session = self
            .session
            .lock()
            .map_err(|_| anyhow!("the model session was poisoned by a panic"))?;
        // Said only in errors.
        let what = || match self.info.kind {
            ModelKind::PerFrame => format!("{n} frame(s)"),
            ModelKind::Temporal => format!("{n} window(s) of {t} frames"),
        };
        let bind = |e: ort::Error| anyhow!("binding the depth model's input and output: {e}");
        let memory = self.output_memory().map_err(bind)?;
        let mut binding = session.create_binding().map_err(bind)?;
        binding.bind_input(&self.info.input, tensor).map_err(bind)?;
        binding
            .bind_output_to_device(&self.info.output, &memory)
            .map_err(bind)?;
        let outputs = session
            .run_binding(&binding)
            .map_err(|e| anyhow!("running the depth model on {} of {w}x{h}: {e}", what()))?;
        let read = |e: ort::Error| anyhow!("reading the depth output: {e}");
        let (shape, data): (&[i64], std::borrow::Cow<'_, [f32]>) = if self.info.half_output {
            let (shape, d) = outputs[0].try_extract_tensor::<half::f16>().map_err(read)?;
            (shape, d.iter().map(|v| v.to_f32()).collect())
        } else {
            let (shape, d) = outputs[0].try_extract_tensor::<f32>().map_err(read)?;
            (shape, std::borrow::Cow::Borrowed(d))
        };
        let dims: &[i64] = shape;
        let (on, oh, ow) = match (self.info.kind, dims) {
            (ModelKind::PerFrame, &[on, oh, ow] | &[on, 1, oh, ow]) => (on, oh, ow),
            // Windows of another length are refused below, as a wrong batch is.
            (ModelKind::Temporal, &[on, ot, oh, ow] | &[on, ot, 1, oh, ow]) => {
                (if ot as usize == t { on } else { -1 }, oh, ow)
            }
            (ModelKind::PerFrame, _) => bail!(
                "the depth output has shape {}; the contract needs [N,H,W] or [N,1,H,W]",
                shape_text(dims)
            ),
            (ModelKind::Temporal, _) => bail!(
                "the depth output has shape {}; the temporal contract needs [N,T,H,W] or \
                 [N,T,1,H,W]",
                shape_text(dims)
            ),
        };
        if on < 0 || on as usize != n || oh <= 0 || ow <= 0 {
            bail!(
                "the depth output has shape {} for {}",
                shape_text(dims),
                what()
            );
        }
        Ok(f(&data, (ow as usize, oh as usize)))
    }
}

fn check_contract(session: &Session) -> anyhow::Result<ModelInfo> {
    let inputs = session.inputs();
    if inputs.len() != 1 {
        let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
        bail!(
            "it has {} inputs ({}); a depth model takes exactly one image input [N,3,H,W]",
            inputs.len(),
            names.join(", ")
        );
    }
    let input = &inputs[0];
    let Some(shape) = input.dtype().tensor_shape() else {
        bail!("its input {:?} is not a tensor", input.name());
    };
    let shape: &[i64] = shape;
    let half_input = input.dtype().tensor_type() == Some(TensorElementType::Float16);
    if !half_input && input.dtype().tensor_type() != Some(TensorElementType::Float32) {
        bail!(
            "its input {:?} is {:?}; the contract needs float32 (or float16)",
            input.name(),
            input.dtype().tensor_type()
        );
    }
    let kind = match shape.len() {
        4 => ModelKind::PerFrame,
        5 => ModelKind::Temporal,
        _ => bail!(
            "its input {:?} has rank {} {}; the contract needs rank 4 [N,3,H,W] (batch, RGB \
             channels, height, width), or rank 5 [N,T,3,H,W] for a temporal model (windows of \
             T frames)",
            input.name(),
            shape.len(),
            shape_text(shape)
        ),
    };
    // The input's layout: [N,3,H,W], or [N,T,3,H,W] with the window T at 1.
    let (layout, c) = match kind {
        ModelKind::PerFrame => ("[N,3,H,W]", 1),
        ModelKind::Temporal => ("[N,T,3,H,W]", 2),
    };
    if shape[c] > 0 && shape[c] != 3 {
        bail!(
            "its input {:?} has {} channels {}; the contract needs 3 (RGB) as {layout}",
            input.name(),
            shape[c],
            shape_text(shape)
        );
    }
    let outputs = session.outputs();
    let Some(output) = outputs.first() else {
        bail!("it has no outputs");
    };
    let half_output = output.dtype().tensor_type() == Some(TensorElementType::Float16);
    if !half_output && output.dtype().tensor_type() != Some(TensorElementType::Float32) {
        bail!(
            "its output {:?} is {:?}; the contract needs a float32 (or float16) depth map",
            output.name(),
            output.dtype().tensor_type()
        );
    }
    if let Some(oshape) = output.dtype().tensor_shape() {
        let oshape: &[i64] = oshape;
        match kind {
            ModelKind::PerFrame => {
                let ok = oshape.len() == 3 || (oshape.len() == 4 && oshape[1] <= 1);
                if !ok {
                    bail!(
                        "its output {:?} has shape {}; the contract needs [N,H,W] or [N,1,H,W]",
                        output.name(),
                        shape_text(oshape)
                    );
                }
            }
            ModelKind::Temporal => {
                let ok = oshape.len() == 4 || (oshape.len() == 5 && oshape[2] <= 1);
                if !ok {
                    bail!(
                        "its output {:?} has shape {} for the temporal input {}; the temporal \
                         contract needs [N,T,H,W] or [N,T,1,H,W] (a depth map per frame of the \
                         window)",
                        output.name(),
                        shape_text(oshape),
                        shape_text(shape)
                    );
                }
                if shape[1] > 0 && oshape[1] > 0 && shape[1] != oshape[1] {
                    bail!(
                        "its input {:?} has windows of {} frames {} but its output {:?} has {} \
                         {}; the temporal contract needs a depth map per input frame (the same \
                         T)",
                        input.name(),
                        shape[1],
                        shape_text(shape),
                        output.name(),
                        oshape[1],
                        shape_text(oshape)
                    );
                }
            }
        }
    }
    let (batch, window, height, width) = match kind {
        ModelKind::PerFrame => (shape[0], 1, shape[2], shape[3]),
        ModelKind::Temporal => (shape[0], shape[1], shape[3], shape[4]),
    };
    Ok(ModelInfo {
        input: input.name().to_owned(),
        output: output.name().to_owned(),
        kind,
        window: Dim::from_i64(window),
        batch: Dim::from_i64(batch),
        height: Dim::from_i64(height),
        width: Dim::from_i64(width),
        half_input,
        half_output,
    })
}
