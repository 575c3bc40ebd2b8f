//! The local parallax fleet as one command, `parallax-fleet` (`make demo`, `make up`, the
//! fleet part of `make bench`), and the pieces the end-to-end tests drive it with: separate
//! web-ui, media-worker and video-worker processes on one DATA_DIR (or on AWS emulators)
//! started, watched and restarted by [`fleet`]; a [`client`] that uses web-ui's public HTTP
//! API exactly as the browser does; and the [`timeline`] of where a job's time went, read
//! back from the processes' logs.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use parallax_launcher::{Client, Fleet, FleetConfig};
//! let mut fleet = Fleet::start(FleetConfig::local("/tmp/parallax-data")).await?;
//! let client = Client::new(fleet.url());
//! let job = client.submit("clip.mp4".as_ref(), "A clip", "full_sbs").await?;
//! let state = client.wait(&job, std::time::Duration::from_secs(600), |_| {}).await?;
//! assert_eq!(state.status(), "completed");
//! fleet.stop(std::time::Duration::from_secs(20));
//! # Ok(()) }
//! ```

pub mod client;
pub mod fleet;
pub mod timeline;

pub use client::Client;
pub use fleet::{Fleet, FleetConfig};
