//! media-worker: chunks uploaded sources into segments and reassembles converted segments
//! into the final video. See the crate docs of the library and the README.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use media_worker::settings::MediaArgs;
use media_worker::worker::{Step, Worker};
use parallax_core::{backends::Backends, config::CommonArgs, telemetry};

/// Which loops to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
enum Mode {
    /// Only the chunking loop (probe, split, send segment tasks).
    Chunk,
    /// Only the reassembly loop (concat converted segments, mux the original audio).
    Reassemble,
    /// Both loops in one process (the default).
    All,
}

/// parallax media-worker: splits uploaded videos into segments for the video-workers and
/// stitches the converted segments back together with the original audio and subtitles.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    media: MediaArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.common.log_format);
    let settings = cli.media.settings()?;
    parallax_media::process::set_concurrency_limit(cli.media.max_tool_processes);
    std::fs::create_dir_all(&settings.work_dir)
        .with_context(|| format!("creating WORK_DIR {}", settings.work_dir.display()))?;
    let backends = Backends::from_config(&cli.common)
        .await
        .context("building the storage and queue adapters")?;
    let worker = Arc::new(Worker {
        backends,
        settings: Arc::new(settings),
        visibility_timeout: cli.common.queue_settings().visibility_timeout,
        max_receives: cli.common.queue_settings().max_receives,
    });
    let shutdown = parallax_core::worker::shutdown_token();
    let mode = cli.mode.unwrap_or(Mode::All);
    tracing::info!(adapter = ?cli.common.storage_adapter, ?mode, "media-worker started");
    let mut loops = Vec::new();
    if matches!(mode, Mode::Chunk | Mode::All) {
        loops.push(tokio::spawn(
            worker.clone().run(Step::Chunking, shutdown.clone()),
        ));
    }
    if matches!(mode, Mode::Reassemble | Mode::All) {
        loops.push(tokio::spawn(
            worker.clone().run(Step::Reassembly, shutdown.clone()),
        ));
    }
    for l in loops {
        l.await.context("a worker loop panicked")?;
    }
    tracing::info!("media-worker stopped");
    Ok(())
}
