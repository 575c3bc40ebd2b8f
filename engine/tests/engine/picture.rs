//! The source's picture: HDR tone-mapped or kept as 10-bit HDR, full range, interlace,
//! chroma subsampling, transfers the engine cannot map, bit depth as the settings ask.

use std::path::{Path, PathBuf};

use parallax_core::model::StereoMode;
use parallax_engine::BadInput;

use crate::util::*;

/// A 10-bit HEVC clip of `frames` frames of the lavfi `source`, tagged with `transfer` and
/// BT.2020 (and HDR10 mastering metadata for PQ); `x265` adds parameters.
fn x265_clip(
    dir: &Path,
    name: &str,
    transfer: &str,
    source: &str,
    frames: u32,
    x265: &str,
) -> PathBuf {
    let path = dir.join(name);
    let mut params =
        format!("log-level=error{x265}:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc");
    if transfer == "smpte2084" {
        params.push_str(
            ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
        );
    }
    let n = frames.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
        &n,
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        &params,
        "-color_primaries",
        "bt2020",
        "-color_trc",
        transfer,
        "-colorspace",
        "bt2020nc",
        path.to_str().unwrap(),
    ]);
    path
}

/// A 10-frame HDR test pattern (see [`x265_clip`]).
fn hdr_clip(dir: &Path, name: &str, transfer: &str) -> PathBuf {
    x265_clip(dir, name, transfer, "testsrc2=size=128x72:rate=25", 10, "")
}

/// HDR10 (PQ) and HLG sources come out as 8-bit BT.709 SDR, tone-mapped, never 8-bit with
/// PQ/HLG tags; the report says so.
#[tokio::test]
async fn hdr_sources_are_tone_mapped_to_bt709_sdr_for_8_bit_output() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    for (transfer, what) in [("smpte2084", "HDR10"), ("arib-std-b67", "HLG")] {
        let input = hdr_clip(dir.path(), &format!("{what}.mp4"), transfer);
        assert_eq!(
            stream_entry(&input, "pix_fmt,color_transfer"),
            format!("yuv420p10le,{transfer}")
        );
        let out = dir.path().join(format!("{what}-out.mp4"));
        let report = eng
            .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
            .await
            .unwrap();
        assert_eq!(
            stream_entry(
                &out,
                "pix_fmt,color_range,color_space,color_transfer,color_primaries"
            ),
            "yuv420p,tv,bt709,bt709,bt709",
            "{what}"
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains(what) && n.contains("tone-mapped")),
            "{what}: {:?}",
            report.notes
        );
        // A picture, not a flat or clipped field.
        let luma = &luma_frames(&out)[0];
        let mean = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / luma.len() as f64;
        let spread = luma.iter().max().unwrap() - luma.iter().min().unwrap();
        assert!(
            (30.0..220.0).contains(&mean) && spread > 100,
            "{what}: mean {mean}, spread {spread}"
        );
    }
}

/// A full-range (JPEG levels) source is converted to limited range and tagged so: its white
/// (255) becomes limited range's white (235), not clipped or left at full-range levels.
#[tokio::test]
async fn a_full_range_source_is_converted_to_limited_range() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("full.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=white:size=64x48:rate=25",
        "-frames:v",
        "5",
        "-vf",
        "scale=out_range=pc",
        "-pix_fmt",
        "yuvj420p",
        "-color_range",
        "pc",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        input.to_str().unwrap(),
    ]);
    assert_eq!(stream_entry(&input, "color_range"), "pc");
    let out = dir.path().join("out.mkv");
    let eng = engine("luma.onnx", 1);
    let report = eng
        .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
        .await
        .unwrap();
    assert_eq!(stream_entry(&out, "color_range"), "tv");
    assert!(
        report.notes.iter().any(|n| n.contains("full-range")),
        "{:?}",
        report.notes
    );
    let luma = &luma_frames(&out)[0];
    let mean = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / luma.len() as f64;
    assert!((mean - 235.0).abs() < 2.5, "white at {mean}");
}

/// Mean absolute difference between each luma row and the average of its neighbours: the
/// comb of interlaced motion.
fn combing(luma: &[u8], w: usize) -> f64 {
    let rows: Vec<&[u8]> = luma.chunks(w).collect();
    let mut sum = 0.0;
    let mut n = 0.0;
    for r in rows.windows(3) {
        for ((&a, &b), &c) in r[0].iter().zip(r[1]).zip(r[2]) {
            let mid = (f64::from(a) + f64::from(c)) / 2.0;
            sum += (f64::from(b) - mid).abs();
            n += 1.0;
        }
    }
    sum / n
}

/// An interlaced source is detected and deinterlaced (bwdif) before depth, one frame per
/// frame at the source's times; the setting turns it off.
#[tokio::test]
async fn an_interlaced_source_is_deinterlaced_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("interlaced.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:rate=50",
        "-frames:v",
        "24",
        "-vf",
        "scroll=h=0.03,tinterlace=mode=interleave_top,fieldorder=tff,format=yuv420p",
        "-c:v",
        "libx264",
        "-qp",
        "4",
        "-flags",
        "+ildct+ilme",
        "-x264-params",
        "tff=1",
        input.to_str().unwrap(),
    ]);
    assert_eq!(stream_entry(&input, "field_order"), "tt");
    let eng = engine("luma.onnx", 1);
    let mut results = Vec::new();
    for deinterlace in [true, false] {
        let out = dir.path().join(format!("out-{deinterlace}.mkv"));
        let mut req = request(&input, &out, StereoMode::FullSbs);
        req.settings.deinterlace = deinterlace;
        let report = eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(frame_count(&out), frame_count(&input));
        let said = report
            .notes
            .iter()
            .any(|n| n.contains("deinterlaced (bwdif"));
        assert_eq!(said, deinterlace, "{:?}", report.notes);
        let (w, _) = dims(&out);
        let frames = luma_frames(&out);
        let comb = frames.iter().map(|f| combing(f, w)).sum::<f64>() / frames.len() as f64;
        results.push(comb);
    }
    assert!(
        results[0] < 0.7 * results[1],
        "combing with bwdif {} vs without {}",
        results[0],
        results[1]
    );
}

/// 4:2:2 and 4:4:4 sources are written as 4:2:0 and the report says so; a transfer the
/// engine cannot map is bad input with its own code, and nothing is written.
#[tokio::test]
async fn chroma_is_reported_and_an_unmappable_transfer_is_refused_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    for (pix_fmt, says) in [("yuv422p", "4:2:2"), ("yuv444p", "4:4:4")] {
        let input = dir.path().join(format!("{pix_fmt}.mkv"));
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=25",
            "-frames:v",
            "5",
            "-pix_fmt",
            pix_fmt,
            "-c:v",
            "libx264",
            input.to_str().unwrap(),
        ]);
        let out = dir.path().join(format!("{pix_fmt}-out.mkv"));
        let report = eng
            .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
            .await
            .unwrap();
        assert_eq!(stream_entry(&out, "pix_fmt"), "yuv420p");
        assert!(
            report.notes.iter().any(|n| n.contains(says)),
            "{:?}",
            report.notes
        );
    }
    let log = dir.path().join("log.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "5",
        "-pix_fmt",
        "yuv420p",
        "-color_trc",
        "log100",
        "-c:v",
        "libx264",
        log.to_str().unwrap(),
    ]);
    let out = dir.path().join("log-out.mkv");
    let err = eng
        .convert(&request(&log, &out, StereoMode::FullSbs), &|_| {})
        .await
        .unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
    assert_eq!(BadInput::code(&err, "bad-segment"), "unsupported-transfer");
    assert!(!out.exists());
}

/// Every frame's luma plane of a 10-bit file, as 10-bit levels.
fn luma10_frames(path: &Path) -> Vec<Vec<u16>> {
    u16_frames(path, "gray10le")
}

/// A 10-bit HEVC clip (lossless) whose luma is a fine horizontal ramp (about 200 levels over
/// 128 pixels, 50 at 8 bits), tagged with `transfer` and BT.2020, with HDR10 metadata for PQ.
fn ramp_clip(dir: &Path, name: &str, transfer: &str) -> PathBuf {
    x265_clip(
        dir,
        name,
        transfer,
        "nullsrc=s=128x72:r=25,format=yuv420p10le,geq=lum='300+X*1.6':cb=512:cr=512",
        6,
        ":lossless=1",
    )
}

/// Distinct luma levels along the middle row of the left view.
fn distinct_levels(frame: &[u16], w: usize, h: usize, view_w: usize) -> usize {
    let row = &frame[(h / 2) * w..][..view_w];
    let mut levels: Vec<u16> = row.to_vec();
    levels.sort_unstable();
    levels.dedup();
    levels.len()
}

/// With an HEVC encoder, HDR10 (PQ) and HLG sources stay 10-bit HDR: main10, their BT.2020
/// and transfer tags, PQ's mastering display and content light level read back from the
/// output, and a ramp finer than 8 bits can hold survives decode, depth, warp and encode.
#[tokio::test]
async fn hdr_sources_stay_10_bit_hdr_with_an_hevc_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    for (transfer, what) in [("smpte2084", "HDR10"), ("arib-std-b67", "HLG")] {
        let input = ramp_clip(dir.path(), &format!("{what}.mkv"), transfer);
        let out = dir.path().join(format!("{what}-out.mkv"));
        let mut req = request(&input, &out, StereoMode::FullSbs);
        req.settings.encoder = "libx265".to_owned();
        req.settings.crf = 4;
        req.settings.divergence = 0.0;
        let report = eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(
            stream_entry(
                &out,
                "profile,pix_fmt,color_range,color_space,color_transfer,color_primaries"
            ),
            format!("Main 10,yuv420p10le,tv,bt2020nc,{transfer},bt2020"),
            "{what}"
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains(what) && n.contains("kept as 10-bit HDR")),
            "{what}: {:?}",
            report.notes
        );
        let side = first_frame_side_data(&out);
        if transfer == "smpte2084" {
            for want in [
                "red_x=\"34000/50000\"",
                "green_y=\"34500/50000\"",
                "white_point_x=\"15635/50000\"",
                "max_luminance=\"10000000/10000\"",
                "min_luminance=\"1/10000\"",
                "max_content=1000",
                "max_average=400",
            ] {
                assert!(side.contains(want), "{what}: {want} missing in\n{side}");
            }
        }
        // At zero divergence the left view is the source: its ramp keeps 10-bit steps.
        let (w, h) = dims(&out);
        let src = &luma10_frames(&input)[0];
        let got = &luma10_frames(&out)[0];
        let (src_levels, got_levels) = (
            distinct_levels(src, w / 2, h, w / 2),
            distinct_levels(got, w, h, w / 2),
        );
        assert!(
            got_levels * 10 >= src_levels * 8 && got_levels > 100,
            "{what}: {got_levels} levels out of {src_levels} (8 bits would leave about 50)"
        );
        let row = (h / 2) * w;
        let err = (0..w / 2)
            .map(|x| (i32::from(got[row + x]) - i32::from(src[(h / 2) * (w / 2) + x])).abs())
            .max()
            .unwrap();
        assert!(
            err <= 4,
            "{what}: the left view is {err} levels off the source"
        );
    }
}

/// Asked to tone-map, an HDR source becomes BT.709 SDR at 10 bits; a 10-bit SDR source stays
/// 10-bit with HEVC unless 8 bits are asked for; 10 bits with H.264 is refused.
#[tokio::test]
async fn tone_mapping_and_bit_depth_follow_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine("luma.onnx", 1);
    let pq = ramp_clip(dir.path(), "pq.mkv", "smpte2084");
    let out = dir.path().join("pq-sdr.mkv");
    let mut req = request(&pq, &out, StereoMode::HalfSbs);
    req.settings.encoder = "libx265".to_owned();
    req.settings.tone_map = true;
    let report = eng.convert(&req, &|_| {}).await.unwrap();
    assert_eq!(
        stream_entry(&out, "pix_fmt,color_transfer,color_primaries"),
        "yuv420p10le,bt709,bt709"
    );
    assert!(
        first_frame_side_data(&out).trim().is_empty()
            || !first_frame_side_data(&out).contains("Mastering"),
        "an SDR output carries no mastering display"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("as the job asked")),
        "{:?}",
        report.notes
    );

    let sdr10 = dir.path().join("sdr10.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=25",
        "-frames:v",
        "4",
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        sdr10.to_str().unwrap(),
    ]);
    for (bits, want) in [(None, "yuv420p10le"), (Some(8), "yuv420p")] {
        let out = dir.path().join(format!("sdr10-{bits:?}.mkv"));
        let mut req = request(&sdr10, &out, StereoMode::Anaglyph);
        req.settings.encoder = "libx265".to_owned();
        req.settings.bit_depth = bits;
        eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(stream_entry(&out, "pix_fmt"), want, "{bits:?}");
    }

    let mut req = request(&sdr10, &dir.path().join("never.mkv"), StereoMode::FullSbs);
    req.settings.bit_depth = Some(10);
    let err = eng.convert(&req, &|_| {}).await.unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
    assert!(format!("{err:#}").contains("HEVC"), "{err:#}");
}
