//! The renderer on frames made here: disparity as configured, no holes at depth edges,
//! holes filled from the background, and what each knob and layout does.

use parallax_core::model::{ConversionSettings, StereoMode, SyntheticView};
use parallax_engine::stereo::{
    output_size, warp_row, DepthMap, StereoParams, StereoRenderer, Yuv420,
};

/// A random texture, blurred a little along rows so sub-pixel shifts are measurable.
fn texture(w: usize, h: usize, seed: u64) -> Yuv420 {
    let mut f = Yuv420::new(w, h);
    let mut s = seed;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    let (y, u, v) = f.planes_mut();
    let raw: Vec<u32> = (0..w * h).map(|_| 16 + rnd() % 220).collect();
    for r in 0..h {
        for x in 0..w {
            let i = |dx: isize| raw[r * w + (x as isize + dx).clamp(0, w as isize - 1) as usize];
            y[r * w + x] = ((i(-2) + 2 * i(-1) + 3 * i(0) + 2 * i(1) + i(2)) / 9) as u8;
        }
    }
    u.fill(100);
    v.fill(150);
    f
}

/// The shift `s` (sub-pixel) that best maps `r` onto `l`: `l[x] ≈ r[x - s]`.
fn measure_shift(l: &[u8], r: &[u8], margin: usize, max: i32) -> f64 {
    let w = l.len();
    let cost = |s: i32| -> f64 {
        (margin..w - margin)
            .map(|x| {
                let d = l[x] as f64 - r[(x as i32 - s) as usize] as f64;
                d * d
            })
            .sum()
    };
    let best = (-max..=max)
        .min_by(|a, b| cost(*a).total_cmp(&cost(*b)))
        .unwrap();
    let (cm, c0, cp) = (cost(best - 1), cost(best), cost(best + 1));
    let den = cm - 2.0 * c0 + cp;
    best as f64
        + if den > 0.0 {
            0.5 * (cm - cp) / den
        } else {
            0.0
        }
}

#[test]
fn planes_at_known_depths_are_shifted_by_the_configured_disparity_within_half_a_pixel() {
    let (w, h) = (320, 96);
    let src = texture(w, h, 7);
    // Three planes (bands of rows) at known normalised depths, on a half-resolution map so
    // the upsampling is exercised too.
    let planes = [0.1f32, 0.5, 0.95];
    let mut depth = DepthMap::new(w / 2, h / 2);
    for (i, z) in depth.data.iter_mut().enumerate() {
        *z = planes[(i / (w / 2)) / (h / 2 / 3)];
    }
    let mut checked = 0;
    for params in [
        StereoParams {
            divergence: 5.0,
            convergence: 0.4,
            ..StereoParams::default()
        },
        StereoParams {
            divergence: 2.0,
            convergence: 0.5,
            ..StereoParams::default()
        },
        StereoParams {
            divergence: 3.3,
            convergence: 0.0,
            ..StereoParams::default()
        },
    ] {
        let mut r = StereoRenderer::new(w, h, w / 2, h / 2);
        let (ow, oh) = output_size(StereoMode::FullSbs, w, h);
        let mut out = Yuv420::new(ow, oh);
        r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
        let (y, _, _) = out.planes();
        for (band, &z) in planes.iter().enumerate() {
            let want = params.disparity_px(z, w) as f64;
            // Rows well inside the band.
            let rows = band * h / 3 + 6..(band + 1) * h / 3 - 6;
            for row in rows {
                let line = &y[row * ow..(row + 1) * ow];
                let (left, right) = line.split_at(w);
                let got = measure_shift(left, right, 24, 20);
                assert!(
                    (got - want).abs() <= 0.5,
                    "{params:?} plane z={z} row {row}: measured {got:.3} px, configured {want:.3} px"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100);
}

#[test]
fn strong_depth_edges_leave_no_holes_in_any_layout() {
    let (w, h) = (128, 64);
    let mut src = Yuv420::<u8>::new(w, h);
    {
        let (y, u, v) = src.planes_mut();
        y.fill(200);
        u.fill(90);
        v.fill(160);
    }
    // 8x8 blocks at depth 0 or 1: edges everywhere, the largest allowed divergence.
    let mut depth = DepthMap::new(w, h);
    for (i, z) in depth.data.iter_mut().enumerate() {
        let (x, y) = (i % w, i / w);
        *z = if (x / 8 * 7 + y / 8 * 3) % 5 < 2 {
            1.0
        } else {
            0.0
        };
    }
    let params = StereoParams {
        divergence: 10.0,
        convergence: 0.5,
        ..StereoParams::default()
    };
    let mut r = StereoRenderer::new(w, h, w, h);
    for mode in [
        StereoMode::FullSbs,
        StereoMode::FullTb,
        StereoMode::HalfSbs,
        StereoMode::HalfTb,
    ] {
        let (ow, oh) = output_size(mode, w, h);
        let mut out = Yuv420 {
            width: ow,
            height: oh,
            data: vec![0; Yuv420::byte_len(ow, oh)],
        };
        r.render(&src, &depth, params, mode, &mut out);
        let (y, u, v) = out.planes();
        assert!(
            y.iter().all(|&p| p == 200),
            "{mode}: a luma hole or a wrong sample"
        );
        assert!(u.iter().all(|&p| p == 90), "{mode}: a chroma hole");
        assert!(v.iter().all(|&p| p == 160), "{mode}: a chroma hole");
    }
}

#[test]
fn a_hole_is_filled_from_the_background_and_no_wider_than_the_disparity_step() {
    // A textured far background with a near object; the uncovered strip must show
    // background colour and be exactly as wide as the disparity difference.
    let w = 200;
    let src: Vec<u8> = (0..w)
        .map(|x| {
            if (80..120).contains(&x) {
                250
            } else {
                20 + (x % 7) as u8
            }
        })
        .collect();
    for (sign, k) in [(0.5f32, 16.0f32), (-0.5, 16.0), (0.5, 6.0), (-0.5, 10.0)] {
        let disp: Vec<f32> = (0..w)
            .map(|x| if (80..120).contains(&x) { k } else { 0.0 })
            .collect();
        let mut out = vec![0u8; w];
        warp_row(&src, &disp, sign, &mut out);
        let object: Vec<usize> = (0..w).filter(|&x| out[x] == 250).collect();
        let shift = (sign * k).round() as i32;
        assert_eq!(object.len(), 40, "the object keeps its width");
        assert_eq!(object[0] as i32, 80 + shift);
        // Everything else is background-coloured (no object smear).
        assert!((0..w).filter(|x| !object.contains(x)).all(|x| out[x] < 30));
    }
}

/// The knobs and layouts of the renderer: cross-eyed layouts are the side-by-side ones with
/// the views swapped; RGB-D is the source beside its depth; a synthetic view leaves one eye
/// the untouched source and moves the other by the whole disparity; the IPD offset adds its
/// parallax to every pixel; the screen border brings parallax to zero at the frame's edges.
#[test]
fn knobs_and_layouts_do_what_they_say() {
    let (w, h) = (320, 96);
    let src = texture(w, h, 9);
    // Two planes: the top half far (0.2), the bottom half near (0.9).
    let mut depth = DepthMap::new(w / 2, h / 2);
    for (i, z) in depth.data.iter_mut().enumerate() {
        *z = if i / (w / 2) < h / 4 { 0.2 } else { 0.9 };
    }
    let base = StereoParams {
        divergence: 4.0,
        convergence: 0.5,
        ..StereoParams::default()
    };
    let render = |params: StereoParams, mode: StereoMode| {
        let (ow, oh) = output_size(mode, w, h);
        let mut out = Yuv420::new(ow, oh);
        StereoRenderer::new(w, h, w / 2, h / 2).render(&src, &depth, params, mode, &mut out);
        out
    };
    let halves = |f: &Yuv420, row: usize| {
        let ow = f.width;
        let line = &f.planes().0[row * ow..(row + 1) * ow];
        (line[..ow / 2].to_vec(), line[ow / 2..].to_vec())
    };

    // Cross-eyed = side by side with the halves swapped, full and half.
    for (sbs, cross) in [
        (StereoMode::FullSbs, StereoMode::FullCross),
        (StereoMode::HalfSbs, StereoMode::HalfCross),
    ] {
        let (a, b) = (render(base, sbs), render(base, cross));
        for row in [5, 70] {
            let (l, r) = halves(&a, row);
            let (cl, cr) = halves(&b, row);
            assert!(l == cr && r == cl, "{cross} row {row}");
        }
    }

    // RGB-D: the source, then its depth as grey (16 + 219 z).
    let rgbd = render(base, StereoMode::Rgbd);
    for row in [5, 70] {
        let (colour, z) = halves(&rgbd, row);
        assert_eq!(colour, src.planes().0[row * w..(row + 1) * w]);
        let want: f32 = if row < h / 2 {
            16.0 + 219.0 * 0.2
        } else {
            16.0 + 219.0 * 0.9
        };
        assert!(
            z[w / 2].abs_diff(want.round() as u8) <= 1,
            "row {row}: {}",
            z[w / 2]
        );
    }

    // A synthetic right view: the left eye is the source, the right carries all the shift.
    let synthetic = StereoParams {
        synthetic: SyntheticView::Left,
        ..base
    };
    let out = render(synthetic, StereoMode::FullSbs);
    for row in [10, 80] {
        let (l, r) = halves(&out, row);
        assert_eq!(l, src.planes().0[row * w..(row + 1) * w], "row {row}");
        let z = if row < h / 2 { 0.2 } else { 0.9 };
        let want = f64::from(base.disparity_px(z, w));
        let got = measure_shift(&l, &r, 24, 20);
        assert!((got - want).abs() <= 0.5, "row {row}: {got} vs {want}");
    }

    // The IPD offset: every pixel 2 % of the width further behind the screen.
    let offset = StereoParams {
        ipd_offset: 2.0,
        ..base
    };
    let (plain, moved) = (
        render(base, StereoMode::FullSbs),
        render(offset, StereoMode::FullSbs),
    );
    for row in [10, 80] {
        let (l, r) = halves(&plain, row);
        let (ol, or) = halves(&moved, row);
        let delta = measure_shift(&ol, &or, 24, 20) - measure_shift(&l, &r, 24, 20);
        assert!((delta + 0.02 * w as f64).abs() <= 0.5, "row {row}: {delta}");
    }

    // The screen border: the near plane's parallax fades to zero at both edges.
    let border = StereoParams {
        preserve_border: true,
        ..base
    };
    let out = render(border, StereoMode::FullSbs);
    let (l, r) = halves(&out, 80);
    assert_eq!(l[0], r[0], "the left edge sits on the screen");
    assert_eq!(l[w - 1], r[w - 1], "the right edge sits on the screen");
    let middle = measure_shift(&l[w / 4..3 * w / 4], &r[w / 4..3 * w / 4], 24, 20);
    let want = f64::from(base.disparity_px(0.9, w));
    assert!(
        (middle - want).abs() <= 0.5,
        "inside, the near plane keeps its parallax: {middle} vs {want}"
    );

    // Settings are refused with a reason.
    let mut s = ConversionSettings {
        foreground_scale: 4.0,
        ..ConversionSettings::default()
    };
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("foreground_scale"));
    s.foreground_scale = 0.0;
    s.max_output_width = Some(101);
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("max_output_width"));
}
