//! Stereo rendering: normalised depth -> disparity -> left and right views by horizontal
//! warping with occlusion-aware hole filling -> the output layout.
//!
//! Everything works on planar YUV 4:2:0 frames as ffmpeg pipes them (no RGB round trip except
//! for the anaglyph, which needs it). A [`StereoRenderer`] owns every buffer it needs and is
//! reused for every frame of a conversion: rendering a frame allocates nothing. Bands of rows
//! are independent, so a frame is warped in parallel (see [`on_frame_pool`]).
//!
//! The warp of one luma row for one eye (shift `s = ±d/2`, `d` the disparity in pixels), in
//! fixed point (1/256 px), with the depth row interpolated from the depth map on the way:
//! 1. forward-splat: source pixel `x` lands at `x + s(x)`; between two neighbouring source
//!    pixels that stay neighbours, the target pixels they span get interpolated source
//!    positions; where two surfaces land on one pixel the nearer (larger disparity) wins (a
//!    z-buffer: surface and source position are packed in one integer key, so the test is
//!    one `max`);
//! 2. sample the source at each target's position with linear interpolation, which keeps
//!    sub-pixel shifts exact;
//! 3. fill the holes (disoccluded pixels, which only appear next to a depth edge) from the
//!    farther of the two sides, so the background continues into the hole; a hole is never
//!    wider than the disparity difference across the edge.
//!
//! The chroma row of a luma row pair samples where the upper luma row's splat points (halved,
//! centre-aligned), so colour follows exactly the geometry of the luma.

use parallax_core::model::{AnaglyphMethod, ConversionSettings, SyntheticView};

mod anaglyph;
mod fixed;
mod frame;
mod layout;
mod pool;
mod render;
mod resample;
mod scalar;
pub mod shape;
#[cfg(target_arch = "x86_64")]
mod simd;
mod warp;

pub use frame::{Sample, Yuv420};
pub use layout::{output_size, vr180_filter, VR180_SCREEN_FOV};
pub use pool::on_frame_pool;
pub use render::StereoRenderer;
pub(super) use resample::linear_axis;
pub use warp::warp_row;

use shape::Shaping;

/// How depth becomes disparity, and the views.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StereoParams {
    /// The largest disparity between the two views (depth 0 to depth 1), in percent of the
    /// frame width.
    pub divergence: f32,
    /// The normalised depth (0 = far, 1 = near) that has zero disparity (the screen plane).
    pub convergence: f32,
    /// A constant parallax in percent of the width added to every pixel (positive = behind
    /// the screen). Needs a divergence above zero.
    pub ipd_offset: f32,
    /// Which views are synthesised.
    pub synthetic: SyntheticView,
    /// The depth map's shaping before the warp (edge fix, anti-aliasing, foreground scale);
    /// `border_at` is set from `preserve_border`.
    pub shaping: Shaping,
    /// Fade disparity to zero at the left and right frame edges.
    pub preserve_border: bool,
    /// How the anaglyph layout mixes the views.
    pub anaglyph: AnaglyphMethod,
}

impl Default for StereoParams {
    /// 2% divergence, convergence 0.5, no offset, both views synthesised, no shaping.
    fn default() -> Self {
        Self {
            divergence: 2.0,
            convergence: 0.5,
            ipd_offset: 0.0,
            synthetic: SyntheticView::Both,
            shaping: Shaping::default(),
            preserve_border: false,
            anaglyph: AnaglyphMethod::Dubois,
        }
    }
}

impl StereoParams {
    /// The parameters a job's settings ask for.
    pub fn from_settings(s: &ConversionSettings) -> Self {
        Self {
            divergence: s.divergence,
            convergence: s.convergence,
            ipd_offset: s.ipd_offset,
            synthetic: s.synthetic_view,
            shaping: Shaping {
                foreground_scale: s.foreground_scale,
                edge_dilation: s.edge_dilation,
                antialias: s.depth_antialias,
                border_at: None,
            },
            preserve_border: s.preserve_screen_border,
            anaglyph: s.anaglyph_method,
        }
    }

    /// The depth with zero disparity once the IPD offset is folded in: the offset moves the
    /// screen plane, `d = div * (z - c) - ipd = div * (z - (c + ipd / div))`.
    pub fn effective_convergence(&self) -> f32 {
        if self.divergence > 0.0 {
            self.convergence + self.ipd_offset / self.divergence
        } else {
            self.convergence
        }
    }

    /// The disparity in pixels (right-view position subtracted from the left-view position)
    /// of normalised depth `z` in a frame `width` pixels wide. Positive = in front of the screen.
    pub fn disparity_px(&self, z: f32, width: usize) -> f32 {
        self.divergence / 100.0 * width as f32 * (z - self.effective_convergence())
    }

    /// The shaping to apply, the screen border included.
    fn full_shaping(&self) -> Shaping {
        Shaping {
            border_at: self.preserve_border.then(|| self.effective_convergence()),
            ..self.shaping
        }
    }
}

/// A normalised depth map (0 = far, 1 = near), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthMap {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// `width * height` values in 0..=1.
    pub data: Vec<f32>,
}

impl DepthMap {
    /// A map of `width` x `height` zeros.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width * height],
        }
    }
}

/// Test rows' shared helpers.
#[cfg(test)]
mod test_rows {
    /// A small deterministic pseudo-random generator (xorshift) for test rows.
    pub(super) fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        }
    }
}
