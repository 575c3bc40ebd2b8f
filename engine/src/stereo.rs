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

use parallax_core::model::{AnaglyphMethod, ConversionSettings, StereoMode, SyntheticView};
use rayon::prelude::*;

use super::colour::Matrix;

mod anaglyph;
mod frame;
mod layout;
mod pool;
mod resample;
pub mod shape;
#[cfg(target_arch = "x86_64")]
mod simd;
mod warp;

pub use frame::{Sample, Yuv420};
use layout::*;
pub use pool::on_frame_pool;
pub(super) use resample::linear_axis;
use resample::*;
pub use warp::warp_row;
use warp::*;

use shape::{Shaper, Shaping};

/// The size of the output frame for a source of `width` x `height` in `mode`.
pub fn output_size(mode: StereoMode, width: usize, height: usize) -> (usize, usize) {
    match mode {
        // VR180 is rendered as full SBS; the encoder projects it (see `vr180_filter`).
        StereoMode::FullSbs | StereoMode::FullCross | StereoMode::Rgbd | StereoMode::Vr180 => {
            (width * 2, height)
        }
        StereoMode::FullTb => (width, height * 2),
        StereoMode::HalfSbs
        | StereoMode::HalfCross
        | StereoMode::HalfTb
        | StereoMode::Anaglyph
        | StereoMode::DepthMap => (width, height),
    }
}

/// The horizontal field of view a flat source fills in a VR180 output, in degrees: a large
/// virtual screen. Each eye's square is `180 / VR180_SCREEN_FOV` times the source's width, so
/// the picture keeps its horizontal resolution at its centre (a 1080p source gives the usual
/// 5760x2880).
pub const VR180_SCREEN_FOV: f64 = 120.0;

/// The ffmpeg filter that turns full SBS frames of `w` x `h` per view into VR180 (each view
/// a half-equirectangular square; v360's size is per view), and the output's size.
pub fn vr180_filter(w: usize, h: usize) -> (String, (usize, usize)) {
    let side = ((w as f64 * 180.0 / VR180_SCREEN_FOV).round() as usize + 1) & !1;
    // A rectilinear picture's vertical field of view for its aspect.
    let v_fov = 2.0
        * ((VR180_SCREEN_FOV / 2.0).to_radians().tan() * h as f64 / w as f64)
            .atan()
            .to_degrees();
    // v360 extends a flat picture's edge pixels over the rest of the sphere: a black frame
    // two pixels wide around each view makes that black.
    let frame = [
        "x=0:y=0:w=iw:h=2",
        "x=0:y=ih-2:w=iw:h=2",
        "x=0:y=0:w=2:h=ih",
        "x=iw/2-2:y=0:w=4:h=ih",
        "x=iw-2:y=0:w=2:h=ih",
    ]
    .map(|b| format!("drawbox={b}:color=black:t=fill,"))
    .concat();
    (
        format!(
            "{frame}v360=input=flat:output=hequirect:in_stereo=sbs:out_stereo=sbs:\
             ih_fov={VR180_SCREEN_FOV}:iv_fov={v_fov:.3}:w={side}:h={side}:interp=lanczos"
        ),
        (2 * side, side),
    )
}

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

/// Renders stereo frames of one size; owns every buffer, so rendering allocates nothing.
#[derive(Debug)]
pub struct StereoRenderer<T = u8> {
    width: usize,
    height: usize,
    /// Depth upsampled to the luma grid: only for the depth-map layout and previews.
    z_luma: Vec<f32>,
    /// Per-band scratch: rows are warped in bands of row pairs, one band per rayon task.
    bands: Vec<BandScratch>,
    /// Row pairs (two luma rows and their chroma row) per band.
    pairs_per_band: usize,
    /// Full-size left view stacked over the right view, for the layouts that post-process
    /// the views (half SBS/TB, anaglyph).
    views: Option<Yuv420<T>>,
    /// Bilinear interpolation tables from the depth grid to the luma grid.
    luma_map: ResampleMap,
    /// The frames' YUV matrix, for the layouts that work in RGB (anaglyph).
    matrix: Matrix,
    /// The depth map shaped before the warp, and the shaper's buffers.
    shaped: DepthMap,
    shaper: Shaper,
}

/// Bands of row pairs per frame: enough for rayon to balance two to a few dozen cores.
const BANDS: usize = 48;

impl<T: Sample> StereoRenderer<T> {
    /// A renderer for `width` x `height` sources (even sizes) and depth maps of
    /// `depth_width` x `depth_height`.
    pub fn new(width: usize, height: usize, depth_width: usize, depth_height: usize) -> Self {
        assert!(width.is_multiple_of(2) && height.is_multiple_of(2) && width > 0 && height > 0);
        let pairs = height / 2;
        let pairs_per_band = pairs.div_ceil(BANDS.min(pairs));
        let bands = pairs.div_ceil(pairs_per_band);
        let luma_map = ResampleMap::new(depth_width, depth_height, width, height);
        Self {
            width,
            height,
            z_luma: Vec::new(),
            bands: vec![BandScratch::new(width, luma_map.src_w); bands],
            pairs_per_band,
            views: None,
            luma_map,
            matrix: Matrix::BT601,
            shaped: DepthMap::new(0, 0),
            shaper: Shaper::default(),
        }
    }

    /// Frames in `matrix`'s YUV (BT.601 unless set).
    pub fn with_matrix(mut self, matrix: Matrix) -> Self {
        self.matrix = matrix;
        self
    }

    /// Source width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Source height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// `depth` upsampled to the source's full resolution (0 = far, 1 = near), as the warp
    /// sees it (for previews).
    pub fn depth_full(&mut self, depth: &DepthMap) -> &[f32] {
        self.fit_depth(depth);
        self.z_luma.resize(self.width * self.height, 0.0);
        upsample(depth, &self.luma_map, &mut self.z_luma);
        &self.z_luma
    }

    /// Rebuilds the interpolation tables when the depth map's size changes.
    fn fit_depth(&mut self, depth: &DepthMap) {
        assert_eq!(
            depth.data.len(),
            depth.width * depth.height,
            "depth map size"
        );
        if (depth.width.max(1), depth.height.max(1)) != (self.luma_map.src_w, self.luma_map.src_h) {
            self.luma_map = ResampleMap::new(depth.width, depth.height, self.width, self.height);
            for b in &mut self.bands {
                b.coarse = vec![0; self.luma_map.src_w];
            }
        }
    }

    /// Renders `src` with `depth` in `mode` into `out` (sized by [`output_size`]), in
    /// parallel on [`on_frame_pool`].
    pub fn render(
        &mut self,
        src: &Yuv420<T>,
        depth: &DepthMap,
        params: StereoParams,
        mode: StereoMode,
        out: &mut Yuv420<T>,
    ) {
        on_frame_pool(|| self.render_here(src, depth, params, mode, out));
    }

    fn render_here(
        &mut self,
        src: &Yuv420<T>,
        depth: &DepthMap,
        params: StereoParams,
        mode: StereoMode,
        out: &mut Yuv420<T>,
    ) {
        assert_eq!((src.width, src.height), (self.width, self.height));
        let (ow, oh) = output_size(mode, self.width, self.height);
        assert_eq!((out.width, out.height), (ow, oh), "output buffer size");
        let shaping = params.full_shaping();
        if shaping.is_identity() || mode == StereoMode::DepthMap {
            self.render_shaped(src, depth, params, mode, out);
        } else {
            let mut shaped = std::mem::replace(&mut self.shaped, DepthMap::new(0, 0));
            self.shaper.shape(depth, &shaping, &mut shaped);
            self.render_shaped(src, &shaped, params, mode, out);
            self.shaped = shaped;
        }
    }

    fn render_shaped(
        &mut self,
        src: &Yuv420<T>,
        depth: &DepthMap,
        params: StereoParams,
        mode: StereoMode,
        out: &mut Yuv420<T>,
    ) {
        self.fit_depth(depth);
        match mode {
            StereoMode::DepthMap => {
                let w = self.width;
                let z = self.depth_full(depth);
                let (y, u, v) = out.planes_mut();
                y.par_chunks_mut(w)
                    .zip(z.par_chunks(w))
                    .for_each(|(row, z)| {
                        for (p, &z) in row.iter_mut().zip(z) {
                            *p = T::from_f32_8bit(16.0 + 219.0 * z.clamp(0.0, 1.0));
                        }
                    });
                u.fill(T::from_f32_8bit(128.0));
                v.fill(T::from_f32_8bit(128.0));
            }
            StereoMode::Rgbd => {
                // Colour left, depth (as the depth-map layout draws it) right.
                let (w, h) = (self.width, self.height);
                let (cw, ch) = (w / 2, h / 2);
                let z = self.depth_full(depth);
                let (sy, su, sv) = src.planes();
                let (oy, ou, ov) = out.planes_mut();
                oy.par_chunks_mut(2 * w)
                    .zip(sy.par_chunks(w).zip(z.par_chunks(w)))
                    .for_each(|(o, (s, z))| {
                        let (l, r) = o.split_at_mut(w);
                        l.copy_from_slice(s);
                        for (p, &z) in r.iter_mut().zip(z) {
                            *p = T::from_f32_8bit(16.0 + 219.0 * z.clamp(0.0, 1.0));
                        }
                    });
                for (o, s) in [(ou, su), (ov, sv)] {
                    for (o, s) in o.chunks_mut(2 * cw).zip(s.chunks(cw)).take(ch) {
                        let (l, r) = o.split_at_mut(cw);
                        l.copy_from_slice(s);
                        r.fill(T::from_f32_8bit(128.0));
                    }
                }
            }
            StereoMode::FullSbs | StereoMode::Vr180 => {
                self.warp_into(src, depth, params, out, Arrangement::SideBySide)
            }
            StereoMode::FullCross => {
                self.warp_into(src, depth, params, out, Arrangement::CrossEyed)
            }
            StereoMode::FullTb => self.warp_into(src, depth, params, out, Arrangement::TopBottom),
            StereoMode::HalfSbs
            | StereoMode::HalfCross
            | StereoMode::HalfTb
            | StereoMode::Anaglyph => {
                let mut views = self
                    .views
                    .take()
                    .unwrap_or_else(|| Yuv420::new(self.width, self.height * 2));
                self.warp_into(src, depth, params, &mut views, Arrangement::TopBottom);
                match mode {
                    StereoMode::HalfSbs => squeeze_sbs(&views, out, false),
                    StereoMode::HalfCross => squeeze_sbs(&views, out, true),
                    StereoMode::HalfTb => squeeze_tb(&views, out),
                    _ => anaglyph::render(&views, out, self.matrix, params.anaglyph),
                }
                self.views = Some(views);
            }
        }
    }

    fn warp_into(
        &mut self,
        src: &Yuv420<T>,
        depth: &DepthMap,
        params: StereoParams,
        out: &mut Yuv420<T>,
        arrangement: Arrangement,
    ) {
        let (w, h) = (self.width, self.height);
        let cw = w / 2;
        // Each eye moves by half the disparity; with one view the source, the other by all.
        let (share, original) = match params.synthetic {
            SyntheticView::Both => (0.5, None),
            SyntheticView::Left => (1.0, Some(0)),
            SyntheticView::Right => (1.0, Some(1)),
        };
        let ctx = BandContext {
            w,
            depth,
            map: &self.luma_map,
            // The eye's share of the disparity, in 1/256 px per unit of depth.
            scale: params.divergence / 100.0 * w as f32 * share * ONE as f32,
            convergence: params.effective_convergence(),
            original,
        };
        let per = self.pairs_per_band;
        let (sy, su, sv) = src.planes();
        let (oy, ou, ov) = out.planes_mut();
        let sources = sy
            .par_chunks(2 * w * per)
            .zip(su.par_chunks(cw * per))
            .zip(sv.par_chunks(cw * per));
        let bands = self.bands.par_iter_mut().enumerate().zip(sources);
        match arrangement {
            Arrangement::SideBySide | Arrangement::CrossEyed => {
                // Each output row is [left | right], or [right | left] cross-eyed.
                let cross = arrangement == Arrangement::CrossEyed;
                fn eyes<T>(cross: bool, (a, b): EyeRows<'_, T>) -> EyeRows<'_, T> {
                    if cross {
                        (b, a)
                    } else {
                        (a, b)
                    }
                }
                bands
                    .zip(oy.par_chunks_mut(4 * w * per))
                    .zip(
                        ou.par_chunks_mut(2 * cw * per)
                            .zip(ov.par_chunks_mut(2 * cw * per)),
                    )
                    .for_each(|((((b, scratch), ((sy, su), sv)), oy), (ou, ov))| {
                        ctx.band(
                            scratch,
                            b * per,
                            (sy, su, sv),
                            oy.chunks_mut(2 * w).map(|r| eyes(cross, r.split_at_mut(w))),
                            ou.chunks_mut(2 * cw)
                                .map(|r| eyes(cross, r.split_at_mut(cw))),
                            ov.chunks_mut(2 * cw)
                                .map(|r| eyes(cross, r.split_at_mut(cw))),
                        );
                    })
            }
            Arrangement::TopBottom => {
                let (oyl, oyr) = oy.split_at_mut(w * h);
                let (oul, our) = ou.split_at_mut(cw * h / 2);
                let (ovl, ovr) = ov.split_at_mut(cw * h / 2);
                bands
                    .zip(halves(oyl, oyr, 2 * w * per))
                    .zip(halves(oul, our, cw * per).zip(halves(ovl, ovr, cw * per)))
                    .for_each(
                        |((((b, scratch), ((sy, su), sv)), (yl, yr)), ((ul, ur), (vl, vr)))| {
                            ctx.band(
                                scratch,
                                b * per,
                                (sy, su, sv),
                                yl.chunks_mut(w).zip(yr.chunks_mut(w)),
                                ul.chunks_mut(cw).zip(ur.chunks_mut(cw)),
                                vl.chunks_mut(cw).zip(vr.chunks_mut(cw)),
                            );
                        },
                    );
            }
        }
    }
}

/// The left and right halves of a top-bottom plane, in chunks of `n` bytes, side by side.
fn halves<'a, T: Sample>(
    l: &'a mut [T],
    r: &'a mut [T],
    n: usize,
) -> rayon::iter::Zip<rayon::slice::ChunksMut<'a, T>, rayon::slice::ChunksMut<'a, T>> {
    l.par_chunks_mut(n).zip(r.par_chunks_mut(n))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrangement {
    /// Output rows are `[left row | right row]`.
    SideBySide,
    /// Output rows are `[right row | left row]`.
    CrossEyed,
    /// Output is all left rows, then all right rows.
    TopBottom,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warp as first written, in f32 (disparity interpolated and splatted per target
    /// pixel, sampled at `t - s(t)`): the reference the fixed-point kernel is held to.
    fn reference_warp_row(src: &[u8], disp: &[f32], sign: f32, dst: &mut [u8]) -> Vec<f32> {
        let w = src.len();
        let mut tdisp = vec![f32::NEG_INFINITY; w];
        let mut d0 = disp[0];
        let mut p0 = sign * d0;
        for x in 0..w {
            let (d1, p1) = if x + 1 < w {
                (disp[x + 1], (x + 1) as f32 + sign * disp[x + 1])
            } else {
                (d0, p0 + 1.0)
            };
            let span = p1 - p0;
            if span > 0.0 && span <= 2.0 {
                let slope = (d1 - d0) / span;
                let t0 = p0.ceil();
                for (t, d) in [
                    (t0, d0 + (t0 - p0) * slope),
                    (t0 + 1.0, d0 + (t0 + 1.0 - p0) * slope),
                ] {
                    if t >= 0.0 && t < w as f32 && t < p1 {
                        let slot = &mut tdisp[t as usize];
                        *slot = slot.max(d);
                    }
                }
            } else {
                let t = (p0 + 0.5).floor();
                if t >= 0.0 && t < w as f32 {
                    let slot = &mut tdisp[t as usize];
                    *slot = slot.max(d0);
                }
            }
            d0 = d1;
            p0 = p1;
        }
        for (t, out) in dst.iter_mut().enumerate() {
            let d = tdisp[t];
            if d == f32::NEG_INFINITY {
                continue;
            }
            let sx = (t as f32 - sign * d).clamp(0.0, (w - 1) as f32);
            let i = sx.floor() as usize;
            let f = sx - i as f32;
            let a = src[i] as f32;
            let b = src[(i + 1).min(w - 1)] as f32;
            *out = (a + (b - a) * f + 0.5) as u8;
        }
        let mut x = 0;
        while x < w {
            if tdisp[x] != f32::NEG_INFINITY {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && tdisp[x] == f32::NEG_INFINITY {
                x += 1;
            }
            let from = match (start.checked_sub(1), (x < w).then_some(x)) {
                (Some(a), Some(b)) => {
                    if tdisp[a] <= tdisp[b] {
                        a
                    } else {
                        b
                    }
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => return tdisp,
            };
            // Mirrored from the farther side while it is background, as `fill_holes`.
            let depth = tdisp[from] + 1.0 / sign.abs();
            let background = |i: usize| tdisp[i] != f32::NEG_INFINITY && tdisp[i] <= depth;
            let mut last = dst[from];
            for k in 0..x - start {
                let (to, mirror) = if from < start {
                    (start + k, from.checked_sub(k))
                } else {
                    (x - 1 - k, Some(from + k).filter(|&i| i < w))
                };
                if let Some(i) = mirror.filter(|&i| background(i)) {
                    last = dst[i];
                }
                dst[to] = last;
            }
        }
        tdisp
    }

    /// A smooth texture (neighbours differ by at most a few levels, as in real pictures).
    fn smooth_texture(w: usize, next: &mut impl FnMut() -> f32) -> Vec<u8> {
        let (a, b) = (next() * 6.0, next() * 6.0);
        (0..w)
            .map(|x| {
                let x = x as f32;
                (128.0 + 60.0 * (x * 0.07 + a).sin() + 50.0 * (x * 0.23 + b).cos()) as u8
            })
            .collect()
    }

    /// A small deterministic pseudo-random generator (xorshift) for test rows.
    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    #[test]
    fn fixed_point_kernel_matches_the_f32_reference_within_one_level_on_smooth_depth() {
        let w = 640;
        let mut next = rng(1);
        let src = smooth_texture(w, &mut next);
        let mut worst = 0;
        for case in 0..200 {
            // Smooth rows: a few sines of random phase and amplitude, disparities up to
            // about 40 px, positive and negative, slopes up to stretching and squeezing.
            let (a, b, ph, f) = (
                next() * 30.0,
                next() * 10.0,
                next() * 6.0,
                0.005 + next() * 0.03,
            );
            let disp: Vec<f32> = (0..w)
                .map(|x| a * (x as f32 * f + ph).sin() + b * (x as f32 * 0.11).cos() - a * 0.3)
                .collect();
            for sign in [0.5f32, -0.5] {
                let (mut got, mut want) = (vec![0u8; w], vec![0u8; w]);
                warp_row(&src, &disp, sign, &mut got);
                let landed = reference_warp_row(&src, &disp, sign, &mut want);
                // Sampling precision: the pixels something landed on (the holes at the row's
                // ends are filled by mirroring, which the tests below cover; a hole one pixel
                // longer there mirrors a different stretch of texture).
                for x in (0..w).filter(|&x| landed[x] != f32::NEG_INFINITY) {
                    let d = (i32::from(got[x]) - i32::from(want[x])).abs();
                    worst = worst.max(d);
                    assert!(
                        d <= 1,
                        "case {case} sign {sign} x {x}: {} vs {}",
                        got[x],
                        want[x]
                    );
                }
            }
        }
        assert!(worst <= 1);
    }

    /// A disocclusion over a textured background shows the background's texture mirrored
    /// into it, not one pixel's value repeated (a streak).
    #[test]
    fn a_hole_over_texture_is_filled_with_texture_not_a_streak() {
        let w = 60;
        // Background 0..40 textured (x * 3 + 10), a near object at 40..50.
        let src: Vec<u8> = (0..w)
            .map(|x| {
                if (40..50).contains(&x) {
                    250
                } else {
                    (x * 3 + 10) as u8
                }
            })
            .collect();
        let disp: Vec<f32> = (0..w)
            .map(|x| if (40..50).contains(&x) { 12.0 } else { 0.0 })
            .collect();
        let mut out = vec![0; w];
        // Left eye: the object moves right by 6 px and uncovers 40..46.
        warp_row(&src, &disp, 0.5, &mut out);
        assert_eq!(&out[46..56], &[250; 10][..], "the object moved by 6 px");
        // The hole mirrors the background to its left: 40 takes 39, 41 takes 38, ...
        let want: Vec<u8> = (0..6).map(|k| src[39 - k]).collect();
        assert_eq!(&out[40..46], &want[..], "{:?}", &out[36..48]);
    }

    #[test]
    fn fixed_point_kernel_puts_depth_edges_where_the_f32_reference_does() {
        // Steps between planes: the same surface wins every target pixel and the same
        // pixels are holes (disocclusions) as in the reference.
        let w = 400;
        let mut next = rng(2);
        let src = smooth_texture(w, &mut next);
        let mut holes = 0;
        for case in 0..200 {
            // On the fixed-point grid (half a disparity in 1/256 px), so both kernels see
            // the same positions (the rounding to that grid is the smooth test's business).
            let levels: Vec<f32> = (0..8)
                .map(|_| ((next() - 0.5) * 40.0 * 128.0).round() / 128.0)
                .collect();
            let disp: Vec<f32> = (0..w).map(|x| levels[x * 8 / w]).collect();
            for sign in [0.5f32, -0.5] {
                let mut out = vec![0u8; w];
                let tdisp = reference_warp_row(&src, &disp, sign, &mut out);
                let shift: Vec<i32> = disp
                    .iter()
                    .map(|&d| round_i32(d * 0.5 * ONE as f32))
                    .collect();
                let mut keys = vec![HOLE; w];
                splat(&shift, if sign < 0.0 { -1 } else { 1 }, &mut keys);
                for t in 0..w {
                    let want_hole = tdisp[t] == f32::NEG_INFINITY;
                    holes += usize::from(want_hole);
                    assert_eq!(
                        keys[t] == HOLE,
                        want_hole,
                        "case {case} sign {sign} t {t}: hole"
                    );
                    if !want_hole {
                        let got = ((keys[t] >> 32) as i64 - (1i64 << 31)) as f32 / ONE as f32;
                        let want = tdisp[t] * 0.5;
                        assert!(
                            (got - want).abs() <= 1.0 / 128.0,
                            "case {case} sign {sign} t {t}: surface {got} vs {want}"
                        );
                    }
                }
            }
        }
        assert!(holes > 1000, "the rows open disocclusions: {holes}");
    }

    #[test]
    fn rounding_without_libm_rounds_to_nearest() {
        for (v, want) in [
            (0.0, 0),
            (0.4, 0),
            (0.6, 1),
            (-0.6, -1),
            (-0.4, 0),
            (2.5, 2),
            (3.5, 4),
        ] {
            assert_eq!(round_i32(v), want, "{v}");
        }
        for i in -300_000..300_000 {
            let v = i as f32 * 0.37;
            assert!((round_i32(v) as f32 - v).abs() <= 0.5, "{v}");
        }
    }

    #[test]
    fn flat_depth_at_convergence_is_identity() {
        let src: Vec<u8> = (0..64).map(|i| (i * 3) as u8).collect();
        let disp = vec![0.0; 64];
        let mut out = vec![0; 64];
        warp_row(&src, &disp, 0.5, &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn constant_shift_moves_content_by_half_the_disparity() {
        let src: Vec<u8> = (0..64).map(|i| (i * 3) as u8).collect();
        let disp = vec![4.0; 64];
        let mut out = vec![0; 64];
        // disparity 4 px: the left eye sees the content 2 px to the right.
        warp_row(&src, &disp, 0.5, &mut out);
        for x in 4..60 {
            assert_eq!(out[x], src[x - 2], "x={x}");
        }
    }

    #[test]
    fn disocclusion_is_filled_with_background_and_no_wider_than_the_disparity_step() {
        // A near object (z=1) in the middle of a far background (z=0).
        let w = 100;
        let src: Vec<u8> = (0..w)
            .map(|x| if (40..60).contains(&x) { 200 } else { 50 })
            .collect();
        let disp: Vec<f32> = (0..w)
            .map(|x| if (40..60).contains(&x) { 10.0 } else { 0.0 })
            .collect();
        let mut out = vec![0; w];
        // Object disparity 10 px (shift 5 in the left eye), background 0.
        warp_row(&src, &disp, 0.5, &mut out);
        // The object moved right by 5 px; the 5 px it uncovered show background.
        let object: Vec<usize> = (0..w).filter(|&x| out[x] == 200).collect();
        assert_eq!(object.first(), Some(&45));
        assert_eq!(object.last(), Some(&64));
        assert!(out[40..45].iter().all(|&v| v == 50), "{:?}", &out[38..66]);
    }

    /// 10-bit frames take the same geometry as 8-bit ones: a frame of 8-bit levels times four
    /// renders, in every layout, to the 8-bit render times four (within the 8-bit render's
    /// rounding), at depth edges too.
    #[test]
    fn ten_bit_frames_render_like_eight_bit_ones_at_four_times_the_levels() {
        let (w, h) = (96, 32);
        let mut next = rng(7);
        let mut src8 = Yuv420::<u8>::new(w, h);
        for (i, v) in src8.data.iter_mut().enumerate() {
            *v = (16.0 + 219.0 * next()) as u8 | (i as u8 & 1);
        }
        let src16 = Yuv420::<u16> {
            width: w,
            height: h,
            data: src8.data.iter().map(|&v| u16::from(v) * 4).collect(),
        };
        let mut depth = DepthMap::new(24, 8);
        for (i, z) in depth.data.iter_mut().enumerate() {
            // A near block over a sloped background: edges and sub-pixel shifts.
            let (x, y) = (i % 24, i / 24);
            *z = if (8..16).contains(&x) && (2..6).contains(&y) {
                1.0
            } else {
                x as f32 / 48.0
            };
        }
        let params = StereoParams {
            divergence: 6.0,
            convergence: 0.3,
            ..StereoParams::default()
        };
        for mode in [
            StereoMode::FullSbs,
            StereoMode::FullTb,
            StereoMode::HalfSbs,
            StereoMode::HalfTb,
            StereoMode::Anaglyph,
            StereoMode::DepthMap,
        ] {
            let (ow, oh) = output_size(mode, w, h);
            let mut out8 = Yuv420::<u8>::new(ow, oh);
            let mut out16 = Yuv420::<u16>::new(ow, oh);
            StereoRenderer::<u8>::new(w, h, 24, 8).render(&src8, &depth, params, mode, &mut out8);
            StereoRenderer::<u16>::new(w, h, 24, 8)
                .render(&src16, &depth, params, mode, &mut out16);
            let worst = out8
                .data
                .iter()
                .zip(&out16.data)
                .map(|(&a, &b)| (i32::from(a) * 4 - i32::from(b)).abs())
                .max()
                .unwrap();
            // The 8-bit render rounds each view to 8 bits (2 10-bit levels); the anaglyph's
            // colour matrices then amplify that rounding up to about threefold.
            let allowed = if mode == StereoMode::Anaglyph { 12 } else { 4 };
            assert!(worst <= allowed, "{mode}: {worst} 10-bit levels apart");
        }
    }
}
