//! The seam between the segment worker and the conversion engine. The worker only needs
//! "turn this segment file into that 3D file and say how many frames it wrote"; keeping that
//! behind a trait lets the worker's own tests exercise every queue path quickly with a cheap
//! stand-in, while production uses the depth engine.

use std::fmt::Debug;
use std::path::PathBuf;

use async_trait::async_trait;
use parallax_core::model::{ConversionSettings, StereoMode};

pub use crate::engine::{NormState, SeamStart, StateSink};

/// One segment to convert.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentWork {
    /// The source segment (video only).
    pub input: PathBuf,
    /// Where to write the converted segment (Matroska, video only).
    pub output: PathBuf,
    /// 3D layout.
    pub mode: StereoMode,
    /// Conversion knobs.
    pub settings: ConversionSettings,
    /// Where depth normalisation starts, so it is continuous across the seam with the
    /// previous segment: fresh, a warm-up on the previous segment's tail, or the state the
    /// previous segment ended with.
    pub seam: SeamStart,
    /// Gets the state this segment's normalisation ends with, for the next segment.
    pub seam_end: Option<StateSink>,
    /// Frames the segment must have, when known.
    pub expected_frames: Option<u64>,
    /// Where to write `preview-sbs.jpg` and `preview-depth.png` of the first frame, if wanted.
    pub preview_dir: Option<PathBuf>,
    /// Where to store the segment's normalised depth maps, for re-renders (see
    /// [`crate::engine::ConvertRequest::depth_out`]), if wanted.
    pub depth_out: Option<PathBuf>,
    /// Render from depth stored by an earlier conversion of this segment instead of running
    /// the model (see [`crate::engine::ConvertRequest::depth_in`]); `seam` does not apply.
    pub depth_in: Option<PathBuf>,
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// Frames in the written file, counted from the file itself (the worker relies on it).
    pub frames: u64,
    /// The side-by-side preview image, when asked for and written.
    pub preview_sbs: Option<PathBuf>,
    /// The depth preview image, when asked for and written.
    pub preview_depth: Option<PathBuf>,
    /// What the conversion did to the source's picture, in words (see
    /// [`crate::engine::ConvertReport::notes`]).
    pub notes: Vec<String>,
    /// The stored depth file, when `work.depth_out` was asked for and written.
    pub depth: Option<PathBuf>,
}

/// The input itself is unusable (not a video, undecodable, ...): retrying cannot help, so the
/// worker fails the job with this message instead of retrying. Converters return it (inside
/// `anyhow`) for such cases; any other error counts as an infrastructure failure.
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
        work: &SegmentWork,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<SegmentReport>;
}
