//! What the pipeline does to a source's picture: decoder filters (deinterlace, tone-map),
//! the sample format from decode to encode, the frames' matrix, the output's colour tags.

use parallax_core::picture::{self, Transfer};

use crate::colour::Matrix;
use crate::probe::{self, VideoInfo};
use crate::stereo::Sample;

/// How the engine handles a source's picture: the decoder's filters before the usual crop and
/// scale, the sample format from decode to encode, the matrix of the decoded frames, the
/// output's colour tags and HDR metadata, and what the job is told.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PicturePlan {
    /// Filters (each followed by a comma) the decoder runs first.
    pub(super) filters: String,
    /// Bits per sample from decode to encode (8, or 10 in 16-bit samples).
    pub(super) bits: u32,
    /// The raw frames' pixel format.
    pub(super) pix_fmt: &'static str,
    /// The YUV matrix of the decoded frames.
    pub(super) matrix: Matrix,
    /// The encoder's colour flags.
    pub(super) colour: Vec<(&'static str, String)>,
    /// HDR10 metadata the encoder writes (HDR kept).
    pub(super) hdr: Option<probe::HdrMetadata>,
    /// What was done, in words.
    pub(super) notes: Vec<String>,
}

impl PicturePlan {
    pub(super) fn new(
        info: &VideoInfo,
        settings: &parallax_core::model::ConversionSettings,
    ) -> Self {
        let output = picture::Output::new(
            info.transfer,
            settings.output_bits(info.layout.bits),
            settings.tone_map,
        );
        let pix_fmt = if output.bits > 8 {
            <u16 as Sample>::PIX_FMT
        } else {
            <u8 as Sample>::PIX_FMT
        };
        let mut filters = String::new();
        let deinterlace = info.interlaced && settings.deinterlace;
        if deinterlace {
            // One frame per frame (the frame count and times stay the source's).
            filters.push_str("bwdif=mode=send_frame:parity=auto:deint=all,");
        }
        let tag = |flag: &str| {
            info.colour
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, v)| v.clone())
        };
        let (matrix, colour, hdr) = if !output.tone_map {
            // The source's matrix, primaries and transfer (HDR included), at limited range
            // (the decoder's scale converts full-range levels).
            let mut colour: Vec<_> = info
                .colour
                .iter()
                .filter(|(f, _)| *f != "-color_range")
                .cloned()
                .collect();
            colour.push(("-color_range", "tv".to_owned()));
            // The matrix the engine read the source with, said in the file when the source
            // did not say it (so players do not guess another; it also makes the encoders
            // write the range into the bitstream, where every container keeps it).
            if !colour.iter().any(|(f, _)| *f == "-colorspace") {
                colour.push(("-colorspace", info.matrix.name.to_owned()));
            }
            let hdr = (info.transfer != Transfer::Sdr).then(|| info.hdr.clone());
            (info.matrix, colour, hdr)
        } else {
            // HDR to BT.709 SDR: to linear light, to BT.709 primaries, tone-mapped (Hable),
            // then BT.709's transfer and matrix at limited range.
            let tin = tag("-color_trc").unwrap_or_else(|| "smpte2084".to_owned());
            let pin = match tag("-color_primaries").as_deref() {
                Some("bt709") => "709",
                _ => "2020",
            };
            let min = match tag("-colorspace").as_deref() {
                Some("bt709") => "709",
                _ => "2020_ncl",
            };
            let rin = if info.full_range { "full" } else { "limited" };
            filters.push_str(&format!(
                "zscale=tin={tin}:pin={pin}:min={min}:rin={rin}:t=linear:npl=100,format=gbrpf32le,\
                 zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,\
                 format={pix_fmt},"
            ));
            let colour = ["-colorspace", "-color_trc", "-color_primaries"]
                .into_iter()
                .map(|f| (f, "bt709".to_owned()))
                .chain([("-color_range", "tv".to_owned())])
                .collect();
            (Matrix::BT709, colour, None)
        };
        let notes = picture::conversion_notes(
            info.layout,
            info.transfer,
            output,
            info.interlaced,
            settings.deinterlace,
            info.full_range,
        );
        Self {
            filters,
            bits: output.bits,
            pix_fmt,
            matrix,
            colour,
            hdr,
            notes,
        }
    }
}

/// Sources and settings for the pipeline's own tests.
#[cfg(test)]
pub(super) mod test_source {
    use super::*;

    pub(in crate::pipeline) fn req_settings() -> parallax_core::model::ConversionSettings {
        parallax_core::model::ConversionSettings::default()
    }

    /// A plain 8-bit 4:2:0 SDR progressive source of 64x48 at 24 fps.
    pub(in crate::pipeline) fn plain_info() -> VideoInfo {
        VideoInfo {
            width: 64,
            height: 48,
            rate: (24, 1),
            variable_rate: false,
            start_time: 0.0,
            colour: Vec::new(),
            layout: parallax_core::picture::PixelLayout {
                bits: 8,
                chroma: parallax_core::picture::Chroma::C420,
            },
            transfer: Transfer::Sdr,
            full_range: false,
            interlaced: false,
            matrix: Matrix::BT601,
            hdr: probe::HdrMetadata::default(),
        }
    }
}
