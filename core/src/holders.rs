//! Which depth models the running video-workers hold: each worker renews one small object
//! per model it holds (`keys::model_holder`, the Unix time of the renewal); a fresh note means
//! some running worker holds that model. Workers read it to pass a task on or to tell a job
//! that nobody can serve it (see video-worker's `routing`); the web-ui shows it beside each
//! catalogue model. Times are read from a [`Clock`] (the system clock unless a test moves
//! one, e.g. [`Backends::clock`](crate::backends::Backends::clock)).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::keys;
use crate::storage::ObjectStorage;

/// How often a worker renews its notes, and how old a note may be and still count.
#[derive(Debug, Clone, Copy)]
pub struct HolderTiming {
    /// Between renewals.
    pub renew_every: Duration,
    /// A note older than this is stale: its worker is gone.
    pub fresh_for: Duration,
}

impl Default for HolderTiming {
    fn default() -> Self {
        Self {
            renew_every: Duration::from_secs(20),
            fresh_for: Duration::from_secs(60),
        }
    }
}

fn unix_secs(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

/// Renews this worker's note for each of `names` until `shutdown`; a failed write is logged
/// and tried again at the next renewal.
pub async fn renew_notes(
    storage: Arc<dyn ObjectStorage>,
    names: Vec<String>,
    timing: HolderTiming,
    shutdown: CancellationToken,
) {
    renew_notes_on(Arc::new(SystemClock), storage, names, timing, shutdown).await
}

/// [`renew_notes`], stamping each note with `clock`'s time.
pub async fn renew_notes_on(
    clock: Arc<dyn Clock>,
    storage: Arc<dyn ObjectStorage>,
    names: Vec<String>,
    timing: HolderTiming,
    shutdown: CancellationToken,
) {
    if names.is_empty() {
        return;
    }
    loop {
        let now = unix_secs(clock.now()).to_string();
        for name in &names {
            let body = Box::pin(std::io::Cursor::new(now.clone().into_bytes()));
            if let Err(e) = storage.put_stream(&keys::model_holder(name), body).await {
                tracing::warn!(model = %name, error = %e, "could not renew the note that this worker holds the model");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(timing.renew_every) => {}
        }
    }
}

/// Whether some running worker holds `name`: its note was renewed within `fresh_for`. A note
/// that cannot be read counts as held (the task keeps circulating rather than failing a job
/// over a storage hiccup).
pub async fn held_by_a_running_worker(
    storage: &dyn ObjectStorage,
    name: &str,
    fresh_for: Duration,
) -> bool {
    held_by_a_running_worker_at(storage, name, fresh_for, Utc::now()).await
}

/// [`held_by_a_running_worker`] as of `now`.
pub async fn held_by_a_running_worker_at(
    storage: &dyn ObjectStorage,
    name: &str,
    fresh_for: Duration,
    now: DateTime<Utc>,
) -> bool {
    let key = keys::model_holder(name);
    match storage.head(&key).await {
        Ok(None) => return false,
        Ok(Some(_)) => {}
        Err(e) => {
            tracing::warn!(model = %name, error = %e, "could not read the model's holder note");
            return true;
        }
    }
    let mut text = String::new();
    let read = async {
        let mut s = storage.get_stream(&key).await?;
        s.read_to_string(&mut text)
            .await
            .map_err(|e| crate::Error::io(std::path::Path::new(&key), e))?;
        Ok::<_, crate::Error>(())
    };
    match read.await {
        Ok(()) => match text.trim().parse::<u64>() {
            Ok(at) => unix_secs(now).saturating_sub(at) <= fresh_for.as_secs(),
            Err(_) => false,
        },
        Err(crate::Error::NotFound { .. }) => false,
        Err(e) => {
            tracing::warn!(model = %name, error = %e, "could not read the model's holder note");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::storage::local::LocalObjectStorage;
    use crate::storage::presign::Presigner;

    #[tokio::test]
    async fn a_note_is_fresh_until_it_is_older_than_fresh_for_on_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn ObjectStorage> = Arc::new(
            LocalObjectStorage::new(dir.path(), None, Presigner::new(b"k".to_vec()), None).unwrap(),
        );
        let clock = TestClock::new();
        let timing = HolderTiming::default();
        let shutdown = CancellationToken::new();
        let renewing = tokio::spawn(renew_notes_on(
            Arc::new(clock.clone()),
            storage.clone(),
            vec!["depth-small".to_owned()],
            timing,
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while storage
            .head(&keys::model_holder("depth-small"))
            .await
            .unwrap()
            .is_none()
        {
            assert!(tokio::time::Instant::now() < deadline, "no note written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        renewing.await.unwrap();
        let fresh =
            |now| held_by_a_running_worker_at(&*storage, "depth-small", timing.fresh_for, now);
        assert!(fresh(clock.now()).await);
        clock.advance(timing.fresh_for - Duration::from_secs(5));
        assert!(fresh(clock.now()).await, "still within fresh_for");
        clock.advance(Duration::from_secs(10));
        assert!(!fresh(clock.now()).await, "older than fresh_for");
        assert!(
            !held_by_a_running_worker_at(&*storage, "nobody-has-it", timing.fresh_for, clock.now())
                .await
        );
    }
}
