//! The quality knobs of a conversion ([`ConversionSettings`]), their enums, defaults and
//! checks.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The quality knobs of a conversion. Every field has a default, so `{}` is a valid setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ConversionSettings {
    /// 3D strength: the largest disparity, in percent of the frame width.
    pub divergence: f32,
    /// The normalised depth (0 = far, 1 = near) that sits on the screen plane.
    pub convergence: f32,
    /// Decay of the exponential moving average that smooths depth normalisation over time
    /// (0 = no smoothing, closer to 1 = smoother).
    pub ema_decay: f32,
    /// Short side of the frames given to the depth model, in pixels (rounded to the model's
    /// multiple, 14 for Depth Anything). `None` uses the worker's default.
    pub depth_resolution: Option<u32>,
    /// Output video encoder (`libx264`, `libx265`, `h264_nvenc`, `hevc_nvenc`).
    pub encoder: String,
    /// Constant rate factor / quality for the encoder (lower = better).
    pub crf: u8,
    /// Deinterlace an interlaced source (detected from its field order) with bwdif before
    /// depth; `false` leaves its frames as they are.
    pub deinterlace: bool,
    /// Bits per sample of the output (8 or 10). `None` follows the source: a source above
    /// 8 bits stays 10-bit with an HEVC encoder (`libx265`, `hevc_nvenc`); H.264 output is
    /// 8-bit. 10 needs an HEVC encoder.
    pub bit_depth: Option<u8>,
    /// Tone-map an HDR source (PQ or HLG) to BT.709 SDR even where the output could keep it
    /// (10-bit HEVC). An 8-bit output of an HDR source is always tone-mapped.
    pub tone_map: bool,
    /// Edge fix: the nearer side of every depth edge is widened by this many depth-map
    /// pixels before the warp, so the foreground's outline moves with it instead of being
    /// torn off into the background (0 = off, at most 10).
    pub edge_dilation: u8,
    /// Depth anti-aliasing: a light blur of the depth map's edges (after the edge fix), so
    /// the staircase of a low-resolution depth map does not show as jagged outlines.
    pub depth_antialias: bool,
    /// Foreground scale (-3..=3): remaps depth so the foreground gets more (positive) or less
    /// (negative) of the 3D effect than the background; 0 keeps depth as it is.
    pub foreground_scale: f32,
    /// IPD offset, in percent of the frame width (-5..=5): a constant parallax added to every
    /// pixel, as a larger or smaller distance between the eyes would ("your own size");
    /// positive moves the whole scene behind the screen.
    pub ipd_offset: f32,
    /// Preserve the screen border: parallax fades to zero at the left and right frame edges
    /// (a floating window), so nothing in front of the screen is cut by the frame.
    pub preserve_screen_border: bool,
    /// Which views are synthesised: both (each eye half the shift), or only the right
    /// (`left`: the left eye sees the untouched original) or only the left (`right`).
    pub synthetic_view: SyntheticView,
    /// Convergence from each frame's depth distribution (its median, smoothed over time)
    /// instead of the fixed `convergence`.
    pub auto_convergence: bool,
    /// The largest output width in pixels (even, at least 64): a larger output is scaled
    /// down, aspect kept. `None` = no cap.
    pub max_output_width: Option<u32>,
    /// How the anaglyph layout mixes the views.
    pub anaglyph_method: AnaglyphMethod,
    /// The fast depth path (model on keyframes at a lower resolution, depth carried between
    /// them by motion and upsampled guided by each frame's luma): `auto` uses it when the
    /// model runs on the CPU and runs the model on every frame on a GPU.
    pub fast_depth: FastDepth,
    /// Fast path: the model runs at least every this many frames (1..=60); between
    /// keyframes depth is carried along by motion. Scene cuts, poorly matched motion and a
    /// segment's first frame force a keyframe. 1 runs the model on every frame.
    pub keyframe_interval: u8,
    /// Fast path: the model's input short side as a fraction (0.25..=1) of the depth map's;
    /// its depth is upsampled to the depth map's size guided by the frame's luma. 1 keeps
    /// the full resolution.
    pub fast_depth_scale: f32,
    /// The depth model, by its name in the model catalogue (`models/catalogue.toml`); `None`
    /// uses the default model of whichever video-worker takes the segment. A named model is
    /// converted only by a worker that holds it (see docs/architecture.md, "Models per job").
    pub model: Option<String>,
}

/// When the fast depth path is used (see [`ConversionSettings::fast_depth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FastDepth {
    /// On the CPU execution provider (including a GPU provider's fallback to the CPU);
    /// off on a GPU, where the model keeps up on every frame.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never: the model runs on every frame at the depth map's resolution.
    Off,
}

/// The fast path's default keyframe interval: see `docs/engine.md` ("Fast depth on the CPU").
pub const DEFAULT_KEYFRAME_INTERVAL: u8 = 8;
/// The fast path's default model-input scale: see `docs/engine.md` ("Fast depth on the CPU").
pub const DEFAULT_FAST_DEPTH_SCALE: f32 = 0.5;

/// Which of the two views are synthesised (see [`ConversionSettings::synthetic_view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyntheticView {
    /// Both views move, each by half the disparity.
    #[default]
    Both,
    /// The left view is the source; only the right one is synthesised.
    Left,
    /// The right view is the source; only the left one is synthesised.
    Right,
}

/// Red-cyan anaglyph methods, computed in RGB from full-resolution views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnaglyphMethod {
    /// Dubois' least-squares matrices: the best colour with the least ghosting.
    #[default]
    Dubois,
    /// Red from the left view, green and blue from the right.
    Color,
    /// Red from the left view's luminance, green and blue from the right (less retinal
    /// rivalry than color).
    HalfColor,
    /// Both views as grey: red from the left, green and blue from the right.
    Gray,
    /// Wimmer's optimised method: red from the left view's green and blue (gamma 1.5),
    /// green and blue from the right.
    Wimmer,
}

/// The edge fix's default width in depth-map pixels: the width with the fewest object
/// artifacts plus changed background pixels in the quality bench (`BENCH_SWEEP=1`).
pub const DEFAULT_EDGE_DILATION: u8 = 1;

impl Default for ConversionSettings {
    fn default() -> Self {
        Self {
            divergence: 2.0,
            convergence: 0.5,
            ema_decay: 0.9,
            depth_resolution: None,
            encoder: "libx264".to_owned(),
            crf: 20,
            deinterlace: true,
            bit_depth: None,
            tone_map: false,
            edge_dilation: DEFAULT_EDGE_DILATION,
            depth_antialias: true,
            foreground_scale: 0.0,
            ipd_offset: 0.0,
            preserve_screen_border: false,
            synthetic_view: SyntheticView::Both,
            auto_convergence: false,
            max_output_width: None,
            anaglyph_method: AnaglyphMethod::Dubois,
            fast_depth: FastDepth::Auto,
            keyframe_interval: DEFAULT_KEYFRAME_INTERVAL,
            fast_depth_scale: DEFAULT_FAST_DEPTH_SCALE,
            model: None,
        }
    }
}

impl ConversionSettings {
    /// Checks that every knob is in range; the message says which one is not and why.
    pub fn validate(&self) -> Result<()> {
        if let Some(m) = &self.model {
            let ok = !m.is_empty()
                && m.len() <= 64
                && m.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
            if !ok {
                return Err(Error::invalid(
                    "model",
                    "model must be a model's name from the catalogue (lowercase letters, digits, '-', '_', '.'; at most 64); GET /api/models lists them",
                ));
            }
        }
        if !(0.0..=10.0).contains(&self.divergence) || !self.divergence.is_finite() {
            return Err(Error::invalid(
                "divergence",
                "3D strength must be between 0 and 10 (% of the frame width)",
            ));
        }
        if !(0.0..=1.0).contains(&self.convergence) || !self.convergence.is_finite() {
            return Err(Error::invalid(
                "convergence",
                "convergence must be between 0 and 1",
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) || !self.ema_decay.is_finite() {
            return Err(Error::invalid("ema_decay", "ema_decay must be in [0, 1)"));
        }
        if let Some(r) = self.depth_resolution {
            if !(14..=2048).contains(&r) {
                return Err(Error::invalid(
                    "depth_resolution",
                    "depth resolution must be between 14 and 2048 pixels",
                ));
            }
        }
        if !matches!(
            self.encoder.as_str(),
            "libx264" | "libx265" | "h264_nvenc" | "hevc_nvenc"
        ) {
            return Err(Error::invalid(
                "encoder",
                "encoder must be one of libx264, libx265, h264_nvenc, hevc_nvenc",
            ));
        }
        if self.crf > 51 {
            return Err(Error::invalid("crf", "crf must be between 0 and 51"));
        }
        match self.bit_depth {
            None | Some(8) => {}
            Some(10) if !self.hevc() => {
                return Err(Error::invalid(
                    "bit_depth",
                    "a 10-bit output needs an HEVC encoder (libx265 or hevc_nvenc); H.264 output is 8-bit",
                ))
            }
            Some(10) => {}
            Some(_) => return Err(Error::invalid("bit_depth", "bit_depth must be 8 or 10")),
        }
        if self.edge_dilation > 10 {
            return Err(Error::invalid(
                "edge_dilation",
                "edge_dilation must be between 0 and 10 depth-map pixels",
            ));
        }
        if !(-3.0..=3.0).contains(&self.foreground_scale) || !self.foreground_scale.is_finite() {
            return Err(Error::invalid(
                "foreground_scale",
                "foreground_scale must be between -3 and 3",
            ));
        }
        if !(-5.0..=5.0).contains(&self.ipd_offset) || !self.ipd_offset.is_finite() {
            return Err(Error::invalid(
                "ipd_offset",
                "ipd_offset must be between -5 and 5 (% of the frame width)",
            ));
        }
        if let Some(w) = self.max_output_width {
            if w < 64 || w % 2 != 0 {
                return Err(Error::invalid(
                    "max_output_width",
                    "max_output_width must be an even number of pixels, at least 64",
                ));
            }
        }
        if !(1..=60).contains(&self.keyframe_interval) {
            return Err(Error::invalid(
                "keyframe_interval",
                "keyframe_interval must be between 1 and 60 frames",
            ));
        }
        if !(0.25..=1.0).contains(&self.fast_depth_scale) || !self.fast_depth_scale.is_finite() {
            return Err(Error::invalid(
                "fast_depth_scale",
                "fast_depth_scale must be between 0.25 and 1",
            ));
        }
        Ok(())
    }

    /// Whether the encoder writes HEVC (which carries 10-bit and HDR here).
    pub fn hevc(&self) -> bool {
        matches!(self.encoder.as_str(), "libx265" | "hevc_nvenc")
    }

    /// The output's bits per sample for a source of `source_bits`: 10 for a deeper source
    /// (or when asked) with an HEVC encoder, else 8.
    pub fn output_bits(&self, source_bits: u32) -> u32 {
        match self.bit_depth {
            Some(b) => u32::from(b),
            None if source_bits > 8 && self.hevc() => 10,
            None => 8,
        }
    }
}
