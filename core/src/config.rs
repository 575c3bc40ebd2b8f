//! Settings every binary shares, as a clap `Args` block to flatten into each binary's CLI.
//! Every flag has an environment fallback.

use std::path::PathBuf;
use std::time::Duration;

use crate::queue::QueueSettings;

/// Which adapter set to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdapterKind {
    /// SQLite + files under DATA_DIR: one machine, no cloud account.
    Local,
    /// S3, SQS and DynamoDB (needs the `aws` cargo feature).
    Aws,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-friendly, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Shared flags of web-ui, media-worker and video-worker.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Adapter set: `local` keeps all state under --data-dir; `aws` uses S3, SQS and DynamoDB.
    #[arg(long, env = "STORAGE_ADAPTER", value_enum, default_value = "local")]
    pub storage_adapter: AdapterKind,

    /// Folder for the local adapters' database, objects and presign secret.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Base URL that local presigned object URLs start with (web-ui's address as browsers
    /// reach it). Unset: relative `/objects/...` URLs, resolved against the page.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Secret for signing local presigned URLs. Unset: generated once into
    /// DATA_DIR/presign.key and shared by every process using that DATA_DIR.
    #[arg(long, env = "PRESIGN_SECRET", hide_env_values = true)]
    pub presign_secret: Option<String>,

    /// Seconds a received queue message stays invisible before it is handed out again.
    #[arg(long, env = "QUEUE_VISIBILITY_TIMEOUT_SECS", default_value_t = 60)]
    pub queue_visibility_timeout_secs: u64,

    /// Receives after which a message moves to its dead-letter queue.
    #[arg(long, env = "QUEUE_MAX_RECEIVES", default_value_t = 4)]
    pub queue_max_receives: u32,

    /// Seconds a receive waits for a message when the queue is empty (long poll).
    #[arg(long, env = "QUEUE_WAIT_SECS", default_value_t = 1)]
    pub queue_wait_secs: u64,

    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// Prefix of every AWS resource name (queues, tables, log groups); also switches on the
    /// operator links (logs, cost) on AWS.
    #[arg(long, env = "NAME_PREFIX", default_value = "parallax")]
    pub name_prefix: String,

    /// S3 bucket for objects (aws adapter).
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Endpoint override for every AWS service (an emulator such as moto or LocalStack).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
}

impl CommonArgs {
    /// Defaults for tests and tools: local adapters under `data_dir`.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            storage_adapter: AdapterKind::Local,
            data_dir: data_dir.into(),
            public_url: None,
            presign_secret: None,
            queue_visibility_timeout_secs: 60,
            queue_max_receives: 4,
            queue_wait_secs: 1,
            log_format: LogFormat::Pretty,
            name_prefix: "parallax".to_owned(),
            s3_bucket: None,
            aws_endpoint_url: None,
        }
    }

    /// The queue behaviour these flags describe.
    pub fn queue_settings(&self) -> QueueSettings {
        QueueSettings {
            visibility_timeout: Duration::from_secs(self.queue_visibility_timeout_secs.max(1)),
            max_receives: self.queue_max_receives.max(1),
            wait_time: Duration::from_secs(self.queue_wait_secs),
        }
    }
}
