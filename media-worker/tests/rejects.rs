//! Inputs that must be refused before any work, each with its stable code.

mod common;

use std::path::Path;

use common::*;
use media_worker::failure::HandlerError;
use media_worker::inspect;
use media_worker::settings::Settings;

async fn code(path: &Path, settings: &Settings) -> &'static str {
    match inspect::inspect(path, settings).await {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(HandlerError::Reject { code, message }) => {
            assert!(!message.is_empty());
            code
        }
        Err(HandlerError::Retry(e)) => {
            panic!("{} gave a retry, not a rejection: {e:#}", path.display())
        }
    }
}

fn good_clip(dir: &Path, name: &str, extra: &str) -> std::path::PathBuf {
    clip(
        dir,
        name,
        &[
            video_input("160x90", "30", 3.0),
            sine_input(440, 3.0),
            args("-c:v libx264 -preset ultrafast -g 15 -c:a aac -b:a 64k"),
            args(extra),
        ],
    )
}

fn truncate(from: &Path, to: &Path, fraction: f64) {
    let data = std::fs::read(from).unwrap();
    std::fs::write(to, &data[..(data.len() as f64 * fraction) as usize]).unwrap();
}

#[tokio::test]
async fn empty_text_and_image_files() {
    let d = scratch();
    let s = Settings::default();
    let empty = d.path().join("source");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(code(&empty, &s).await, "empty-file");
    let text = d.path().join("notes");
    std::fs::write(
        &text,
        "these are not the frames you are looking for\n".repeat(50),
    )
    .unwrap();
    assert_eq!(code(&text, &s).await, "not-a-video");
    let png = make(
        d.path(),
        "still.png",
        &["-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1"],
    );
    assert_eq!(code(&png, &s).await, "not-a-video");
}

#[tokio::test]
async fn audio_only() {
    let d = scratch();
    let m4a = clip(
        d.path(),
        "a.m4a",
        &[sine_input(440, 2.0), args("-c:a aac -b:a 64k")],
    );
    assert_eq!(code(&m4a, &Settings::default()).await, "no-video-stream");
}

#[tokio::test]
async fn truncated_files() {
    let d = scratch();
    let s = Settings::default();
    let mp4 = good_clip(d.path(), "a.mp4", "");
    let cut = d.path().join("cut-mp4");
    truncate(&mp4, &cut, 0.5);
    assert_eq!(
        code(&cut, &s).await,
        "undecodable",
        "index at the end, cut off"
    );
    let fast = good_clip(d.path(), "fast.mp4", "-movflags +faststart");
    let cut = d.path().join("cut-faststart");
    truncate(&fast, &cut, 0.5);
    assert_eq!(
        code(&cut, &s).await,
        "undecodable",
        "index first, data cut off"
    );
    let mkv = good_clip(d.path(), "a.mkv", "");
    let cut = d.path().join("cut-mkv");
    truncate(&mkv, &cut, 0.6);
    assert_eq!(code(&cut, &s).await, "undecodable", "matroska cut off");
}

#[tokio::test]
async fn limits() {
    let d = scratch();
    let src = good_clip(d.path(), "a.mkv", "");
    let base = Settings::default();
    inspect::inspect(&src, &base)
        .await
        .expect("within the defaults");
    let s = Settings {
        max_duration_secs: 2.0,
        ..base.clone()
    };
    assert_eq!(code(&src, &s).await, "too-long");
    let s = Settings {
        max_size_bytes: 1000,
        ..base.clone()
    };
    assert_eq!(code(&src, &s).await, "too-large");
    let s = Settings {
        max_width: 128,
        max_height: 72,
        ..base.clone()
    };
    assert_eq!(code(&src, &s).await, "resolution-too-high");
    let s = Settings {
        max_frames: 50,
        ..base.clone()
    };
    assert_eq!(code(&src, &s).await, "too-many-frames");
}

#[tokio::test]
async fn pictures_the_engine_cannot_convert() {
    let d = scratch();
    // A logarithmic transfer has no standard display mapping.
    let log = good_clip(d.path(), "log.mkv", "-color_trc log100");
    assert_eq!(
        code(&log, &Settings::default()).await,
        "unsupported-transfer"
    );
    // The same clip tagged BT.709 is fine.
    let sdr = good_clip(d.path(), "sdr.mkv", "-color_trc bt709");
    inspect::inspect(&sdr, &Settings::default()).await.unwrap();
}

/// A video stream whose packets are all there but decode to nothing (the picture data
/// zeroed) is refused with a readable code before any work, not left for an encoder to fail
/// on in a segment later.
#[tokio::test]
async fn a_video_that_decodes_to_zero_frames() {
    let d = scratch();
    let ok = good_clip(d.path(), "ok.mp4", "-movflags +faststart");
    let mut data = std::fs::read(&ok).unwrap();
    let at = data.windows(4).position(|w| w == b"mdat").unwrap() + 4;
    data[at..].fill(0);
    let broken = d.path().join("zeroed.mp4");
    std::fs::write(&broken, data).unwrap();
    let got = code(&broken, &Settings::default()).await;
    assert!(["undecodable", "no-video-frames"].contains(&got), "{got}");
}
