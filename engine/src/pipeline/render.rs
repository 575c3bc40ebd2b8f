//! The render stage: each frame warped with its depth map into the output layout, and the
//! first frame's previews.

use parallax_core::model::StereoMode;
use tokio::sync::mpsc;

use super::FrameMsg;
use crate::colour::Matrix;
use crate::stereo::shape::AutoConvergence;
use crate::stereo::{DepthMap, Sample, StereoParams, StereoRenderer, Yuv420};

pub(super) struct Preview<T> {
    pub(super) sbs: Yuv420<T>,
    pub(super) depth: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn render_stage<T: Sample>(
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
