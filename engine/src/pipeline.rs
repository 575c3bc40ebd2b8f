//! The conversion pipeline: four stages connected by bounded channels, each buffer coming
//! from a fixed pool and going back to it when the next stage is done with it:
//!
//! ```text
//! decoder ffmpeg --yuv420p--> [read]  --frame--> [depth: preprocess, model, normalise]
//!   --frame+depth--> [render: warp, layout] --out frame--> [write] --yuv420p--> encoder ffmpeg
//! ```
//!
//! read and write are async (pipes); depth and render are blocking threads (the warp is
//! parallel inside, with rayon). The pools bound memory and give back-pressure.
//!
//! This module wires the stages together and checks the result; each stage is its own module:
//! `decode` (read), `depth` and `windowed` (per-frame and temporal models), `render`, `encode`
//! (write, and the preview images), with `picture` (what is done to the source's picture) and
//! `process` (how the ffmpeg processes run) beside them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use parallax_core::model::StereoMode;
use parallax_media::process::ProcessError;
use tokio::sync::mpsc;

use super::depthfile::{self, Packed, StoredDepth};
use super::fastdepth::FastDepthStage;
use super::feed::Feed;
use super::metadata;
use super::probe::{self, VideoInfo};
use super::rawmkv::{self, Clock};
use super::stereo::shape::AutoConvergence;
use super::stereo::{output_size, DepthMap, Sample, StereoParams, Yuv420};
use super::temporal::Normalizer;
use super::{BadInput, ConvertReport, ConvertRequest, Engine, SeamStart, DEFAULT_DEPTH_RESOLUTION};

mod decode;
mod depth;
mod encode;
mod picture;
mod process;
mod render;
mod windowed;

use decode::{decoder_command, read_frames};
use depth::depth_stage;
use encode::{encoded_frames, encoder_command, write_image};
use picture::PicturePlan;
use process::widen_pipe;
use render::render_stage;

/// Output frames in flight between render and write (one of them may be held by the write
/// stage until the encoder has read it; see `feed`).
const OUT_POOL: usize = 4;
/// Depth maps in flight between depth and render, beyond one batch's (the depth stage takes
/// a whole batch's maps before running the model).
const DEPTH_POOL: usize = 2;

struct FrameMsg<T> {
    frame: Yuv420<T>,
    /// Warm-up frames only feed the normalisation state.
    warmup: bool,
    /// Index among the main input's frames.
    index: u64,
}

fn bad(msg: String) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg))
}

pub(super) async fn convert(
    engine: &Engine,
    req: &ConvertRequest,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> anyhow::Result<ConvertReport> {
    req.settings
        .validate()
        .map_err(|e| bad(format!("invalid conversion settings: {e}")))?;
    let info = probe::probe(&req.input).await?;
    let picture = PicturePlan::new(&info, &req.settings);
    if picture.bits > 8 {
        convert_as::<u16>(engine, req, progress, info, picture).await
    } else {
        convert_as::<u8>(engine, req, progress, info, picture).await
    }
}

/// [`convert`] with frames of `T` samples from decode to encode.
async fn convert_as<T: Sample>(
    engine: &Engine,
    req: &ConvertRequest,
    progress: &(dyn Fn(u64) + Send + Sync),
    info: VideoInfo,
    picture: PicturePlan,
) -> anyhow::Result<ConvertReport> {
    let (w, h) = (info.width, info.height);
    let short_side = req
        .settings
        .depth_resolution
        .or(engine.cfg.depth_resolution)
        .unwrap_or(DEFAULT_DEPTH_RESOLUTION);
    let model = engine.model.clone();
    // Stored depth, when the request gives it: its maps' size, and no model run.
    let stored = match &req.depth_in {
        Some(_) if req.depth_out.is_some() => {
            bail!("a conversion either reads stored depth or stores its own, not both")
        }
        Some(path) => Some(StoredDepth::open(path).await?),
        None => None,
    };
    let (dw, dh) = match &stored {
        Some(s) => s.size(),
        None => model.input_size(w, h, short_side),
    };
    // A temporal model's stage holds a window of frames: the pools are sized for it.
    let temporal = model.kind() == super::model::ModelKind::Temporal;
    let window = model.window(engine.cfg.window);
    let batch = if temporal {
        window
    } else {
        model.batch_size(engine.cfg.batch_size)
    };
    let timeout = engine.cfg.ffmpeg_timeout;
    let (ow, oh) = output_size(req.mode, w, h);
    tracing::info!(
        input = %req.input.display(), width = w, height = h, rate = ?info.rate,
        depth_width = dw, depth_height = dh, batch, mode = %req.mode,
        stored_depth = stored.is_some(), "converting"
    );
    // Every output frame is shown when its source frame was (variable and mislabelled rates
    // included); past the known times (never, for a well-formed file) at the average rate.
    let times = probe::frame_times(&req.input).await?;
    let mut clock = Clock::new(times, info.rate.1 as f64 / info.rate.0 as f64);

    // Warm-up decoder over the previous segment's tail, if any: it seeks there (decoding from
    // the keyframe before it) rather than decoding the whole previous segment.
    let (warmup, resume) = match &req.seam {
        // Stored depth is normalised already: nothing to warm up or resume.
        _ if stored.is_some() => (None, None),
        SeamStart::Warmup { previous, frames } if *frames > 0 => (
            Some((
                previous.clone(),
                probe::tail_start(previous, (*frames).into()).await?,
            )),
            None,
        ),
        SeamStart::Resume(state) => (None, Some(state.clone())),
        _ => (None, None),
    };
    // Set once the input has decoded cleanly: only then is the state the depth stage ends
    // with worth handing to the next segment.
    let decoded_ok = Arc::new(AtomicBool::new(false));

    let partial = partial_path(&req.output);
    let encoder = encoder_command(&engine.cfg, req, &info, &picture, &partial)
        .spawn(Stdio::piped(), Stdio::null())
        .await
        .context("starting the encoder")?;

    // Pools.
    let frame_pool = batch + 4;
    let (free_tx, mut free_rx) = mpsc::channel::<Yuv420<T>>(frame_pool);
    for _ in 0..frame_pool {
        free_tx.try_send(Yuv420::new(w, h)).expect("pool capacity");
    }
    let depth_pool = batch + DEPTH_POOL;
    let (depth_free_tx, depth_free_rx) = mpsc::channel::<DepthMap>(depth_pool);
    for _ in 0..depth_pool {
        depth_free_tx
            .try_send(DepthMap::new(0, 0))
            .expect("pool capacity");
    }
    let (out_free_tx, out_free_rx) = mpsc::channel::<Yuv420<T>>(OUT_POOL);
    for _ in 0..OUT_POOL {
        out_free_tx
            .try_send(Yuv420::new(ow, oh))
            .expect("pool capacity");
    }
    let (to_depth_tx, to_depth_rx) = mpsc::channel::<FrameMsg<T>>(batch + 1);
    let (to_render_tx, to_render_rx) = mpsc::channel::<(FrameMsg<T>, DepthMap)>(depth_pool);
    let (to_write_tx, mut to_write_rx) = mpsc::channel::<Yuv420<T>>(OUT_POOL);
    // Depth maps on their way to the depth file, when they are stored.
    let store_pool = batch + DEPTH_POOL;
    let (store_stage, depth_writer) = match &req.depth_out {
        Some(out) => {
            let (free_tx, free_rx) = mpsc::channel::<Packed>(store_pool);
            for _ in 0..store_pool {
                free_tx.try_send(Packed::new()).expect("pool capacity");
            }
            let (to_store_tx, to_store_rx) = mpsc::channel::<Packed>(store_pool);
            (
                Some((free_rx, to_store_tx)),
                Some((partial_path(out), to_store_rx, free_tx)),
            )
        }
        None => (None, None),
    };
    let depth_partial = depth_writer.as_ref().map(|(p, _, _)| p.clone());

    let matrix = picture.matrix;
    // Depth stage: the model, or the stored depth (async: it reads a decoder's pipe).
    let depth_stage = if let Some(stored) = stored {
        tokio::spawn(depthfile::read(
            stored,
            timeout,
            to_depth_rx,
            depth_free_rx,
            to_render_tx,
            decoded_ok.clone(),
        ))
    } else {
        let model = model.clone();
        let free_tx = free_tx.clone();
        let mut norm = Normalizer::new(req.settings.ema_decay);
        if let Some(state) = &resume {
            norm.resume(state);
        }
        let seam_end = req.seam_end.clone().map(|sink| (sink, decoded_ok.clone()));
        let fast = (!temporal)
            .then(|| FastDepthStage::new(&req.settings, &model, (w, h), (dw, dh), matrix))
            .flatten();
        let seam_depth = resume.as_ref().and_then(|s| s.seam_depth().cloned());
        tokio::task::spawn_blocking(move || {
            if temporal {
                return windowed::depth_stage(
                    &model,
                    (w, h),
                    (dw, dh),
                    matrix,
                    window,
                    seam_depth,
                    (norm, seam_end),
                    to_depth_rx,
                    free_tx,
                    depth_free_rx,
                    to_render_tx,
                    store_stage,
                );
            }
            depth_stage(
                &model,
                (w, h),
                (dw, dh),
                matrix,
                (batch, fast),
                (norm, seam_end),
                to_depth_rx,
                free_tx,
                depth_free_rx,
                to_render_tx,
                store_stage,
            )
        })
    };

    // Render stage.
    let render_stage = {
        let params = StereoParams::from_settings(&req.settings);
        let auto = req
            .settings
            .auto_convergence
            .then(|| AutoConvergence::new(req.settings.ema_decay));
        let mode = req.mode;
        let want_preview = req.preview_dir.is_some();
        tokio::task::spawn_blocking(move || {
            render_stage(
                (w, h),
                (dw, dh),
                matrix,
                (params, auto),
                mode,
                want_preview,
                to_render_rx,
                free_tx,
                depth_free_tx,
                out_free_rx,
                to_write_tx,
            )
        })
    };

    // Read stage (async, here).
    let read = async {
        let mut decoded = 0u64;
        let mut spare = None;
        if let Some((prev, seek)) = &warmup {
            let running = decoder_command(prev, *seek, (w, h), &picture, timeout)
                .spawn(Stdio::null(), Stdio::piped())
                .await
                .context("starting the warm-up decoder")?;
            let n = read_frames(
                running,
                &mut free_rx,
                &mut spare,
                &to_depth_tx,
                true,
                &mut 0,
            )
            .await
            .with_context(|| format!("decoding the warm-up frames of {}", prev.display()))?;
            tracing::debug!(frames = n, "warm-up frames read");
        }
        let running = decoder_command(&req.input, None, (w, h), &picture, timeout)
            .spawn(Stdio::null(), Stdio::piped())
            .await
            .context("starting the decoder")?;
        read_frames(
            running,
            &mut free_rx,
            &mut spare,
            &to_depth_tx,
            false,
            &mut decoded,
        )
        .await
        .map_err(|e| match e.downcast::<ProcessError>() {
            Ok(p @ ProcessError::Failed { .. }) => {
                bad(format!("{} could not be decoded: {p}", req.input.display()))
            }
            Ok(p) => anyhow::Error::new(p).context("decoding the input"),
            Err(e) => e.context("decoding the input"),
        })?;
        decoded_ok.store(true, Ordering::Release);
        drop(to_depth_tx);
        anyhow::Ok(decoded)
    };

    // Write stage (async, here).
    let write = async {
        let mut encoder = encoder;
        let stdin = encoder.child.stdin.take().expect("stdin is piped");
        widen_pipe(&stdin);
        let feed = Feed::new(stdin).context("preparing the encoder's input")?;
        let fourcc = rawmkv::fourcc(T::PIX_FMT).expect("a raw format Matroska carries");
        let mut written = 0u64;
        let stereo = metadata::stereo_tags(req.mode).map(|t| t.matroska);
        let header = rawmkv::header(ow, oh, fourcc, stereo, req.mode == StereoMode::Vr180);
        let mut feed_err = feed.feed(&header).await.err();
        let mut out_free_tx = Some(out_free_tx);
        // The last spliced frame, which the encoder may not have read yet.
        let mut held = None;
        while let Some(buf) = to_write_rx.recv().await {
            if feed_err.is_none() {
                let at = clock.time(written as usize);
                let prefix = rawmkv::frame_prefix(at, buf.bytes().len());
                feed_err = feed.feed(&prefix).await.err();
            }
            if feed_err.is_none() {
                feed_err = feed.feed(buf.bytes()).await.err();
            }
            if let Some(e) = feed_err.take() {
                drop(feed);
                return Err(match encoder.wait().await {
                    Err(p) => anyhow::Error::new(p).context("encoding"),
                    Ok(_) => anyhow!("writing to the encoder: {e}"),
                });
            }
            written += 1;
            progress(written);
            // Fed in full: the frame before it has been read.
            let done = if feed.splices(buf.bytes().len()) {
                held.replace(buf)
            } else {
                Some(buf)
            };
            if let (Some(tx), Some(done)) = (&out_free_tx, done) {
                if tx.send(done).await.is_err() {
                    out_free_tx = None;
                }
            }
        }
        // End of input for the encoder; the held frame is read once it has exited.
        drop(feed);
        let stderr = match encoder.wait().await {
            Ok(stderr) => stderr,
            // Nothing was decoded, so nothing could be encoded: the check below says so as
            // bad input ("has no video frames"), rather than an encoder failure to retry.
            Err(_) if written == 0 => String::new(),
            Err(e) => return Err(anyhow::Error::new(e).context("encoding")),
        };
        drop(held);
        anyhow::Ok((written, encoded_frames(&stderr)))
    };

    let depth = async {
        depth_stage
            .await
            .map_err(|e| anyhow!("the depth stage panicked: {e}"))?
    };
    let render = async {
        render_stage
            .await
            .map_err(|e| anyhow!("the render stage panicked: {e}"))?
    };
    // Depth file stage (async, here), when the depth is stored.
    let store = async {
        match depth_writer {
            Some((path, maps, free)) => {
                depthfile::write(path, info.rate, timeout, maps, free).await
            }
            None => Ok(0),
        }
    };
    let remove_partials = || {
        let _ = std::fs::remove_file(&partial);
        if let Some(p) = &depth_partial {
            let _ = std::fs::remove_file(p);
        }
    };
    let result = tokio::try_join!(read, depth, render, write, store);
    let (decoded, (), preview, (written, encoded), stored_maps) = match result {
        Ok(v) => v,
        Err(e) => {
            remove_partials();
            return Err(e);
        }
    };

    let check = async {
        if decoded == 0 {
            return Err(bad(format!("{} has no video frames", req.input.display())));
        }
        if let Some(expected) = req.expected_frames {
            if expected != decoded {
                return Err(bad(format!(
                    "{} has {decoded} frames, expected {expected}",
                    req.input.display()
                )));
            }
        }
        if written != decoded {
            bail!("wrote {written} frames for {decoded} decoded");
        }
        // The encoder's own count, else (an ffmpeg whose report reads differently) the
        // file's, from one more ffprobe over it.
        let in_file = match encoded {
            Some(n) => n,
            None => probe::count_frames(&partial).await?,
        };
        if in_file != decoded {
            bail!("the encoded file has {in_file} frames, {decoded} were sent");
        }
        if depth_partial.is_some() && stored_maps != decoded {
            bail!("stored {stored_maps} depth maps for {decoded} frames");
        }
        Ok(())
    };
    if let Err(e) = check.await {
        remove_partials();
        return Err(e);
    }
    if let (Some(p), Some(out)) = (&depth_partial, &req.depth_out) {
        std::fs::rename(p, out)
            .with_context(|| format!("moving the depth maps to {}", out.display()))?;
    }
    std::fs::rename(&partial, &req.output)
        .with_context(|| format!("moving the result to {}", req.output.display()))?;

    let mut report = ConvertReport {
        frames: decoded,
        preview_sbs: None,
        preview_depth: None,
        notes: picture.notes.clone(),
        depth: req.depth_out.clone(),
    };
    if let (Some(dir), Some(p)) = (&req.preview_dir, preview) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the preview folder {}", dir.display()))?;
        let sbs = dir.join("preview-sbs.jpg");
        let depth = dir.join("preview-depth.png");
        write_image(p.sbs.bytes(), T::PIX_FMT, (p.sbs.width, p.sbs.height), &sbs).await?;
        write_image(&p.depth, "gray", (w, h), &depth).await?;
        report.preview_sbs = Some(sbs);
        report.preview_depth = Some(depth);
    }
    for note in &report.notes {
        tracing::info!(input = %req.input.display(), "{note}");
    }
    tracing::info!(frames = decoded, output = %req.output.display(), "converted");
    Ok(report)
}

fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    // Keep the extension last so ffmpeg still picks the container from it.
    out.with_file_name(format!(".partial-{name}"))
}
