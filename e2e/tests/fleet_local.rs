//! The whole flow on the local adapters, through separate processes and web-ui's HTTP API:
//! upload -> chunk -> segments -> convert -> trigger -> reassemble -> download.

mod common;

use common::*;
use parallax_e2e::media::probe;
use parallax_e2e::Client;

#[tokio::test(flavor = "multi_thread")]
async fn converts_a_clip_end_to_end() {
    let scratch = Scratch::new("e2e-local");
    let source = clip(scratch.path(), "holiday.mp4", 5.0).await;
    let src = probe(&source).await.unwrap();
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let job = client
        .submit(&source, "Holiday at the sea", "full_sbs")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let state = client.job(&job).await.unwrap();
    let (done, total) = state.progress();
    assert!(total.unwrap() >= 2, "a 5 s clip in 2 s segments: {total:?}");
    assert_eq!(Some(done), total);
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("holiday-at-the-sea"), "{name}");
    let got = probe(&out).await.unwrap();
    assert_eq!(
        (got.width, got.height),
        (2 * src.width, src.height),
        "full SBS layout"
    );
    assert_eq!(got.frames, src.frames, "frame count");
    assert!(
        (got.duration - src.duration).abs() <= 1.0 / 24.0 + 0.03,
        "duration {} vs {}",
        got.duration,
        src.duration
    );
    assert_eq!(got.audio_languages, vec!["eng", "fra"], "every audio track");
    fleet.check_alive().unwrap();
    fleet.stop(std::time::Duration::from_secs(20));
}

/// Bad uploads fail their jobs with readable reasons; the workers keep running and the next
/// good job completes.
#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_fail_readably_and_lose_nothing() {
    let scratch = Scratch::new("e2e-bad");
    let dir = scratch.path();
    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.mp4");
    std::fs::write(&text, "this is a shopping list, not a video\n".repeat(200)).unwrap();
    let good = clip(dir, "good.mp4", 3.0).await;
    let truncated = dir.join("truncated.mp4");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let audio = dir.join("song.mp4");
    parallax_core::process::ToolCommand::ffmpeg(std::time::Duration::from_secs(60))
        .args(["-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac"])
        .arg(audio.as_os_str())
        .run()
        .await
        .unwrap();

    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    for (file, what) in [
        (&empty, "empty file"),
        (&text, "text file named .mp4"),
        (&truncated, "truncated MP4"),
        (&audio, "audio-only file"),
    ] {
        let job = client.submit(file, what, "full_sbs").await.unwrap();
        let state = wait_done(&mut fleet, &client, &job).await;
        assert_eq!(
            state.status(),
            "failed",
            "{what} did not fail\n{}",
            fleet.logs()
        );
        let (code, message) = state.error().expect("a failed job says why");
        assert!(
            !code.is_empty() && !code.contains(' '),
            "{what}: code {code:?}"
        );
        assert!(
            message.len() > 15 && !message.contains("Backend") && !message.contains("panicked"),
            "{what}: unreadable reason {message:?}"
        );
        fleet.check_alive().unwrap();
    }
    let job = client
        .submit(&good, "the good one", "half_sbs")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    fleet.check_alive().unwrap();
    fleet.stop(std::time::Duration::from_secs(20));
}
