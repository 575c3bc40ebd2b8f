//! The conversion engine end to end: model contract, geometry, layouts, hole filling, frame
//! counts and timestamps, seams between segments, the source's picture, bad input and
//! previews. Clips are made with ffmpeg (testsrc2) and models by `models/make_models.py`,
//! both through the test kit (`tests/util`).
//!
//! One test binary, a module per concern: `contract` (the models), `render` (the renderer on
//! frames made here), `layouts` (what a conversion writes), `seams`, `picture` (colour, HDR,
//! interlace, bit depth) and `bad_input`.

#[path = "../util/mod.rs"]
mod util;

mod bad_input;
mod contract;
mod layouts;
mod picture;
mod render;
mod seams;
