//! Stored depth: "depth once, render many".
//!
//! A conversion can write the depth maps its renderer was given ([`ConvertRequest::depth_out`]),
//! and a later conversion of the same input can read them back instead of running the model
//! ([`ConvertRequest::depth_in`]): another layout or other stereo settings for the price of
//! decoding, warping and encoding, with no inference at all.
//!
//! The file is a lossless 16-bit grey video (FFV1 in Matroska, `gray16le`) at the depth map's
//! own resolution, one frame per input frame, holding the maps exactly as the render stage
//! receives them: after temporal normalisation (and its seam continuity), as levels
//! `round(z * 65535)`. The writing conversion renders from those same rounded values (the
//! maps are rounded in place before they are handed on), so a re-render from the file
//! reproduces the writing conversion's depth bit for bit. Rounding moves a depth by at most
//! 1/131070, far below a thousandth of a pixel of disparity.
//!
//! The flow around it (which job stores, which job reads) is in the video-worker's segment
//! worker (`infer`).
//!
//! [`ConvertRequest::depth_out`]: super::ConvertRequest::depth_out
//! [`ConvertRequest::depth_in`]: super::ConvertRequest::depth_in

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use parallax_media::process::{ProcessError, ToolCommand};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use super::stereo::DepthMap;
use super::BadInput;
use crate::io::read_full;

/// The stored level of depth 1 (near); depth 0 (far) is level 0.
const LEVELS: f32 = 65535.0;

/// The stored pixel format.
const PIX_FMT: &str = "gray16le";

fn bad(msg: String) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg))
}

/// The level a depth in 0..=1 is stored as.
fn level(z: f32) -> u16 {
    // Clamped first, so the cast never saturates; +0.5 then truncation rounds.
    (z.clamp(0.0, 1.0) * LEVELS + 0.5) as u16
}

/// The depth a stored level stands for.
fn depth_of(v: u16) -> f32 {
    f32::from(v) / LEVELS
}

/// One depth map on its way to the writer: little-endian levels.
pub(super) struct Packed {
    width: usize,
    height: usize,
    bytes: Vec<u8>,
}

impl Packed {
    /// An empty buffer for the writer's pool.
    pub(super) fn new() -> Self {
        Self {
            width: 0,
            height: 0,
            bytes: Vec::new(),
        }
    }

    /// Rounds `dm` to stored levels in place (the renderer then gets exactly what a re-render
    /// will read back) and packs the levels into this buffer.
    pub(super) fn store(&mut self, dm: &mut DepthMap) {
        self.width = dm.width;
        self.height = dm.height;
        self.bytes.resize(2 * dm.data.len(), 0);
        for (z, out) in dm.data.iter_mut().zip(self.bytes.chunks_exact_mut(2)) {
            let v = level(*z);
            *z = depth_of(v);
            out.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Unpacks little-endian levels into `dm` (already sized).
fn unpack(bytes: &[u8], dm: &mut DepthMap) {
    for (z, v) in dm.data.iter_mut().zip(bytes.chunks_exact(2)) {
        *z = depth_of(u16::from_le_bytes([v[0], v[1]]));
    }
}

/// Writes the maps that arrive on `maps`, in order, to `path` (the caller moves it into
/// place once the conversion has succeeded); each buffer goes back to `free`. The encoder
/// starts with the first map, whose size it takes. Returns the number of maps written.
pub(super) async fn write(
    path: PathBuf,
    rate: (u64, u64),
    timeout: Duration,
    mut maps: mpsc::Receiver<Packed>,
    free: mpsc::Sender<Packed>,
) -> anyhow::Result<u64> {
    let Some(first) = maps.recv().await else {
        return Ok(0);
    };
    let (w, h) = (first.width, first.height);
    let mut running = ToolCommand::ffmpeg(timeout)
        .args(["-loglevel", "error", "-f", "rawvideo", "-pix_fmt", PIX_FMT])
        .args(["-s", &format!("{w}x{h}")])
        .args([
            "-framerate",
            &format!("{}/{}", rate.0.max(1), rate.1.max(1)),
        ])
        .args(["-i", "pipe:0", "-map", "0:v", "-c:v", "ffv1"])
        // Level 3 codes slices in parallel (both ways); the CRCs would cost a pass for
        // nothing that the container and the frame count do not already catch.
        .args(["-level", "3", "-slices", "4", "-slicecrc", "0"])
        .args(["-f", "matroska", "-y"])
        .arg(&path)
        .spawn(Stdio::piped(), Stdio::null())
        .await
        .context("starting the depth writer")?;
    let mut stdin = running.child.stdin.take().expect("stdin is piped");
    let mut written = 0u64;
    let mut next = Some(first);
    let mut failed = None;
    while let Some(map) = next.take() {
        if (map.width, map.height) != (w, h) {
            failed = Some(anyhow::anyhow!(
                "a depth map of {}x{} among maps of {w}x{h}",
                map.width,
                map.height
            ));
            break;
        }
        if let Err(e) = stdin.write_all(&map.bytes).await {
            failed = Some(anyhow::Error::new(e));
            break;
        }
        written += 1;
        let _ = free.send(map).await;
        next = maps.recv().await;
    }
    drop(stdin);
    let what = || format!("writing the depth maps to {}", path.display());
    if let Some(e) = failed {
        // An encoder that died says why in its own error.
        let exited = running.wait().await;
        let _ = std::fs::remove_file(&path);
        return Err(match exited {
            Err(p) => anyhow::Error::new(p).context(what()),
            Ok(_) => e.context(what()),
        });
    }
    running.wait().await.with_context(what)?;
    Ok(written)
}

/// A stored depth file, opened for reading.
#[derive(Debug, Clone)]
pub(super) struct StoredDepth {
    path: PathBuf,
    width: usize,
    height: usize,
}

impl StoredDepth {
    /// Checks that `path` is a stored depth file (a 16-bit grey video) and reads its size.
    pub(super) async fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.is_file() {
            bail!("the stored depth {} does not exist", path.display());
        }
        let args = [
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,pix_fmt",
        ];
        let probe = match parallax_media::probe::json(path, Duration::from_secs(60), &args).await {
            Ok(p) => p,
            Err(parallax_media::Error::Process(e @ ProcessError::Failed { .. })) => {
                return Err(bad(format!(
                    "the stored depth {} is not readable: {e}",
                    path.display()
                )))
            }
            Err(e) => return Err(anyhow::Error::new(e).context("probing the stored depth")),
        };
        let stream = probe.streams.first();
        match stream.map(|s| (s.width, s.height, s.pix_fmt.as_deref())) {
            Some((Some(width), Some(height), Some(PIX_FMT))) if width > 0 && height > 0 => {
                Ok(Self {
                    path: path.to_owned(),
                    width: width as usize,
                    height: height as usize,
                })
            }
            found => Err(bad(format!(
                "{} is not a stored depth file (a {PIX_FMT} video); it holds {}",
                path.display(),
                match found {
                    None => "no video stream".to_owned(),
                    Some((w, h, fmt)) => format!(
                        "a {}x{} {} video",
                        w.unwrap_or(0),
                        h.unwrap_or(0),
                        fmt.unwrap_or("unknown")
                    ),
                }
            ))),
        }
    }

    /// The maps' size (width, height).
    pub(super) fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }
}

/// The depth stage of a conversion that reads stored depth: pairs every frame arriving on
/// `input` with the next stored map (in a buffer from `free_depth`) and sends both to
/// `to_render`. The stored maps must be exactly as many as the input's frames: fewer or more
/// is a [`BadInput`] (the file belongs to another input). More is only checked once the
/// input has decoded cleanly (`decoded_ok`), so that a decoding failure is reported as
/// itself.
pub(super) async fn read<M: Send + 'static>(
    stored: StoredDepth,
    timeout: Duration,
    mut input: mpsc::Receiver<M>,
    mut free_depth: mpsc::Receiver<DepthMap>,
    to_render: mpsc::Sender<(M, DepthMap)>,
    decoded_ok: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let (w, h) = stored.size();
    let mut running = ToolCommand::ffmpeg(timeout)
        .args(["-loglevel", "error", "-i"])
        .arg(&stored.path)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", PIX_FMT, "pipe:1"])
        .spawn(Stdio::null(), Stdio::piped())
        .await
        .context("starting the stored depth's decoder")?;
    let mut stdout = running.child.stdout.take().expect("stdout is piped");
    let mut bytes = vec![0u8; 2 * w * h];
    let mut read = 0u64;
    let shown = stored.path.display();
    while let Some(m) = input.recv().await {
        let Some(mut dm) = free_depth.recv().await else {
            // The render stage stopped; its error is the one to report.
            return Ok(());
        };
        if (dm.width, dm.height) != (w, h) {
            dm = DepthMap::new(w, h);
        }
        let got = read_full(&mut stdout, &mut bytes, "the stored depth").await?;
        if got < bytes.len() {
            drop(stdout);
            // A decoder failure says more than a short count.
            running
                .wait()
                .await
                .with_context(|| format!("decoding the stored depth {shown}"))?;
            return Err(bad(format!(
                "the stored depth {shown} has {read} frames but the input has more"
            )));
        }
        unpack(&bytes, &mut dm);
        read += 1;
        if to_render.send((m, dm)).await.is_err() {
            return Ok(());
        }
    }
    if !decoded_ok.load(Ordering::Acquire) {
        // The input stopped early: the read stage reports why.
        return Ok(());
    }
    let extra = read_full(&mut stdout, &mut bytes[..1], "the stored depth").await?;
    if extra > 0 {
        return Err(bad(format!(
            "the stored depth {shown} has more frames than the input's {read}"
        )));
    }
    drop(stdout);
    running
        .wait()
        .await
        .with_context(|| format!("decoding the stored depth {shown}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_levels_round_trip_exactly() {
        let mut dm = DepthMap::new(4, 2);
        dm.data = vec![0.0, 1.0, 0.5, 0.123_456, -0.2, 1.7, 1e-6, 0.999_99];
        let mut packed = Packed::new();
        packed.store(&mut dm);
        assert_eq!((packed.width, packed.height), (4, 2));
        assert_eq!(packed.bytes.len(), 16);
        assert_eq!(&packed.bytes[..4], &[0, 0, 0xff, 0xff]);
        // Rounded in place to the stored levels: within half a level of the original.
        for (got, want) in dm
            .data
            .iter()
            .zip([0.0, 1.0, 0.5, 0.123_456, 0.0, 1.0, 1e-6, 0.999_99])
        {
            assert!((got - want).abs() <= 0.5 / LEVELS + 1e-7, "{got} vs {want}");
        }
        // What a reader gets back is bit for bit what the writer's renderer was given.
        let mut back = DepthMap::new(4, 2);
        unpack(&packed.bytes, &mut back);
        assert_eq!(back.data, dm.data);
        // Storing rounded values again changes nothing.
        let before = dm.data.clone();
        packed.store(&mut dm);
        assert_eq!(dm.data, before);
    }

    /// Through the real encoder and decoder: every level survives, and a file that is not
    /// stored depth is refused as bad input.
    #[tokio::test]
    async fn a_depth_file_holds_every_level_losslessly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("depth.mkv");
        let (w, h) = (32usize, 18usize);
        let (tx, rx) = mpsc::channel(8);
        let (free_tx, mut free_rx) = mpsc::channel(8);
        let mut maps = Vec::new();
        for f in 0..5u32 {
            let mut dm = DepthMap::new(w, h);
            for (i, z) in dm.data.iter_mut().enumerate() {
                *z = ((i as u32 * 7919 + f * 104_729) % 65536) as f32 / 65535.0;
            }
            let mut p = Packed::new();
            p.store(&mut dm);
            maps.push(dm);
            tx.send(p).await.unwrap();
        }
        drop(tx);
        let n = write(path.clone(), (25, 1), Duration::from_secs(60), rx, free_tx)
            .await
            .unwrap();
        assert_eq!(n, 5);
        while free_rx.try_recv().is_ok() {}

        let stored = StoredDepth::open(&path).await.unwrap();
        assert_eq!(stored.size(), (w, h));
        let (in_tx, in_rx) = mpsc::channel(8);
        let (dfree_tx, dfree_rx) = mpsc::channel(8);
        for _ in 0..5 {
            dfree_tx.send(DepthMap::new(0, 0)).await.unwrap();
        }
        let (out_tx, mut out_rx) = mpsc::channel(8);
        for i in 0..5u32 {
            in_tx.send(i).await.unwrap();
        }
        drop(in_tx);
        let ok = Arc::new(AtomicBool::new(true));
        read(
            stored.clone(),
            Duration::from_secs(60),
            in_rx,
            dfree_rx,
            out_tx,
            ok.clone(),
        )
        .await
        .unwrap();
        for (i, want) in maps.iter().enumerate() {
            let (m, dm) = out_rx.recv().await.unwrap();
            assert_eq!(m, i as u32);
            assert_eq!(dm.data, want.data, "map {i}");
        }

        // Six frames against five stored maps.
        let (in_tx, in_rx) = mpsc::channel(8);
        let (dfree_tx, dfree_rx) = mpsc::channel(8);
        for _ in 0..6 {
            dfree_tx.send(DepthMap::new(0, 0)).await.unwrap();
        }
        for i in 0..6u32 {
            in_tx.send(i).await.unwrap();
        }
        drop(in_tx);
        let (out_tx, _out_rx) = mpsc::channel(8);
        let err = read(
            stored.clone(),
            Duration::from_secs(60),
            in_rx,
            dfree_rx,
            out_tx,
            ok.clone(),
        )
        .await
        .unwrap_err();
        assert!(BadInput::find(&err).is_some(), "{err:#}");
        assert!(format!("{err:#}").contains("has 5 frames"), "{err:#}");

        // Four frames against five.
        let (in_tx, in_rx) = mpsc::channel(8);
        let (dfree_tx, dfree_rx) = mpsc::channel(8);
        for _ in 0..4 {
            dfree_tx.send(DepthMap::new(0, 0)).await.unwrap();
        }
        for i in 0..4u32 {
            in_tx.send(i).await.unwrap();
        }
        drop(in_tx);
        let (out_tx, _out_rx) = mpsc::channel(8);
        let err = read(stored, Duration::from_secs(60), in_rx, dfree_rx, out_tx, ok)
            .await
            .unwrap_err();
        assert!(BadInput::find(&err).is_some(), "{err:#}");
        assert!(format!("{err:#}").contains("more frames"), "{err:#}");

        // Not a depth file.
        let text = dir.path().join("notes.mkv");
        std::fs::write(&text, "not a video").unwrap();
        let err = StoredDepth::open(&text).await.unwrap_err();
        assert!(BadInput::find(&err).is_some(), "{err:#}");
    }
}
