//! The output layouts: each layout's frame size, VR180's projection (made by the encoder),
//! and the layouts made from the two full views: half side by side (or cross-eyed) and half
//! top-bottom.

use parallax_core::model::StereoMode;
use rayon::prelude::*;

use super::{Sample, Yuv420};

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
