//! The model's input: YUV 4:2:0 frames turned into RGB at the model's size, normalised as
//! the contract prescribes (RGB / 255, then ImageNet mean and standard deviation), laid out
//! `[3, h, w]`.
//!
//! Luma is resized bilinearly, chroma by nearest neighbour (the model sees colour only
//! coarsely). Each output row: the two source luma rows are blended into one row of floats
//! (a straight loop the compiler vectorises), then every output pixel reads its two taps from
//! that row and its chroma, and is converted. All sampling tables and row buffers are made
//! once per size: preparing a frame allocates nothing. Bands of rows run in parallel on the
//! frame pool.

use rayon::prelude::*;

use super::colour::{Matrix, YuvToRgb};
use super::stereo::{linear_axis, on_frame_pool, Sample, Yuv420};

#[cfg(target_arch = "x86_64")]
mod simd;

/// ImageNet normalisation the contract prescribes.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// `1 / STD`: the per-pixel normalisation multiplies.
const INV_STD: [f32; 3] = [1.0 / STD[0], 1.0 / STD[1], 1.0 / STD[2]];

/// Bands of output rows per frame: one rayon task each.
const BANDS: usize = 16;

/// Turns frames of one size into the model's input at one size.
#[derive(Debug)]
pub struct Preprocessor {
    frame_w: usize,
    frame_h: usize,
    w: usize,
    h: usize,
    /// Per output row: the two source luma rows and the weight of the second.
    luma_y: Vec<(u32, u32, f32)>,
    /// Per output row: the source chroma row.
    chroma_y: Vec<u32>,
    taps: Taps,
    rows_per_band: usize,
    bands: Vec<RowScratch>,
}

/// Per output column, as separate arrays (so eight load at once): the two luma taps, the
/// weight of the second, and the chroma column.
#[derive(Debug)]
struct Taps {
    x0: Vec<i32>,
    x1: Vec<i32>,
    fx: Vec<f32>,
    cx: Vec<i32>,
    /// Every luma tap is below this (the source width).
    luma_len: usize,
    /// Every chroma tap is below this (the source's chroma width).
    chroma_len: usize,
    /// The source's YUV to RGB conversion.
    conv: YuvToRgb,
}

/// One band's row buffers, at the source's width.
#[derive(Debug, Clone)]
struct RowScratch {
    /// The output row's luma, blended vertically.
    luma: Vec<f32>,
    u: Vec<f32>,
    v: Vec<f32>,
}

impl Preprocessor {
    /// For `frame_w` x `frame_h` frames (even sizes) into `w` x `h` model input, BT.601.
    pub fn new(frame_w: usize, frame_h: usize, w: usize, h: usize) -> Self {
        Self::with_matrix(frame_w, frame_h, w, h, Matrix::BT601)
    }

    /// [`Preprocessor::new`] for frames in `matrix`'s YUV.
    pub fn with_matrix(frame_w: usize, frame_h: usize, w: usize, h: usize, matrix: Matrix) -> Self {
        assert!(
            frame_w >= 2 && frame_h >= 2 && w > 0 && h > 0,
            "empty sizes"
        );
        fn nearest(src: usize, dst: usize) -> Vec<u32> {
            (0..dst)
                .map(|i| {
                    (((i as f32 + 0.5) * src as f32 / dst as f32) as usize).min(src - 1) as u32
                })
                .collect()
        }
        let xs = linear_axis(frame_w, w);
        let taps = Taps {
            x0: xs.iter().map(|t| t.0 as i32).collect(),
            x1: xs.iter().map(|t| t.1 as i32).collect(),
            fx: xs.iter().map(|t| t.2).collect(),
            cx: nearest(frame_w / 2, w).iter().map(|&c| c as i32).collect(),
            luma_len: frame_w,
            chroma_len: frame_w / 2,
            conv: matrix.to_rgb(),
        };
        // The AVX2 sampling gathers at these taps without further checks.
        assert!(taps
            .x0
            .iter()
            .chain(&taps.x1)
            .all(|&x| (x as usize) < frame_w));
        assert!(taps.cx.iter().all(|&x| (x as usize) < frame_w / 2));
        let rows_per_band = h.div_ceil(BANDS.min(h));
        let scratch = RowScratch {
            luma: vec![0.0; frame_w],
            u: vec![0.0; frame_w / 2],
            v: vec![0.0; frame_w / 2],
        };
        Self {
            frame_w,
            frame_h,
            w,
            h,
            luma_y: linear_axis(frame_h, h),
            chroma_y: nearest(frame_h / 2, h),
            taps,
            rows_per_band,
            bands: vec![scratch; h.div_ceil(rows_per_band)],
        }
    }

    /// Writes one frame as `[3,h,w]` into `out` (length `3*h*w`), in parallel on the frame
    /// pool.
    pub fn fill<T: Sample>(&mut self, frame: &Yuv420<T>, out: &mut [f32]) {
        on_frame_pool(|| self.fill_here(frame, out));
    }

    fn fill_here<T: Sample>(&mut self, frame: &Yuv420<T>, out: &mut [f32]) {
        assert_eq!(
            (frame.width, frame.height),
            (self.frame_w, self.frame_h),
            "frame size"
        );
        let (w, h) = (self.w, self.h);
        assert_eq!(out.len(), 3 * w * h, "model input size");
        let Self {
            frame_w: fw,
            luma_y,
            chroma_y,
            taps,
            rows_per_band: per,
            bands,
            ..
        } = self;
        let (fw, per) = (*fw, *per);
        let planes = frame.planes();
        let (r, rest) = out.split_at_mut(w * h);
        let (g, b) = rest.split_at_mut(w * h);
        bands
            .par_iter_mut()
            .zip(r.par_chunks_mut(per * w))
            .zip(g.par_chunks_mut(per * w))
            .zip(b.par_chunks_mut(per * w))
            .enumerate()
            .for_each(|(band, (((s, r), g), b))| {
                let rows = r.chunks_mut(w).zip(g.chunks_mut(w)).zip(b.chunks_mut(w));
                for (i, ((r, g), b)) in rows.enumerate() {
                    let src = row_source(luma_y, chroma_y, planes, fw, band * per + i);
                    #[cfg(target_arch = "x86_64")]
                    let done = src.as_u8().is_some_and(|src| simd::widen(&src, s));
                    #[cfg(not(target_arch = "x86_64"))]
                    let done = false;
                    if !done {
                        widen(&src, s);
                    }
                    #[cfg(target_arch = "x86_64")]
                    if simd::sample_convert(taps, s, [&mut *r, &mut *g, &mut *b]) {
                        continue;
                    }
                    sample_convert(taps, s, [r, g, b]);
                }
            });
    }
}

/// The source rows one output row reads.
struct RowSource<'a, T = u8> {
    /// The two luma rows around it, and the weight of the second.
    luma: [&'a [T]; 2],
    fy: f32,
    /// Its chroma rows.
    u: &'a [T],
    v: &'a [T],
}

impl<'a, T: Sample> RowSource<'a, T> {
    /// The same rows as 8-bit samples, when they are.
    #[cfg(target_arch = "x86_64")]
    fn as_u8(&self) -> Option<RowSource<'a, u8>> {
        Some(RowSource {
            luma: [T::as_u8(self.luma[0])?, T::as_u8(self.luma[1])?],
            fy: self.fy,
            u: T::as_u8(self.u)?,
            v: T::as_u8(self.v)?,
        })
    }
}

/// The source rows of output row `y`, from the frame's planes (`fw` wide).
fn row_source<'a, T>(
    luma_y: &[(u32, u32, f32)],
    chroma_y: &[u32],
    (py, pu, pv): (&'a [T], &'a [T], &'a [T]),
    fw: usize,
    y: usize,
) -> RowSource<'a, T> {
    let (y0, y1, fy) = luma_y[y];
    let cw = fw / 2;
    let c = chroma_y[y] as usize * cw;
    RowSource {
        luma: [&py[y0 as usize * fw..][..fw], &py[y1 as usize * fw..][..fw]],
        fy,
        u: &pu[c..c + cw],
        v: &pv[c..c + cw],
    }
}

/// The row's luma blended vertically, and its chroma, as floats in 8-bit levels (10-bit
/// levels keep their fraction), in loops the compiler vectorises; [`simd::widen`] compiles
/// this same code for AVX2.
#[inline(always)]
fn widen<T: Sample>(src: &RowSource<'_, T>, s: &mut RowScratch) {
    let k = 1.0 / T::SCALE;
    let [row0, row1] = src.luma;
    for ((t, &a), &b) in s.luma.iter_mut().zip(row0).zip(row1) {
        let a: f32 = a.into();
        *t = (a + (b.into() - a) * src.fy) * k;
    }
    let chroma = s.u.iter_mut().zip(s.v.iter_mut());
    for ((ou, ov), (&u, &v)) in chroma.zip(src.u.iter().zip(src.v)) {
        *ou = u.into() * k;
        *ov = v.into() * k;
    }
}

/// One output row from its blended luma and its chroma: the horizontal sampling, then the
/// conversion to normalised RGB (in place, a loop the compiler vectorises).
fn sample_convert(taps: &Taps, s: &RowScratch, [r, g, b]: [&mut [f32]; 3]) {
    for (x, ((r, g), b)) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()).enumerate() {
        let (a, c) = (s.luma[taps.x0[x] as usize], s.luma[taps.x1[x] as usize]);
        let cx = taps.cx[x] as usize;
        *r = a + (c - a) * taps.fx[x];
        *g = s.u[cx];
        *b = s.v[cx];
    }
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        [*r, *g, *b] = to_input(&taps.conv, *r, *g, *b);
    }
}

/// One pixel's model input (normalised R, G, B) from its Y, U, V.
#[inline(always)]
fn to_input(conv: &YuvToRgb, y: f32, u: f32, v: f32) -> [f32; 3] {
    let [rr, gg, bb] = conv.rgb(y, u, v);
    [
        (rr - MEAN[0]) * INV_STD[0],
        (gg - MEAN[1]) * INV_STD[1],
        (bb - MEAN[2]) * INV_STD[2],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain per-pixel definition: bilinear luma (horizontal, then vertical), nearest
    /// chroma, then the conversion.
    fn reference(frame: &Yuv420, w: usize, h: usize) -> Vec<f32> {
        let p = Preprocessor::new(frame.width, frame.height, w, h);
        let (fw, cw) = (frame.width, frame.width / 2);
        let (py, pu, pv) = frame.planes();
        let mut out = vec![0.0; 3 * w * h];
        for y in 0..h {
            let (y0, y1, fy) = p.luma_y[y];
            let crow = p.chroma_y[y] as usize * cw;
            for x in 0..w {
                let (x0, x1) = (p.taps.x0[x] as usize, p.taps.x1[x] as usize);
                let fx = p.taps.fx[x];
                let at = |row: u32, x: usize| f32::from(py[row as usize * fw + x]);
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
                let bot = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
                let ci = crow + p.taps.cx[x] as usize;
                let rgb = to_input(
                    &Matrix::BT601.to_rgb(),
                    top + (bot - top) * fy,
                    f32::from(pu[ci]),
                    f32::from(pv[ci]),
                );
                for (c, v) in rgb.into_iter().enumerate() {
                    out[(c * h + y) * w + x] = v;
                }
            }
        }
        out
    }

    fn noise_frame(w: usize, h: usize, seed: u64) -> Yuv420 {
        let mut f = Yuv420::new(w, h);
        let mut state = seed;
        for p in &mut f.data {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *p = (state >> 24) as u8;
        }
        f
    }

    #[test]
    fn matches_the_per_pixel_definition_when_shrinking_and_growing() {
        // Odd model sizes, fewer rows than bands, row lengths that are not multiples of 8,
        // and a shrink far enough that eight outputs' taps spread beyond any window.
        for (fw, fh, w, h) in [
            (1280, 720, 924, 518),
            (64, 48, 37, 11),
            (32, 18, 70, 40),
            (640, 360, 70, 40),
        ] {
            let frame = noise_frame(fw, fh, (fw * fh) as u64);
            let want = reference(&frame, w, h);
            let mut p = Preprocessor::new(fw, fh, w, h);
            let mut got = vec![f32::NAN; 3 * w * h];
            p.fill(&frame, &mut got);
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // Blending vertically first rounds differently: a few float ulps of a value
            // around 1, and never NaN (every output written).
            assert!(worst < 1e-4, "{fw}x{fh} -> {w}x{h}: off by {worst}");
        }
    }

    #[test]
    fn the_scalar_and_the_simd_rows_agree() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
        let frame = noise_frame(1280, 720, 7);
        let (w, h) = (924, 518);
        let mut p = Preprocessor::new(1280, 720, w, h);
        let mut fast = vec![0.0; 3 * w * h];
        p.fill(&frame, &mut fast);
        // The same rows through the scalar code alone.
        let mut slow = vec![0.0; 3 * w * h];
        let mut s = p.bands[0].clone();
        let (r, rest) = slow.split_at_mut(w * h);
        let (g, b) = rest.split_at_mut(w * h);
        for y in 0..h {
            let src = row_source(&p.luma_y, &p.chroma_y, frame.planes(), 1280, y);
            widen(&src, &mut s);
            let row = y * w..(y + 1) * w;
            sample_convert(
                &p.taps,
                &s,
                [&mut r[row.clone()], &mut g[row.clone()], &mut b[row]],
            );
        }
        assert!(fast == slow, "the AVX2 rows differ from the scalar ones");
    }

    /// The model sees the source's colours: BT.709 red read with BT.709's matrix is red, and
    /// read as BT.601 (what every source was taken for before) it is not.
    #[test]
    fn the_sources_matrix_gives_the_models_rgb() {
        let (y, u, v) = Matrix::BT709.from_rgb([1.0, 0.0, 0.0]);
        let mut frame = Yuv420::new(8, 8);
        {
            let (py, pu, pv) = frame.planes_mut();
            py.fill(y.round() as u8);
            pu.fill(u.round() as u8);
            pv.fill(v.round() as u8);
        }
        let rgb = |m: Matrix| {
            let mut out = vec![0.0; 3 * 4 * 4];
            Preprocessor::with_matrix(8, 8, 4, 4, m).fill(&frame, &mut out);
            [0, 1, 2].map(|c| out[c * 16] * STD[c] + MEAN[c])
        };
        let right = rgb(Matrix::BT709);
        assert!(
            (right[0] - 1.0).abs() < 0.02 && right[1] < 0.02 && right[2] < 0.02,
            "{right:?}"
        );
        let wrong = rgb(Matrix::BT601);
        assert!(
            right[0] - wrong[0] > 0.05,
            "BT.601 reads BT.709 red darker: {wrong:?}"
        );
    }
}
