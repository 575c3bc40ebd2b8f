//! parallax media-worker: the two ffmpeg steps around the per-segment conversion.
//!
//! - **Chunking** ([`chunk`]): inspect the uploaded source ([`inspect`]: the facts from
//!   [`parallax_media`], the checks here), refuse what cannot or must not be converted (with
//!   a stable error code on the job), plan cuts at clean keyframes ([`plan`]), split the video
//!   stream by stream copy into MKV segments of about `--segment-secs` ([`split`]), upload
//!   them, save the [`manifest::Manifest`] (with the [`source::SourceInfo`]), and send one
//!   `SegmentTask` per segment. A re-render job
//!   (`Job::rerender_of`) is neither probed nor cut: it gets the source job's segments and
//!   their stored depth (see [`chunk`]'s "Re-renders").
//! - **Reassembly** ([`reassemble`]): once every segment is converted, concatenate the
//!   converted segments without re-encoding and mux every audio and subtitle track of the
//!   original upload back in (MP4 with faststart where the streams fit MP4, MKV otherwise).
//! - The container work done in-process (reading MP4/MOV indexes, writing Matroska segments,
//!   joining converted segments) lives in [`parallax_media::mp4`] and [`parallax_media::mkv`].
//! - [`worker`]: the chunking and reassembly handlers that drive both, run by core's
//!   queue-worker runtime (heartbeat, panic boundary, retry-or-fail classification, graceful
//!   shutdown: [`parallax_core::worker`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use media_worker::{inspect, settings::Settings};
//! let settings = Settings::default();
//! let info = inspect::inspect(std::path::Path::new("movie.mp4"), &settings).await?;
//! println!("{} frames", info.info.video.frame_count);
//! # Ok(()) }
//! ```

mod batch;
pub mod chunk;
pub mod failure;
pub mod inspect;
pub mod manifest;
pub mod plan;
pub mod reassemble;
pub mod settings;
pub mod source;
pub mod split;
pub mod trigger;
pub mod worker;
