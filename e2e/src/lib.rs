//! The whole parallax fleet driven from outside, the way a user and an operator see it:
//! separate web-ui, media-worker and video-worker processes on one DATA_DIR (or on AWS
//! emulators), a client that uses web-ui's public HTTP API exactly as the browser does, and
//! media helpers that make and measure clips. `make demo`, `make up`, the end-to-end and
//! fault tests and the fleet benchmark are all built on this.

pub mod client;
pub mod fleet;
pub mod media;
pub mod timeline;

pub use client::Client;
pub use fleet::{Fleet, FleetConfig};
