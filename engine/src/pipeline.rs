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

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use parallax_core::model::StereoMode;
use parallax_media::process::{ProcessError, ToolCommand};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::colour::Matrix;
use super::depthfile::{self, Packed, StoredDepth};
use super::fastdepth::FastDepthStage;
use super::feed::Feed;
use super::metadata;
use super::preprocess::Preprocessor;
use super::probe::{self, VideoInfo};
use super::rawmkv::{self, Clock};
use super::stereo::shape::AutoConvergence;
use super::stereo::{output_size, DepthMap, Sample, StereoParams, StereoRenderer, Yuv420};
use super::temporal::{thumbnail, Normalizer, Thumbnail};
use super::{
    BadInput, ConvertReport, ConvertRequest, Engine, EngineConfig, SeamStart, StateSink,
    DEFAULT_DEPTH_RESOLUTION,
};
use parallax_core::picture::{self, Transfer};

mod windowed;

/// Output frames in flight between render and write (one of them may be held by the write
/// stage until the encoder has read it; see `feed`).
const OUT_POOL: usize = 4;
/// Depth maps in flight between depth and render, beyond one batch's (the depth stage takes
/// a whole batch's maps before running the model).
const DEPTH_POOL: usize = 2;
/// The capacity asked for the pipes to and from ffmpeg: Linux's default of 64 KiB moves a
/// 720p frame in dozens of writes, each waking the other side; 1 MiB is the most an
/// unprivileged process may ask for by default (`/proc/sys/fs/pipe-max-size`).
const PIPE_BYTES: usize = 1 << 20;

/// glibc malloc settings for the decoder and encoder: ffmpeg allocates a fresh buffer for
/// every raw frame it writes or reads. Past glibc's default thresholds those come from
/// `mmap` or from a heap top that is trimmed on every free, so each frame's pages are
/// faulted in and zeroed anew (2% of a conversion's CPU, most of the encoder's kernel
/// time). A fixed mmap threshold of 32 MiB (the most glibc takes) and a high trim threshold
/// keep the freed buffers for the next frame. Other C libraries ignore the variable.
const STREAMING_MALLOC: &str =
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456";

/// `cmd` with [`STREAMING_MALLOC`]; tunables already in the environment come after, so they
/// win.
fn streaming(cmd: ToolCommand) -> ToolCommand {
    cmd.env(
        "GLIBC_TUNABLES",
        streaming_tunables(std::env::var_os("GLIBC_TUNABLES")),
    )
}

fn streaming_tunables(own: Option<std::ffi::OsString>) -> std::ffi::OsString {
    let mut tunables = std::ffi::OsString::from(STREAMING_MALLOC);
    if let Some(own) = own.filter(|v| !v.is_empty()) {
        tunables.push(":");
        tunables.push(own);
    }
    tunables
}

struct FrameMsg<T> {
    frame: Yuv420<T>,
    /// Warm-up frames only feed the normalisation state.
    warmup: bool,
    /// Index among the main input's frames.
    index: u64,
}

struct Preview<T> {
    sbs: Yuv420<T>,
    depth: Vec<u8>,
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

/// The decoder: `input`'s first video stream as raw frames in `picture`'s pixel format,
/// after `picture`'s filters.
fn decoder_command(
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

/// How the engine handles a source's picture: the decoder's filters before the usual crop and
/// scale, the sample format from decode to encode, the matrix of the decoded frames, the
/// output's colour tags and HDR metadata, and what the job is told.
#[derive(Debug, Clone, PartialEq)]
struct PicturePlan {
    /// Filters (each followed by a comma) the decoder runs first.
    filters: String,
    /// Bits per sample from decode to encode (8, or 10 in 16-bit samples).
    bits: u32,
    /// The raw frames' pixel format.
    pix_fmt: &'static str,
    /// The YUV matrix of the decoded frames.
    matrix: Matrix,
    /// The encoder's colour flags.
    colour: Vec<(&'static str, String)>,
    /// HDR10 metadata the encoder writes (HDR kept).
    hdr: Option<probe::HdrMetadata>,
    /// What was done, in words.
    notes: Vec<String>,
}

impl PicturePlan {
    fn new(info: &VideoInfo, settings: &parallax_core::model::ConversionSettings) -> Self {
        let output = picture::Output::new(
            info.transfer,
            settings.output_bits(info.layout.bits),
            settings.tone_map,
        );
        let pix_fmt = if output.bits > 8 {
            <u16 as Sample>::PIX_FMT
        } else {
            <u8 as Sample>::PIX_FMT
        };
        let mut filters = String::new();
        let deinterlace = info.interlaced && settings.deinterlace;
        if deinterlace {
            // One frame per frame (the frame count and times stay the source's).
            filters.push_str("bwdif=mode=send_frame:parity=auto:deint=all,");
        }
        let tag = |flag: &str| {
            info.colour
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, v)| v.clone())
        };
        let (matrix, colour, hdr) = if !output.tone_map {
            // The source's matrix, primaries and transfer (HDR included), at limited range
            // (the decoder's scale converts full-range levels).
            let mut colour: Vec<_> = info
                .colour
                .iter()
                .filter(|(f, _)| *f != "-color_range")
                .cloned()
                .collect();
            colour.push(("-color_range", "tv".to_owned()));
            // The matrix the engine read the source with, said in the file when the source
            // did not say it (so players do not guess another; it also makes the encoders
            // write the range into the bitstream, where every container keeps it).
            if !colour.iter().any(|(f, _)| *f == "-colorspace") {
                colour.push(("-colorspace", info.matrix.name.to_owned()));
            }
            let hdr = (info.transfer != Transfer::Sdr).then(|| info.hdr.clone());
            (info.matrix, colour, hdr)
        } else {
            // HDR to BT.709 SDR: to linear light, to BT.709 primaries, tone-mapped (Hable),
            // then BT.709's transfer and matrix at limited range.
            let tin = tag("-color_trc").unwrap_or_else(|| "smpte2084".to_owned());
            let pin = match tag("-color_primaries").as_deref() {
                Some("bt709") => "709",
                _ => "2020",
            };
            let min = match tag("-colorspace").as_deref() {
                Some("bt709") => "709",
                _ => "2020_ncl",
            };
            let rin = if info.full_range { "full" } else { "limited" };
            filters.push_str(&format!(
                "zscale=tin={tin}:pin={pin}:min={min}:rin={rin}:t=linear:npl=100,format=gbrpf32le,\
                 zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,\
                 format={pix_fmt},"
            ));
            let colour = ["-colorspace", "-color_trc", "-color_primaries"]
                .into_iter()
                .map(|f| (f, "bt709".to_owned()))
                .chain([("-color_range", "tv".to_owned())])
                .collect();
            (Matrix::BT709, colour, None)
        };
        let notes = picture::conversion_notes(
            info.layout,
            info.transfer,
            output,
            info.interlaced,
            settings.deinterlace,
            info.full_range,
        );
        Self {
            filters,
            bits: output.bits,
            pix_fmt,
            matrix,
            colour,
            hdr,
            notes,
        }
    }
}

fn encoder_command(
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
        let (filter, size) = super::stereo::vr180_filter(info.width, info.height);
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
fn encoded_frames(stderr: &str) -> Option<u64> {
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

/// Reads whole frames from the decoder into pool buffers and sends them on; returns the
/// number read (also added to `count`) after the decoder exited successfully.
async fn read_frames<T: Sample>(
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
        let got = read_full(&mut stdout, buf.bytes_mut()).await?;
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

/// Asks for a [`PIPE_BYTES`] pipe: fewer, larger transfers and fewer wake-ups on both sides.
/// A refusal (a lower system limit) only costs speed.
fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_BYTES) {
        tracing::debug!(error = %e, "keeping the pipe's default size");
    }
}

async fn read_full(r: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> anyhow::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = r
            .read(&mut buf[got..])
            .await
            .context("reading the decoder's output")?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

#[allow(clippy::too_many_arguments)]
fn depth_stage<T: Sample>(
    model: &super::model::DepthModel,
    (w, h): (usize, usize),
    (dw, dh): (usize, usize),
    matrix: Matrix,
    (batch, mut fast): (usize, Option<FastDepthStage>),
    (mut norm, seam_end): (Normalizer, Option<(StateSink, Arc<AtomicBool>)>),
    mut input: mpsc::Receiver<FrameMsg<T>>,
    free_frames: mpsc::Sender<Yuv420<T>>,
    mut free_depth: mpsc::Receiver<DepthMap>,
    to_render: mpsc::Sender<(FrameMsg<T>, DepthMap)>,
    mut store: Option<(mpsc::Receiver<Packed>, mpsc::Sender<Packed>)>,
) -> anyhow::Result<()> {
    let mut pre = Preprocessor::with_matrix(w, h, dw, dh, matrix);
    let stride = 3 * dw * dh;
    // The fast path makes its own model input.
    let mut tensor = vec![0.0f32; if fast.is_some() { 0 } else { batch * stride }];
    let mut maps: Vec<DepthMap> = Vec::with_capacity(batch);
    let mut thumbs: Vec<Thumbnail> =
        vec![[0.0; super::temporal::THUMB_W * super::temporal::THUMB_H]; batch];
    let mut pending: Vec<FrameMsg<T>> = Vec::with_capacity(batch);
    let mut ended = false;
    while !ended {
        while pending.len() < batch {
            match input.blocking_recv() {
                Some(m) => pending.push(m),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        let n = pending.len();
        for (i, m) in pending.iter().enumerate().filter(|_| fast.is_none()) {
            let (y, _, _) = m.frame.planes();
            thumbs[i] = thumbnail(y, w, h);
            pre.fill(&m.frame, &mut tensor[i * stride..(i + 1) * stride]);
        }
        // A fixed-batch model always gets its full batch (the padding is ignored).
        let run_n = if model.info().batch == super::model::Dim::Dynamic {
            n
        } else {
            batch
        };
        // The batch's depth maps (warm-up frames need none), taken before the run so that
        // each is normalised straight from the model's output.
        maps.clear();
        for _ in pending.iter().filter(|m| !m.warmup) {
            let Some(dm) = free_depth.blocking_recv() else {
                return Ok(());
            };
            maps.push(dm);
        }
        // Fast path (see `fastdepth`): frame by frame, the model on keyframes only.
        if let Some(fast) = &mut fast {
            let mut maps = maps.iter_mut();
            for m in &pending {
                let dm = if m.warmup { None } else { maps.next() };
                fast.frame(model, &m.frame, m.warmup, &mut norm, dm)?;
            }
        } else {
            model.run_with(
                &tensor[..run_n * stride],
                run_n,
                (dw, dh),
                |raw, (ow, oh)| {
                    let plane = ow * oh;
                    let mut maps = maps.iter_mut();
                    for (i, m) in pending.iter().enumerate() {
                        let raw = &raw[i * plane..(i + 1) * plane];
                        let range = norm.observe(raw, &thumbs[i]);
                        if m.warmup {
                            continue;
                        }
                        let dm = maps.next().expect("a depth map per frame");
                        if (dm.width, dm.height) != (ow, oh) {
                            *dm = DepthMap::new(ow, oh);
                        }
                        Normalizer::apply(range, raw, &mut dm.data);
                    }
                },
            )?;
        }
        let mut maps = maps.drain(..);
        for m in pending.drain(..) {
            if m.warmup {
                if free_frames.blocking_send(m.frame).is_err() {
                    return Ok(());
                }
                continue;
            }
            let mut dm = maps.next().expect("a depth map per frame");
            // Stored as the renderer gets it (rounded to the stored levels first).
            if let Some((free, to_store)) = &mut store {
                let Some(mut packed) = free.blocking_recv() else {
                    return Ok(());
                };
                packed.store(&mut dm);
                if to_store.blocking_send(packed).is_err() {
                    return Ok(());
                }
            }
            if to_render.blocking_send((m, dm)).is_err() {
                return Ok(());
            }
        }
    }
    // The input is closed: after a clean decode, every frame's depth is done here.
    if let Some((sink, ok)) = seam_end {
        if ok.load(Ordering::Acquire) {
            sink.put(norm.state());
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn render_stage<T: Sample>(
    (w, h): (usize, usize),
    (dw, dh): (usize, usize),
    matrix: Matrix,
    (mut params, mut auto): (StereoParams, Option<AutoConvergence>),
    mode: StereoMode,
    want_preview: bool,
    mut input: mpsc::Receiver<(FrameMsg<T>, DepthMap)>,
    free_frames: mpsc::Sender<Yuv420<T>>,
    free_depth: mpsc::Sender<DepthMap>,
    mut free_out: mpsc::Receiver<Yuv420<T>>,
    to_write: mpsc::Sender<Yuv420<T>>,
) -> anyhow::Result<Option<Preview<T>>> {
    let mut renderer = StereoRenderer::<T>::new(w, h, dw, dh).with_matrix(matrix);
    let mut preview = None;
    while let Some((m, dm)) = input.blocking_recv() {
        let Some(mut out) = free_out.blocking_recv() else {
            break;
        };
        if let Some(auto) = &mut auto {
            params.convergence = auto.next(&dm);
        }
        renderer.render(&m.frame, &dm, params, mode, &mut out);
        if want_preview && m.index == 0 && preview.is_none() {
            let depth: Vec<u8> = renderer
                .depth_full(&dm)
                .iter()
                .map(|z| (z.clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
                .collect();
            let sbs = if mode == StereoMode::FullSbs {
                out.clone()
            } else {
                let mut sbs = Yuv420::new(2 * w, h);
                renderer.render(&m.frame, &dm, params, StereoMode::FullSbs, &mut sbs);
                sbs
            };
            preview = Some(Preview { sbs, depth });
        }
        let _ = free_frames.blocking_send(m.frame);
        let _ = free_depth.blocking_send(dm);
        if to_write.blocking_send(out).is_err() {
            break;
        }
    }
    Ok(preview)
}

async fn write_image(
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
mod warmup_tests {
    use std::time::Duration;

    use super::*;

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

    fn req_settings() -> parallax_core::model::ConversionSettings {
        parallax_core::model::ConversionSettings::default()
    }

    /// A plain 8-bit 4:2:0 SDR progressive source of 64x48 at 24 fps.
    fn plain_info() -> VideoInfo {
        VideoInfo {
            width: 64,
            height: 48,
            rate: (24, 1),
            variable_rate: false,
            start_time: 0.0,
            colour: Vec::new(),
            layout: parallax_core::picture::PixelLayout {
                bits: 8,
                chroma: parallax_core::picture::Chroma::C420,
            },
            transfer: Transfer::Sdr,
            full_range: false,
            interlaced: false,
            matrix: Matrix::BT601,
            hdr: probe::HdrMetadata::default(),
        }
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

    #[test]
    fn the_users_malloc_tunables_come_after_the_pipelines_so_they_win() {
        assert_eq!(streaming_tunables(None), STREAMING_MALLOC);
        assert_eq!(streaming_tunables(Some("".into())), STREAMING_MALLOC);
        assert_eq!(
            streaming_tunables(Some("glibc.malloc.trim_threshold=0".into())),
            format!("{STREAMING_MALLOC}:glibc.malloc.trim_threshold=0").as_str()
        );
    }

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
