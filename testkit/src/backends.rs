//! A whole local adapter set (SQLite + files) in a fresh temporary DATA_DIR, for tests that
//! drive handlers, routers or stores without a fleet. The folder lives exactly as long as the
//! adapters, so a test cannot drop it early by mistake, and is removed afterwards.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use parallax_core::backends::Backends;
use parallax_core::clock::{self, Clock};
use parallax_core::config::CommonArgs;

/// [`Backends`] on the local adapters over a temporary DATA_DIR that it owns. Derefs to the
/// [`Backends`], so `b.jobs`, `b.storage` and `b.queue(..)` work as on the real thing.
#[derive(Debug)]
pub struct TempBackends {
    backends: Backends,
    args: CommonArgs,
    // Dropped after the adapters (fields drop in order): the database closes first.
    dir: tempfile::TempDir,
}

impl TempBackends {
    /// The local adapters with their defaults ([`CommonArgs::local`]).
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// The local adapters after `configure` has changed their settings (queue timeouts,
    /// receive counts, public URL, ...); `data_dir` is set to the temporary folder.
    pub async fn with(configure: impl FnOnce(&mut CommonArgs)) -> Self {
        Self::with_clock(clock::system(), configure).await
    }

    /// [`TempBackends::with`] with the local adapters reading `clock` (a
    /// [`TestClock`](parallax_core::clock::TestClock) that the test moves, so that a
    /// visibility timeout or a wait runs out at once).
    pub async fn with_clock(
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut CommonArgs),
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("parallax-test-")
            .tempdir()
            .expect("a temporary DATA_DIR");
        let mut args = CommonArgs::local(dir.path());
        configure(&mut args);
        args.data_dir = dir.path().to_owned();
        let backends = Backends::from_config_with_clock(&args, clock)
            .await
            .unwrap_or_else(|e| panic!("local adapters in {}: {e}", dir.path().display()));
        Self {
            backends,
            args,
            dir,
        }
    }

    /// The DATA_DIR (`parallax.db`, `objects/`, ...).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The settings the adapters were built from (to start a worker on the same DATA_DIR).
    pub fn args(&self) -> &CommonArgs {
        &self.args
    }

    /// The adapter set.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }
}

impl Deref for TempBackends {
    type Target = Backends;
    fn deref(&self) -> &Backends {
        &self.backends
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parallax_core::clock::TestClock;
    use parallax_core::keys::QueueName;
    use parallax_core::model::{ConversionSettings, Job, StereoMode};
    use std::time::Duration;

    #[tokio::test]
    async fn the_folder_lives_as_long_as_the_adapters() {
        let b = TempBackends::with(|a| a.queue_max_receives = 7).await;
        let dir = b.path().to_owned();
        assert_eq!(b.args().queue_max_receives, 7);
        let job = Job::new("kept", StereoMode::FullSbs, ConversionSettings::default());
        b.jobs.put(&job).await.unwrap();
        assert!(dir.join("parallax.db").exists());
        assert_eq!(
            b.jobs.get(&job.job_id).await.unwrap().unwrap().title,
            "kept"
        );
        drop(b);
        assert!(!dir.exists(), "the DATA_DIR is removed with the adapters");
    }

    #[tokio::test]
    async fn the_adapters_read_the_clock_they_are_given() {
        let clock = TestClock::new();
        let b = TempBackends::with_clock(Arc::new(clock.clone()), |a| {
            a.queue_visibility_timeout_secs = 600;
            a.queue_wait_secs = 0;
        })
        .await;
        let q = b.queue(QueueName::Segments);
        q.sender.send("task").await.unwrap();
        assert_eq!(q.receiver.receive(1).await.unwrap().len(), 1);
        assert!(q.receiver.receive(1).await.unwrap().is_empty(), "leased");
        clock.advance(Duration::from_secs(601));
        let again = q.receiver.receive(1).await.unwrap();
        assert_eq!(again.len(), 1, "the lease ran out on the test clock");
        assert_eq!(again[0].receive_count, 2);
    }
}
