//! Shared helpers of the fleet tests: a fleet on a fresh DATA_DIR, sample clips, waiting for
//! a job with the fleet's logs in the failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use parallax_launcher::client::JobState;
use parallax_launcher::fleet::FleetConfig;
use parallax_launcher::{Client, Fleet};
use parallax_media::process::ToolCommand;
use parallax_testkit::media::{make_clip, ClipSpec};
use parallax_testkit::wait::try_wait_until;

/// How long a small job may take on a loaded 2-core machine.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(600);

/// A test's scratch folder (kept under target/ when the test fails, for its logs).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        let root = parallax_launcher::fleet::repo_root().join("target/e2e");
        std::fs::create_dir_all(&root).unwrap();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(root)
            .unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// A local fleet config with short queue timeouts so that retries happen within a test.
pub fn local_config(scratch: &Scratch) -> FleetConfig {
    FleetConfig::local(scratch.data())
        .with_env("SEGMENT_SECS", "2")
        .with_env("QUEUE_VISIBILITY_TIMEOUT_SECS", "6")
        .with_env("RUST_LOG", "info")
}

/// A small clip with two audio tracks (eng, fra): 320x180, 24 fps.
pub async fn clip(dir: &Path, name: &str, seconds: f64) -> PathBuf {
    let path = dir.join(name);
    let spec = ClipSpec {
        audio_languages: vec!["eng".into(), "fra".into()],
        ..ClipSpec::small(seconds)
    };
    make_clip(&path, &spec).await.unwrap();
    path
}

/// Waits for a job to end, panicking with the fleet's logs if it does not complete.
pub async fn expect_completed(fleet: &mut Fleet, client: &Client, job_id: &str) {
    let state = wait_done(fleet, client, job_id).await;
    assert_eq!(
        state.status(),
        "completed",
        "job {job_id}: {:?}\n{}",
        state.error(),
        fleet.logs()
    );
}

/// Waits for a job to be completed or failed, failing at once if a process of the fleet died.
pub async fn wait_done(fleet: &mut Fleet, client: &Client, job_id: &str) -> JobState {
    let what = format!("job {job_id} to end");
    let waited = try_wait_until(JOB_TIMEOUT, Duration::from_millis(200), &what, || {
        if let Err(e) = fleet.check_alive() {
            panic!("{e}\n{}", fleet.logs());
        }
        async move {
            let state = client.job(job_id).await.unwrap();
            if matches!(state.status(), "completed" | "failed") {
                Ok(state)
            } else {
                Err(format!("still {}", state.status()))
            }
        }
    })
    .await;
    waited.unwrap_or_else(|e| panic!("{e}\n{}", fleet.logs()))
}

/// `ffprobe -show_streams` of a file's first video stream (its side data included).
pub async fn video_stream_text(path: &Path) -> String {
    let out = ToolCommand::ffprobe(Duration::from_secs(60))
        .args(["-select_streams", "v:0", "-show_streams"])
        .arg(path)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a fleet, panicking with its logs if it cannot start.
pub async fn start(cfg: FleetConfig) -> Fleet {
    let data = cfg.data_dir.clone();
    match Fleet::start(cfg).await {
        Ok(f) => f,
        Err(e) => panic!(
            "{e}\nlogs: {}",
            std::fs::read_dir(data.join("logs"))
                .map(|d| d
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n"))
                .unwrap_or_default()
        ),
    }
}
