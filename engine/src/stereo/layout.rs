//! Layouts made from the two full views: half side by side (or cross-eyed) and half
//! top-bottom.

use rayon::prelude::*;

use super::{Sample, Yuv420};

/// Box-resamples `src` into `dst` (any lengths).
pub(super) fn shrink_row<T: Sample>(src: &[T], dst: &mut [T]) {
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
pub(super) fn squeeze_sbs<T: Sample>(views: &Yuv420<T>, out: &mut Yuv420<T>, cross: bool) {
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
pub(super) fn squeeze_tb<T: Sample>(views: &Yuv420<T>, out: &mut Yuv420<T>) {
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
