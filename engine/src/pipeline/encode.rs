//! The encoder ffmpeg: its command (layout side data, colour tags, HDR metadata, size cap),
//! the frame count it reports when it ends, and the preview images.

use std::path::Path;
use std::process::Stdio;

use anyhow::Context as _;
use parallax_core::model::StereoMode;
use parallax_media::process::ToolCommand;
use tokio::io::AsyncWriteExt;

use super::picture::PicturePlan;
use super::process::streaming;
use crate::metadata;
use crate::probe::VideoInfo;
use crate::stereo::output_size;
use crate::{ConvertRequest, EngineConfig};

pub(super) fn encoder_command(
    cfg: &EngineConfig,
    req: &ConvertRequest,
    info: &VideoInfo,
    picture: &PicturePlan,
    out: &Path,
) -> ToolCommand {
    let enc = req.settings.encoder.as_str();
    let crf = req.settings.crf.to_string();
    let mut cmd = streaming(ToolCommand::ffmpeg(cfg.ffmpeg_timeout)).args([
        "-loglevel",
        "error",
        // A report of the frames encoded when it ends (and one at the start; no others):
        // see `encoded_frames`.
        "-stats",
        "-stats_period",
        "1000000",
        // Raw frames with their times (see `rawmkv`): the header says everything, so
        // nothing needs to be read ahead to probe the stream.
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-f",
        "matroska",
        "-i",
        "pipe:0",
    ]);
    if info.start_time != 0.0 {
        cmd = cmd.args(["-output_ts_offset", &format!("{:.6}", info.start_time)]);
    }
    // Each frame keeps its time: not made constant by duplicating and dropping frames, nor
    // rounded to a grid of the guessed frame rate (the encoder's default time base). 90 kHz
    // holds every millisecond and every NTSC frame exactly.
    // The encoder's filters, one chain: the output size cap (scaled down, aspect kept, even
    // sizes), and the layout's side data taken off the frames (see below).
    let mut filters = Vec::new();
    let (mut ow, mut oh) = output_size(req.mode, info.width, info.height);
    if req.mode == StereoMode::Vr180 {
        let (filter, size) = crate::stereo::vr180_filter(info.width, info.height);
        filters.push(filter);
        (ow, oh) = size;
    }
    if let Some(cap) = req.settings.max_output_width.map(|c| c as usize) {
        if ow > cap {
            let h = ((oh * cap / ow).max(2) + 1) & !1;
            filters.push(format!("scale={cap}:{h}:flags=lanczos"));
        }
    }
    cmd = cmd.args([
        "-map",
        "0:v",
        "-fps_mode",
        "passthrough",
        "-enc_time_base",
        "1:90000",
        "-c:v",
        enc,
    ]);
    // The layout's declaration (see `metadata`): the stream's Stereo 3D side data, from the
    // raw stream's StereoMode, becomes MKV's StereoMode or MP4's `st3d` (which the MP4 muxer
    // writes only at `-strict unofficial`). ffmpeg also hands it to libx264 with each frame,
    // which would then write a frame-packing SEI for every layout: it is taken off the
    // frames, and the SEI is asked for where `metadata` says.
    let stereo = metadata::stereo_tags(req.mode);
    if stereo.is_some() {
        filters.push("sidedata=mode=delete:type=STEREO3D".to_owned());
        cmd = cmd.args(["-strict", "unofficial"]);
    }
    if !filters.is_empty() {
        cmd = cmd.args(["-vf", &filters.join(",")]);
    }
    if let (Some(fp), "libx264") = (stereo.and_then(|t| t.h264_frame_packing), enc) {
        cmd = cmd.args(["-x264-params", &format!("frame-packing={fp}")]);
    }
    let nvenc = enc.ends_with("_nvenc");
    let preset = cfg
        .preset
        .clone()
        .unwrap_or_else(|| if nvenc { "p4" } else { "medium" }.to_owned());
    cmd = if nvenc {
        cmd.args(["-rc", "vbr", "-cq", &crf, "-b:v", "0", "-preset", &preset])
    } else {
        cmd.args(["-crf", &crf, "-preset", &preset])
    };
    let ten_bit = picture.bits > 8;
    if enc == "libx265" {
        // HDR10's static metadata goes into the stream's SEI (x265 takes it only as
        // parameters); the colour tags reach its VUI from the flags below.
        let hdr = picture
            .hdr
            .as_ref()
            .map(|m| m.x265_params())
            .unwrap_or_default();
        cmd = cmd.args(["-x265-params", &format!("log-level=error{hdr}")]);
    }
    cmd = match (ten_bit, nvenc) {
        (false, _) => cmd.args(["-pix_fmt", "yuv420p"]),
        (true, false) => cmd.args(["-pix_fmt", "yuv420p10le", "-profile:v", "main10"]),
        // NVENC takes 10-bit 4:2:0 as P010.
        (true, true) => cmd.args(["-pix_fmt", "p010le", "-profile:v", "main10"]),
    };
    for (flag, v) in &picture.colour {
        cmd = cmd.args([*flag, v.as_str()]);
    }
    cmd.arg(out)
}

/// The number of frames ffmpeg encoded, from the report it prints to stderr when it ends
/// (`frame=  300 fps=... Lsize=...`, the last report being the one with `Lsize`), so that the
/// finished file need not be probed again. `None` when no such report is found.
pub(super) fn encoded_frames(stderr: &str) -> Option<u64> {
    let last = &stderr[stderr.rfind("frame=")?..];
    if !last.contains("Lsize=") {
        return None;
    }
    let digits = last["frame=".len()..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

pub(super) async fn write_image(
    data: &[u8],
    pix_fmt: &str,
    (w, h): (usize, usize),
    path: &Path,
) -> anyhow::Result<()> {
    let mut running = ToolCommand::ffmpeg(std::time::Duration::from_secs(120))
        .args(["-loglevel", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt])
        .args(["-s", &format!("{w}x{h}"), "-i", "pipe:0", "-frames:v", "1"])
        .args(["-q:v", "3", "-update", "1"])
        .arg(path)
        .spawn(Stdio::piped(), Stdio::null())
        .await
        .context("starting ffmpeg for a preview image")?;
    let mut stdin = running.child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(data)
        .await
        .with_context(|| format!("writing the preview {}", path.display()))?;
    drop(stdin);
    running
        .wait()
        .await
        .with_context(|| format!("writing the preview {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::picture::test_source::{plain_info, req_settings};
    use super::*;
    use crate::probe;
    use crate::rawmkv::{self, Clock};
    use crate::stereo::Yuv420;

    #[test]
    fn the_encoded_frame_count_is_read_from_the_encoders_final_report() {
        let first = "frame=    1 fps=0.0 q=0.0 size=       1kB time=00:00:00.00 bitrate=N/A speed=N/A    \r";
        let last = "frame=  900 fps= 24 q=-1.0 Lsize=   26312kB time=00:00:29.93 bitrate=7200.1kbits/s dup=0 drop=0 speed=0.8x    \n";
        assert_eq!(encoded_frames(&format!("{first}{last}")), Some(900));
        assert_eq!(encoded_frames(last), Some(900));
        // An error after the report, or no final report at all: no count.
        assert_eq!(encoded_frames(first), None);
        assert_eq!(encoded_frames(""), None);
        assert_eq!(encoded_frames("[mp4 @ 0x1] frame= bad Lsize="), None);
    }

    /// The real encoder's report, as the engine runs it.
    #[tokio::test]
    async fn the_encoder_reports_the_frames_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.mkv");
        let cfg = EngineConfig::new(dir.path().join("unused.onnx"));
        let info = plain_info();
        let picture = PicturePlan::new(&info, &req_settings());
        let mut req = ConvertRequest::new(dir.path().join("in.mkv"), &out);
        req.settings.encoder = "libx264".to_owned();
        let mut running = encoder_command(&cfg, &req, &info, &picture, &out)
            .spawn(Stdio::piped(), Stdio::null())
            .await
            .unwrap();
        let mut stdin = running.child.stdin.take().unwrap();
        let frame = Yuv420::new(64, 48);
        stdin
            .write_all(&rawmkv::header(64, 48, *b"I420", None, false))
            .await
            .unwrap();
        // Irregular times: 0, 50, 100, 250, ... ms.
        let mut clock = Clock::new(
            (0..37).map(|i| 0.05 * (i + i / 3 * 2) as f64).collect(),
            0.05,
        );
        for i in 0..37 {
            let prefix = rawmkv::frame_prefix(clock.time(i), frame.data.len());
            stdin.write_all(&prefix).await.unwrap();
            stdin.write_all(&frame.data).await.unwrap();
        }
        drop(stdin);
        let stderr = running.wait().await.unwrap();
        assert_eq!(encoded_frames(&stderr), Some(37), "{stderr:?}");
        assert_eq!(probe::count_frames(&out).await.unwrap(), 37);
        // Each frame at its own time, none duplicated or dropped.
        let times = probe::frame_times(&out).await.unwrap();
        let want: Vec<f64> = (0..37).map(|i| 0.05 * (i + i / 3 * 2) as f64).collect();
        assert_eq!(times.len(), 37);
        for (got, want) in times.iter().zip(&want) {
            assert!((got - want).abs() < 0.0006, "{got} vs {want}");
        }
    }
}
