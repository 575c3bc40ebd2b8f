//! What parallax's tests and benchmarks share:
//!
//! - [`media`]: the clip maker (sample clips generated with ffmpeg) and measurements of
//!   results (frame counts, frame times, stream spans) with ffprobe;
//! - [`wait`]: waiting for a state with a deadline and a readable timeout message, never a
//!   sleep;
//! - [`backends`]: a local adapter set in a temporary DATA_DIR that lives as long as it;
//! - [`jobs`]: jobs and segment tasks in the states worker tests start from, and draining a
//!   queue;
//! - [`results`]: the benchmark results file, which every benchmark merges its figures into
//!   and the one table of figures is written from.
//!
//! A dev crate: only tests, benchmarks and the launcher (`make demo`'s sample clip) use it.

pub mod backends;
pub mod jobs;
pub mod media;
pub mod results;
pub mod wait;

pub use backends::TempBackends;
pub use wait::wait_until;
