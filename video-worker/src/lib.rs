//! video-worker: converts video segments from 2D to 3D.
//!
//! - [`infer`]: the segment worker (`video-worker infer`, the default), a handler on core's
//!   queue-worker runtime: receives a `SegmentTask`, downloads the segment, converts it
//!   through a [`converter::SegmentConverter`], uploads the result and reports a
//!   `SegmentOutput` (media-worker's completion trigger takes it from there).
//! - [`converter`]: the seam between the worker loop and the conversion engine
//!   (`parallax-engine`, its production implementation).

pub mod convert;
pub mod converter;
pub mod infer;
pub mod routing;
pub mod seam;
