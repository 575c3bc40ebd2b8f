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

use std::sync::OnceLock;

use parallax_core::model::{AnaglyphMethod, ConversionSettings, StereoMode, SyntheticView};
use rayon::prelude::*;

use super::colour::Matrix;

mod anaglyph;
pub mod shape;
#[cfg(target_arch = "x86_64")]
mod simd;

use shape::{Shaper, Shaping};

/// How much lower than the process the frame pool's threads are scheduled (nice steps).
const FRAME_POOL_NICENESS: i32 = 10;

/// Runs `f` on the pool for per-frame work (the warp, the model input's preparation): one
/// thread per core, scheduled below the rest of the process and below the ffmpeg processes
/// (nice +10). On CPU hosts the encoder is the bottleneck: at equal priority the frame work
/// preempts it and the whole pipeline slows down; below it, the frame work fills the time
/// the encoder leaves idle and yields whenever the encoder can run. Code already running on
/// a rayon pool (a caller's own) stays there.
pub fn on_frame_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("frame-{i}"))
            .start_handler(|_| lower_thread_priority())
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no frame pool; using rayon's global pool"))
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Lowers the calling thread's scheduling priority by [`FRAME_POOL_NICENESS`] (Linux: nice
/// values are per thread). Failing only costs speed, so it is logged and ignored.
fn lower_thread_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let tid = rustix::thread::gettid();
    let result = getpriority_process(Some(tid))
        .and_then(|now| setpriority_process(Some(tid), (now + FRAME_POOL_NICENESS).min(19)));
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not lower the frame pool's priority");
    }
}

/// One sample of a planar YUV frame: 8-bit levels in a `u8` (`yuv420p`), or 10-bit levels in
/// a `u16` (`yuv420p10le`), so a 10-bit source keeps its levels from decode to encode. Colour
/// maths works in 8-bit levels as floats ([`Sample::SCALE`] converts), which keeps the
/// fraction of a 10-bit level.
pub trait Sample:
    Copy + Default + PartialEq + Eq + std::fmt::Debug + Send + Sync + Into<f32> + bytemuck::Pod
{
    /// Bits of a level.
    const BITS: u32;
    /// Levels per 8-bit level (1 or 4).
    const SCALE: f32;
    /// ffmpeg's name of planar 4:2:0 in these samples, in this machine's byte order.
    const PIX_FMT: &'static str;
    /// A level known to be in range.
    fn from_level(v: i32) -> Self;
    /// The level.
    fn level(self) -> i32;
    /// A level from a float in 8-bit levels, rounded and clamped to the range.
    fn from_f32_8bit(v: f32) -> Self {
        let max = (1i32 << Self::BITS) - 1;
        Self::from_level(((v * Self::SCALE + 0.5) as i32).clamp(0, max))
    }
    /// `s` as 8-bit samples when it is, for the 8-bit SIMD kernels.
    fn as_u8(s: &[Self]) -> Option<&[u8]>;
    /// [`Sample::as_u8`], mutable.
    fn as_u8_mut(s: &mut [Self]) -> Option<&mut [u8]>;
}

impl Sample for u8 {
    const BITS: u32 = 8;
    const SCALE: f32 = 1.0;
    const PIX_FMT: &'static str = "yuv420p";
    #[inline(always)]
    fn from_level(v: i32) -> Self {
        v as u8
    }
    #[inline(always)]
    fn level(self) -> i32 {
        i32::from(self)
    }
    fn as_u8(s: &[Self]) -> Option<&[u8]> {
        Some(s)
    }
    fn as_u8_mut(s: &mut [Self]) -> Option<&mut [u8]> {
        Some(s)
    }
}

impl Sample for u16 {
    const BITS: u32 = 10;
    const SCALE: f32 = 4.0;
    const PIX_FMT: &'static str = if cfg!(target_endian = "big") {
        "yuv420p10be"
    } else {
        "yuv420p10le"
    };
    #[inline(always)]
    fn from_level(v: i32) -> Self {
        v as u16
    }
    #[inline(always)]
    fn level(self) -> i32 {
        i32::from(self)
    }
    fn as_u8(_: &[Self]) -> Option<&[u8]> {
        None
    }
    fn as_u8_mut(_: &mut [Self]) -> Option<&mut [u8]> {
        None
    }
}

/// A planar YUV 4:2:0 image (`yuv420p`, or `yuv420p10le` with `u16` samples): the Y plane,
/// then U, then V, rows packed. Width and height are even.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420<T = u8> {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// The three planes back to back.
    pub data: Vec<T>,
}

impl Yuv420 {
    /// Bytes of one 8-bit frame of this size.
    pub fn byte_len(width: usize, height: usize) -> usize {
        Self::sample_len(width, height)
    }
}

impl<T: Sample> Yuv420<T> {
    /// A black image (Y=16, U=V=128 in 8-bit levels).
    pub fn new(width: usize, height: usize) -> Self {
        assert!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "yuv420p needs even sizes, got {width}x{height}"
        );
        let mut data = vec![T::from_f32_8bit(128.0); Self::sample_len(width, height)];
        data[..width * height].fill(T::from_f32_8bit(16.0));
        Self {
            width,
            height,
            data,
        }
    }

    /// Samples of one frame of this size.
    pub fn sample_len(width: usize, height: usize) -> usize {
        width * height + 2 * (width / 2) * (height / 2)
    }

    /// The frame as bytes, as ffmpeg pipes it.
    pub fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }

    /// The frame as bytes, mutable (to read a frame from a pipe into).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.data)
    }

    /// The Y, U and V planes.
    pub fn planes(&self) -> (&[T], &[T], &[T]) {
        let ys = self.width * self.height;
        let cs = (self.width / 2) * (self.height / 2);
        let (y, rest) = self.data.split_at(ys);
        let (u, v) = rest.split_at(cs);
        (y, u, &v[..cs])
    }

    /// The Y, U and V planes, mutable.
    pub fn planes_mut(&mut self) -> (&mut [T], &mut [T], &mut [T]) {
        let ys = self.width * self.height;
        let cs = (self.width / 2) * (self.height / 2);
        let (y, rest) = self.data.split_at_mut(ys);
        let (u, v) = rest.split_at_mut(cs);
        (y, u, &mut v[..cs])
    }
}

/// The size of the output frame for a source of `width` x `height` in `mode`.
pub fn output_size(mode: StereoMode, width: usize, height: usize) -> (usize, usize) {
    match mode {
        StereoMode::FullSbs | StereoMode::FullCross | StereoMode::Rgbd => (width * 2, height),
        StereoMode::FullTb => (width, height * 2),
        StereoMode::HalfSbs
        | StereoMode::HalfCross
        | StereoMode::HalfTb
        | StereoMode::Anaglyph
        | StereoMode::DepthMap => (width, height),
    }
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

/// One band's row buffers.
#[derive(Debug, Clone)]
struct BandScratch {
    /// The depth row interpolated vertically, as eye shifts (depth-grid width).
    coarse: Vec<i32>,
    /// The eye shift of every luma pixel of the row.
    shift: Vec<i32>,
    /// The splatted keys of one luma row for one eye.
    keys: Vec<u64>,
    /// The keys of the chroma row derived from them.
    chroma_keys: Vec<u64>,
}

impl BandScratch {
    fn new(width: usize, depth_width: usize) -> Self {
        Self {
            coarse: vec![0; depth_width.max(1)],
            shift: vec![0; width],
            keys: vec![HOLE; width],
            chroma_keys: vec![HOLE; width / 2],
        }
    }
}

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
            StereoMode::FullSbs => self.warp_into(src, depth, params, out, Arrangement::SideBySide),
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

/// What every band of a frame shares.
struct BandContext<'a> {
    w: usize,
    depth: &'a DepthMap,
    map: &'a ResampleMap,
    /// Eye shift in 1/256 px per unit of (depth - convergence).
    scale: f32,
    convergence: f32,
    /// The eye (0 left, 1 right) that shows the source unchanged, if one does.
    original: Option<usize>,
}

/// A left and a right output row.
type EyeRows<'a, T> = (&'a mut [T], &'a mut [T]);

impl BandContext<'_> {
    /// Warps one band: row pairs from `first_pair` on, `src` holding the band's source rows
    /// and the output iterators yielding the band's (left, right) rows.
    fn band<'o, T: Sample>(
        &self,
        scratch: &mut BandScratch,
        first_pair: usize,
        (sy, su, sv): (&[T], &[T], &[T]),
        mut oy: impl Iterator<Item = EyeRows<'o, T>>,
        mut ou: impl Iterator<Item = EyeRows<'o, T>>,
        mut ov: impl Iterator<Item = EyeRows<'o, T>>,
    ) {
        let (w, cw) = (self.w, self.w / 2);
        let BandScratch {
            coarse,
            shift,
            keys,
            chroma_keys,
        } = scratch;
        for (i, (sy2, (su, sv))) in sy
            .chunks(2 * w)
            .zip(su.chunks(cw).zip(sv.chunks(cw)))
            .enumerate()
        {
            // One splat per eye serves the pair's two luma rows and their chroma row, as
            // 4:2:0 chroma already shares one sample between the two. It halves the
            // splatting for at most one luma row of vertical depth detail: the default
            // depth map has 518 rows for 360 pairs at 720p and 540 at 1080p.
            self.shift_pair(first_pair + i, coarse, shift);
            let (s0, s1) = sy2.split_at(w);
            let (l0, r0) = oy.next().expect("two luma rows per pair");
            let (l1, r1) = oy.next().expect("two luma rows per pair");
            let (ul, ur) = ou.next().expect("a chroma row per pair");
            let (vl, vr) = ov.next().expect("a chroma row per pair");
            for (i, (eye, d0, d1, cu, cv)) in [(1, l0, l1, ul, vl), (-1, r0, r1, ur, vr)]
                .into_iter()
                .enumerate()
            {
                if self.original == Some(i) {
                    d0.copy_from_slice(s0);
                    d1.copy_from_slice(s1);
                    cu.copy_from_slice(su);
                    cv.copy_from_slice(sv);
                    continue;
                }
                splat(shift, eye, keys);
                sample2([s0, s1], keys, [d0, d1]);
                chroma_keys_from_luma(keys, chroma_keys);
                sample2([su, sv], chroma_keys, [cu, cv]);
            }
        }
    }

    /// The eye shift (1/256 px) of every pixel of row pair `pair` (depth sampled at the
    /// pair's centre): the depth map interpolated vertically at depth-grid width and turned
    /// into shifts (few float conversions), then horizontally in integers.
    fn shift_pair(&self, pair: usize, coarse: &mut [i32], shift: &mut [i32]) {
        let dw = self.depth.width.max(1);
        let (y0, y1, fy) = self.map.pair_ys[pair];
        let r0 = &self.depth.data[y0 as usize * dw..][..dw];
        let r1 = &self.depth.data[y1 as usize * dw..][..dw];
        coarse_shifts([r0, r1], fy, (self.scale, self.convergence), coarse);
        let xs = &self.map.xs_fixed;
        #[cfg(target_arch = "x86_64")]
        if simd::resample_row(coarse, xs, shift) {
            return;
        }
        resample_row(coarse, xs, shift);
    }
}

/// The shifts of a depth row interpolated `fy` of the way from row `r0` to `r1`: `k * (z - c)`
/// rounded, for `(k, c)` the shift per unit of depth and the convergence.
fn coarse_shifts([r0, r1]: [&[f32]; 2], fy: f32, (k, c): (f32, f32), out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::coarse_shifts([r0, r1], fy, (k, c), out) {
        return;
    }
    coarse_shifts_scalar([r0, r1], fy, (k, c), out);
}

fn coarse_shifts_scalar([r0, r1]: [&[f32]; 2], fy: f32, (k, c): (f32, f32), out: &mut [i32]) {
    for ((o, &a), &b) in out.iter_mut().zip(r0).zip(r1) {
        let z = a + (b - a) * fy;
        *o = round_i32(k * (z - c));
    }
}

/// Fixed point: positions and shifts in 1/256 px.
const FRAC: u32 = 8;
const ONE: i32 = 1 << FRAC;
/// `1.5 * 2^23`: adding it to an f32 of magnitude below 2^22 leaves the value rounded to an
/// integer (to even on ties) in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Rounds `v` (|v| < 2^22; a shift of 100% of an 8K width in 1/256 px is ~2^20) to the
/// nearest integer with plain float arithmetic: no libm call (baseline x86-64 has no
/// rounding instruction) and no saturating conversion, so loops of it vectorise.
#[inline]
fn round_i32(v: f32) -> i32 {
    (v + ROUND_MAGIC).to_bits() as i32 - ROUND_MAGIC.to_bits() as i32
}
/// A target pixel nothing landed on; every real key is above it.
const HOLE: u64 = 0;
/// Neighbouring source pixels further apart than this after the shift (1/256 px) leave a
/// hole between them (a disocclusion) instead of being stretched over it.
const MAX_SPAN: i32 = 2 * ONE;
/// `65536 / span` for every span up to [`MAX_SPAN`]: the splat divides by a table look-up.
static RECIP: [u32; MAX_SPAN as usize + 1] = {
    let mut t = [0u32; MAX_SPAN as usize + 1];
    let mut i = 1;
    while i < t.len() {
        t[i] = ((1u32 << 16) + i as u32 / 2) / i as u32;
        i += 1;
    }
    t
};

/// A splatted target pixel: the surface's eye shift (the z-buffer key: nearer = larger) in
/// the high half, the source position to sample (1/256 px) in the low half, so the z-test
/// is one integer `max`.
#[inline]
fn key(shift: i32, pos: u32) -> u64 {
    ((i64::from(shift) + (1i64 << 31)) as u64) << 32 | u64::from(pos)
}

#[inline]
fn key_pos(k: u64) -> u32 {
    k as u32
}

/// Warps one row for one eye: `disp` is the disparity of each source pixel in pixels
/// (positive = in front of the screen), and the eye shifts each pixel by `sign * disp`
/// (+0.5 left eye, -0.5 right eye). A convenience over the renderer's kernel for a single
/// row (it allocates its scratch; [`StereoRenderer`] does not).
pub fn warp_row<T: Sample>(src: &[T], disp: &[f32], sign: f32, dst: &mut [T]) {
    let w = src.len();
    assert!(disp.len() == w && dst.len() == w);
    if w == 0 {
        return;
    }
    let m = sign.abs() * ONE as f32;
    let shift: Vec<i32> = disp.iter().map(|&d| round_i32(d * m)).collect();
    let mut keys = vec![HOLE; w];
    splat(&shift, if sign < 0.0 { -1 } else { 1 }, &mut keys);
    sample(src, &keys, dst);
}

/// Step 1: forward-splat the row: source pixel `x` lands at `x + eye * shift(x)`; between
/// two neighbouring source pixels that stay neighbours the target pixels they span get
/// interpolated source positions; where two surfaces land on one pixel the nearer (larger
/// shift) wins (a z-buffer); pixels nothing lands on stay [`HOLE`].
fn splat(shift: &[i32], eye: i32, keys: &mut [u64]) {
    // One copy of the loop per eye: the sign folds into the arithmetic.
    if eye < 0 {
        splat_eye::<-1>(shift, keys);
    } else {
        splat_eye::<1>(shift, keys);
    }
}

fn splat_eye<const EYE: i32>(shift: &[i32], keys: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if simd::splat_eye::<EYE>(shift, keys) {
        return;
    }
    assert_eq!(keys.len(), shift.len());
    keys.fill(HOLE);
    splat_tail::<EYE>(shift, 1, keys);
}

/// The splat of source pixels `from..` (each with its left neighbour; `from >= 1`) onto
/// `keys`, and of the last pixel.
fn splat_tail<const EYE: i32>(shift: &[i32], from: usize, keys: &mut [u64]) {
    let eye = EYE;
    let w = shift.len();
    assert!(keys.len() == w && from >= 1 && from <= w.max(1));
    let wu = w as u32;
    let mut s0 = shift[from - 1];
    let mut p0 = (((from - 1) as i32) << FRAC) + eye * s0;
    // Every pixel but the last, which has no right neighbour.
    for (x1, &s1) in shift.iter().enumerate().skip(from) {
        let p1 = ((x1 as i32) << FRAC) + eye * s1;
        let span = p1 - p0;
        let base = ((x1 - 1) as u32) << FRAC;
        if (1..=MAX_SPAN).contains(&span) {
            // A continuous surface: the integer positions in [p0, p1), at most two; the
            // source position advances by 1/span per 1/256 px of target.
            let r = RECIP[span as usize];
            let t0 = (p0 + ONE - 1) >> FRAC;
            let off0 = (t0 << FRAC) - p0;
            for (t, off) in [(t0, off0), (t0 + 1, off0 + ONE)] {
                if off < span && (t as u32) < wu {
                    // At most 256: the position stays within [x, x + 1].
                    let frac = (off as u32 * r) >> FRAC;
                    let s = s0 + (((s1 - s0) * frac as i32) >> FRAC);
                    let slot = &mut keys[t as usize];
                    *slot = (*slot).max(key(s, base + frac));
                }
            }
        } else {
            // A fold (occlusion) or a tear (disocclusion): the pixel covers its nearest slot.
            let t = (p0 + ONE / 2) >> FRAC;
            if (t as u32) < wu {
                let slot = &mut keys[t as usize];
                *slot = (*slot).max(key(s0, base));
            }
        }
        s0 = s1;
        p0 = p1;
    }
    // The last pixel keeps its width: it covers the one integer position in [p0, p0 + 1).
    let t = (p0 + ONE - 1) >> FRAC;
    if (t as u32) < wu {
        let slot = &mut keys[t as usize];
        *slot = (*slot).max(key(s0, ((w - 1) as u32) << FRAC));
    }
}

/// Steps 2 and 3: sample the source at each splatted position (linear interpolation in
/// 8-bit fixed point), then fill the holes.
fn sample<T: Sample>(src: &[T], keys: &[u64], dst: &mut [T]) {
    let w = src.len();
    let mut holes = false;
    for (out, &k) in dst.iter_mut().zip(keys) {
        // A hole samples position 0 and is overwritten below: no branch here.
        holes |= k == HOLE;
        let (i, j, f) = taps(k, w);
        *out = lerp(src[i], src[j], f);
    }
    if holes {
        fill_holes(src, keys, dst);
    }
}

/// [`sample`] for two planes' rows that share one splat (a pair's luma rows, or a chroma
/// row's U and V): each key is decoded once for both. 8-bit rows take the AVX2 kernel where
/// there is one; 10-bit rows the scalar one (the splat before it, most of the warp's time, is
/// shared).
fn sample2<T: Sample>(src: [&[T]; 2], keys: &[u64], dst: [&mut [T]; 2]) {
    let [s0, s1] = src;
    let [d0, d1] = dst;
    #[cfg(target_arch = "x86_64")]
    let fast = match (T::as_u8(s0), T::as_u8(s1)) {
        (Some(a), Some(b)) => T::as_u8_mut(&mut *d0)
            .zip(T::as_u8_mut(&mut *d1))
            .and_then(|(c, d)| simd::lerp2(a, b, keys, c, d)),
        _ => None,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let fast = None;
    let holes = match fast {
        Some(holes) => holes,
        None => lerp2_scalar(s0, s1, keys, d0, d1),
    };
    if holes {
        fill_holes(s0, keys, d0);
        fill_holes(s1, keys, d1);
    }
}

/// [`sample2`]'s interpolation, one pixel at a time; returns whether any key is a [`HOLE`].
fn lerp2_scalar<T: Sample>(s0: &[T], s1: &[T], keys: &[u64], d0: &mut [T], d1: &mut [T]) -> bool {
    let w = s0.len();
    assert!(s1.len() == w && d0.len() == w && d1.len() == w && keys.len() == w);
    let mut holes = false;
    for (x, &k) in keys.iter().enumerate() {
        holes |= k == HOLE;
        let (i, j, f) = taps(k, w);
        d0[x] = lerp(s0[i], s0[j], f);
        d1[x] = lerp(s1[i], s1[j], f);
    }
    holes
}

/// The two source pixels a key's position falls between, and the weight of the second.
#[inline(always)]
fn taps(k: u64, w: usize) -> (usize, usize, i32) {
    let pos = key_pos(k);
    let i = ((pos >> FRAC) as usize).min(w - 1);
    (i, (i + 1).min(w - 1), (pos & (ONE as u32 - 1)) as i32)
}

#[inline(always)]
fn lerp<T: Sample>(a: T, b: T, f: i32) -> T {
    let (a, b) = (a.level(), b.level());
    T::from_level((a * ONE + (b - a) * f + ONE / 2) >> FRAC)
}

/// Step 3: fill each hole (a disocclusion, only ever next to a depth edge, as wide as the
/// disparity step) from its farther side: the background continues into it.
fn fill_holes<T: Sample>(src: &[T], keys: &[u64], dst: &mut [T]) {
    let w = src.len();
    let mut x = 0;
    while x < w {
        if keys[x] != HOLE {
            x += 1;
            continue;
        }
        let start = x;
        while x < w && keys[x] == HOLE {
            x += 1;
        }
        let from = match (start.checked_sub(1), (x < w).then_some(x)) {
            (Some(a), Some(b)) => {
                if keys[a] >> 32 <= keys[b] >> 32 {
                    a
                } else {
                    b
                }
            }
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => {
                // Nothing landed in the row at all (cannot happen for sane disparities).
                dst.copy_from_slice(src);
                return;
            }
        };
        let v = dst[from];
        dst[start..x].fill(v);
    }
}

/// The chroma row's keys from its upper luma row's: chroma pixel `t` covers luma pixels
/// `2t` and `2t+1` (its centre halfway between them), so it samples the chroma plane where
/// they sample the luma plane, halved. Where the two come from different surfaces (a depth
/// edge between them) the nearer one alone decides; where both are holes so is it.
fn chroma_keys_from_luma(luma: &[u64], chroma: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if simd::chroma_keys(luma, chroma) {
        return;
    }
    let n = chroma.len();
    chroma_keys_scalar(luma, chroma, n);
}

/// [`chroma_keys_from_luma`] for a stretch of a row whose full chroma width is `row_len`.
fn chroma_keys_scalar(luma: &[u64], chroma: &mut [u64], row_len: usize) {
    if row_len == 0 {
        return;
    }
    let last = (((row_len - 1) as u32) << FRAC) as i32;
    for (o, pair) in chroma.iter_mut().zip(luma.chunks_exact(2)) {
        let (k0, k1) = (pair[0], pair[1]);
        let (p0, p1) = (key_pos(k0) as i32, key_pos(k1) as i32);
        let pos = match (k0 != HOLE, k1 != HOLE) {
            (true, true) if (p1 - p0).abs() <= MAX_SPAN => ((p0 + p1) >> 2) - ONE / 4,
            (true, true) if k0 > k1 => p0 >> 1,
            (true, true) => (p1 - ONE) >> 1,
            (true, false) => p0 >> 1,
            (false, true) => (p1 - ONE) >> 1,
            (false, false) => {
                *o = HOLE;
                continue;
            }
        };
        *o = (k0.max(k1) & !u64::from(u32::MAX)) | u64::from(pos.clamp(0, last) as u32);
    }
}

/// Linear sampling positions along one axis in fixed point, as three arrays (so eight are
/// loaded at once): output `i` is `src[a[i]] + (src[b[i]] - src[a[i]]) * f[i] / 256`.
#[derive(Debug, Clone)]
struct FixedAxis {
    a: Vec<i32>,
    b: Vec<i32>,
    /// Weights in 1/256 (0..=256).
    f: Vec<i32>,
    /// No index in `a` or `b` is negative or above this.
    max_index: usize,
}

/// Interpolates `src` at `xs` into `out` (rounded to nearest).
fn resample_row(src: &[i32], xs: &FixedAxis, out: &mut [i32]) {
    for (((o, &a), &b), &f) in out.iter_mut().zip(&xs.a).zip(&xs.b).zip(&xs.f) {
        let (a, b) = (src[a as usize], src[b as usize]);
        *o = a + (((b - a) * f + ONE / 2) >> FRAC);
    }
}

/// Precomputed bilinear sampling positions from a `src_w` x `src_h` grid to `dst_w` x `dst_h`
/// (pixel centres aligned, as image scalers do).
#[derive(Debug, Clone)]
struct ResampleMap {
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    xs: Vec<(u32, u32, f32)>,
    ys: Vec<(u32, u32, f32)>,
    /// Vertical positions of the centres of the destination's row pairs (`dst_h / 2`).
    pair_ys: Vec<(u32, u32, f32)>,
    /// `xs` with the weight in 1/256 (0..=256).
    xs_fixed: FixedAxis,
}

/// Linear sampling positions from `src` samples to `dst` along one axis, pixel centres
/// aligned (as image scalers do): for each output, the two inputs and the second's weight.
pub(super) fn linear_axis(src: usize, dst: usize) -> Vec<(u32, u32, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let s = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
            let a = s.floor() as usize;
            let b = (a + 1).min(src - 1);
            (a as u32, b as u32, s - a as f32)
        })
        .collect()
}

impl ResampleMap {
    fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        let src_w = src_w.max(1);
        let src_h = src_h.max(1);
        let xs = linear_axis(src_w, dst_w);
        let xs_fixed = FixedAxis {
            a: xs.iter().map(|&(a, _, _)| a as i32).collect(),
            b: xs.iter().map(|&(_, b, _)| b as i32).collect(),
            f: xs
                .iter()
                .map(|&(_, _, f)| (f * ONE as f32 + 0.5) as i32)
                .collect(),
            max_index: xs.iter().map(|&(_, b, _)| b as usize).max().unwrap_or(0),
        };
        Self {
            src_w,
            src_h,
            dst_w,
            xs,
            ys: linear_axis(src_h, dst_h),
            pair_ys: linear_axis(src_h, dst_h / 2),
            xs_fixed,
        }
    }
}

fn upsample(depth: &DepthMap, map: &ResampleMap, out: &mut [f32]) {
    let sw = depth.width;
    out.par_chunks_mut(map.dst_w)
        .zip(map.ys.par_iter())
        .for_each(|(row, &(y0, y1, fy))| {
            let r0 = &depth.data[y0 as usize * sw..][..sw];
            let r1 = &depth.data[y1 as usize * sw..][..sw];
            for (o, &(x0, x1, fx)) in row.iter_mut().zip(&map.xs) {
                let (x0, x1) = (x0 as usize, x1 as usize);
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                *o = top + (bot - top) * fy;
            }
        });
}

/// Box-resamples `src` into `dst` (any lengths).
fn shrink_row<T: Sample>(src: &[T], dst: &mut [T]) {
    let (n, m) = (src.len(), dst.len());
    for (i, o) in dst.iter_mut().enumerate() {
        let a = i * n / m;
        let b = ((i + 1) * n / m).max(a + 1);
        let sum: i32 = src[a..b].iter().map(|&v| v.level()).sum();
        *o = T::from_level((sum + (b - a) as i32 / 2) / (b - a) as i32);
    }
}

/// Left-over-right full views -> half side by side (each view squeezed to half width);
/// `cross` puts the right view first.
fn squeeze_sbs<T: Sample>(views: &Yuv420<T>, out: &mut Yuv420<T>, cross: bool) {
    let (w, h) = (out.width, out.height);
    let (vy, vu, vv) = views.planes();
    let (oy, ou, ov) = out.planes_mut();
    for (v, o, pw, ph) in [
        (vy, oy, w, h),
        (vu, ou, w / 2, h / 2),
        (vv, ov, w / 2, h / 2),
    ] {
        let (left, right) = v.split_at(pw * ph);
        let lw = pw / 2;
        o.par_chunks_mut(pw)
            .zip(left.par_chunks(pw).zip(right.par_chunks(pw)))
            .for_each(|(o, (l, r))| {
                let (ol, or) = o.split_at_mut(lw);
                let (ol, or) = if cross { (or, ol) } else { (ol, or) };
                shrink_row(l, ol);
                shrink_row(r, or);
            });
    }
}

/// Left-over-right full views -> half top-bottom (each view squeezed to half height).
fn squeeze_tb<T: Sample>(views: &Yuv420<T>, out: &mut Yuv420<T>) {
    let (w, h) = (out.width, out.height);
    let (vy, vu, vv) = views.planes();
    let (oy, ou, ov) = out.planes_mut();
    for (v, o, pw, ph) in [
        (vy, oy, w, h),
        (vu, ou, w / 2, h / 2),
        (vv, ov, w / 2, h / 2),
    ] {
        // Output row i of 2*ph rows of the stacked views averages stacked rows 2i and 2i+1
        // (odd heights: the top half gets ph/2 rows, each view's rows map proportionally).
        let top = ph / 2;
        let (ot, ob) = o.split_at_mut(top * pw);
        for (dst, view_idx, rows) in [(ot, 0usize, top), (ob, 1usize, ph - top)] {
            let view = &v[view_idx * pw * ph..][..pw * ph];
            dst.par_chunks_mut(pw).enumerate().for_each(|(i, d)| {
                let a = i * ph / rows;
                let b = ((i + 1) * ph / rows).max(a + 1);
                for (x, px) in d.iter_mut().enumerate() {
                    let mut sum = 0i32;
                    for r in a..b {
                        sum += view[r * pw + x].level();
                    }
                    *px = T::from_level((sum + (b - a) as i32 / 2) / (b - a) as i32);
                }
            });
        }
    }
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
            let v = dst[from];
            dst[start..x].fill(v);
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
                reference_warp_row(&src, &disp, sign, &mut want);
                for x in 0..w {
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
    fn the_frame_pool_runs_below_the_callers_priority() {
        use rustix::process::getpriority_process;
        let nice = || getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let caller = nice();
        let (pooled, index) = on_frame_pool(|| (nice(), rayon::current_thread_index()));
        assert!(index.is_some(), "ran on a pool thread");
        assert_eq!(pooled, (caller + FRAME_POOL_NICENESS).min(19));
        // Work already on a pool stays there (the bench's one-thread measurement relies on it).
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let inner = one.install(|| on_frame_pool(nice));
        assert_eq!(inner, caller);
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
