//! The depth stage for per-frame models: frames in batches through preprocessing, the model
//! (or the fast CPU path, `fastdepth`) and the temporal normalisation, their depth maps on
//! to the renderer and, when stored, to the depth file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::FrameMsg;
use crate::colour::Matrix;
use crate::depthfile::Packed;
use crate::fastdepth::FastDepthStage;
use crate::preprocess::Preprocessor;
use crate::stereo::{DepthMap, Sample, Yuv420};
use crate::temporal::{thumbnail, Normalizer, Thumbnail};
use crate::StateSink;

#[allow(clippy::too_many_arguments)]
pub(super) fn depth_stage<T: Sample>(
    model: &crate::model::DepthModel,
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
        vec![[0.0; crate::temporal::THUMB_W * crate::temporal::THUMB_H]; batch];
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
        let run_n = if model.info().batch == crate::model::Dim::Dynamic {
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
