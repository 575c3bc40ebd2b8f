//! Which depth models the running video-workers hold: each worker renews one small object
//! per model it holds (`keys::model_holder`, the Unix time of the renewal); a fresh note means
//! some running worker holds that model. Workers read it to pass a task on or to tell a job
//! that nobody can serve it (see video-worker's `routing`); the web-ui shows it beside each
//! catalogue model.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Renews this worker's note for each of `names` until `shutdown`; a failed write is logged
/// and tried again at the next renewal.
pub async fn renew_notes(
    storage: Arc<dyn ObjectStorage>,
    names: Vec<String>,
    timing: HolderTiming,
    shutdown: CancellationToken,
) {
    if names.is_empty() {
        return;
    }
    loop {
        let now = unix_now().to_string();
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
            Ok(at) => unix_now().saturating_sub(at) <= fresh_for.as_secs(),
            Err(_) => false,
        },
        Err(crate::Error::NotFound { .. }) => false,
        Err(e) => {
            tracing::warn!(model = %name, error = %e, "could not read the model's holder note");
            true
        }
    }
}
