//! media-worker: chunks uploaded sources into segments, notices when a job's segments are all
//! converted (the completion trigger) and reassembles converted segments into the final
//! video. See the crate docs of the library and the README.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser};
use media_worker::settings::MediaArgs;
use media_worker::trigger::{Trigger, TriggerConfig};
use media_worker::worker::{Step, Worker};
use parallax_core::{backends::Backends, config::CommonArgs, telemetry};

/// Which loops to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
enum Mode {
    /// Only the chunking loop (probe, split, send segment tasks).
    Chunk,
    /// Only the completion trigger (record segment outputs, request reassembly exactly
    /// once) and its reconciler.
    Trigger,
    /// Only the reassembly loop (concat converted segments, mux the original audio).
    Reassemble,
    /// Every loop in one process (the default): chunking, the completion trigger and
    /// reassembly.
    All,
}

/// parallax media-worker: splits uploaded videos into segments for the video-workers,
/// notices when a job's segments are all converted, and stitches the converted segments
/// back together with the original audio and subtitles. No GPU needed.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    media: MediaArgs,
    #[command(flatten)]
    trigger: TriggerFlags,
}

/// The completion trigger's flags.
#[derive(Debug, Clone, Args)]
struct TriggerFlags {
    /// Segment outputs received per poll (1..=10); each is handled in its own task.
    #[arg(long, env = "TRIGGER_BATCH", default_value_t = 10)]
    trigger_batch: usize,

    /// Seconds between reconciler passes, which re-send reassembly requests that were claimed
    /// but never acted on (the claiming process died before sending).
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 60)]
    reconcile_interval_secs: u64,

    /// Seconds after its claim that a job which has not started reassembling gets its
    /// reassembly request re-sent. Keep it longer than media-worker usually needs to pick a
    /// request up, or busy periods cause duplicate (harmless, wasted) requests.
    #[arg(long, env = "REASSEMBLY_RESEND_AFTER_SECS", default_value_t = 300)]
    reassembly_resend_after_secs: u64,

    /// In-progress jobs one reconciler pass looks at, newest first.
    #[arg(long, env = "RECONCILE_SCAN_LIMIT", default_value_t = 1000)]
    reconcile_scan_limit: usize,
}

impl TriggerFlags {
    /// Checks the flags against each other; the message says what to change.
    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=10).contains(&self.trigger_batch) {
            anyhow::bail!("--trigger-batch (TRIGGER_BATCH) must be between 1 and 10");
        }
        if self.reconcile_interval_secs == 0 {
            anyhow::bail!("--reconcile-interval-secs (RECONCILE_INTERVAL_SECS) must be at least 1");
        }
        if self.reassembly_resend_after_secs < self.reconcile_interval_secs {
            anyhow::bail!(
                "--reassembly-resend-after-secs ({}) must not be shorter than --reconcile-interval-secs ({})",
                self.reassembly_resend_after_secs,
                self.reconcile_interval_secs
            );
        }
        if self.reconcile_scan_limit == 0 {
            anyhow::bail!("--reconcile-scan-limit (RECONCILE_SCAN_LIMIT) must be at least 1");
        }
        Ok(())
    }

    fn config(&self, common: &CommonArgs) -> TriggerConfig {
        TriggerConfig {
            batch: self.trigger_batch,
            reconcile_interval: Duration::from_secs(self.reconcile_interval_secs),
            resend_after: Duration::from_secs(self.reassembly_resend_after_secs),
            reconcile_scan_limit: self.reconcile_scan_limit,
            max_receives: common.queue_settings().max_receives,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.common.log_format);
    let settings = cli.media.settings()?;
    cli.trigger.validate()?;
    parallax_media::process::set_concurrency_limit(cli.media.max_tool_processes);
    std::fs::create_dir_all(&settings.work_dir)
        .with_context(|| format!("creating WORK_DIR {}", settings.work_dir.display()))?;
    let backends = Backends::from_config(&cli.common)
        .await
        .context("building the storage and queue adapters")?;
    let trigger = Trigger::new(&backends, cli.trigger.config(&cli.common));
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
    if matches!(mode, Mode::Trigger | Mode::All) {
        let (t, s) = (trigger.clone(), shutdown.clone());
        loops.push(tokio::spawn(async move { t.run(s).await }));
        let (t, s) = (trigger, shutdown.clone());
        loops.push(tokio::spawn(async move { t.run_reconciler(s).await }));
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
