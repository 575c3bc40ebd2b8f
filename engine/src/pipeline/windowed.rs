//! The depth stage for temporal models: frames go through the model in overlapping windows
//! ([`crate::window`]), each window aligned to the one before, and every frame's aligned depth
//! then through the temporal normalisation exactly as a per-frame model's depth. The stage
//! holds up to a window of frames (the pools are sized for it): a frame leaves once the window
//! after it has been blended in.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::FrameMsg;
use crate::colour::Matrix;
use crate::depthfile::Packed;
use crate::model::{DepthModel, Dim};
use crate::preprocess::Preprocessor;
use crate::stereo::{DepthMap, Sample, Yuv420};
use crate::temporal::{thumbnail, Normalizer, Thumbnail};
use crate::window::{overlap, Chain, SeamDepth};
use crate::StateSink;

/// Where a window's frames go once their depth is final: normalised, then to the renderer
/// (and the depth file); warm-up frames only feed the normalisation.
struct Outlet<'a, T> {
    norm: Normalizer,
    free_frames: &'a mpsc::Sender<Yuv420<T>>,
    free_depth: &'a mut mpsc::Receiver<DepthMap>,
    to_render: &'a mpsc::Sender<(FrameMsg<T>, DepthMap)>,
    store: Option<(mpsc::Receiver<Packed>, mpsc::Sender<Packed>)>,
}

impl<T: Sample> Outlet<'_, T> {
    /// Sends the first `n` frames of `pending` on with their aligned maps (`maps`, `size`);
    /// `false` once the next stage has stopped.
    fn emit(
        &mut self,
        pending: &mut VecDeque<(FrameMsg<T>, Thumbnail)>,
        n: usize,
        maps: &[f32],
        (ow, oh): (usize, usize),
    ) -> bool {
        let plane = ow * oh;
        if n == 0 || plane == 0 {
            return true;
        }
        for map in maps.chunks_exact(plane).take(n) {
            let (m, thumb) = pending.pop_front().expect("a frame per map");
            let range = self.norm.observe(map, &thumb);
            if m.warmup {
                if self.free_frames.blocking_send(m.frame).is_err() {
                    return false;
                }
                continue;
            }
            let Some(mut dm) = self.free_depth.blocking_recv() else {
                return false;
            };
            if (dm.width, dm.height) != (ow, oh) {
                dm = DepthMap::new(ow, oh);
            }
            Normalizer::apply(range, map, &mut dm.data);
            if let Some((free, to_store)) = &mut self.store {
                let Some(mut packed) = free.blocking_recv() else {
                    return false;
                };
                packed.store(&mut dm);
                if to_store.blocking_send(packed).is_err() {
                    return false;
                }
            }
            if self.to_render.blocking_send((m, dm)).is_err() {
                return false;
            }
        }
        true
    }
}

/// The depth stage of a temporal model: windows of `window` frames, overlapping by
/// [`overlap`]`(window)`, the first aligned to `start` (the previous segment's last depth) when
/// there is one. Hands the normalisation state, with this conversion's last depth map, to the
/// sink after a clean decode.
#[allow(clippy::too_many_arguments)]
pub(super) fn depth_stage<T: Sample>(
    model: &DepthModel,
    (w, h): (usize, usize),
    (dw, dh): (usize, usize),
    matrix: Matrix,
    window: usize,
    start: Option<SeamDepth>,
    (norm, seam_end): (Normalizer, Option<(StateSink, Arc<AtomicBool>)>),
    mut input: mpsc::Receiver<FrameMsg<T>>,
    free_frames: mpsc::Sender<Yuv420<T>>,
    mut free_depth: mpsc::Receiver<DepthMap>,
    to_render: mpsc::Sender<(FrameMsg<T>, DepthMap)>,
    store: Option<(mpsc::Receiver<Packed>, mpsc::Sender<Packed>)>,
) -> anyhow::Result<()> {
    let mut chain = match start {
        Some(seam) => Chain::resume(overlap(window), seam),
        None => Chain::new(overlap(window)),
    };
    let mut pre = Preprocessor::with_matrix(w, h, dw, dh, matrix);
    let stride = 3 * dw * dh;
    // A fixed batch of windows gets its full batch; only the first window is used.
    let runs = match model.info().batch {
        Dim::Fixed(n) => n,
        Dim::Dynamic => 1,
    };
    let mut tensor = vec![0.0f32; runs * window * stride];
    // The current window's frames, the ones held from the previous window first.
    let mut pending: VecDeque<(FrameMsg<T>, Thumbnail)> = VecDeque::with_capacity(window);
    let mut aligned: Vec<f32> = Vec::new();
    let mut size = (0, 0);
    let mut out = Outlet {
        norm,
        free_frames: &free_frames,
        free_depth: &mut free_depth,
        to_render: &to_render,
        store,
    };
    let mut ended = false;
    loop {
        debug_assert_eq!(pending.len(), chain.held());
        while pending.len() < window && !ended {
            match input.blocking_recv() {
                Some(m) => {
                    let i = pending.len();
                    let (y, _, _) = m.frame.planes();
                    let thumb = thumbnail(y, w, h);
                    pre.fill(&m.frame, &mut tensor[i * stride..(i + 1) * stride]);
                    pending.push_back((m, thumb));
                }
                None => ended = true,
            }
        }
        let frames = pending.len();
        if frames == chain.held() {
            break;
        }
        // A short last window is padded with its last frame (the model's T stays the same).
        for i in frames..window {
            tensor.copy_within((frames - 1) * stride..frames * stride, i * stride);
        }
        aligned.clear();
        let (done, at) = model.run_windows_with(&tensor, (runs, window), (dw, dh), |raw, at| {
            (chain.push(raw, frames, at, &mut aligned).0, at)
        })?;
        size = at;
        if !out.emit(&mut pending, done, &aligned, size) {
            return Ok(());
        }
        // The held frames start the next window.
        tensor.copy_within(done * stride..frames * stride, 0);
    }
    aligned.clear();
    let n = chain.finish(&mut aligned);
    if !out.emit(&mut pending, n, &aligned, size) {
        return Ok(());
    }
    // The input is closed: after a clean decode, every frame's depth is done here.
    if let Some((sink, ok)) = seam_end {
        if ok.load(Ordering::Acquire) {
            let state = out.norm.state();
            sink.put(match chain.seam() {
                Some(seam) => state.with_seam_depth(seam),
                None => state,
            });
        }
    }
    Ok(())
}
