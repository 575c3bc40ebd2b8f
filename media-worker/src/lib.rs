//! parallax media-worker: the two ffmpeg steps around the per-segment conversion.
//!
//! - **Chunking** ([`chunk`]): probe the uploaded source ([`probe`]), refuse what cannot or
//!   must not be converted (with a stable error code on the job), split the video stream at
//!   clean keyframes by stream copy into MKV segments of about `--segment-secs`, upload them,
//!   save the [`manifest::Manifest`], and send one `SegmentTask` per segment. A re-render job
//!   (`Job::rerender_of`) is neither probed nor cut: it gets the source job's segments and
//!   their stored depth (see [`chunk`]'s "Re-renders").
//! - **Reassembly** ([`reassemble`]): once every segment is converted, concatenate the
//!   converted segments without re-encoding and mux every audio and subtitle track of the
//!   original upload back in (MP4 with faststart where the streams fit MP4, MKV otherwise).
//! - [`mp4`] and [`mkv`]: the container work done in-process (reading MP4/MOV indexes,
//!   writing Matroska segments, joining converted segments), where a process per step would
//!   cost more than the step.
//! - [`worker`]: the chunking and reassembly handlers that drive both, run by core's
//!   queue-worker runtime (heartbeat, panic boundary, retry-or-fail classification, graceful
//!   shutdown: [`parallax_core::worker`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use media_worker::{probe, settings::Settings};
//! let settings = Settings::default();
//! let info = probe::inspect(std::path::Path::new("movie.mp4"), &settings).await?;
//! println!("{} frames", info.info.video.frame_count);
//! # Ok(()) }
//! ```

pub mod chunk;
pub mod failure;
pub mod manifest;
pub mod mkv;
pub mod mp4;
pub mod probe;
pub mod reassemble;
pub mod settings;
pub mod trigger;
pub mod worker;

/// Runs `f` on every item, at most `n` at a time, stopping at the first error; results in
/// order.
pub(crate) async fn try_batched<T, R, E, Fut>(
    items: Vec<T>,
    n: usize,
    f: impl Fn(T) -> Fut,
) -> Result<Vec<R>, E>
where
    Fut: std::future::Future<Output = Result<R, E>>,
{
    let mut out = Vec::with_capacity(items.len());
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        let batch: Vec<Fut> = it.by_ref().take(n.max(1)).map(&f).collect();
        out.extend(futures::future::try_join_all(batch).await?);
    }
    Ok(out)
}
