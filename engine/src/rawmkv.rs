//! The encoder's input: raw frames in a Matroska stream, each with its own presentation
//! time. A bare raw-video pipe gives ffmpeg no timestamps (it assumes one constant rate), so a
//! variable or mislabelled frame rate would come out at the wrong speed; in Matroska every
//! frame says when it is shown.
//!
//! The stream: an EBML header, a Segment of unknown size (it is written as it goes), Info with
//! a timestamp scale of one microsecond, one `V_UNCOMPRESSED` track whose `ColourSpace` is the
//! pixel format's FourCC (and, for a stereo layout, its `StereoMode`: see
//! [`super::metadata`]), then one Cluster per frame: its timestamp and a SimpleBlock with the
//! frame. One cluster per frame keeps every time absolute (a block's own offset is only 16
//! bits, 32 ms at this scale). Frames stay separate buffers: [`frame_prefix`] is the few bytes
//! written before each one.

/// Nanoseconds per timestamp unit: microseconds.
pub(super) const TIMESTAMP_SCALE_NS: u64 = 1_000;

const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const VIDEO: u32 = 0xE0;
const STEREO_MODE: u32 = 0x53B8;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const COLOUR_SPACE: u32 = 0x2E_B524;
const PROJECTION: u32 = 0x7670;
const PROJECTION_TYPE: u32 = 0x7671;
const PROJECTION_PRIVATE: u32 = 0x7672;
/// `ProjectionType` of an equirectangular projection.
const PROJECTION_EQUIRECTANGULAR: u64 = 1;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

/// An element ID as written (IDs carry their own length marker).
fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// A size as an eight-byte EBML integer (any size fits, and the prefix has a fixed length).
fn put_size(out: &mut Vec<u8>, size: u64) {
    debug_assert!(size < (1 << 56) - 1);
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

fn element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint(out: &mut Vec<u8>, id: u32, v: u64) {
    element(out, id, &v.to_be_bytes());
}

/// The stream's start: everything before the first frame. `stereo_mode` is the track's
/// Matroska `StereoMode` value, if any: ffmpeg's Matroska demuxer turns it into the stream's
/// Stereo 3D side data, which the encoder's output (MKV `StereoMode`, MP4 `st3d`) carries on.
/// `half_equirect` declares the frames (each view) an equirectangular projection of the
/// front half of the sphere (VR180): the track's `Projection`, which becomes the stream's
/// spherical side data and so MKV's `Projection` or MP4's `sv3d`.
pub(super) fn header(
    width: usize,
    height: usize,
    fourcc: [u8; 4],
    stereo_mode: Option<u64>,
    half_equirect: bool,
) -> Vec<u8> {
    let mut ebml = Vec::new();
    uint(&mut ebml, EBML_VERSION, 1);
    uint(&mut ebml, EBML_READ_VERSION, 1);
    uint(&mut ebml, EBML_MAX_ID_LENGTH, 4);
    uint(&mut ebml, EBML_MAX_SIZE_LENGTH, 8);
    element(&mut ebml, DOC_TYPE, b"matroska");
    uint(&mut ebml, DOC_TYPE_VERSION, 4);
    uint(&mut ebml, DOC_TYPE_READ_VERSION, 2);

    let mut info = Vec::new();
    uint(&mut info, TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS);
    element(&mut info, MUXING_APP, b"parallax");
    element(&mut info, WRITING_APP, b"parallax");

    let mut video = Vec::new();
    if let Some(mode) = stereo_mode {
        uint(&mut video, STEREO_MODE, mode);
    }
    uint(&mut video, PIXEL_WIDTH, width as u64);
    uint(&mut video, PIXEL_HEIGHT, height as u64);
    element(&mut video, COLOUR_SPACE, &fourcc);
    if half_equirect {
        // Equirectangular, with the Spherical Video V2 bounds as `ProjectionPrivate`: a
        // version and flags word, then the share of the full 360x180 frame cropped at the
        // top, bottom, left and right (0.32 fixed point): a quarter on each side leaves 180
        // degrees.
        let mut private = vec![0u8; 4];
        for bound in [0u32, 0, 1 << 30, 1 << 30] {
            private.extend_from_slice(&bound.to_be_bytes());
        }
        let mut projection = Vec::new();
        uint(&mut projection, PROJECTION_TYPE, PROJECTION_EQUIRECTANGULAR);
        element(&mut projection, PROJECTION_PRIVATE, &private);
        element(&mut video, PROJECTION, &projection);
    }
    let mut track = Vec::new();
    uint(&mut track, TRACK_NUMBER, 1);
    uint(&mut track, TRACK_UID, 1);
    uint(&mut track, TRACK_TYPE, 1);
    element(&mut track, CODEC_ID, b"V_UNCOMPRESSED");
    element(&mut track, VIDEO, &video);
    let mut entry = Vec::new();
    element(&mut entry, TRACK_ENTRY, &track);

    let mut out = Vec::new();
    element(&mut out, EBML, &ebml);
    put_id(&mut out, SEGMENT);
    // Unknown size: the stream ends when the pipe closes.
    out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    element(&mut out, INFO, &info);
    element(&mut out, TRACKS, &entry);
    out
}

/// Bytes of [`frame_prefix`].
pub(super) const PREFIX_LEN: usize = 4 + 8 + (1 + 8 + 8) + (1 + 8 + 4);

/// What goes before a frame of `len` bytes shown at `time` (in timestamp units from the
/// stream's start): a Cluster with that timestamp and the head of a keyframe SimpleBlock on
/// track 1.
pub(super) fn frame_prefix(time: u64, len: usize) -> [u8; PREFIX_LEN] {
    let mut out = Vec::with_capacity(PREFIX_LEN);
    let block = 4 + len as u64;
    let cluster = (1 + 8 + 8) + (1 + 8 + block);
    put_id(&mut out, CLUSTER);
    put_size(&mut out, cluster);
    uint(&mut out, CLUSTER_TIMESTAMP, time);
    put_id(&mut out, SIMPLE_BLOCK);
    put_size(&mut out, block);
    // Track 1, no offset from the cluster's time, keyframe.
    out.extend_from_slice(&[0x81, 0x00, 0x00, 0x80]);
    out.try_into().expect("the prefix has a fixed length")
}

/// Presentation times in timestamp units from the first frame, strictly increasing (two
/// source frames closer than a unit, or out of order, are nudged one unit apart), from times
/// in seconds.
#[derive(Debug, Clone)]
pub(super) struct Clock {
    times: Vec<f64>,
    /// Seconds per frame past the known times (the average rate).
    step: f64,
    last: Option<u64>,
}

impl Clock {
    /// Frame `i` is shown at `times[i]` seconds (any origin); frames past the list follow at
    /// `step` seconds each.
    pub(super) fn new(times: Vec<f64>, step: f64) -> Self {
        Self {
            times,
            step,
            last: None,
        }
    }

    /// Frame `i`'s time; call for 0, 1, 2, ... in order.
    pub(super) fn time(&mut self, i: usize) -> u64 {
        let origin = self.times.first().copied().unwrap_or(0.0);
        let secs = match self.times.get(i) {
            Some(t) => t - origin,
            None => match self.times.last() {
                Some(t) => t - origin + (i + 1 - self.times.len()) as f64 * self.step,
                None => i as f64 * self.step,
            },
        };
        let units = (secs * 1e9 / TIMESTAMP_SCALE_NS as f64).round().max(0.0) as u64;
        let t = match self.last {
            Some(prev) if units <= prev => prev + 1,
            _ => units,
        };
        self.last = Some(t);
        t
    }
}

/// The FourCC ffmpeg's raw video reads for a pixel format, for the formats the engine writes.
pub(super) fn fourcc(pix_fmt: &str) -> Option<[u8; 4]> {
    match pix_fmt {
        "yuv420p" => Some(*b"I420"),
        // `Y3` with 11 (4:2:0) and 10 (bits), little-endian.
        "yuv420p10le" => Some([b'Y', b'3', 11, 10]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sizes_add_up() {
        let p = frame_prefix(123_456, 1000);
        assert_eq!(&p[..4], &[0x1F, 0x43, 0xB6, 0x75]);
        let cluster = u64::from_be_bytes([0, p[5], p[6], p[7], p[8], p[9], p[10], p[11]]);
        assert_eq!(p[4], 0x01);
        // The cluster holds the rest of the prefix and the frame.
        assert_eq!(cluster as usize, PREFIX_LEN - 12 + 1000);
        assert_eq!(p[12], 0xE7);
        assert_eq!(u64::from_be_bytes(p[21..29].try_into().unwrap()), 123_456);
        assert_eq!(p[29], 0xA3);
    }

    #[test]
    fn the_stereo_mode_is_a_child_of_the_video_element() {
        let plain = header(64, 48, *b"I420", None, false);
        let stereo = header(64, 48, *b"I420", Some(3), false);
        let element = [
            0x53, 0xB8, 0x01, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3,
        ];
        let at = stereo
            .windows(element.len())
            .position(|w| w == element)
            .expect("a StereoMode element of value 3");
        assert!(!plain.windows(2).any(|w| w == [0x53, 0xB8]));
        assert_eq!(stereo.len(), plain.len() + element.len());
        // Inside Video: its ID (0xE0) and 8-byte size come just before.
        assert_eq!(stereo[at - 9], 0xE0);
        let video = u64::from_be_bytes([0, 0, 0, 0, 0, 0, stereo[at - 2], stereo[at - 1]]);
        assert_eq!(
            video as usize,
            element.len() + 2 * (1 + 8 + 8) + (3 + 8 + 4)
        );
    }

    /// ffmpeg reads the elements as the stream's Stereo 3D and spherical side data.
    #[tokio::test]
    async fn ffprobe_reads_the_stereo_mode_as_stereo_3d_side_data() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, want, vr180) in [
            (Some(1), Some("side by side"), false),
            (Some(3), Some("top and bottom"), false),
            (None, None, false),
            (Some(1), Some("side by side"), true),
        ] {
            let path = dir.path().join(format!("{mode:?}-{vr180}.mkv"));
            let frame = vec![16u8; 16 * 16 * 3 / 2];
            let mut bytes = header(16, 16, *b"I420", mode, vr180);
            for i in 0..2 {
                bytes.extend_from_slice(&frame_prefix(i * 40_000, frame.len()));
                bytes.extend_from_slice(&frame);
            }
            std::fs::write(&path, bytes).unwrap();
            let out =
                parallax_media::process::ToolCommand::ffprobe(std::time::Duration::from_secs(60))
                    .arg("-show_streams")
                    .arg(&path)
                    .output()
                    .await
                    .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("width=16"), "{text}");
            match want {
                Some(kind) => {
                    assert!(text.contains("side_data_type=Stereo 3D"), "{text}");
                    assert!(text.contains(&format!("type={kind}\ninverted=0")), "{text}");
                }
                None => assert!(!text.contains("Stereo 3D"), "{text}"),
            }
            if vr180 {
                // A bounded equirectangular projection ("tiled"); ffprobe prints the bounds
                // in pixels of the full 360-degree frame: half of it is cropped, as wide as
                // the frame itself.
                assert!(text.contains("side_data_type=Spherical Mapping"), "{text}");
                assert!(text.contains("projection=tiled equirectangular"), "{text}");
                assert_eq!(cropped_width(&text), 16, "{text}");
                assert!(text.contains("bound_top=0\n") && text.contains("bound_bottom=0\n"));
            } else {
                assert!(!text.contains("Spherical"), "{text}");
            }
        }
    }

    /// `bound_left + bound_right` of ffprobe's spherical side data.
    pub(crate) fn cropped_width(text: &str) -> u64 {
        ["bound_left=", "bound_right="]
            .iter()
            .map(|k| {
                let at = text.find(k).expect("a bound") + k.len();
                text[at..]
                    .lines()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("a number")
            })
            .sum()
    }

    #[test]
    fn clock_keeps_irregular_times_and_extrapolates_at_the_average() {
        let mut c = Clock::new(vec![1.5, 1.54, 1.6, 1.6, 1.9], 0.1);
        let got: Vec<u64> = (0..7).map(|i| c.time(i)).collect();
        assert_eq!(
            got,
            vec![0, 40_000, 100_000, 100_001, 400_000, 500_000, 600_000]
        );
        let mut empty = Clock::new(Vec::new(), 0.04);
        assert_eq!((empty.time(0), empty.time(1)), (0, 40_000));
    }
}
