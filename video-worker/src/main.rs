//! video-worker: converts segments from 2D to 3D (`infer`, also with no subcommand) and
//! single files by hand (`convert`). `models` lists, downloads and verifies depth models.
//! (The completion trigger needs no GPU and runs in media-worker.)

mod models;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use parallax_core::worker::shutdown_token;
use parallax_core::{backends::Backends, config::CommonArgs, telemetry};
use parallax_engine::Engine;
use video_worker::convert::{self, EngineArgs};
use video_worker::infer::{InferConfig, InferWorker};
use video_worker::routing::HeldModels;

/// parallax video-worker: depth inference and stereo rendering per segment. With no
/// subcommand, runs the segment worker (`infer`).
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: InferArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The segment worker (the default): receive SegmentTasks, convert, report SegmentOutputs.
    Infer(InferArgs),
    /// Convert one file from 2D to 3D on this machine, with a progress bar.
    Convert(convert::ConvertArgs),
    /// List, download (checked by sha256) and verify the depth models of models/catalogue.toml.
    Models(models::ModelsArgs),
}

#[derive(Debug, Clone, Args)]
struct InferArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    infer: InferFlags,
}

/// The segment worker's flags.
#[derive(Debug, Clone, Args)]
struct InferFlags {
    /// Segments this process converts at once (each one uses every core for its depth model
    /// and warp, so 1 is right for most hosts).
    #[arg(long, env = "INFER_CONCURRENCY", default_value_t = 1)]
    infer_concurrency: usize,

    /// Start a slot's next segment (download, probe, seam warm-up) while the current one's
    /// encoder drains and its result is checked and uploaded, instead of after. `false` runs
    /// strictly one segment after the other.
    #[arg(long, env = "INFER_OVERLAP", default_value_t = true, action = clap::ArgAction::Set)]
    infer_overlap: bool,

    /// Folder for per-segment scratch files (downloaded and converted segments); the system
    /// temp folder when unset. Needs room for about three segments per conversion slot.
    #[arg(long, env = "WORK_DIR")]
    work_dir: Option<PathBuf>,

    /// Most ffmpeg/ffprobe processes running at once in this process (a conversion runs a
    /// decoder and an encoder side by side). Default: twice the number of cores, at least
    /// four per conversion slot (six with INFER_OVERLAP).
    #[arg(long, env = "FFMPEG_CONCURRENCY")]
    ffmpeg_concurrency: Option<usize>,

    /// Catalogue models this worker holds besides its default (--model), by name, comma
    /// separated: jobs whose `settings.model` names one of them can be converted here. Each
    /// file must be in --models-dir and match its checksum (`video-worker models fetch NAME`).
    #[arg(long, env = "WORKER_MODELS", value_delimiter = ',')]
    models: Vec<String>,

    /// The model catalogue: the names jobs may ask for.
    #[arg(long, env = "MODEL_CATALOGUE", default_value = parallax_core::catalogue::DEFAULT_PATH)]
    catalogue: PathBuf,

    /// The folder that holds the catalogue's model files.
    #[arg(long, env = "MODELS_DIR", default_value = "models")]
    models_dir: PathBuf,

    /// Seconds a job may wait for a worker holding the model it names, while no running
    /// worker holds it, before it fails with `no-worker-for-model`.
    #[arg(long, env = "MODEL_WAIT_SECS", default_value_t = 1800)]
    model_wait_secs: u64,

    /// Seconds the segments in hand may still run after SIGTERM before they are released
    /// for another worker (keep it below the orchestrator's stop timeout; 0 releases them at
    /// once).
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
}

impl InferFlags {
    /// Checks the flags against each other; the message says what to change.
    fn validate(&self, engine: &EngineArgs) -> anyhow::Result<()> {
        if self.infer_concurrency == 0 {
            anyhow::bail!("--infer-concurrency (INFER_CONCURRENCY) must be at least 1");
        }
        if let Some(n) = self.ffmpeg_concurrency {
            let need = self.processes_per_slot() * self.infer_concurrency;
            if n < need {
                anyhow::bail!(
                    "--ffmpeg-concurrency (FFMPEG_CONCURRENCY) {n} is too low for --infer-concurrency {}: each conversion runs several ffmpeg processes at once and would wait forever; use at least {need}",
                    self.infer_concurrency
                );
            }
        }
        if engine.batch_size == 0 {
            anyhow::bail!("--batch-size (DEPTH_BATCH_SIZE) must be at least 1");
        }
        if engine.intra_threads == Some(0) {
            anyhow::bail!("--intra-threads (ORT_INTRA_THREADS) must be at least 1, or unset to use every core");
        }
        if let Some(r) = engine.depth_resolution {
            if !(14..=2048).contains(&r) {
                anyhow::bail!(
                    "--depth-resolution (DEPTH_RESOLUTION) {r} is out of range: use 14..=2048 pixels"
                );
            }
        }
        if !engine.model.is_file() {
            anyhow::bail!(
                "the depth model {} does not exist: pass --model (DEPTH_MODEL) or run from the repository root, where models/default-depth.onnx is",
                engine.model.display()
            );
        }
        Ok(())
    }

    fn config(&self, common: &CommonArgs) -> InferConfig {
        let mut cfg = InferConfig::from_common(common);
        cfg.concurrency = self.infer_concurrency;
        cfg.overlap = self.infer_overlap;
        cfg.work_dir = self.work_dir.clone();
        cfg.model_wait = Duration::from_secs(self.model_wait_secs);
        cfg.grace = Duration::from_secs(self.shutdown_grace_secs);
        cfg
    }

    /// Loads the default model and every model of `--models`, each checked against the
    /// catalogue and its contract before any task is taken.
    fn held_models(&self, engine: &EngineArgs) -> anyhow::Result<HeldModels> {
        use parallax_core::catalogue::{check, Catalogue, FileState};
        let catalogue = match Catalogue::load(&self.catalogue) {
            Ok(c) => Some(c),
            Err(e) if self.models.is_empty() => {
                tracing::warn!(error = %e, "no model catalogue: jobs that name a model are passed on to other workers");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let default_entry = catalogue.as_ref().and_then(|c| {
            let file = engine.model.file_name()?;
            c.models
                .iter()
                .find(|m| std::ffi::OsStr::new(&m.file) == file)
        });
        let mut default_args = engine.clone();
        default_args.window = engine
            .window
            .or(default_entry.and_then(|m| m.window).map(|w| w as usize));
        let default = load_engine(&default_args)?;
        let default_name = default_entry.map(|m| m.name.clone());
        let mut held = HeldModels::new(default, default_name);
        if let Some(c) = &catalogue {
            held = held.with_known(c.models.iter().map(|m| m.name.clone()));
        }
        for name in &self.models {
            if held.names().any(|n| n == name) {
                continue;
            }
            let c = catalogue.as_ref().expect("loaded when --models is given");
            let entry = c.get(name)?;
            let path = self.models_dir.join(&entry.file);
            match check(entry, &self.models_dir)? {
                FileState::Missing => anyhow::bail!(
                    "--models names {name}, but {} is not there: run `video-worker models fetch {name}` (or put the file there and run `video-worker models verify`)",
                    path.display()
                ),
                FileState::Mismatch { sha256, .. } => anyhow::bail!(
                    "--models names {name}, but {} does not match the catalogue's checksum (sha256 {sha256}): fetch it again with `video-worker models fetch {name} --force`",
                    path.display()
                ),
                FileState::Verified => {}
                FileState::Unpinned { sha256, .. } => tracing::warn!(
                    model = %name, %sha256,
                    "the catalogue pins no checksum for this model; using the file as it is"
                ),
            }
            let mut args = engine.clone();
            args.model = path;
            args.window = entry.window.map(|w| w as usize);
            held = held.with(name.clone(), load_engine(&args)?);
        }
        Ok(held)
    }

    /// ffmpeg/ffprobe processes one conversion slot may need at once: a conversion runs up to
    /// four (the encoder, a decoder, the stored depth's writer or reader, a probe); with
    /// overlap, the finishing segment may still run its encoder and a check.
    fn processes_per_slot(&self) -> usize {
        if self.infer_overlap {
            6
        } else {
            4
        }
    }

    fn set_process_limit(&self) {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let n = self
            .ffmpeg_concurrency
            .unwrap_or((2 * cores).max(self.processes_per_slot() * self.infer_concurrency));
        parallax_media::process::set_concurrency_limit(n);
    }
}

fn load_engine(args: &EngineArgs) -> anyhow::Result<Arc<Engine>> {
    let engine = Engine::load(&args.config())
        .with_context(|| format!("loading the depth model {}", args.model.display()))?;
    tracing::info!(model = %args.model.display(), provider = ?args.provider, "depth model loaded");
    Ok(Arc::new(engine))
}

async fn backends(common: &CommonArgs) -> anyhow::Result<Backends> {
    Backends::from_config(common)
        .await
        .context("building the storage and queue adapters")
}

async fn run_infer(
    common: &CommonArgs,
    engine: &EngineArgs,
    flags: &InferFlags,
) -> anyhow::Result<()> {
    flags.validate(engine)?;
    flags.set_process_limit();
    let models = flags.held_models(engine)?;
    let backends = backends(common).await?;
    let worker = InferWorker::with_models(&backends, models, flags.config(common));
    tracing::info!(adapter = ?common.storage_adapter, "video-worker started");
    worker.run(shutdown_token()).await;
    tracing::info!("video-worker stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Convert(args)) => {
            telemetry::init_tracing(parallax_core::config::LogFormat::Pretty);
            convert::run(args).await
        }
        Some(Command::Models(args)) => models::run(args).await,
        Some(Command::Infer(a)) => {
            telemetry::init_tracing(a.common.log_format);
            run_infer(&a.common, &a.engine, &a.infer).await
        }
        None => {
            telemetry::init_tracing(cli.run.common.log_format);
            run_infer(&cli.run.common, &cli.run.engine, &cli.run.infer).await
        }
    }
}
