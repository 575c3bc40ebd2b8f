//! ffmpeg, and the clips the tests convert.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::frame_count;

/// Runs ffmpeg with `args` (quiet, overwriting); a failure fails the test with its stderr.
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

/// Writes `frames` frames of the lavfi source `source` (size and rate included), encoded
/// with the output options `extra`, as 8-bit 4:2:0 to `path`.
pub fn lavfi_clip(path: &Path, source: &str, frames: u32, extra: &[&str]) -> PathBuf {
    let n = frames.to_string();
    let mut args = vec!["-f", "lavfi", "-i", source, "-frames:v", &n];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-pix_fmt", "yuv420p", path.to_str().unwrap()]);
    ffmpeg(&args);
    path.to_path_buf()
}

/// A testsrc2 clip of `size` at `rate`, `frames` long, encoded with `extra`, at `dir/name`.
pub fn testsrc2_clip(
    dir: &Path,
    name: &str,
    size: &str,
    rate: &str,
    frames: u32,
    extra: &[&str],
) -> PathBuf {
    let src = format!("testsrc2=size={size}:rate={rate}");
    lavfi_clip(&dir.join(name), &src, frames, extra)
}

/// Writes a lossless H.264 clip of `frames` frames from the lavfi source `source` with a
/// keyframe exactly every `gop` frames, to `path`.
pub fn lossless_clip(path: &Path, source: &str, frames: u32, gop: u32) -> PathBuf {
    let g = gop.to_string();
    lavfi_clip(
        path,
        source,
        frames,
        &[
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
        ],
    )
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
