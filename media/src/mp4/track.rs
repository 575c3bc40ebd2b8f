//! What the reader keeps of a track: its description and every sample, in decoding order.

/// One sample (= packet) of a track, in decoding order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) offset: u64,
    pub(super) size: u32,
    pub(super) dts: i64,
    pub(super) cts_offset: i64,
    pub(super) duration: i64,
    pub(super) key: bool,
}

/// A track as read from its boxes: what ffprobe would report about it, and its samples.
#[derive(Debug, Default)]
pub(super) struct Track {
    pub(super) kind: String,
    pub(super) codec: Option<String>,
    pub(super) width: Option<u32>,
    pub(super) height: Option<u32>,
    pub(super) pix_fmt: Option<String>,
    pub(super) channels: Option<u32>,
    pub(super) timescale: u32,
    pub(super) language: Option<String>,
    pub(super) enabled: bool,
    pub(super) rotation_ccw: Option<f64>,
    pub(super) samples: Vec<Sample>,
    /// Edit list: (media_time, duration in movie ticks), when there is one.
    pub(super) edit: Option<(i64, u64)>,
    /// Bytes of samples that lie inside the file, counted per sample in decoding order.
    pub(super) samples_in_file: u64,
    /// The decoder configuration record (video).
    pub(super) codec_private: Vec<u8>,
}
