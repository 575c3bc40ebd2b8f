//! Stereo rendering: normalised depth -> disparity -> left and right views by horizontal
//! warping with occlusion-aware hole filling -> the output layout.
//!
//! Everything works on planar YUV 4:2:0 frames as ffmpeg pipes them (no RGB round trip except
//! for the anaglyph, which needs it). A [`StereoRenderer`] owns every buffer it needs and is
//! reused for every frame of a conversion: rendering a frame allocates nothing. Rows are
//! independent, so each plane is warped in parallel with rayon.
//!
//! The warp of one row for one eye (shift `s = ±d/2`, `d` the disparity in pixels):
//! 1. forward-splat the disparity: source pixel `x` lands at `x + s(x)`; between two
//!    neighbouring source pixels that stay neighbours the disparity is interpolated onto the
//!    target pixels they span; where two surfaces land on one pixel the nearer (larger
//!    disparity) wins (a z-buffer);
//! 2. fill the holes (disoccluded pixels, which only appear next to a depth edge) with the
//!    disparity of the farther of the two sides, so the background continues into the hole;
//!    a hole is never wider than the disparity difference across the edge;
//! 3. sample the source colour at `t - s(t)` with linear interpolation, which keeps
//!    sub-pixel shifts exact.

use parallax_core::model::StereoMode;
use rayon::prelude::*;

/// A planar 8-bit YUV 4:2:0 image (`yuv420p`): the Y plane, then U, then V, rows packed.
/// Width and height are even.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420 {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// The three planes back to back.
    pub data: Vec<u8>,
}

impl Yuv420 {
    /// A black image (Y=16, U=V=128).
    pub fn new(width: usize, height: usize) -> Self {
        assert!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "yuv420p needs even sizes, got {width}x{height}"
        );
        let mut data = vec![128u8; Self::byte_len(width, height)];
        data[..width * height].fill(16);
        Self {
            width,
            height,
            data,
        }
    }

    /// Bytes of one frame of this size.
    pub fn byte_len(width: usize, height: usize) -> usize {
        width * height + 2 * (width / 2) * (height / 2)
    }

    /// The Y, U and V planes.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let ys = self.width * self.height;
        let cs = (self.width / 2) * (self.height / 2);
        let (y, rest) = self.data.split_at(ys);
        let (u, v) = rest.split_at(cs);
        (y, u, &v[..cs])
    }

    /// The Y, U and V planes, mutable.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
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
        StereoMode::FullSbs => (width * 2, height),
        StereoMode::FullTb => (width, height * 2),
        StereoMode::HalfSbs | StereoMode::HalfTb | StereoMode::Anaglyph | StereoMode::DepthMap => {
            (width, height)
        }
    }
}

/// How depth becomes disparity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StereoParams {
    /// The largest disparity between the two views (depth 0 to depth 1), in percent of the
    /// frame width.
    pub divergence: f32,
    /// The normalised depth (0 = far, 1 = near) that has zero disparity (the screen plane).
    pub convergence: f32,
}

impl StereoParams {
    /// The disparity in pixels (right-view position subtracted from the left-view position)
    /// of normalised depth `z` in a frame `width` pixels wide. Positive = in front of the screen.
    pub fn disparity_px(&self, z: f32, width: usize) -> f32 {
        self.divergence / 100.0 * width as f32 * (z - self.convergence)
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
pub struct StereoRenderer {
    width: usize,
    height: usize,
    /// Depth upsampled to the luma and the chroma grids.
    z_luma: Vec<f32>,
    z_chroma: Vec<f32>,
    /// Per-row target-disparity scratch, one row per source row.
    scratch_luma: Vec<f32>,
    scratch_chroma: Vec<f32>,
    /// Full-size left view stacked over the right view, for the layouts that post-process
    /// the views (half SBS/TB, anaglyph).
    views: Option<Yuv420>,
    /// Horizontal/vertical interpolation tables for the upsampling, per grid.
    luma_map: ResampleMap,
    chroma_map: ResampleMap,
}

impl StereoRenderer {
    /// A renderer for `width` x `height` sources (even sizes) and depth maps of
    /// `depth_width` x `depth_height`.
    pub fn new(width: usize, height: usize, depth_width: usize, depth_height: usize) -> Self {
        assert!(width.is_multiple_of(2) && height.is_multiple_of(2) && width > 0 && height > 0);
        let (cw, ch) = (width / 2, height / 2);
        Self {
            width,
            height,
            z_luma: vec![0.0; width * height],
            z_chroma: vec![0.0; cw * ch],
            scratch_luma: vec![0.0; 2 * width * height],
            scratch_chroma: vec![0.0; 2 * cw * ch],
            views: None,
            luma_map: ResampleMap::new(depth_width, depth_height, width, height),
            chroma_map: ResampleMap::new(depth_width, depth_height, cw, ch),
        }
    }

    /// Source width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Source height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The depth of the last rendered frame at full resolution (0 = far, 1 = near).
    pub fn depth_full(&self) -> &[f32] {
        &self.z_luma
    }

    /// Renders `src` with `depth` in `mode` into `out` (sized by [`output_size`]).
    pub fn render(
        &mut self,
        src: &Yuv420,
        depth: &DepthMap,
        params: StereoParams,
        mode: StereoMode,
        out: &mut Yuv420,
    ) {
        assert_eq!((src.width, src.height), (self.width, self.height));
        let (ow, oh) = output_size(mode, self.width, self.height);
        assert_eq!((out.width, out.height), (ow, oh), "output buffer size");
        if (depth.width, depth.height) != (self.luma_map.src_w, self.luma_map.src_h) {
            self.luma_map = ResampleMap::new(depth.width, depth.height, self.width, self.height);
            self.chroma_map =
                ResampleMap::new(depth.width, depth.height, self.width / 2, self.height / 2);
        }
        upsample(depth, &self.luma_map, &mut self.z_luma);
        if mode == StereoMode::DepthMap {
            let (y, u, v) = out.planes_mut();
            y.par_chunks_mut(self.width)
                .zip(self.z_luma.par_chunks(self.width))
                .for_each(|(row, z)| {
                    for (p, &z) in row.iter_mut().zip(z) {
                        *p = (16.0 + 219.0 * z.clamp(0.0, 1.0) + 0.5) as u8;
                    }
                });
            u.fill(128);
            v.fill(128);
            return;
        }
        upsample(depth, &self.chroma_map, &mut self.z_chroma);
        match mode {
            StereoMode::FullSbs => self.warp_into(src, params, out, Arrangement::SideBySide),
            StereoMode::FullTb => self.warp_into(src, params, out, Arrangement::TopBottom),
            StereoMode::HalfSbs | StereoMode::HalfTb | StereoMode::Anaglyph => {
                let mut views = self
                    .views
                    .take()
                    .unwrap_or_else(|| Yuv420::new(self.width, self.height * 2));
                self.warp_into(src, params, &mut views, Arrangement::TopBottom);
                match mode {
                    StereoMode::HalfSbs => squeeze_sbs(&views, out),
                    StereoMode::HalfTb => squeeze_tb(&views, out),
                    _ => anaglyph(&views, out),
                }
                self.views = Some(views);
            }
            StereoMode::DepthMap => unreachable!("handled above"),
        }
    }

    fn warp_into(
        &mut self,
        src: &Yuv420,
        params: StereoParams,
        out: &mut Yuv420,
        arrangement: Arrangement,
    ) {
        let (w, h) = (self.width, self.height);
        let (sy, su, sv) = src.planes();
        let (oy, ou, ov) = out.planes_mut();
        let k_luma = params.divergence / 100.0 * w as f32;
        let k_chroma = params.divergence / 100.0 * (w / 2) as f32;
        let c = params.convergence;
        warp_plane(
            sy,
            &self.z_luma,
            &mut self.scratch_luma,
            (w, h),
            (k_luma, c),
            oy,
            arrangement,
        );
        warp_chroma(
            (su, sv),
            &self.z_chroma,
            &mut self.scratch_chroma,
            (w / 2, h / 2),
            (k_chroma, c),
            (ou, ov),
            arrangement,
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrangement {
    /// Output rows are `[left row | right row]`.
    SideBySide,
    /// Output is all left rows, then all right rows.
    TopBottom,
}

fn warp_plane(
    src: &[u8],
    z: &[f32],
    scratch: &mut [f32],
    (w, h): (usize, usize),
    (k, c): (f32, f32),
    dst: &mut [u8],
    arrangement: Arrangement,
) {
    // Per row: the disparity (shared by both eyes), then the eye's target disparity.
    let row = |s: &[u8], z: &[f32], scratch: &mut [f32], l: &mut [u8], r: &mut [u8]| {
        let (disp, tdisp) = scratch.split_at_mut(w);
        for (d, &z) in disp.iter_mut().zip(z) {
            *d = k * (z - c);
        }
        warp_row(s, disp, 0.5, tdisp, l);
        warp_row(s, disp, -0.5, tdisp, r);
    };
    let rows = src
        .par_chunks(w)
        .zip(z.par_chunks(w))
        .zip(scratch.par_chunks_mut(2 * w));
    match arrangement {
        Arrangement::SideBySide => {
            rows.zip(dst.par_chunks_mut(2 * w))
                .for_each(|(((s, z), scratch), d)| {
                    let (l, r) = d.split_at_mut(w);
                    row(s, z, scratch, l, r);
                })
        }
        Arrangement::TopBottom => {
            let (l, r) = dst.split_at_mut(w * h);
            rows.zip(l.par_chunks_mut(w).zip(r.par_chunks_mut(w)))
                .for_each(|(((s, z), scratch), (l, r))| row(s, z, scratch, l, r));
        }
    }
}

/// Warps both chroma planes, which share one disparity map: each row is splatted once per
/// eye and sampled from U and from V.
fn warp_chroma(
    (su, sv): (&[u8], &[u8]),
    z: &[f32],
    scratch: &mut [f32],
    (w, h): (usize, usize),
    (k, c): (f32, f32),
    (du, dv): (&mut [u8], &mut [u8]),
    arrangement: Arrangement,
) {
    type Eyes<'a> = (&'a mut [u8], &'a mut [u8], &'a mut [u8], &'a mut [u8]);
    let row = |su: &[u8], sv: &[u8], z: &[f32], scratch: &mut [f32], (ul, ur, vl, vr): Eyes<'_>| {
        let (disp, tdisp) = scratch.split_at_mut(w);
        for (d, &z) in disp.iter_mut().zip(z) {
            *d = k * (z - c);
        }
        splat(disp, 0.5, tdisp);
        sample(su, tdisp, 0.5, ul);
        sample(sv, tdisp, 0.5, vl);
        splat(disp, -0.5, tdisp);
        sample(su, tdisp, -0.5, ur);
        sample(sv, tdisp, -0.5, vr);
    };
    let rows = su
        .par_chunks(w)
        .zip(sv.par_chunks(w))
        .zip(z.par_chunks(w))
        .zip(scratch.par_chunks_mut(2 * w));
    match arrangement {
        Arrangement::SideBySide => rows
            .zip(du.par_chunks_mut(2 * w).zip(dv.par_chunks_mut(2 * w)))
            .for_each(|((((su, sv), z), scratch), (u, v))| {
                let (ul, ur) = u.split_at_mut(w);
                let (vl, vr) = v.split_at_mut(w);
                row(su, sv, z, scratch, (ul, ur, vl, vr));
            }),
        Arrangement::TopBottom => {
            let (ul, ur) = du.split_at_mut(w * h);
            let (vl, vr) = dv.split_at_mut(w * h);
            rows.zip(
                ul.par_chunks_mut(w)
                    .zip(ur.par_chunks_mut(w))
                    .zip(vl.par_chunks_mut(w).zip(vr.par_chunks_mut(w))),
            )
            .for_each(|((((su, sv), z), scratch), ((ul, ur), (vl, vr)))| {
                row(su, sv, z, scratch, (ul, ur, vl, vr));
            });
        }
    }
}

/// Marks a target pixel no source pixel landed on.
const HOLE: f32 = f32::NEG_INFINITY;
/// Neighbouring source pixels further apart than this after the shift leave a hole between
/// them (a disocclusion) instead of being stretched over it.
const MAX_STRETCH: f32 = 2.0;

// floor/ceil without libm calls (baseline x86-64 has no SSE4.1 rounding instruction).
#[inline]
fn floor_i32(v: f32) -> i32 {
    let i = v as i32;
    if (i as f32) > v {
        i - 1
    } else {
        i
    }
}

#[inline]
fn ceil_i32(v: f32) -> i32 {
    let i = v as i32;
    i + i32::from((i as f32) < v)
}

/// Warps one row for one eye: `disp` is the disparity of each source pixel in pixels
/// (positive = in front of the screen), and the eye shifts each pixel by `sign * disp`
/// (+0.5 left eye, -0.5 right eye). `tdisp` is scratch of the row's length.
pub fn warp_row(src: &[u8], disp: &[f32], sign: f32, tdisp: &mut [f32], dst: &mut [u8]) {
    let w = src.len();
    assert!(disp.len() == w && tdisp.len() == w && dst.len() == w);
    if w == 0 {
        return;
    }
    splat(disp, sign, tdisp);
    sample(src, tdisp, sign, dst);
}

/// Step 1: forward-splat the disparity onto the eye's pixels with a z-buffer (larger
/// disparity = nearer wins); pixels nothing lands on stay [`HOLE`].
fn splat(disp: &[f32], sign: f32, tdisp: &mut [f32]) {
    let w = disp.len();
    tdisp.fill(HOLE);
    let wi = w as i32;
    let mut d0 = disp[0];
    let mut p0 = sign * d0;
    for x in 0..w {
        let (d1, p1) = if x + 1 < w {
            let d1 = disp[x + 1];
            (d1, (x + 1) as f32 + sign * d1)
        } else {
            (d0, p0 + 1.0)
        };
        let span = p1 - p0;
        if span > 0.0 && span <= MAX_STRETCH {
            // A continuous surface: interpolate onto the integer positions in [p0, p1),
            // at most two of them.
            let slope = (d1 - d0) / span;
            let t0 = ceil_i32(p0);
            let dt0 = d0 + (t0 as f32 - p0) * slope;
            for (t, d) in [(t0, dt0), (t0 + 1, dt0 + slope)] {
                if t >= 0 && t < wi && (t as f32) < p1 {
                    let slot = &mut tdisp[t as usize];
                    *slot = slot.max(d);
                }
            }
        } else {
            // A fold (occlusion) or a tear (disocclusion): the pixel covers its nearest slot.
            let t = floor_i32(p0 + 0.5);
            if (0..wi).contains(&t) {
                let slot = &mut tdisp[t as usize];
                *slot = slot.max(d0);
            }
        }
        d0 = d1;
        p0 = p1;
    }
}

/// Steps 2 and 3: sample the source where something landed, then fill the holes.
fn sample(src: &[u8], tdisp: &[f32], sign: f32, dst: &mut [u8]) {
    let w = src.len();
    // 2. Sample the source at t - s(t), linearly interpolated, where something landed.
    //    In 8-bit fixed point: float-to-int conversions with saturation are the slow part.
    let max_fx = ((w - 1) as i32) << 8;
    let shift = -sign * 256.0;
    for (t, (out, &d)) in dst.iter_mut().zip(tdisp.iter()).enumerate() {
        if d == HOLE {
            continue;
        }
        let sx = (((t as i32) << 8) + (d * shift) as i32).clamp(0, max_fx);
        let i = (sx >> 8) as usize;
        let f = sx & 255;
        let a = i32::from(src[i]);
        let b = i32::from(src[(i + 1).min(w - 1)]);
        *out = ((a * 256 + (b - a) * f + 128) >> 8) as u8;
    }
    // 3. Fill each hole (a disocclusion, only ever next to a depth edge, as wide as the
    //    disparity step) from its farther side: the background continues into it.
    let mut x = 0;
    while x < w {
        if tdisp[x] != HOLE {
            x += 1;
            continue;
        }
        let start = x;
        while x < w && tdisp[x] == HOLE {
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

/// Precomputed bilinear sampling positions from a `src_w` x `src_h` grid to `dst_w` x `dst_h`
/// (pixel centres aligned, as image scalers do).
#[derive(Debug, Clone)]
struct ResampleMap {
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    xs: Vec<(u32, u32, f32)>,
    ys: Vec<(u32, u32, f32)>,
}

impl ResampleMap {
    fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        fn axis(src: usize, dst: usize) -> Vec<(u32, u32, f32)> {
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
        let src_w = src_w.max(1);
        let src_h = src_h.max(1);
        Self {
            src_w,
            src_h,
            dst_w,
            xs: axis(src_w, dst_w),
            ys: axis(src_h, dst_h),
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
fn shrink_row(src: &[u8], dst: &mut [u8]) {
    let (n, m) = (src.len(), dst.len());
    for (i, o) in dst.iter_mut().enumerate() {
        let a = i * n / m;
        let b = ((i + 1) * n / m).max(a + 1);
        let sum: u32 = src[a..b].iter().map(|&v| v as u32).sum();
        *o = ((sum + (b - a) as u32 / 2) / (b - a) as u32) as u8;
    }
}

/// Left-over-right full views -> half side by side (each view squeezed to half width).
fn squeeze_sbs(views: &Yuv420, out: &mut Yuv420) {
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
                shrink_row(l, ol);
                shrink_row(r, or);
            });
    }
}

/// Left-over-right full views -> half top-bottom (each view squeezed to half height).
fn squeeze_tb(views: &Yuv420, out: &mut Yuv420) {
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
                    let mut sum = 0u32;
                    for r in a..b {
                        sum += view[r * pw + x] as u32;
                    }
                    *px = ((sum + (b - a) as u32 / 2) / (b - a) as u32) as u8;
                }
            });
        }
    }
}

/// Dubois' least-squares red-cyan matrices (rows: output R, G, B; columns: input R, G, B),
/// for linear-ish RGB.
const DUBOIS_LEFT: [[f32; 3]; 3] = [
    [0.456, 0.500, 0.176],
    [-0.040, -0.038, -0.016],
    [-0.015, -0.021, -0.005],
];
const DUBOIS_RIGHT: [[f32; 3]; 3] = [
    [-0.043, -0.088, -0.002],
    [0.378, 0.734, -0.018],
    [-0.072, -0.113, 1.226],
];

fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [f32; 3] {
    // BT.601 limited range.
    let c = (y as f32 - 16.0) * 1.164;
    let d = u as f32 - 128.0;
    let e = v as f32 - 128.0;
    [
        (c + 1.596 * e) / 255.0,
        (c - 0.392 * d - 0.813 * e) / 255.0,
        (c + 2.017 * d) / 255.0,
    ]
}

fn rgb_to_yuv(rgb: [f32; 3]) -> (f32, f32, f32) {
    let [r, g, b] = rgb.map(|v| v.clamp(0.0, 1.0) * 255.0);
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    (y, u, v)
}

fn mat(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// Left-over-right full views -> red-cyan anaglyph (Dubois).
fn anaglyph(views: &Yuv420, out: &mut Yuv420) {
    let (w, h) = (out.width, out.height);
    let (cw, ch) = (w / 2, h / 2);
    let (vy, vu, vv) = views.planes();
    let (oy, ou, ov) = out.planes_mut();
    // One task per chroma row: two luma rows and their shared chroma row.
    oy.par_chunks_mut(2 * w)
        .zip(ou.par_chunks_mut(cw).zip(ov.par_chunks_mut(cw)))
        .enumerate()
        .for_each(|(cy, (oy2, (ou, ov)))| {
            for cx in 0..cw {
                let (mut su, mut sv) = (0.0f32, 0.0f32);
                for dy in 0..2 {
                    for dx in 0..2 {
                        let (x, y) = (2 * cx + dx, 2 * cy + dy);
                        let px = |view: usize| {
                            let yv = vy[view * w * h + y * w + x];
                            let uv = vu[view * cw * ch + cy * cw + cx];
                            let vv = vv[view * cw * ch + cy * cw + cx];
                            yuv_to_rgb(yv, uv, vv)
                        };
                        let l = mat(&DUBOIS_LEFT, px(0));
                        let r = mat(&DUBOIS_RIGHT, px(1));
                        let (yo, uo, vo) = rgb_to_yuv([l[0] + r[0], l[1] + r[1], l[2] + r[2]]);
                        oy2[dy * w + x] = (yo + 0.5) as u8;
                        su += uo;
                        sv += vo;
                    }
                }
                ou[cx] = (su / 4.0 + 0.5) as u8;
                ov[cx] = (sv / 4.0 + 0.5) as u8;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_depth_at_convergence_is_identity() {
        let src: Vec<u8> = (0..64).map(|i| (i * 3) as u8).collect();
        let disp = vec![0.0; 64];
        let mut scratch = vec![0.0; 64];
        let mut out = vec![0; 64];
        warp_row(&src, &disp, 0.5, &mut scratch, &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn constant_shift_moves_content_by_half_the_disparity() {
        let src: Vec<u8> = (0..64).map(|i| (i * 3) as u8).collect();
        let disp = vec![4.0; 64];
        let mut scratch = vec![0.0; 64];
        let mut out = vec![0; 64];
        // disparity 4 px: the left eye sees the content 2 px to the right.
        warp_row(&src, &disp, 0.5, &mut scratch, &mut out);
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
        let mut scratch = vec![0.0; w];
        let mut out = vec![0; w];
        // Object disparity 10 px (shift 5 in the left eye), background 0.
        warp_row(&src, &disp, 0.5, &mut scratch, &mut out);
        // The object moved right by 5 px; the 5 px it uncovered show background.
        let object: Vec<usize> = (0..w).filter(|&x| out[x] == 200).collect();
        assert_eq!(object.first(), Some(&45));
        assert_eq!(object.last(), Some(&64));
        assert!(out[40..45].iter().all(|&v| v == 50), "{:?}", &out[38..66]);
    }
}
