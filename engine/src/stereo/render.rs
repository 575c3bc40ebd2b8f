//! The renderer: a frame and its depth map to the output layout, warped in parallel bands of
//! row pairs, with the buffers it owns reused for every frame.

use parallax_core::model::{StereoMode, SyntheticView};
use rayon::prelude::*;

use super::fixed::ONE;
use super::layout::{squeeze_sbs, squeeze_tb};
use super::resample::{upsample, ResampleMap};
use super::shape::Shaper;
use super::warp::{BandContext, BandScratch, EyeRows};
use super::{anaglyph, on_frame_pool, output_size, DepthMap, Sample, StereoParams, Yuv420};
use crate::colour::Matrix;

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
    use super::super::test_rows::rng;
    use super::*;

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
