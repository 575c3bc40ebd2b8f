//! Hands a segment's final depth-normalisation state to the next segment of the same job when
//! one process converts both, one after the other (one worker, or one slot taking segments in
//! order). The next segment then resumes exactly where a single pass over the video would be,
//! with no warm-up: no download of the previous segment, no decoding of its tail, no depth
//! passes over frames that are not output.
//!
//! Everywhere else (another process or another slot converted the previous segment, it
//! failed, it is not near its end yet) the caller falls back to the warm-up on the previous
//! segment's tail, as before. A follower only waits for a predecessor that has already
//! reached its last frames ([`Handoff::ending`]); two slots converting neighbouring segments
//! side by side are never serialised.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use parallax_engine::NormState;

/// Entries older than this are forgotten (a follower arrives within seconds).
const KEEP: Duration = Duration::from_secs(30 * 60);
/// Longest wait for an ending predecessor's state before falling back to the warm-up.
const WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Running,
    Ending,
    Done(NormState),
    Gone,
}

/// A job's id and a segment index.
type SegmentKey = (String, u32);

/// The hand-overs of one process, keyed by job and segment index, with when each began.
#[derive(Debug, Default)]
pub struct Handoffs {
    slots: Mutex<HashMap<SegmentKey, (watch::Sender<Slot>, Instant)>>,
}

/// The converting side of a hand-over: says when the segment is ending and what state its
/// normalisation ended with. Dropped without [`Handoff::done`], it tells waiters to fall back.
#[derive(Debug)]
pub struct Handoff {
    tx: watch::Sender<Slot>,
}

impl Handoffs {
    /// Registers segment `index` of `job` as being converted here (replacing an earlier
    /// attempt's entry).
    pub fn begin(&self, job: &str, index: u32) -> Handoff {
        let (tx, _) = watch::channel(Slot::Running);
        let mut slots = self.slots.lock().expect("hand-over map poisoned");
        slots.retain(|_, (_, at)| at.elapsed() < KEEP);
        slots.insert((job.to_owned(), index), (tx.clone(), Instant::now()));
        Handoff { tx }
    }

    /// The state segment `index - 1` of `job` ended with, if this process converted it and it
    /// is done or ending (waiting for the end then). `None`: warm up instead.
    pub async fn resume_state(&self, job: &str, index: u32) -> Option<NormState> {
        let prev = index.checked_sub(1)?;
        let mut rx = {
            let slots = self.slots.lock().expect("hand-over map poisoned");
            slots.get(&(job.to_owned(), prev))?.0.subscribe()
        };
        if *rx.borrow() == Slot::Running {
            return None;
        }
        let waited = tokio::time::timeout(
            WAIT,
            rx.wait_for(|s| matches!(s, Slot::Done(_) | Slot::Gone)),
        )
        .await;
        match waited {
            Ok(Ok(slot)) => match &*slot {
                Slot::Done(state) => Some(state.clone()),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Handoff {
    /// The segment is in its last frames: a follower may wait for its state.
    pub fn ending(&self) {
        self.tx.send_if_modified(|s| {
            let change = *s == Slot::Running;
            if change {
                *s = Slot::Ending;
            }
            change
        });
    }

    /// The segment's normalisation ended with `state`.
    pub fn done(&self, state: NormState) {
        self.tx.send_replace(Slot::Done(state));
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.tx.send_if_modified(|s| {
            let change = !matches!(s, Slot::Done(_));
            if change {
                *s = Slot::Gone;
            }
            change
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parallax_engine::temporal::{Normalizer, THUMB_H, THUMB_W};

    fn state(v: f32) -> NormState {
        let mut n = Normalizer::new(0.5);
        n.observe(&[v, v + 1.0, v + 2.0], &[0.5; THUMB_W * THUMB_H]);
        n.state()
    }

    #[tokio::test]
    async fn a_follower_gets_the_state_of_a_done_predecessor() {
        let h = Handoffs::default();
        let a = h.begin("job", 0);
        a.done(state(1.0));
        assert_eq!(h.resume_state("job", 1).await, Some(state(1.0)));
        // Other jobs, other indexes and the first segment have nothing to resume.
        assert_eq!(h.resume_state("other", 1).await, None);
        assert_eq!(h.resume_state("job", 2).await, None);
        assert_eq!(h.resume_state("job", 0).await, None);
    }

    // Paused time: the follower has surely run up to its wait when the sleep ends.
    #[tokio::test(start_paused = true)]
    async fn a_follower_waits_for_an_ending_predecessor() {
        let h = std::sync::Arc::new(Handoffs::default());
        let a = h.begin("job", 3);
        a.ending();
        let follower = tokio::spawn({
            let h = h.clone();
            async move { h.resume_state("job", 4).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!follower.is_finished());
        a.done(state(2.0));
        assert_eq!(follower.await.unwrap(), Some(state(2.0)));
    }

    // Paused time: the follower has surely run up to its wait when the sleep ends.
    #[tokio::test(start_paused = true)]
    async fn a_running_or_failed_predecessor_means_warm_up() {
        let h = std::sync::Arc::new(Handoffs::default());
        // Still early in its segment (a neighbouring slot): no waiting.
        let a = h.begin("job", 0);
        assert_eq!(h.resume_state("job", 1).await, None);
        // Ending, then failing: the waiter is released with nothing.
        a.ending();
        let follower = tokio::spawn({
            let h = h.clone();
            async move { h.resume_state("job", 1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(a);
        assert_eq!(follower.await.unwrap(), None);
        // A retry registers afresh and hands over when done.
        let again = h.begin("job", 0);
        again.ending();
        again.done(state(3.0));
        drop(again);
        assert_eq!(h.resume_state("job", 1).await, Some(state(3.0)));
    }
}
