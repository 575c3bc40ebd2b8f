//! The read stage: the decoder ffmpeg (the source's picture through `PicturePlan`'s filters)
//! and whole raw frames read from its pipe into pool buffers.

use std::path::Path;

use anyhow::bail;
use parallax_media::process::ToolCommand;
use tokio::sync::mpsc;

use super::picture::PicturePlan;
use super::process::{streaming, widen_pipe};
use super::FrameMsg;
use crate::io::read_full;
use crate::stereo::{Sample, Yuv420};

/// The decoder: `input`'s first video stream as raw frames in `picture`'s pixel format,
/// after `picture`'s filters.
pub(super) fn decoder_command(
    input: &Path,
    seek: Option<f64>,
    (w, h): (usize, usize),
    picture: &PicturePlan,
    timeout: std::time::Duration,
) -> ToolCommand {
    // Autorotation is ffmpeg's default; the picture's own filters (deinterlace, tone-map)
    // first; crop to even sizes (4:2:0), scale only warm-up frames of a differently sized
    // previous segment, and make the levels limited range.
    let vf = format!(
        "{}crop=trunc(iw/2)*2:trunc(ih/2)*2,scale={w}:{h}:flags=bilinear:out_range=tv",
        picture.filters
    );
    let mut cmd = streaming(ToolCommand::ffmpeg(timeout)).args(["-loglevel", "error"]);
    if let Some(secs) = seek {
        cmd = cmd.args(["-ss", &format!("{secs:.6}")]);
    }
    cmd.arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-vf", &vf])
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            picture.pix_fmt,
            "pipe:1",
        ])
}

/// Reads whole frames from the decoder into pool buffers and sends them on; returns the
/// number read (also added to `count`) after the decoder exited successfully.
pub(super) async fn read_frames<T: Sample>(
    mut running: parallax_media::process::Running,
    free_rx: &mut mpsc::Receiver<Yuv420<T>>,
    spare: &mut Option<Yuv420<T>>,
    to_depth: &mpsc::Sender<FrameMsg<T>>,
    warmup: bool,
    count: &mut u64,
) -> anyhow::Result<u64> {
    let mut stdout = running.child.stdout.take().expect("stdout is piped");
    widen_pipe(&stdout);
    let mut n = 0u64;
    loop {
        let mut buf = match spare.take() {
            Some(b) => b,
            None => match free_rx.recv().await {
                Some(b) => b,
                None => bail!("the pipeline stopped"),
            },
        };
        let got = read_full(&mut stdout, buf.bytes_mut(), "the decoder's output").await?;
        if got == 0 {
            // Keep the unused buffer for the next decoder.
            *spare = Some(buf);
            break;
        }
        if got < buf.bytes().len() {
            bail!(
                "the decoder's output ended inside a frame ({got} of {} bytes)",
                buf.bytes().len()
            );
        }
        let msg = FrameMsg {
            frame: buf,
            warmup,
            index: *count,
        };
        if to_depth.send(msg).await.is_err() {
            bail!("the depth stage stopped");
        }
        n += 1;
        if !warmup {
            *count += 1;
        }
    }
    drop(stdout);
    running.wait().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::picture::test_source::{plain_info, req_settings};
    use super::*;
    use crate::probe;

    #[tokio::test]
    async fn the_warmup_decoder_yields_exactly_the_last_frames() {
        let dir = tempfile::tempdir().unwrap();
        let prev = dir.path().join("previous.mkv");
        // 3 s at 24 fps, a keyframe every 2 s and B-frames, in MKV as segments are, starting
        // 5 s into its timeline (`-ss` counts from the first frame, not from zero).
        ToolCommand::ffmpeg(Duration::from_secs(60))
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=64x48:rate=24:duration=3",
            ])
            .args([
                "-c:v",
                "libx264",
                "-g",
                "48",
                "-bf",
                "2",
                "-output_ts_offset",
                "5",
            ])
            .arg(&prev)
            .output()
            .await
            .unwrap();
        let timeout = Duration::from_secs(60);
        let plain = PicturePlan::new(&plain_info(), &req_settings());
        let all = decoder_command(&prev, None, (64, 48), &plain, timeout)
            .output()
            .await
            .unwrap()
            .stdout;
        let frame = 64 * 48 * 3 / 2;
        assert_eq!(all.len(), 72 * frame);
        for n in [1usize, 10, 30, 71] {
            let seek = probe::tail_start(&prev, n as u64).await.unwrap();
            assert!(seek.is_some(), "{n} of 72 frames");
            let tail = decoder_command(&prev, seek, (64, 48), &plain, timeout)
                .output()
                .await
                .unwrap()
                .stdout;
            assert_eq!(tail.len(), n * frame, "the last {n} frames");
            assert!(
                tail == all[all.len() - n * frame..],
                "the last {n} frames' pixels"
            );
        }
        assert_eq!(probe::tail_start(&prev, 72).await.unwrap(), None);
    }
}
