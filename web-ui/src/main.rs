//! web-ui: see the README. This first cut parses its configuration, builds the configured
//! adapters and waits for a shutdown signal.

use anyhow::Context as _;
use clap::Parser;
use parallax_core::{backends::Backends, config::CommonArgs, telemetry};

/// parallax web-ui.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.common.log_format);
    let _backends = Backends::from_config(&cli.common)
        .await
        .context("building the storage and queue adapters")?;
    tracing::info!(adapter = ?cli.common.storage_adapter, "web-ui started");
    telemetry::shutdown_signal().await;
    Ok(())
}
