//! The embedded database behind the local adapters: one SQLite file in WAL mode under
//! DATA_DIR, shared safely by every process of the local fleet (SQLite's file locks plus a
//! busy timeout; read-modify-write steps run in `BEGIN IMMEDIATE` transactions).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    job_id       TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    completed_at INTEGER,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_completed ON jobs (completed_at DESC, job_id DESC)
    WHERE status = 'completed';
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at DESC);
CREATE TABLE IF NOT EXISTS completions (
    job_id        TEXT NOT NULL,
    segment_index INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (job_id, segment_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reassembly_claims (
    job_id     TEXT PRIMARY KEY,
    claimed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reassembly_resends (
    job_id    TEXT PRIMARY KEY,
    resent_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at, id);
"#;

/// A small pool of connections to the local database.
#[derive(Clone)]
pub struct Db {
    conns: Arc<Vec<Mutex<Connection>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

fn open_one(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

impl Db {
    /// Opens (and creates, with its schema) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let first = open_one(path)?;
        first.execute_batch(SCHEMA)?;
        let mut conns = vec![Mutex::new(first)];
        for _ in 1..4 {
            conns.push(Mutex::new(open_one(path)?));
        }
        Ok(Self {
            conns: Arc::new(conns),
            path: path.to_owned(),
        })
    }

    /// Runs `f` on a pooled connection on the blocking thread pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conns = self.conns.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conns
                .iter()
                .find_map(|m| m.try_lock().ok())
                .unwrap_or_else(|| {
                    let i = rand::random_range(0..conns.len());
                    conns[i].lock().unwrap_or_else(|p| p.into_inner())
                });
            let mut guard = guard;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::backend("sqlite", e))?
    }
}
