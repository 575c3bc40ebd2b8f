//! The seam between the segment worker and the conversion engine. The worker only needs
//! "turn this segment file into that 3D file and say how many frames it wrote"; keeping that
//! behind a trait lets the worker's own tests exercise every queue path quickly with a cheap
//! stand-in, while production uses the engine itself ([`parallax_engine::Engine`]). The work
//! and its report are the engine's own types.

use std::fmt::Debug;

use async_trait::async_trait;

pub use parallax_engine::{
    BadInput, ConvertReport, ConvertRequest, Engine, NormState, SeamStart, StateSink,
};

/// Converts one segment.
///
/// # Contract
/// - Writes `work.output` whole or fails; the same work converted twice gives the same
///   result (a redelivered task rewrites the same output key).
/// - `report.frames` is counted from the written file, not from what was sent to it.
/// - `progress` is called with the number of frames done so far.
/// - An unusable input is reported as a [`BadInput`] in the error chain; everything else is
///   taken as worth a retry.
/// - With `work.depth_in`, no depth model runs; a converter that stores depth for
///   `work.depth_out` says so in `report.depth` (the worker uploads what it names).
/// - Cancel-safe: dropping the future stops the conversion (child processes are killed).
#[async_trait]
pub trait SegmentConverter: Send + Sync + Debug + 'static {
    /// Converts `work.input` into `work.output`.
    async fn convert(
        &self,
        work: &ConvertRequest,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<ConvertReport>;
}

#[async_trait]
impl SegmentConverter for Engine {
    async fn convert(
        &self,
        work: &ConvertRequest,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<ConvertReport> {
        Engine::convert(self, work, progress).await
    }
}
