//! The runtime against the local queue adapter. No test asserts on timings: each waits for a
//! state (a queue length, a recorded call) with a generous deadline, and the visibility
//! timeouts are long where a message coming back by itself would hide a missing release.
//! The tests run on paused tokio time and the queue reads a test clock, which follows it: the
//! heartbeats, back-offs and visibility timeouts run out in test time, not real time.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Semaphore};

use super::*;
use crate::clock::{Clock, TestClock};
use crate::queue::local::SqliteQueue;
use crate::queue::{QueueReceiver, QueueSender};
use crate::Db;

const LONG: Duration = Duration::from_secs(3600);

/// What the test handler saw and did.
#[derive(Debug)]
struct Seen {
    /// (body, receive count) of every call that returned.
    handled: Mutex<Vec<(String, u32)>>,
    /// (body, code, message) of every `fail_job`.
    failed: Mutex<Vec<(String, String, String)>>,
    /// Set when a `hang` or `slow` handler's future is dropped before it finished.
    cut_off: AtomicBool,
    /// Lets `slow` and `drain` handlers finish, one per permit.
    go_on: Semaphore,
    /// Handlers running now, and the most that ever ran at once.
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            handled: Mutex::default(),
            failed: Mutex::default(),
            cut_off: AtomicBool::default(),
            go_on: Semaphore::new(0),
            running: AtomicUsize::new(0),
            most_running: AtomicUsize::new(0),
        }
    }
}

/// Behaves as its message body says: `ok`, `reject`, `retry`, `panic`, `hang` (never
/// ends), `slow` (ends when the test says so), `drain` (says it is draining, then ends when
/// the test says so).
#[derive(Debug)]
struct Scripted {
    seen: Arc<Seen>,
    started: mpsc::UnboundedSender<ReceivedMessage>,
}

/// Sets `cut_off` if dropped while armed.
struct CutOff<'a>(&'a AtomicBool, bool);

impl Drop for CutOff<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// Counts a handler out of `running` when it ends, however it ends.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Handler for Scripted {
    async fn handle(&self, msg: &ReceivedMessage, ctx: &Context) -> Result<Outcome, HandlerError> {
        let now = self.seen.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.most_running.fetch_max(now, Ordering::SeqCst);
        let _running = Running(&self.seen.running);
        let _ = self.started.send(msg.clone());
        let mut guard = CutOff(&self.seen.cut_off, true);
        let out = match msg.body.as_str() {
            "ok" => Ok(Outcome::Done),
            "reject" => Err(HandlerError::reject("not-a-video", "this is a text file")),
            "retry" => Err(anyhow::anyhow!("storage is down").into()),
            "panic" => panic!("a bug in the handler"),
            "hang" => std::future::pending().await,
            "slow" => {
                self.seen.go_on.acquire().await.unwrap().forget();
                Ok(Outcome::Done)
            }
            "drain" => {
                ctx.draining();
                self.seen.go_on.acquire().await.unwrap().forget();
                Ok(Outcome::Done)
            }
            other => panic!("unexpected body {other}"),
        };
        guard.1 = false;
        self.seen
            .handled
            .lock()
            .unwrap()
            .push((msg.body.clone(), msg.receive_count));
        out
    }

    async fn fail_job(
        &self,
        msg: &ReceivedMessage,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        self.seen.failed.lock().unwrap().push((
            msg.body.clone(),
            code.to_owned(),
            message.to_owned(),
        ));
        Ok(())
    }
}

struct Fixture {
    queue: Arc<SqliteQueue>,
    dlq: Arc<SqliteQueue>,
    seen: Arc<Seen>,
    started: mpsc::UnboundedReceiver<ReceivedMessage>,
    shutdown: CancellationToken,
    handler: Arc<Scripted>,
    settings: QueueSettings,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(visibility: Duration, max_receives: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("q.db")).unwrap();
        let settings = QueueSettings {
            visibility_timeout: visibility,
            max_receives,
            wait_time: Duration::from_millis(100),
        };
        // A test clock: real time in an ordinary runtime, test time in a paused one, so a
        // paused test's visibility timeouts run out with tokio's timers.
        let clock: Arc<dyn Clock> = Arc::new(TestClock::new());
        let queue = Arc::new(
            SqliteQueue::new(db.clone(), "work", Some("work-dlq".into()), settings)
                .with_clock(clock.clone()),
        );
        let dlq = Arc::new(SqliteQueue::new(db, "work-dlq", None, settings).with_clock(clock));
        let seen = Arc::new(Seen::default());
        let (tx, started) = mpsc::unbounded_channel();
        Self {
            queue,
            dlq,
            handler: Arc::new(Scripted {
                seen: seen.clone(),
                started: tx,
            }),
            seen,
            started,
            shutdown: CancellationToken::new(),
            settings,
            _dir: dir,
        }
    }

    fn config(&self) -> LoopConfig {
        let mut cfg = LoopConfig::new("work", &self.settings);
        cfg.retry_backoff = Duration::from_millis(20);
        cfg
    }

    fn start(&self, cfg: LoopConfig) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run(
            self.queue.clone(),
            self.handler.clone(),
            cfg,
            self.shutdown.clone(),
        ))
    }

    async fn send(&self, body: &str) {
        self.queue.send(body).await.unwrap();
    }

    async fn next_started(&mut self) -> ReceivedMessage {
        tokio::time::timeout(Duration::from_secs(30), self.started.recv())
            .await
            .expect("the handler was called")
            .unwrap()
    }

    async fn stop(&self, run: tokio::task::JoinHandle<()>) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the loop stops")
            .unwrap();
    }

    fn handled(&self) -> Vec<(String, u32)> {
        self.seen.handled.lock().unwrap().clone()
    }

    fn failed(&self) -> Vec<(String, String, String)> {
        self.seen.failed.lock().unwrap().clone()
    }
}

/// Waits until `check` holds; panics naming `what` after 30 s.
async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn len(q: &SqliteQueue) -> u64 {
    q.approximate_len().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn done_deletes_the_message() {
    let f = Fixture::new(LONG, 5);
    let run = f.start(f.config());
    f.send("ok").await;
    wait_for("the message to be deleted", || async {
        len(&f.queue).await == 0 && !f.handled().is_empty()
    })
    .await;
    f.stop(run).await;
    assert_eq!(f.handled(), vec![("ok".to_owned(), 1)]);
    assert!(f.failed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn reject_fails_the_job_and_deletes_the_message() {
    let f = Fixture::new(LONG, 5);
    let run = f.start(f.config());
    f.send("reject").await;
    wait_for("the message to be deleted", || async {
        len(&f.queue).await == 0 && !f.failed().is_empty()
    })
    .await;
    f.stop(run).await;
    assert_eq!(
        f.failed(),
        vec![(
            "reject".to_owned(),
            "not-a-video".to_owned(),
            "this is a text file".to_owned()
        )]
    );
    assert_eq!(len(&f.dlq).await, 0);
}

/// A retry is released with a back-off, not left for the (hour-long) visibility timeout;
/// the last allowed receive fails the job and the message goes to the dead-letter queue.
#[tokio::test(start_paused = true)]
async fn retry_releases_with_backoff_and_the_last_receive_fails_the_job() {
    let f = Fixture::new(LONG, 3);
    let run = f.start(f.config());
    f.send("retry").await;
    wait_for("the message in the dead-letter queue", || async {
        len(&f.dlq).await == 1
    })
    .await;
    f.stop(run).await;
    let counts: Vec<u32> = f.handled().into_iter().map(|(_, n)| n).collect();
    assert_eq!(counts, vec![1, 2, 3]);
    let failed = f.failed();
    assert_eq!(failed.len(), 1, "only the last receive fails the job");
    assert_eq!(failed[0].1, "gave-up");
    assert!(
        failed[0].2.contains("after 3 attempts") && failed[0].2.contains("storage is down"),
        "{}",
        failed[0].2
    );
}

#[test]
fn backoff_grows_with_receives_up_to_the_visibility_timeout() {
    let mut cfg = LoopConfig::new("q", &QueueSettings::default());
    cfg.retry_backoff = Duration::from_secs(2);
    cfg.visibility_timeout = Duration::from_secs(7);
    let steps: Vec<u64> = (0..6).map(|n| cfg.backoff(n).as_secs()).collect();
    assert_eq!(steps, vec![2, 2, 4, 6, 7, 7]);
}

/// Another receiver takes the message (its lease was given up behind the worker's back):
/// the heartbeat notices the stale receipt and the handler's future is dropped; the
/// message is neither deleted nor released by the worker that lost it.
#[tokio::test(start_paused = true)]
async fn a_lost_lease_stops_the_handler() {
    let mut f = Fixture::new(Duration::from_millis(600), 5);
    let run = f.start(f.config());
    f.send("hang").await;
    let first = f.next_started().await;
    // Make it visible behind the worker's back and take it; a heartbeat between the two
    // steps hides it again, so repeat until taken.
    let taken = loop {
        f.queue
            .change_visibility(&first.receipt_handle, Duration::ZERO)
            .await
            .unwrap();
        if let Some(m) = f.queue.receive(1).await.unwrap().pop() {
            break m;
        }
    };
    f.queue
        .change_visibility(&taken.receipt_handle, LONG)
        .await
        .unwrap();
    wait_for("the handler to be dropped", || async {
        f.seen.cut_off.load(Ordering::SeqCst)
    })
    .await;
    f.queue
        .delete(&taken.receipt_handle)
        .await
        .expect("the new holder's receipt is still the latest: the old holder released nothing");
    f.stop(run).await;
    assert!(f.handled().is_empty());
    assert!(f.failed().is_empty());
}

/// The heartbeat keeps a message hidden past its visibility timeout, and says when the lease
/// is gone (here: the message was deleted by its handle). (Moved from video-worker, whose
/// own wrapper of it is gone.) On paused time: the queue's clock follows tokio's, so the
/// timeouts run out in test time.
#[tokio::test(start_paused = true)]
async fn the_heartbeat_keeps_a_message_hidden_and_reports_a_lost_lease() {
    let f = Fixture::new(Duration::from_secs(1), 4);
    f.send("{}").await;
    let msg = f.queue.receive(1).await.unwrap().remove(0);
    let beat = {
        let q = f.queue.clone();
        let receipt = msg.receipt_handle.clone();
        tokio::spawn(async move {
            let visibility = Duration::from_secs(1);
            hold_lease(&*q, &receipt, visibility, heartbeat_interval(visibility)).await
        })
    };
    // Three visibility timeouts later (test time) the message is still hidden.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(f.queue.receive(1).await.unwrap().is_empty());
    assert!(!beat.is_finished());
    f.queue.delete(&msg.receipt_handle).await.unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(30), beat)
        .await
        .expect("the heartbeat notices")
        .unwrap();
    assert!(
        matches!(lost, LeaseLost::Taken(Error::StaleReceipt { .. })),
        "{lost}"
    );
}

/// A heartbeat that keeps failing for a whole visibility timeout counts as a lost lease.
/// (Only tokio's clock is involved, so it runs on a paused one.)
#[tokio::test(start_paused = true)]
async fn heartbeats_failing_for_a_whole_timeout_lose_the_lease() {
    #[derive(Debug)]
    struct Down;
    #[async_trait]
    impl QueueReceiver for Down {
        async fn receive(&self, _: usize) -> crate::Result<Vec<ReceivedMessage>> {
            Ok(Vec::new())
        }
        async fn delete(&self, _: &str) -> crate::Result<()> {
            Ok(())
        }
        async fn change_visibility(&self, _: &str, _: Duration) -> crate::Result<()> {
            Err(Error::backend("test", "unreachable"))
        }
        async fn approximate_len(&self) -> crate::Result<u64> {
            Ok(0)
        }
    }
    let lost = hold_lease(
        &Down,
        "r",
        Duration::from_millis(300),
        Duration::from_millis(50),
    )
    .await;
    assert!(matches!(lost, LeaseLost::Expired { .. }), "{lost}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_message_in_hand_finish_within_the_grace_period() {
    let mut f = Fixture::new(LONG, 5);
    let run = f.start(f.config());
    f.send("slow").await;
    f.next_started().await;
    f.shutdown.cancel();
    f.send("ok").await;
    f.seen.go_on.add_permits(1);
    f.stop(run).await;
    assert_eq!(f.handled(), vec![("slow".to_owned(), 1)], "no new receive");
    assert!(!f.seen.cut_off.load(Ordering::SeqCst));
    let left = f.queue.receive(10).await.unwrap();
    assert_eq!(
        left.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["ok"],
        "the finished message is deleted, the one sent after shutdown is left"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_what_does_not_finish_in_time() {
    let mut f = Fixture::new(LONG, 5);
    let mut cfg = f.config();
    cfg.grace = Duration::from_millis(50);
    let run = f.start(cfg);
    f.send("hang").await;
    f.next_started().await;
    f.stop(run).await;
    assert!(
        f.seen.cut_off.load(Ordering::SeqCst),
        "the handler was dropped"
    );
    // Released (visibility 0), not left hidden for the hour-long timeout.
    let again = f.queue.receive(1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    assert!(f.failed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_panic_fails_its_message_only() {
    let f = Fixture::new(LONG, 2);
    let run = f.start(f.config());
    f.send("panic").await;
    f.send("ok").await;
    wait_for("the panicking message to be dead-lettered", || async {
        len(&f.dlq).await == 1
    })
    .await;
    wait_for("the other message to be handled", || async {
        len(&f.queue).await == 0
    })
    .await;
    f.stop(run).await;
    assert_eq!(f.handled(), vec![("ok".to_owned(), 1)]);
    let failed = f.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "panic");
    assert!(failed[0].2.contains("panicked"), "{}", failed[0].2);
}

#[tokio::test(start_paused = true)]
async fn several_messages_are_handled_at_once() {
    let mut f = Fixture::new(LONG, 5);
    let mut cfg = f.config();
    cfg.concurrency = 3;
    let run = f.start(cfg);
    for _ in 0..3 {
        f.send("slow").await;
    }
    for _ in 0..3 {
        f.next_started().await;
    }
    f.seen.go_on.add_permits(3);
    wait_for("all three deleted", || async { len(&f.queue).await == 0 }).await;
    f.stop(run).await;
    assert_eq!(f.handled().len(), 3);
}

/// With overlap, a message that says it is draining frees its slot: the next one starts
/// while it finishes, and no more than two run at once in a loop of one slot.
#[tokio::test(start_paused = true)]
async fn with_overlap_the_next_message_starts_while_the_last_one_drains() {
    let mut f = Fixture::new(LONG, 5);
    let mut cfg = f.config();
    cfg.overlap = true;
    let run = f.start(cfg);
    for _ in 0..3 {
        f.send("drain").await;
    }
    // The second starts while the first is still in hand (it has not been let go).
    f.next_started().await;
    f.next_started().await;
    assert!(f.handled().is_empty(), "both are still running");
    // Then one at a time: the third only once one of the first two is settled.
    f.seen.go_on.add_permits(1);
    f.next_started().await;
    f.seen.go_on.add_permits(2);
    wait_for("all three deleted", || async { len(&f.queue).await == 0 }).await;
    f.stop(run).await;
    assert_eq!(f.handled().len(), 3);
    assert_eq!(f.seen.most_running.load(Ordering::SeqCst), 2);
}

/// Without overlap, saying "draining" frees nothing: one message at a time.
#[tokio::test(start_paused = true)]
async fn without_overlap_draining_keeps_the_slot() {
    let mut f = Fixture::new(LONG, 5);
    let run = f.start(f.config());
    f.send("drain").await;
    f.send("drain").await;
    f.next_started().await;
    f.seen.go_on.add_permits(1);
    f.next_started().await;
    assert_eq!(
        f.handled().len(),
        1,
        "the second started after the first ended"
    );
    f.seen.go_on.add_permits(1);
    wait_for("both deleted", || async { len(&f.queue).await == 0 }).await;
    f.stop(run).await;
    assert_eq!(f.seen.most_running.load(Ordering::SeqCst), 1);
}

#[test]
fn core_input_errors_are_bad_input_through_context() {
    let e = anyhow::Error::new(Error::NotFound {
        what: "object",
        id: "k".into(),
    })
    .context("downloading");
    assert!(is_bad_input(&e));
    let e = anyhow::Error::new(Error::backend("sqlite", "locked")).context("downloading");
    assert!(!is_bad_input(&e));
}
