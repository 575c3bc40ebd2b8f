//! Joining converted segments in place ([`parallax_media::mkv::join_in_place`]) places every picture
//! where ffmpeg's concat demuxer places it; segments it does not join go to the concat
//! demuxer, and the result is the same.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use media_worker::manifest::Manifest;
use media_worker::reassemble;
use media_worker::split;
use parallax_media::mkv;

/// `pts_time` of every video packet, in presentation order.
fn times(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let mut t: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_owned())
        .collect();
    t.sort_by(|a, b| {
        a.parse::<f64>()
            .unwrap()
            .total_cmp(&b.parse::<f64>().unwrap())
    });
    t
}

struct Converted {
    manifest: Manifest,
    outputs: Vec<PathBuf>,
    source: PathBuf,
}

async fn converted(dir: &Path) -> Converted {
    let source = clip(
        dir,
        "src.mp4",
        &[
            video_input("160x90", "30000/1001", 4.0),
            sine_input(440, 4.0),
            args("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 15 -bf 2"),
            args("-c:a aac -b:a 64k"),
        ],
    );
    let s = settings(1.0);
    let (inspection, plan, segments) = split::chunk_file(&source, &dir.join("segs"), &s)
        .await
        .unwrap();
    let outputs: Vec<PathBuf> = segments
        .iter()
        .enumerate()
        .map(|(i, seg)| {
            let o = dir.join(format!("out-{i}.mkv"));
            stand_in(seg, &o);
            o
        })
        .collect();
    let manifest = Manifest::new("join", inspection.info, s.segment_secs, &plan);
    Converted {
        manifest,
        outputs,
        source,
    }
}

#[tokio::test]
async fn joined_segments_are_timed_like_the_concat_demuxer() {
    let d = scratch();
    let c = converted(d.path()).await;
    assert!(c.outputs.len() >= 3);
    let starts: Vec<f64> = c.manifest.segments.iter().map(|s| s.start_secs).collect();
    let place = d.path().join("in-place");
    std::fs::create_dir_all(&place).unwrap();
    let url = mkv::join_in_place(&c.outputs, &starts, &place)
        .unwrap()
        .expect("same-shaped segments are joined");
    // What ffmpeg reads from it, written out.
    let joined = make(
        d.path(),
        "joined.mkv",
        &["-f", "matroska", "-i", &url, "-c", "copy"],
    );

    // The same segments through ffmpeg's concat demuxer, as reassembly did before.
    let mut list = String::from("ffconcat version 1.0\n");
    for (i, (seg, out)) in c.manifest.segments.iter().zip(&c.outputs).enumerate() {
        list.push_str(&format!("file '{}'\n", out.display()));
        if i + 1 < c.outputs.len() {
            list.push_str(&format!("duration {:.9}\n", seg.duration_secs));
        }
    }
    let list_path = d.path().join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let concat = make(
        d.path(),
        "concat.mkv",
        &[
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            list_path.to_str().unwrap(),
            "-c",
            "copy",
        ],
    );
    assert_eq!(
        times(&joined),
        times(&concat),
        "every picture at the same time"
    );
    assert_eq!(decoded_frames(&joined), c.manifest.total_frames());
}

#[tokio::test]
async fn differing_segments_fall_back_to_the_concat_demuxer() {
    let d = scratch();
    let c = converted(d.path()).await;
    // One converted segment carries a different track description (a track name).
    let renamed = d.path().join("renamed.mkv");
    let last = c.outputs.len() - 1;
    let _ = make(
        d.path(),
        "renamed.mkv",
        &[
            "-i",
            c.outputs[last].to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "title=other",
        ],
    );
    let mut outputs = c.outputs.clone();
    outputs[last] = renamed;
    let starts: Vec<f64> = c.manifest.segments.iter().map(|s| s.start_secs).collect();
    let why = mkv::join_in_place(&outputs, &starts, d.path())
        .unwrap()
        .expect_err("different track descriptions are not joined");
    assert!(why.contains("differ"), "{why}");
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let assembled = reassemble::assemble(&c.source, &c.manifest, &outputs, &work, &settings(1.0))
        .await
        .unwrap();
    assert!(!assembled.joined);
    assert_eq!(decoded_frames(&assembled.path), c.manifest.total_frames());
}

/// The video's Stereo 3D side data, as ffprobe prints it for the first video stream
/// (`type=side by side`, ...), or "" when it has none.
fn stereo_side_data(path: &Path) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_streams"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("[SIDE_DATA]")
        .skip(1)
        .filter_map(|sd| sd.split("[/SIDE_DATA]").next())
        .find(|sd| sd.contains("side_data_type=Stereo 3D"))
        .unwrap_or("")
        .to_owned()
}

/// Converted segments that say they are side by side (Matroska StereoMode, as the engine
/// writes them) give a result that says so too: MP4 in its `st3d` box, MKV in StereoMode.
#[tokio::test]
async fn the_stereo_layout_declared_by_the_segments_reaches_the_result() {
    for (name, audio, container) in [
        ("src.mp4", "-c:a aac -b:a 64k", reassemble::Container::Mp4),
        ("src.mkv", "-c:a pcm_s16le", reassemble::Container::Mkv),
    ] {
        let d = scratch();
        let source = clip(
            d.path(),
            name,
            &[
                video_input("160x90", "25", 3.0),
                sine_input(440, 3.0),
                args("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 10"),
                args(audio),
            ],
        );
        let s = settings(1.0);
        let (inspection, plan, segments) = split::chunk_file(&source, &d.path().join("segs"), &s)
            .await
            .unwrap();
        let outputs: Vec<PathBuf> = segments
            .iter()
            .enumerate()
            .map(|(i, seg)| {
                let plain = d.path().join(format!("plain-{i}.mkv"));
                stand_in(seg, &plain);
                let out = make(
                    d.path(),
                    &format!("out-{i}.mkv"),
                    &[
                        "-i",
                        plain.to_str().unwrap(),
                        "-c",
                        "copy",
                        "-metadata:s:v:0",
                        "stereo_mode=left_right",
                    ],
                );
                assert!(stereo_side_data(&out).contains("type=side by side"));
                out
            })
            .collect();
        assert!(outputs.len() >= 2);
        let manifest = Manifest::new("stereo", inspection.info, s.segment_secs, &plan);
        let work = d.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let assembled = reassemble::assemble(&source, &manifest, &outputs, &work, &s)
            .await
            .unwrap();
        assert!(assembled.joined, "joined in place");
        assert_eq!(assembled.container, container);
        let sd = stereo_side_data(&assembled.path);
        assert!(sd.contains("type=side by side"), "{container:?}: {sd:?}");
        assert!(sd.contains("inverted=0"), "{container:?}: {sd:?}");
    }
}
