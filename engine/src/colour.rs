//! The colour maths of every RGB step: YUV to RGB and back with the source's matrix
//! (BT.601, BT.709, BT.2020), on the limited-range 8-bit YUV the decoder hands over (full-range
//! sources are converted to limited range there and tagged so).

/// A YUV matrix, by its luma weights of red and blue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matrix {
    kr: f32,
    kb: f32,
    /// ffmpeg's name of it (`-colorspace`).
    pub name: &'static str,
}

impl Matrix {
    /// ITU-R BT.601 (standard definition).
    pub const BT601: Matrix = Matrix {
        kr: 0.299,
        kb: 0.114,
        name: "smpte170m",
    };
    /// ITU-R BT.709 (high definition).
    pub const BT709: Matrix = Matrix {
        kr: 0.2126,
        kb: 0.0722,
        name: "bt709",
    };
    /// ITU-R BT.2020 non-constant luminance (UHD, HDR).
    pub const BT2020: Matrix = Matrix {
        kr: 0.2627,
        kb: 0.0593,
        name: "bt2020nc",
    };

    /// The matrix ffmpeg's `color_space` names, or, when the stream does not say, the one
    /// players assume for its height (BT.709 from 720 rows up, BT.601 below).
    pub fn from_tag(color_space: Option<&str>, height: usize) -> Matrix {
        match color_space {
            Some("bt709") => Matrix::BT709,
            Some("bt2020nc" | "bt2020c") => Matrix::BT2020,
            Some("smpte170m" | "bt470bg" | "fcc") => Matrix::BT601,
            _ if height >= 720 => Matrix::BT709,
            _ => Matrix::BT601,
        }
    }

    fn kg(self) -> f32 {
        1.0 - self.kr - self.kb
    }

    /// The luma weights of R, G and B.
    pub fn luma_weights(self) -> [f32; 3] {
        [self.kr, self.kg(), self.kb]
    }

    /// The gains from limited-range 8-bit YUV to RGB in 0..=1.
    pub fn to_rgb(self) -> YuvToRgb {
        // Y' = (Y - 16) / 219, Pb = (U - 128) / 224; the chroma gains here act on (C - 128) / 255.
        let c = 255.0 / 224.0;
        YuvToRgb {
            y_gain: 1.0 / 219.0,
            c_gain: 1.0 / 255.0,
            r_from_v: 2.0 * (1.0 - self.kr) * c,
            g_from_u: 2.0 * self.kb * (1.0 - self.kb) / self.kg() * c,
            g_from_v: 2.0 * self.kr * (1.0 - self.kr) / self.kg() * c,
            b_from_u: 2.0 * (1.0 - self.kb) * c,
        }
    }

    /// RGB in 0..=1 to limited-range 8-bit YUV (unrounded).
    pub fn from_rgb(self, [r, g, b]: [f32; 3]) -> (f32, f32, f32) {
        let y = self.kr * r + self.kg() * g + self.kb * b;
        let pb = (b - y) / (2.0 * (1.0 - self.kb));
        let pr = (r - y) / (2.0 * (1.0 - self.kr));
        (16.0 + 219.0 * y, 128.0 + 224.0 * pb, 128.0 + 224.0 * pr)
    }
}

/// Limited-range YUV to RGB: `R = (Y-16)*y_gain + r_from_v*(V-128)*c_gain`, and so on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvToRgb {
    pub(super) y_gain: f32,
    pub(super) c_gain: f32,
    pub(super) r_from_v: f32,
    pub(super) g_from_u: f32,
    pub(super) g_from_v: f32,
    pub(super) b_from_u: f32,
}

impl YuvToRgb {
    /// One pixel, each channel clamped to 0..=1.
    #[inline(always)]
    pub fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let c = (y - 16.0) * self.y_gain;
        let d = (u - 128.0) * self.c_gain;
        let e = (v - 128.0) * self.c_gain;
        [
            (c + self.r_from_v * e).clamp(0.0, 1.0),
            (c - self.g_from_u * d - self.g_from_v * e).clamp(0.0, 1.0),
            (c + self.b_from_u * d).clamp(0.0, 1.0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_matrix_round_trips_and_knows_its_primaries() {
        for m in [Matrix::BT601, Matrix::BT709, Matrix::BT2020] {
            let conv = m.to_rgb();
            for rgb in [
                [1.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [0.0, 0.0, 1.0],
                [0.3, 0.6, 0.2],
            ] {
                let (y, u, v) = m.from_rgb(rgb);
                let back = conv.rgb(y, u, v);
                for (a, b) in rgb.iter().zip(back) {
                    assert!((a - b).abs() < 1e-4, "{} {rgb:?} -> {back:?}", m.name);
                }
            }
        }
        // Pure red's luma differs by matrix: 0.299 (601), 0.2126 (709), 0.2627 (2020).
        let y = |m: Matrix| m.from_rgb([1.0, 0.0, 0.0]).0;
        assert!((y(Matrix::BT601) - (16.0 + 219.0 * 0.299)).abs() < 1e-3);
        assert!((y(Matrix::BT709) - (16.0 + 219.0 * 0.2126)).abs() < 1e-3);
        assert_eq!(Matrix::from_tag(None, 1080), Matrix::BT709);
        assert_eq!(Matrix::from_tag(None, 480), Matrix::BT601);
        assert_eq!(Matrix::from_tag(Some("bt2020nc"), 480), Matrix::BT2020);
    }

    #[test]
    fn bt601_gains_are_the_classic_constants() {
        let g = Matrix::BT601.to_rgb();
        assert!((g.r_from_v - 1.596).abs() < 1e-3);
        assert!((g.g_from_u - 0.392).abs() < 1e-3);
        assert!((g.g_from_v - 0.813).abs() < 1e-3);
        assert!((g.b_from_u - 2.017).abs() < 1e-3);
    }
}
