//! Red-cyan anaglyphs from the full-resolution left and right views, mixed in RGB (4:4:4:
//! each of the four luma pixels of a chroma sample is converted and mixed on its own) with
//! the frames' own YUV matrix, then back to 4:2:0.

use parallax_core::model::AnaglyphMethod;
use rayon::prelude::*;

use super::{Sample, Yuv420};
use crate::colour::Matrix;

/// A 3x3 matrix: rows are the output's R, G, B; columns the input's.
type Mat3 = [[f32; 3]; 3];

/// Dubois' least-squares red-cyan matrices, for linear-ish RGB.
const DUBOIS: (Mat3, Mat3) = (
    [
        [0.456, 0.500, 0.176],
        [-0.040, -0.038, -0.016],
        [-0.015, -0.021, -0.005],
    ],
    [
        [-0.043, -0.088, -0.002],
        [0.378, 0.734, -0.018],
        [-0.072, -0.113, 1.226],
    ],
);

const ZERO: [f32; 3] = [0.0; 3];
const CYAN: Mat3 = [ZERO, [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// The two matrices of `method`, the luma weights taken from `matrix`, and whether the
/// red channel gets Wimmer's gamma.
fn matrices(method: AnaglyphMethod, matrix: Matrix) -> (Mat3, Mat3, bool) {
    let luma = matrix.luma_weights();
    match method {
        AnaglyphMethod::Dubois => (DUBOIS.0, DUBOIS.1, false),
        AnaglyphMethod::Color => ([[1.0, 0.0, 0.0], ZERO, ZERO], CYAN, false),
        AnaglyphMethod::HalfColor => ([luma, ZERO, ZERO], CYAN, false),
        AnaglyphMethod::Gray => ([luma, ZERO, ZERO], [ZERO, luma, luma], false),
        AnaglyphMethod::Wimmer => ([[0.0, 0.7, 0.3], ZERO, ZERO], CYAN, true),
    }
}

fn mat(m: &Mat3, v: [f32; 3]) -> [f32; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// One anaglyph pixel from the left and right views' RGB (0..=1).
fn mix((l, r, gamma): &(Mat3, Mat3, bool), left: [f32; 3], right: [f32; 3]) -> [f32; 3] {
    let (a, b) = (mat(l, left), mat(r, right));
    let mut rgb = [a[0] + b[0], a[1] + b[1], a[2] + b[2]].map(|c| c.clamp(0.0, 1.0));
    if *gamma {
        // Wimmer's optimised method brightens the red channel (gamma 1.5).
        rgb[0] = rgb[0].powf(1.0 / 1.5);
    }
    rgb
}

/// Left-over-right full views -> red-cyan anaglyph by `method`.
pub(super) fn render<T: Sample>(
    views: &Yuv420<T>,
    out: &mut Yuv420<T>,
    matrix: Matrix,
    method: AnaglyphMethod,
) {
    let conv = matrix.to_rgb();
    let mix_with = matrices(method, matrix);
    let (w, h) = (out.width, out.height);
    let (cw, ch) = (w / 2, h / 2);
    let (vy, vu, vv) = views.planes();
    let (oy, ou, ov) = out.planes_mut();
    let k = 1.0 / T::SCALE;
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
                            conv.rgb(yv.into() * k, uv.into() * k, vv.into() * k)
                        };
                        let rgb = mix(&mix_with, px(0), px(1));
                        let (yo, uo, vo) = matrix.from_rgb(rgb);
                        oy2[dy * w + x] = T::from_f32_8bit(yo);
                        su += uo;
                        sv += vo;
                    }
                }
                ou[cx] = T::from_f32_8bit(su / 4.0);
                ov[cx] = T::from_f32_8bit(sv / 4.0);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each method takes red from the left view only and green/blue from the right only: a
    /// red-filtered eye sees the left view, a cyan-filtered eye the right.
    #[test]
    fn every_method_sends_each_view_to_its_filter() {
        let white = [1.0, 1.0, 1.0];
        let black = [0.0, 0.0, 0.0];
        for method in [
            AnaglyphMethod::Dubois,
            AnaglyphMethod::Color,
            AnaglyphMethod::HalfColor,
            AnaglyphMethod::Gray,
            AnaglyphMethod::Wimmer,
        ] {
            let m = matrices(method, Matrix::BT709);
            let left_only = mix(&m, white, black);
            let right_only = mix(&m, black, white);
            assert!(left_only[0] > 0.8, "{method:?}: {left_only:?}");
            assert!(left_only[1] < 0.05 && left_only[2] < 0.05, "{method:?}");
            assert!(right_only[0] < 0.05, "{method:?}: {right_only:?}");
            assert!(right_only[1] > 0.6 && right_only[2] > 0.6, "{method:?}");
        }
        // Gray and half-color see a pure green left view by its luma (BT.709: 0.7152).
        let green = [0.0, 1.0, 0.0];
        let g = mix(&matrices(AnaglyphMethod::Gray, Matrix::BT709), green, black);
        assert!((g[0] - 0.7152).abs() < 1e-4, "{g:?}");
        // Color keeps the left view's red as it is.
        let c = mix(
            &matrices(AnaglyphMethod::Color, Matrix::BT709),
            [0.3, 0.9, 0.9],
            black,
        );
        assert!((c[0] - 0.3).abs() < 1e-6 && c[1] == 0.0);
    }
}
