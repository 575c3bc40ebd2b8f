//! parallax's media layer: everything that runs ffmpeg or ffprobe, or reads a container, lives
//! here, so that the workers and the engine share one process wrapper and one view of a file.
//!
//! - [`process`]: the one wrapper every ffmpeg/ffprobe process goes through (timeouts, kill
//!   on drop, a concurrency limit, stderr tails in errors).
//! - [`schema`]: the one typed view of ffprobe's JSON; [`probe`] runs ffprobe for it.
//! - [`packets`]: the video packets without decoding: the scan (frame count, keyframes,
//!   clean cuts) and [`packets::count_frames`], the one frame counter.
//! - [`mp4`]: an in-process reader of MP4/MOV indexes that answers in ffprobe's terms.
//! - [`mkv`]: Matroska segments written from an MP4 index, and converted segments joined in
//!   place.
//!
//! Errors are one [`Error`] type that names the file and what was being done.
//!
//! ```no_run
//! # async fn demo() -> parallax_media::Result<()> {
//! use std::{path::Path, time::Duration};
//! use parallax_media::{packets, probe};
//! let path = Path::new("movie.mkv");
//! let json = probe::format_and_streams(path, Duration::from_secs(60)).await?;
//! let frames = packets::count_frames(path, Duration::from_secs(60)).await?;
//! println!("{} streams, {frames} frames", json.streams.len());
//! # Ok(()) }
//! ```

pub mod error;
pub mod mkv;
pub mod mp4;
pub mod packets;
pub mod probe;
pub mod process;
pub mod schema;

pub use error::{Error, Result};
