//! Waiting for a state with a deadline, instead of sleeping and hoping: a test polls a
//! condition until it holds and, when it never does, fails with what it waited for and what
//! it saw last.
//!
//! The condition is an async closure that answers with a [`Check`]: `bool` (holds or not),
//! `Option<T>` (`Some` gives the value waited for) or `Result<T, E>` (`Err` says what was
//! seen instead, and ends up in the timeout message).
//!
//! ```no_run
//! # async fn demo(queue_len: impl Fn() -> std::future::Ready<usize>) {
//! use std::time::Duration;
//! use parallax_testkit::wait::wait_until;
//! wait_until(Duration::from_secs(30), "the queue drained", || async {
//!     match queue_len().await {
//!         0 => Ok(()),
//!         n => Err(format!("{n} messages left")),
//!     }
//! })
//! .await;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is asked again unless told otherwise.
pub const POLL: Duration = Duration::from_millis(100);

/// What a condition answers: whether it holds, and what was seen when it does not.
pub trait Check {
    /// What the wait gives back once the condition holds.
    type Output;
    /// `Ok` with the value when the condition holds; else what was seen, if it says.
    fn check(self) -> Result<Self::Output, Option<String>>;
}

impl Check for bool {
    type Output = ();
    fn check(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Check for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: fmt::Display> Check for Result<T, E> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// A wait that ended before its condition held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// What was waited for.
    pub what: String,
    /// How long.
    pub within: Duration,
    /// What the condition said last, when it says (an `Err`'s text).
    pub last_seen: Option<String>,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:.1} s waiting for {}",
            self.within.as_secs_f64(),
            self.what
        )?;
        if let Some(seen) = &self.last_seen {
            write!(f, "; last seen: {seen}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TimedOut {}

/// Asks `condition` every [`POLL`] until it holds, for at most `within`; panics with
/// "timed out after .. waiting for `what`; last seen: .." when it never does.
pub async fn wait_until<C, F, Fut>(within: Duration, what: &str, condition: F) -> C::Output
where
    C: Check,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    match try_wait_until(within, POLL, what, condition).await {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// [`wait_until`] asking every `every`, giving the timeout back as an error (for a caller
/// that adds to the message, e.g. the logs of the processes under test).
pub async fn try_wait_until<C, F, Fut>(
    within: Duration,
    every: Duration,
    what: &str,
    mut condition: F,
) -> Result<C::Output, TimedOut>
where
    C: Check,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    let deadline = Instant::now() + within;
    loop {
        // Asked once more after the deadline passes, so a slow condition gets a last say.
        let late = Instant::now() >= deadline;
        match condition().await.check() {
            Ok(v) => return Ok(v),
            Err(last_seen) if late => {
                return Err(TimedOut {
                    what: what.to_owned(),
                    within,
                    last_seen,
                })
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`wait_until`] for code without an async runtime (a test that drives a child process
/// with `std`): asks `condition` every [`POLL`], blocking the thread in between.
pub fn wait_until_blocking<C: Check>(
    within: Duration,
    what: &str,
    mut condition: impl FnMut() -> C,
) -> C::Output {
    let deadline = Instant::now() + within;
    loop {
        let late = Instant::now() >= deadline;
        match condition().check() {
            Ok(v) => return v,
            Err(last_seen) if late => panic!(
                "{}",
                TimedOut {
                    what: what.to_owned(),
                    within,
                    last_seen,
                }
            ),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn gives_the_value_once_the_condition_holds() {
        let asked = AtomicU32::new(0);
        let got = try_wait_until(Duration::from_secs(10), Duration::ZERO, "three", || async {
            let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
            (n >= 3).then_some(n)
        })
        .await;
        assert_eq!(got, Ok(3));
    }

    #[tokio::test]
    async fn a_timeout_says_what_was_waited_for_and_what_was_seen() {
        let err = try_wait_until(
            Duration::ZERO,
            Duration::ZERO,
            "the queue drained",
            || async { Err::<(), _>("4 messages left") },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 0.0 s waiting for the queue drained; last seen: 4 messages left"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 0.0 s waiting for never")]
    async fn wait_until_panics_with_the_message() {
        wait_until(Duration::ZERO, "never", || async { false }).await;
    }

    #[test]
    fn the_blocking_wait_asks_again_until_it_holds() {
        let mut n = 0;
        let got = wait_until_blocking(Duration::from_secs(10), "two", || {
            n += 1;
            if n == 2 {
                Ok(n)
            } else {
                Err(format!("{n}"))
            }
        });
        assert_eq!(got, 2);
    }

    #[test]
    #[should_panic(expected = "waiting for never; last seen: nope")]
    fn the_blocking_wait_panics_with_the_last_answer() {
        wait_until_blocking(Duration::ZERO, "never", || Err::<(), _>("nope"));
    }
}
