//! The wall clock the local adapters read: when a queue message becomes visible again, when a
//! presigned URL expires, when a reassembly was claimed, how old a model holder's note is.
//!
//! Deployments use [`SystemClock`]. Tests give the adapters a [`TestClock`] and move it, so
//! that a visibility timeout or a URL's expiry runs out at once instead of after real seconds
//! of waiting. The AWS services keep their own clocks; a test clock does not reach them.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use parallax_core::clock::{Clock, TestClock};
//!
//! let clock = TestClock::new();
//! let shared: Arc<dyn Clock> = Arc::new(clock.clone());
//! let before = shared.now();
//! clock.advance(Duration::from_secs(60));
//! assert!(shared.now() - before >= chrono::Duration::seconds(60));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of wall-clock time.
///
/// # Contract
/// - `now` never goes backwards for one clock value (and its clones).
/// - Processes that share local state (the SQLite database under DATA_DIR) must read clocks
///   that agree, which the system clock does; a [`TestClock`] is for one process's tests.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock: what every deployment uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock as the adapters hold it.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that tests move forward.
///
/// It starts at the wall time it was made and then runs with tokio's clock: real time in an
/// ordinary runtime, test time in a paused one (`#[tokio::test(start_paused = true)]`), where
/// `tokio::time::advance` moves this clock and every timer together. [`TestClock::advance`]
/// adds a jump on top, for tests that run in real time but must not wait for a timeout.
/// Clones share their jumps.
#[derive(Debug, Clone)]
pub struct TestClock {
    origin: DateTime<Utc>,
    started: tokio::time::Instant,
    skipped_micros: Arc<AtomicU64>,
}

impl TestClock {
    /// A clock that reads the current wall time until it is moved.
    pub fn new() -> Self {
        Self {
            origin: Utc::now(),
            started: tokio::time::Instant::now(),
            skipped_micros: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves this clock (and its clones) forward by `by`, at once.
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.skipped_micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let ran = self.started.elapsed();
        let skipped = Duration::from_micros(self.skipped_micros.load(Ordering::SeqCst));
        let since = chrono::Duration::from_std(ran + skipped).unwrap_or(chrono::Duration::MAX);
        self.origin
            .checked_add_signed(since)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Microseconds since the epoch on `clock`, the time unit of the local database.
pub(crate) fn micros(clock: &dyn Clock) -> i64 {
    clock.now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_every_clone() {
        let clock = TestClock::new();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(90));
        let moved = other.now() - before;
        assert!(moved >= chrono::Duration::seconds(90), "{moved}");
        assert!(moved < chrono::Duration::seconds(100), "{moved}");
    }

    #[test]
    fn starts_at_the_wall_time() {
        let before = Utc::now();
        let at = TestClock::new().now();
        assert!(at >= before && at - before < chrono::Duration::seconds(5));
    }

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let clock = TestClock::new();
        let before = clock.now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - before, chrono::Duration::seconds(3600));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(clock.now() - before, chrono::Duration::seconds(3660));
    }
}
