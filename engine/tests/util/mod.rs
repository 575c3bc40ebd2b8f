//! The engine tests' kit, what every test file shares instead of setting it up again:
//! - `models`: the tiny test models, and engines and configurations on them;
//! - `clips`: ffmpeg, and the clips the tests convert (lavfi sources, lossless with fixed
//!   keyframes, cut into segments as media-worker cuts them);
//! - `media`: what a test reads back from a file (ffprobe entries, sizes, packet times,
//!   decoded frames);
//! - `requests`: the tests' conversion request, and the state a conversion ends with.
//!
//! Each test binary uses part of it.

#![allow(dead_code, unused_imports)]

mod clips;
mod media;
mod models;
mod requests;

pub use clips::*;
pub use media::*;
pub use models::*;
pub use requests::*;
