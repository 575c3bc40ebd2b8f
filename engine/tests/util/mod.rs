//! What the engine's tests share: the tiny models, ffmpeg and ffprobe, clip facts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use parallax_engine::{Engine, EngineConfig};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// The tests' tiny models, written once per test process by the models script.
pub fn models() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = std::env::var_os("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{} is missing: run `make venv` (the models script needs onnx and numpy)",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new(&python)
            .arg(repo().join("models/make_models.py"))
            .arg("--test-models")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "models/make_models.py failed");
        dir
    })
    .path()
}

pub fn model(name: &str) -> PathBuf {
    models().join(name)
}

pub fn engine(name: &str, batch: usize) -> Engine {
    let mut cfg = EngineConfig::new(model(name));
    cfg.batch_size = batch;
    cfg.intra_threads = Some(1);
    cfg.preset = Some("ultrafast".to_owned());
    Engine::load(&cfg).unwrap_or_else(|e| panic!("loading {name}: {e:#}"))
}

pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn ffprobe(args: &[&str], path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A stream with side data (a stereo output's Stereo 3D) ends its csv line with an empty
    // field (`64,48,`): dropped.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches(','))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn dims(path: &Path) -> (usize, usize) {
    let s = ffprobe(
        &["-show_entries", "stream=width,height", "-of", "csv=p=0"],
        path,
    );
    let mut it = s.trim().split(',').map(|v| v.parse::<usize>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

pub fn packet_times(path: &Path) -> Vec<f64> {
    let s = ffprobe(
        &["-show_entries", "packet=pts_time", "-of", "csv=p=0"],
        path,
    );
    let mut v: Vec<f64> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse().unwrap())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

pub fn frame_count(path: &Path) -> usize {
    packet_times(path).len()
}

/// Cuts `src` (stream copy, timestamps reset) into segments that start at the given frames
/// (`cuts`, ascending, after 0) and are `frames` long in all, as media-worker would, into
/// `dir/seg{i}.mkv`; checks each segment's frame count and returns their paths.
pub fn split_at(src: &Path, dir: &Path, cuts: &[u32], frames: u32) -> Vec<PathBuf> {
    let list: Vec<String> = cuts.iter().map(u32::to_string).collect();
    ffmpeg(&[
        "-i",
        src.to_str().unwrap(),
        "-map",
        "0:v",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_frames",
        &list.join(","),
        "-reset_timestamps",
        "1",
        dir.join("seg%d.mkv").to_str().unwrap(),
    ]);
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(frames);
    (0..=cuts.len())
        .map(|i| {
            let seg = dir.join(format!("seg{i}.mkv"));
            let want = (bounds[i + 1] - bounds[i]) as usize;
            assert_eq!(frame_count(&seg), want, "{}", seg.display());
            seg
        })
        .collect()
}

/// Writes a lossless H.264 clip of `frames` frames from the lavfi source `source` with a
/// keyframe exactly every `gop` frames, to `path`.
pub fn lossless_clip(path: &Path, source: &str, frames: u32, gop: u32) -> PathBuf {
    let (n, g) = (frames.to_string(), gop.to_string());
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
        &n,
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-g",
        &g,
        "-keyint_min",
        &g,
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    path.to_path_buf()
}
