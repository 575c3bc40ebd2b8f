//! Several OS processes draining one local queue: each message is deleted exactly once when
//! nobody dies, and nothing is lost when a receiver is killed mid-way (its messages come back
//! after the visibility timeout and the survivor finishes them).
//!
//! The receivers are this test binary itself, re-run with `--exact queue_child --ignored`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parallax_core::queue::local::SqliteQueue;
use parallax_core::queue::{QueueReceiver, QueueSender, QueueSettings};
use parallax_core::Db;

const MESSAGES: usize = 10_000;

fn queue(dir: &Path) -> SqliteQueue {
    let db = Db::open(&dir.join("parallax.db")).unwrap();
    SqliteQueue::new(
        db,
        "drain",
        Some("drain-dlq".into()),
        QueueSettings {
            visibility_timeout: Duration::from_secs(2),
            max_receives: 100,
            wait_time: Duration::from_millis(200),
        },
    )
}

fn spawn_child(dir: &Path, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "queue_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("QUEUE_CHILD_DIR", dir)
        .env("QUEUE_CHILD_NAME", name)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn read_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn fill(q: &SqliteQueue) {
    let bodies: Vec<String> = (0..MESSAGES).map(|i| format!("m{i:05}")).collect();
    for chunk in bodies.chunks(500) {
        q.send_batch(chunk).await.unwrap();
    }
}

fn wait(child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "receiver failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("receiver did not finish in {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts every message body across the receivers' logs.
fn tally(dir: &Path, names: &[&str]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for n in names {
        for line in read_log(&dir.join(format!("{n}.log"))) {
            *counts.entry(line).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_delete_each_message_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    fill(&q).await;
    let mut a = spawn_child(dir.path(), "a");
    let mut b = spawn_child(dir.path(), "b");
    wait(&mut a, Duration::from_secs(300));
    wait(&mut b, Duration::from_secs(300));
    let counts = tally(dir.path(), &["a", "b"]);
    assert_eq!(counts.len(), MESSAGES, "messages missing");
    let twice: Vec<_> = counts.iter().filter(|(_, &c)| c != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(q.approximate_len().await.unwrap(), 0);
    // Both processes took part.
    assert!(!read_log(&dir.path().join("a.log")).is_empty());
    assert!(!read_log(&dir.path().join("b.log")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_receiver_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    fill(&q).await;
    let mut a = spawn_child(dir.path(), "a");
    let mut b = spawn_child(dir.path(), "b");
    // Let both get going, then kill one without warning (SIGKILL).
    let deadline = Instant::now() + Duration::from_secs(120);
    while read_log(&dir.path().join("a.log")).len() < MESSAGES / 5 {
        assert!(Instant::now() < deadline, "receiver a made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill().unwrap();
    a.wait().unwrap();
    wait(&mut b, Duration::from_secs(300));
    let counts = tally(dir.path(), &["a", "b"]);
    assert_eq!(counts.len(), MESSAGES, "a message was lost");
    assert_eq!(
        q.approximate_len().await.unwrap(),
        0,
        "messages left behind"
    );
    // Only what `a` held when it died may have been handled twice (at-least-once).
    let twice = counts.values().filter(|&&c| c > 1).count();
    assert!(twice <= 10, "{twice} messages handled twice");
}

/// The receiver process: drain the queue, logging each body before deleting it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run as a child process by the tests above"]
async fn queue_child() {
    use std::io::Write;
    let dir = PathBuf::from(std::env::var("QUEUE_CHILD_DIR").expect("QUEUE_CHILD_DIR"));
    let name = std::env::var("QUEUE_CHILD_NAME").unwrap();
    let q = Arc::new(queue(&dir));
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    loop {
        let got = q.receive(10).await.unwrap();
        if got.is_empty() {
            if q.approximate_len().await.unwrap() == 0 {
                return;
            }
            continue;
        }
        for m in got {
            writeln!(log, "{}", m.body).unwrap();
            log.flush().unwrap();
            q.delete(&m.receipt_handle).await.unwrap();
        }
    }
}
