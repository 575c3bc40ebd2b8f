//! What these tests share with each other (the worker tests' helpers of media-worker are
//! about media; these are about jobs and queues).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use parallax_core::model::{ReassemblyRequest, SegmentOutput};
use std::time::Duration;

use media_worker::trigger::Trigger;
use parallax_core::backends::Backends;
use parallax_core::config::CommonArgs;
use parallax_core::keys::{self, QueueName};
use parallax_core::worker::CancellationToken;
use parallax_testkit::{wait_until, TempBackends};

// Not every test binary that includes this module uses all of them.
#[allow(unused_imports)]
pub use parallax_testkit::jobs::{chunked_job, drain, send_task, task};

/// The tests' queue settings: `visibility_secs` leases, `max_receives` receives before the
/// dead-letter queue, 1 s long polls.
pub fn settings(args: &mut CommonArgs, visibility_secs: u64, max_receives: u32) {
    args.queue_visibility_timeout_secs = visibility_secs;
    args.queue_max_receives = max_receives;
    args.queue_wait_secs = 1;
}

/// Local adapters in a temporary DATA_DIR with [`settings`].
pub async fn local(visibility_secs: u64, max_receives: u32) -> TempBackends {
    TempBackends::with(|c| settings(c, visibility_secs, max_receives)).await
}

/// Another adapter set on the same DATA_DIR, as a second worker process would have.
pub async fn backends(args: &CommonArgs) -> Backends {
    Backends::from_config(args).await.expect("local backends")
}

/// Workers that die mid-segment: each of the `n` queued tasks is received and never
/// deleted, `receives` times, until the queue moves them all to its dead-letter queue.
pub async fn crash_on_every_receive(b: &Backends, n: usize, receives: u32) {
    let tasks = b.queue(QueueName::Segments).receiver.clone();
    for _ in 0..receives {
        let got = tasks.receive(10).await.unwrap();
        assert_eq!(got.len(), n);
        for m in got {
            tasks
                .change_visibility(&m.receipt_handle, Duration::ZERO)
                .await
                .unwrap();
        }
    }
    assert!(
        tasks.receive(10).await.unwrap().is_empty(),
        "all moved to the DLQ"
    );
}

pub fn output_body(job_id: &str, index: u32) -> String {
    serde_json::to_string(&SegmentOutput {
        job_id: job_id.to_owned(),
        segment_index: index,
        output_key: keys::output(job_id, index),
        frame_count: 25,
    })
    .unwrap()
}

/// Receives every reassembly request and counts them per job.
pub async fn reassembly_requests(b: &parallax_core::backends::Backends) -> HashMap<String, usize> {
    let mut per_job = HashMap::new();
    for m in drain(b, QueueName::Reassembly).await {
        let r: ReassemblyRequest = serde_json::from_str(&m.body).unwrap();
        *per_job.entry(r.job_id).or_default() += 1;
    }
    per_job
}

/// A `media-worker trigger` process on `data_dir`; returns it once it says it has started.
/// Its log lines (JSON) are collected into the returned vector as they arrive.
pub fn spawn_trigger_process(
    data_dir: &std::path::Path,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_media-worker"))
        .arg("trigger")
        .env("DATA_DIR", data_dir)
        .env("WORK_DIR", data_dir.join("work"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("QUEUE_WAIT_SECS", "1")
        .env("QUEUE_VISIBILITY_TIMEOUT_SECS", "60")
        .env("RECONCILE_INTERVAL_SECS", "3600")
        .env("REASSEMBLY_RESEND_AFTER_SECS", "3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the media-worker binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut started = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("completion trigger started") {
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
            lines.lock().unwrap().push(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the trigger process starts");
    child
}

pub fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "trigger process exited with {exit}");
}

/// Runs `trigger`'s loop until the segment-output dead-letter queue holds `n` messages
/// (`what`, for the timeout message), then stops it.
pub async fn run_until_dead_lettered(trigger: &Trigger, b: &Backends, n: u64, what: &str) {
    let shutdown = CancellationToken::new();
    let run = {
        let (t, s) = (trigger.clone(), shutdown.clone());
        tokio::spawn(async move { t.run(s).await })
    };
    let dlq = b.queue(QueueName::SegmentOutput).dead_letters.clone();
    wait_until(Duration::from_secs(60), what, || {
        let q = dlq.clone();
        async move { q.approximate_len().await.unwrap() == n }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
}
