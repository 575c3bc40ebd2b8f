//! A whole local adapter set (SQLite + files) in a fresh temporary DATA_DIR, for tests that
//! drive handlers, routers or stores without a fleet. The folder lives exactly as long as the
//! adapters, so a test cannot drop it early by mistake, and is removed afterwards.

use std::ops::Deref;
use std::path::Path;

use parallax_core::backends::Backends;
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
        let dir = tempfile::Builder::new()
            .prefix("parallax-test-")
            .tempdir()
            .expect("a temporary DATA_DIR");
        let mut args = CommonArgs::local(dir.path());
        configure(&mut args);
        args.data_dir = dir.path().to_owned();
        let backends = Backends::from_config(&args)
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
    use parallax_core::model::{ConversionSettings, Job, StereoMode};

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
}
