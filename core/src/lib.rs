//! parallax's core: what the fleet (web-ui, media-worker, video-worker) shares.
//!
//! - [`model`]: jobs, segment completions and queue messages (serde).
//! - The interfaces, each with a local adapter (SQLite and files under DATA_DIR) and an AWS
//!   adapter behind the `aws` feature: [`jobs::JobStore`],
//!   [`completions::SegmentCompletionStore`], [`queue::QueueSender`] /
//!   [`queue::QueueReceiver`], [`storage::ObjectStorage`], [`links::OperatorLinksProvider`].
//! - [`backends::Backends::from_config`]: the one factory that builds an adapter set.
//! - `conformance` (feature `conformance`): the contract tests every adapter must pass.
//! - [`worker`]: the one queue-worker runtime (handler trait, reject/retry, heartbeat,
//!   shutdown) that every queue loop runs on.
//!
//! ```no_run
//! # async fn demo() -> parallax_core::Result<()> {
//! use parallax_core::{backends::Backends, config::CommonArgs, model::*};
//! let backends = Backends::from_config(&CommonArgs::local("./data")).await?;
//! let job = Job::new("holiday", StereoMode::FullSbs, ConversionSettings::default());
//! backends.jobs.put(&job).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod backends;
pub mod catalogue;
pub mod clock;
pub mod completions;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod holders;
pub mod jobs;
pub mod keys;
pub mod links;
pub mod model;
pub mod picture;
pub mod queue;
mod sqlite;
pub mod storage;
pub mod telemetry;
pub mod worker;

pub use error::{Error, Result};
pub use sqlite::Db;
