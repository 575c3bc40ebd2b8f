//! What a stereo output says about itself inside the file, so that players (YouTube, Quest,
//! SKYBOX, DeoVR, ...) show it in 3D without being told.
//!
//! One source of truth, the track's Matroska `StereoMode`, written into the raw stream the
//! encoder reads ([`super::rawmkv::header`]). ffmpeg's Matroska demuxer turns it into the
//! stream's Stereo 3D side data and carries that to the encoded stream, so its muxers declare
//! the layout: Matroska as `StereoMode`, MP4 as the `st3d` box (Google's Spherical Video V2,
//! written only with `-strict unofficial`; reassembly's final mux keeps it the same way).
//! Half layouts also get the H.264 frame-packing arrangement SEI (x264's `frame-packing`),
//! which 3D TVs and some players read from the video stream itself.
//!
//! The file name says the same: see [`StereoMode::file_suffix`].

use parallax_core::model::StereoMode;

/// Matroska `StereoMode` values (the Matroska specification, `StereoMode`, ID 0x53B8).
mod matroska {
    /// Side by side, the left eye's view first (on the left).
    pub const SIDE_BY_SIDE_LEFT_FIRST: u64 = 1;
    /// Top-bottom, the left eye's view first (on top).
    pub const TOP_BOTTOM_LEFT_FIRST: u64 = 3;
    /// Side by side, the right eye's view first (on the left): cross-eyed layouts.
    pub const SIDE_BY_SIDE_RIGHT_FIRST: u64 = 11;
}

/// H.264 `frame_packing_arrangement_type` values (ITU-T H.264 D.2.26), as x264's
/// `frame-packing` parameter takes them. x264 always writes `content_interpretation_type` 1
/// (the first constituent frame, left or top, is the left view), so a layout with the right
/// view first cannot be declared this way.
mod frame_packing {
    /// The two views side by side.
    pub const SIDE_BY_SIDE: u8 = 3;
    /// The two views one above the other.
    pub const TOP_BOTTOM: u8 = 4;
}

/// How a stereo layout is declared inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StereoTags {
    /// The track's Matroska `StereoMode`.
    pub matroska: u64,
    /// The H.264 frame-packing arrangement type, for half layouts only: the SEI tells a
    /// display to stretch each view back to the whole frame, which would double a full
    /// layout's views. Written by libx264 (`-x264-params frame-packing=N`). x265 has no
    /// option for HEVC's frame-packing SEI, so HEVC output carries the container's
    /// declaration alone; so does NVENC output (ffmpeg's NVENC encoders write no such SEI).
    pub h264_frame_packing: Option<u8>,
}

/// The declaration of `mode`'s layout; `None` for outputs that are not a stereo pair
/// (anaglyph, depth map, RGB-D), which are declared as ordinary 2D video.
///
/// Every mode is listed (no wildcard arm), so a new one does not compile until it is
/// decided here.
pub(super) fn stereo_tags(mode: StereoMode) -> Option<StereoTags> {
    use frame_packing::*;
    use matroska::*;
    let tags = |matroska, h264_frame_packing| {
        Some(StereoTags {
            matroska,
            h264_frame_packing,
        })
    };
    match mode {
        // VR180 is full side by side too; its projection is declared by `rawmkv::header`.
        StereoMode::FullSbs | StereoMode::Vr180 => tags(SIDE_BY_SIDE_LEFT_FIRST, None),
        StereoMode::HalfSbs => tags(SIDE_BY_SIDE_LEFT_FIRST, Some(SIDE_BY_SIDE)),
        StereoMode::FullTb => tags(TOP_BOTTOM_LEFT_FIRST, None),
        StereoMode::HalfTb => tags(TOP_BOTTOM_LEFT_FIRST, Some(TOP_BOTTOM)),
        // Right view first: Matroska says so; x264's SEI cannot (see `frame_packing`), and
        // MP4's `st3d` has no eye order (ffmpeg's MP4 muxer leaves it out, with a warning).
        StereoMode::FullCross | StereoMode::HalfCross => tags(SIDE_BY_SIDE_RIGHT_FIRST, None),
        StereoMode::Anaglyph | StereoMode::DepthMap | StereoMode::Rgbd => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_declared_and_only_half_layouts_get_the_sei() {
        for mode in StereoMode::ALL {
            let t = stereo_tags(mode);
            let name = mode.as_str();
            match t {
                None => assert!(
                    ["anaglyph", "depth_map", "rgbd"].contains(&name),
                    "{name} is a stereo pair"
                ),
                Some(t) => {
                    let sbs = t.matroska == 1 || t.matroska == 11;
                    assert_eq!(sbs, !name.ends_with("_tb"), "{name}");
                    let half_left_first = name.starts_with("half_") && t.matroska != 11;
                    assert_eq!(t.h264_frame_packing.is_some(), half_left_first, "{name}");
                }
            }
        }
        assert_eq!(
            stereo_tags(StereoMode::HalfSbs),
            Some(StereoTags {
                matroska: 1,
                h264_frame_packing: Some(3)
            })
        );
        assert_eq!(
            stereo_tags(StereoMode::HalfTb),
            Some(StereoTags {
                matroska: 3,
                h264_frame_packing: Some(4)
            })
        );
    }
}
