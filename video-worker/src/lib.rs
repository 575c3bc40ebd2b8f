//! video-worker: converts video segments from 2D to 3D and notices when a job's segments are
//! all converted.
//!
//! - [`infer`]: the segment worker (`video-worker infer`): receives a `SegmentTask`, downloads
//!   the segment, converts it through a [`converter::SegmentConverter`], uploads the result and
//!   reports a `SegmentOutput`.
//! - [`trigger`]: the completion trigger (`video-worker trigger`): records each
//!   `SegmentOutput` as a completion and sends exactly one `ReassemblyRequest` per job, plus a
//!   reconciler that re-sends requests whose sender died between claim and send.
//! - [`converter`]: the seam between the worker loop and the conversion engine
//!   (`parallax-engine`, its production implementation).

pub mod convert;
pub mod converter;
pub mod infer;
pub mod routing;
pub mod seam;
pub mod trigger;
pub mod worker;
