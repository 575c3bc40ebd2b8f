//! The warp's tests: the fixed-point kernel against an f32 reference, hole filling, rounding.

use super::super::test_rows::rng;
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
