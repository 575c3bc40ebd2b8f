//! Matroska written and joined in-process.
//!
//! - [`write_segment`]: a segment of an MP4/MOV source, straight from its index (chunking
//!   without running ffmpeg's segment muxer; packet for packet what it would write).
//! - [`join_in_place`]: converted segments read by ffmpeg as one Matroska file, each placed
//!   at its start on the source timeline: what the concat demuxer does, without opening and
//!   probing every segment (for each one it decodes pictures to learn the stream's
//!   parameters). Only the new headers are written; the frames are byte ranges of the
//!   segments. Segments that do not share one video track description (codec, size, codec
//!   private data) or lack sized clusters give `Ok(Err(reason))`, and reassembly uses the
//!   concat demuxer instead.
//!
//! `ebml` holds the element format both use.

mod ebml;
mod join;
#[cfg(test)]
mod tests;
mod write;

pub use join::{join_in_place, Why};
pub use write::write_segment;
