//! The fast depth path, for a depth model on the CPU: a ViT depth model costs a second or
//! more per 720p frame on a few cores, so running it on every frame makes the model the whole
//! conversion. Here it runs only on keyframes and at a lower resolution:
//!
//! - **Keyframes**: the first frame of a conversion (and of its main input after a seam's
//!   warm-up frames), every scene cut (the normaliser's thumbnail test), every
//!   [`ConversionSettings::keyframe_interval`]-th frame, and any frame whose motion from the
//!   last keyframe matches poorly (more than [`MAX_MISMATCH`] of its pixels: occlusions, new
//!   content, fades).
//! - **Between keyframes** the keyframe's raw depth is carried to each frame along the motion
//!   from that frame back to the keyframe ([`Motion`]: block matching on the coarse grid's
//!   luma, refined per pixel), so depth follows moving things instead of staying put.
//! - **Lower resolution**: the model sees the frame at [`ConversionSettings::fast_depth_scale`]
//!   of the depth map's size; its depth is brought to the depth map's size by joint bilateral
//!   upsampling guided by the frame's luma ([`JointBilateral`]), so depth edges sit on the
//!   picture's edges.
//!
//! Every frame, keyframe or not, goes through the same [`Normalizer`] (its range, smoothing,
//! scene cuts and seam state work as on the per-frame path).

mod motion;
mod upsample;

pub use motion::{Motion, MISMATCH_LEVEL};
pub use upsample::JointBilateral;

use parallax_core::model::{ConversionSettings, FastDepth as Mode};

use super::colour::Matrix;
use super::model::{DepthModel, Dim};
use super::preprocess::Preprocessor;
use super::stereo::{linear_axis, DepthMap, Sample, Yuv420};
use super::temporal::{thumbnail, Normalizer, Thumbnail, SCENE_CUT_THRESHOLD};
use super::ExecutionProvider;

/// A frame whose motion from the keyframe leaves more than this fraction of its pixels
/// poorly matched (see [`MISMATCH_LEVEL`]) becomes a keyframe.
pub const MAX_MISMATCH: f32 = 0.06;

/// How a conversion makes its depth on the fast path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The model runs at least every this many frames.
    pub keyframe_interval: u32,
    /// The model input's short side as a fraction of the depth map's.
    pub scale: f32,
}

impl Plan {
    /// The fast path `settings` ask for with the model on `provider`, or `None`: the model
    /// on every frame at the depth map's size (`fast_depth` off, or `auto` on a GPU, or
    /// nothing to gain: an interval of 1 at full scale).
    pub fn from_settings(
        settings: &ConversionSettings,
        provider: ExecutionProvider,
    ) -> Option<Plan> {
        let on = match settings.fast_depth {
            Mode::On => true,
            Mode::Off => false,
            Mode::Auto => provider == ExecutionProvider::Cpu,
        };
        let plan = Plan {
            keyframe_interval: u32::from(settings.keyframe_interval.max(1)),
            scale: settings.fast_depth_scale.clamp(0.25, 1.0),
        };
        (on && (plan.keyframe_interval > 1 || plan.scale < 1.0)).then_some(plan)
    }
}

/// Bilinear taps (first, second, weight of the second) per output column, then per row.
type Axes = (Vec<(u32, u32, f32)>, Vec<(u32, u32, f32)>);

/// Why a frame's depth is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDepth {
    /// The model ran on this frame.
    Keyframe(KeyReason),
    /// Carried from the last keyframe by motion.
    Propagated,
}

/// Why the model ran on a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReason {
    /// The first frame, or the first of the main input after warm-up frames.
    Start,
    /// A scene cut.
    SceneCut,
    /// The keyframe interval elapsed.
    Interval,
    /// The motion from the last keyframe matched poorly.
    Motion,
}

/// The fast path's state over one conversion's frames.
#[derive(Debug)]
pub struct FastDepthStage {
    plan: Plan,
    frame: (usize, usize),
    /// The depth maps' size (what the renderer gets).
    depth: (usize, usize),
    /// The model's input size, and the grid of raw depth, motion and coarse luma.
    low: (usize, usize),
    batch: usize,
    pre: Preprocessor,
    tensor: Vec<f32>,
    /// Luma at the depth size, then at the coarse size (0..1).
    guide: Vec<f32>,
    guide_axes: Axes,
    cur_low: Vec<f32>,
    low_axes: Axes,
    key_low: Vec<f32>,
    key_raw: Vec<f32>,
    raw: Vec<f32>,
    norm_low: Vec<f32>,
    motion: Motion,
    up: Option<JointBilateral>,
    prev_thumb: Option<Thumbnail>,
    since_key: u32,
    have_key: bool,
    last_warmup: bool,
    keyframes: u64,
}

impl FastDepthStage {
    /// For `frame` (width, height) frames in `matrix`'s YUV, making depth maps of `depth`
    /// size with `model`; `None` when `settings` do not ask for the fast path on the model's
    /// provider.
    pub fn new(
        settings: &ConversionSettings,
        model: &DepthModel,
        frame: (usize, usize),
        depth: (usize, usize),
        matrix: Matrix,
    ) -> Option<Self> {
        let plan = Plan::from_settings(settings, model.provider())?;
        let short = depth.0.min(depth.1) as f32 * plan.scale;
        let low = model.input_size(frame.0, frame.1, short.round().max(1.0) as u32);
        Some(Self::with_plan(plan, model, frame, depth, low, matrix))
    }

    /// [`FastDepthStage::new`] with the plan and the model input size given.
    pub fn with_plan(
        plan: Plan,
        model: &DepthModel,
        frame: (usize, usize),
        depth: (usize, usize),
        low: (usize, usize),
        matrix: Matrix,
    ) -> Self {
        let batch = match model.info().batch {
            Dim::Fixed(n) => n,
            Dim::Dynamic => 1,
        };
        let n_low = low.0 * low.1;
        Self {
            plan,
            frame,
            depth,
            low,
            batch,
            pre: Preprocessor::with_matrix(frame.0, frame.1, low.0, low.1, matrix),
            tensor: vec![0.0; batch * 3 * n_low],
            guide: vec![0.0; depth.0 * depth.1],
            guide_axes: (linear_axis(frame.0, depth.0), linear_axis(frame.1, depth.1)),
            cur_low: vec![0.0; n_low],
            low_axes: (linear_axis(depth.0, low.0), linear_axis(depth.1, low.1)),
            key_low: vec![0.0; n_low],
            key_raw: vec![0.0; n_low],
            raw: vec![0.0; n_low],
            norm_low: vec![0.0; n_low],
            motion: Motion::new(low.0, low.1),
            up: (low != depth).then(|| JointBilateral::new(low, depth)),
            prev_thumb: None,
            since_key: 0,
            have_key: false,
            last_warmup: false,
            keyframes: 0,
        }
    }

    /// The plan in use.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// The model's input size on this path.
    pub fn model_size(&self) -> (usize, usize) {
        self.low
    }

    /// Keyframes so far (model runs on this path).
    pub fn keyframes(&self) -> u64 {
        self.keyframes
    }

    /// Takes one frame: its depth from the model (a keyframe) or carried by motion, observed
    /// by `norm`, and, when `out` is given (not a warm-up frame), normalised and upsampled
    /// into `out` at the depth maps' size.
    pub fn frame<T: Sample>(
        &mut self,
        model: &DepthModel,
        frame: &Yuv420<T>,
        warmup: bool,
        norm: &mut Normalizer,
        out: Option<&mut DepthMap>,
    ) -> anyhow::Result<FrameDepth> {
        assert_eq!((frame.width, frame.height), self.frame, "frame size");
        let (y, _, _) = frame.planes();
        let thumb = thumbnail(y, self.frame.0, self.frame.1);
        let cut = self.prev_thumb.as_ref().is_some_and(|p| is_cut(p, &thumb));
        self.prev_thumb = Some(thumb);
        self.luma(y);

        let reason = if !self.have_key || (self.last_warmup && !warmup) {
            Some(KeyReason::Start)
        } else if cut {
            Some(KeyReason::SceneCut)
        } else if self.since_key >= self.plan.keyframe_interval {
            Some(KeyReason::Interval)
        } else if self.motion.estimate(&self.key_low, &self.cur_low) > MAX_MISMATCH {
            Some(KeyReason::Motion)
        } else {
            None
        };
        self.last_warmup = warmup;
        let kind = match reason {
            Some(r) => {
                self.run_model(model, frame)?;
                self.raw.copy_from_slice(&self.key_raw);
                self.key_low.copy_from_slice(&self.cur_low);
                self.motion.reset();
                self.have_key = true;
                self.since_key = 0;
                self.keyframes += 1;
                FrameDepth::Keyframe(r)
            }
            None => {
                self.motion.warp(&self.key_raw, &mut self.raw);
                FrameDepth::Propagated
            }
        };
        self.since_key += 1;

        let range = norm.observe(&self.raw, &thumb);
        if let Some(dm) = out {
            if (dm.width, dm.height) != self.depth {
                *dm = DepthMap::new(self.depth.0, self.depth.1);
            }
            match &self.up {
                Some(up) => {
                    Normalizer::apply(range, &self.raw, &mut self.norm_low);
                    up.upsample(&self.norm_low, &self.cur_low, &self.guide, &mut dm.data);
                }
                None => Normalizer::apply(range, &self.raw, &mut dm.data),
            }
        }
        Ok(kind)
    }

    /// The frame's luma at the depth size (`guide`) and at the coarse size (`cur_low`).
    fn luma<T: Sample>(&mut self, y: &[T]) {
        let fw = self.frame.0;
        let inv = 1.0 / (255.0 * T::SCALE);
        let (xs, ys) = &self.guide_axes;
        for (row, &(y0, y1, fy)) in self.guide.chunks_mut(self.depth.0).zip(ys) {
            let (r0, r1) = (&y[y0 as usize * fw..][..fw], &y[y1 as usize * fw..][..fw]);
            for (o, &(x0, x1, fx)) in row.iter_mut().zip(xs) {
                let (x0, x1) = (x0 as usize, x1 as usize);
                let top = lerp(r0[x0].level() as f32, r0[x1].level() as f32, fx);
                let bottom = lerp(r1[x0].level() as f32, r1[x1].level() as f32, fx);
                *o = lerp(top, bottom, fy) * inv;
            }
        }
        resize(&self.guide, self.depth.0, &self.low_axes, &mut self.cur_low);
    }

    /// Runs the model on `frame` at the coarse size into `key_raw`.
    fn run_model<T: Sample>(
        &mut self,
        model: &DepthModel,
        frame: &Yuv420<T>,
    ) -> anyhow::Result<()> {
        let stride = 3 * self.low.0 * self.low.1;
        self.pre.fill(frame, &mut self.tensor[..stride]);
        let (low, key_raw) = (self.low, &mut self.key_raw);
        model.run_with(&self.tensor, self.batch, low, |raw, (ow, oh)| {
            let raw = &raw[..ow * oh];
            if (ow, oh) == low {
                key_raw.copy_from_slice(raw);
            } else {
                // A model whose output is not its input's size: resampled to the grid.
                let axes = (linear_axis(ow, low.0), linear_axis(oh, low.1));
                resize(raw, ow, &axes, key_raw);
            }
        })
    }
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Bilinear resampling of `src` (`src_w` wide) along `axes` into `out`.
fn resize(src: &[f32], src_w: usize, axes: &Axes, out: &mut [f32]) {
    let (xs, ys) = axes;
    for (row, &(y0, y1, fy)) in out.chunks_mut(xs.len()).zip(ys) {
        let (r0, r1) = (&src[y0 as usize * src_w..], &src[y1 as usize * src_w..]);
        for (o, &(x0, x1, fx)) in row.iter_mut().zip(xs) {
            let (x0, x1) = (x0 as usize, x1 as usize);
            *o = lerp(lerp(r0[x0], r0[x1], fx), lerp(r1[x0], r1[x1], fx), fy);
        }
    }
}

/// The normaliser's scene-cut test (see `temporal`), asked before the depth is made.
fn is_cut(prev: &Thumbnail, thumb: &Thumbnail) -> bool {
    let diff: f32 = prev
        .iter()
        .zip(thumb)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / thumb.len() as f32;
    diff > SCENE_CUT_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_the_fast_path_on_the_cpu_only() {
        let s = ConversionSettings::default();
        let cpu = Plan::from_settings(&s, ExecutionProvider::Cpu).expect("fast on the CPU");
        assert_eq!(cpu.keyframe_interval, 8);
        assert_eq!(cpu.scale, 0.5);
        assert_eq!(Plan::from_settings(&s, ExecutionProvider::Cuda), None);
        let on = ConversionSettings {
            fast_depth: Mode::On,
            ..s.clone()
        };
        assert!(Plan::from_settings(&on, ExecutionProvider::Tensorrt).is_some());
        let off = ConversionSettings {
            fast_depth: Mode::Off,
            ..s.clone()
        };
        assert_eq!(Plan::from_settings(&off, ExecutionProvider::Cpu), None);
        // Nothing to gain: the per-frame path.
        let same = ConversionSettings {
            keyframe_interval: 1,
            fast_depth_scale: 1.0,
            ..s
        };
        assert_eq!(Plan::from_settings(&same, ExecutionProvider::Cpu), None);
    }

    #[test]
    fn a_cut_is_what_the_normaliser_calls_one() {
        let a = [0.5; super::super::temporal::THUMB_W * super::super::temporal::THUMB_H];
        let mut b = a;
        assert!(!is_cut(&a, &b));
        b.iter_mut().for_each(|v| *v = 0.2);
        assert!(is_cut(&a, &b));
        let mut n = Normalizer::new(0.5);
        n.observe(&[0.0, 1.0], &a);
        n.observe(&[0.0, 1.0], &b);
        assert_eq!(n.cuts(), 1);
    }
}
