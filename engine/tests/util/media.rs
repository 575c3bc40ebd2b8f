//! What a test reads back from a file: ffprobe's entries, sizes, packet times, side data,
//! and the decoded frames.

use std::path::Path;
use std::process::Command;

use parallax_engine::stereo::Yuv420;

/// ffprobe's answer to `args` about `path`'s first video stream.
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

/// The first video stream's width and height.
pub fn dims(path: &Path) -> (usize, usize) {
    let s = ffprobe(
        &["-show_entries", "stream=width,height", "-of", "csv=p=0"],
        path,
    );
    let mut it = s.trim().split(',').map(|v| v.parse::<usize>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// The first video stream's packet times in seconds, in presentation order.
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

/// The first video stream's frames (its packets).
pub fn frame_count(path: &Path) -> usize {
    packet_times(path).len()
}

/// One stream entry of `path`'s first video stream, as ffprobe prints it.
pub fn stream_entry(path: &Path, entry: &str) -> String {
    ffprobe(
        &[
            "-show_entries",
            &format!("stream={entry}"),
            "-of",
            "csv=p=0",
        ],
        path,
    )
    .trim()
    .to_owned()
}

/// The first frame's side data (mastering display, content light level) as ffprobe prints
/// it, one `key=value` per line.
pub fn first_frame_side_data(path: &Path) -> String {
    ffprobe(
        &[
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame_side_data_list",
            "-of",
            "flat",
        ],
        path,
    )
}

/// Every frame of `path` decoded to raw `pix_fmt`, back to back.
pub fn raw_frames(path: &Path, pix_fmt: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decoding {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every frame, decoded to 8-bit YUV 4:2:0.
pub fn yuv_frames(path: &Path) -> Vec<Vec<u8>> {
    let (w, h) = dims(path);
    let raw = raw_frames(path, "yuv420p");
    let frame = Yuv420::<u8>::byte_len(w, h);
    assert_eq!(raw.len() % frame, 0);
    raw.chunks(frame).map(<[u8]>::to_vec).collect()
}

/// Every frame's luma plane.
pub fn luma_frames(path: &Path) -> Vec<Vec<u8>> {
    let (w, h) = dims(path);
    yuv_frames(path)
        .into_iter()
        .map(|mut f| {
            f.truncate(w * h);
            f
        })
        .collect()
}

/// Every frame of one 16-bit grey plane in `pix_fmt` (`gray16le` for stored depth maps,
/// `gray10le` for a 10-bit file's luma), as its levels.
pub fn u16_frames(path: &Path, pix_fmt: &str) -> Vec<Vec<u16>> {
    let (w, h) = dims(path);
    let raw = raw_frames(path, pix_fmt);
    let frame = 2 * w * h;
    assert_eq!(raw.len() % frame, 0);
    raw.chunks(frame)
        .map(|f| {
            f.chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect()
        })
        .collect()
}

/// Every depth map stored by a conversion (`ConvertRequest::depth_out`), 16-bit levels.
pub fn stored_depth(path: &Path) -> Vec<Vec<u16>> {
    u16_frames(path, "gray16le")
}
