//! The `video-worker` binary as deployed: its start-up checks, and the default mode (the
//! segment worker) converting a job with the real depth engine and the committed default
//! model.

mod util;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use parallax_core::keys::{self, QueueName};
use parallax_core::model::{JobStatus, SegmentOutput};
use parallax_core::storage::ObjectStorageExt as _;
use util::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_video-worker"));
    c.env("RUST_BACKTRACE", "0").stdin(Stdio::null());
    c
}

fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default-depth.onnx")
}

/// Runs the binary expecting a start-up refusal; returns its stderr.
fn refused(args: &[&str], data_dir: &std::path::Path) -> String {
    let out = bin().args(args).env("DATA_DIR", data_dir).output().unwrap();
    assert!(!out.status.success(), "{args:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn conflicting_settings_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let model = default_model();
    let model = model.to_str().unwrap();
    let err = refused(
        &[
            "infer",
            "--model",
            model,
            "--infer-concurrency",
            "2",
            "--ffmpeg-concurrency",
            "3",
        ],
        dir.path(),
    );
    // Six per slot: a conversion's four, plus the overlapped segment still finishing.
    assert!(
        err.contains("--ffmpeg-concurrency") && err.contains("at least 12"),
        "{err}"
    );
    let err = refused(
        &[
            "infer",
            "--model",
            model,
            "--infer-concurrency",
            "2",
            "--infer-overlap",
            "false",
            "--ffmpeg-concurrency",
            "3",
        ],
        dir.path(),
    );
    assert!(
        err.contains("--ffmpeg-concurrency") && err.contains("at least 8"),
        "{err}"
    );
    // The completion trigger moved to media-worker: not a subcommand here any more.
    let err = refused(&["trigger"], dir.path());
    assert!(err.contains("trigger"), "{err}");
    let err = refused(&["--model", "no/such/model.onnx"], dir.path());
    assert!(
        err.contains("no/such/model.onnx") && err.contains("does not exist"),
        "{err}"
    );
    let err = refused(
        &["infer", "--model", model, "--depth-resolution", "5000"],
        dir.path(),
    );
    assert!(err.contains("--depth-resolution"), "{err}");
    // Nothing was started: no task was taken, no database written for the refused runs.
    assert!(!dir.path().join("parallax.db").exists());
}

/// The models a worker is told to hold (`--models`) are checked before it takes any task: a
/// name the catalogue does not know, a missing file, a checksum mismatch and a file that is not
/// a depth model are each refused with what to do.
#[test]
fn models_to_hold_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let catalogue = dir.path().join("catalogue.toml");
    let sha = "0".repeat(64);
    std::fs::write(
        &catalogue,
        format!(
            r#"
[[model]]
name = "pinned"
file = "pinned.onnx"
url = "https://models.example/pinned.onnx"
sha256 = "{sha}"
size = 5
licence = "MIT"
kind = "frame"
input_size = 518

[[model]]
name = "unpinned"
file = "unpinned.onnx"
url = ""
licence = "MIT"
kind = "frame"
input_size = 518
"#
        ),
    )
    .unwrap();
    let model = default_model();
    let run = |name: &str| {
        refused(
            &[
                "infer",
                "--model",
                model.to_str().unwrap(),
                "--catalogue",
                catalogue.to_str().unwrap(),
                "--models-dir",
                models.to_str().unwrap(),
                "--models",
                name,
            ],
            dir.path(),
        )
    };
    let err = run("midas-huge");
    assert!(
        err.contains("unknown model \"midas-huge\"") && err.contains("pinned, unpinned"),
        "{err}"
    );
    let err = run("pinned");
    assert!(
        err.contains("is not there") && err.contains("video-worker models fetch pinned"),
        "{err}"
    );
    std::fs::write(models.join("pinned.onnx"), b"other").unwrap();
    let err = run("pinned");
    assert!(
        err.contains("does not match the catalogue's checksum")
            && err.contains("models fetch pinned --force"),
        "{err}"
    );
    // Present, unpinned, and not an ONNX model at all: the contract check at load says so.
    std::fs::write(models.join("unpinned.onnx"), b"not a model").unwrap();
    let err = run("unpinned");
    assert!(
        err.contains("unpinned.onnx") && err.contains("as an ONNX model"),
        "{err}"
    );
    assert!(
        !dir.path().join("parallax.db").exists(),
        "no task was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_mode_converts_a_job_with_the_depth_engine_and_reports_its_segments() {
    let ort = std::env::var_os("ORT_DYLIB_PATH").expect(
        "ORT_DYLIB_PATH is not set: run the tests through `make test` (it runs `make venv` and \
         points ORT_DYLIB_PATH at the venv's ONNX Runtime)",
    );
    let b = local(30, 4).await;
    let mut job = chunked_job(&b, 2).await;
    job.settings.depth_resolution = Some(42); // small and quick
    for i in 0..2 {
        let clip = b.path().join(format!("{i}.mkv"));
        segment_clip(&clip, 8, (96, 64)).await;
        b.storage
            .upload(&keys::segment(&job.job_id, i), &clip)
            .await
            .unwrap();
    }

    let mut child = bin()
        .args(["--model"])
        .arg(default_model())
        .env("ORT_DYLIB_PATH", ort)
        .env("DATA_DIR", b.path())
        .env("QUEUE_WAIT_SECS", "1")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    send_task(&b, &task(&job, 0, 8, 4)).await;
    send_task(&b, &task(&job, 1, 8, 4)).await;

    wait_for_len(&b, QueueName::SegmentOutput, 2).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "video-worker exits cleanly on SIGTERM: {exit}"
    );

    let mut reported: Vec<SegmentOutput> = drain(&b, QueueName::SegmentOutput)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    reported.sort_by_key(|o| o.segment_index);
    assert_eq!(
        reported
            .iter()
            .map(|o| (o.job_id.as_str(), o.segment_index, o.frame_count))
            .collect::<Vec<_>>(),
        vec![(job.job_id.as_str(), 0, 8), (job.job_id.as_str(), 1, 8)]
    );
    // The trigger is media-worker's: nothing recorded, nothing requested here.
    assert!(drain(&b, QueueName::Reassembly).await.is_empty());
    for i in 0..2 {
        let got = stored_video(&b, &keys::output(&job.job_id, i), b.path()).await;
        assert_eq!(got, (8, (192, 64)), "full side-by-side, every frame");
    }
    assert!(b
        .storage
        .head(&keys::preview_frame(&job.job_id))
        .await
        .unwrap()
        .is_some());
    assert!(b
        .storage
        .head(&keys::preview_depth(&job.job_id))
        .await
        .unwrap()
        .is_some());
    assert!(b
        .completions
        .query_by_job(&job.job_id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        b.jobs.get(&job.job_id).await.unwrap().unwrap().status,
        JobStatus::ChunkingComplete
    );
    assert_eq!(
        b.queue(QueueName::Segments)
            .receiver
            .approximate_len()
            .await
            .unwrap(),
        0
    );
}
