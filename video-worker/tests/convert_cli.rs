//! `video-worker convert`, the engine on one file from the command line: a clip end to end
//! with the flags, and a model that breaks the contract refused with the reason. The models
//! are written by `models/make_models.py`, the clip by ffmpeg.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use parallax_testkit::media::probe;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The test models, written into `dir` by the models script.
fn models(dir: &Path) {
    let python = std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    let st = Command::new(&python)
        .arg(repo().join("models/make_models.py"))
        .arg("--test-models")
        .arg(dir)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e} (run `make venv`)", python.display()));
    assert!(st.success(), "models/make_models.py failed");
}

#[tokio::test]
async fn convert_cli_converts_a_clip_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    models(dir.path());
    let model = |n: &str| dir.path().join(n);
    let input = dir.path().join("in.mp4");
    util::segment_clip(&input, 6, (64, 48)).await;
    let out = dir.path().join("out_LR_Half_TB.mkv");
    let st = Command::new(env!("CARGO_BIN_EXE_video-worker"))
        .arg("convert")
        .arg(&input)
        .arg(&out)
        .args([
            "--mode",
            "half_tb",
            "--divergence",
            "3",
            "--quiet",
            "--model",
        ])
        .arg(model("luma.onnx"))
        .args(["--depth-resolution", "28", "--batch-size", "2"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(stdout.contains("6 frames"), "{stdout}");
    let got = probe(&out).await.unwrap();
    assert_eq!((got.frames, got.width, got.height), (6, 64, 48));

    // A model that breaks the contract is refused with the reason.
    let st = Command::new(env!("CARGO_BIN_EXE_video-worker"))
        .arg("convert")
        .arg(&input)
        .arg(dir.path().join("x.mkv"))
        .args(["--quiet", "--model"])
        .arg(model("bad-rank.onnx"))
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("rank 3"), "{err}");
}
