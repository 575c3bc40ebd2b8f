//! Depth once, render many, through the fleet on the local adapters: a converted clip is
//! re-rendered as half SBS through web-ui's API, from the depth its first conversion stored,
//! with no depth model run, and comes out as a half side-by-side video with the original's
//! frame count, duration and audio tracks.

mod common;

use common::*;
use parallax_launcher::Client;
use parallax_testkit::media::probe;

/// Every line the fleet's processes logged.
fn all_logs(scratch: &Scratch) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(entries) = std::fs::read_dir(scratch.data().join("logs")) {
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines
}

/// The engine's "converting" lines of `job`'s segments, and how many said they rendered
/// from stored depth.
fn conversions(logs: &[String], job: &str) -> (usize, usize) {
    let lines: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("\"converting\"") && l.contains(job))
        .collect();
    let stored = lines
        .iter()
        .filter(|l| l.contains("\"stored_depth\":true"))
        .count();
    (lines.len(), stored)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_job_is_rerendered_from_its_stored_depth() {
    let scratch = Scratch::new("e2e-rerender");
    let source = clip(scratch.path(), "holiday.mp4", 5.0).await;
    let src = probe(&source).await.unwrap();
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    let job = client
        .submit(&source, "Holiday at the sea", "full_sbs")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let (_, total) = client.job(&job).await.unwrap().progress();
    let total = total.unwrap();
    assert!(total >= 2, "a 5 s clip in 2 s segments: {total}");

    let again = client
        .rerender(&job, "half_sbs", serde_json::json!({"divergence": 3.0}))
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &again).await;
    let state = client.job(&again).await.unwrap();
    assert_eq!(state.raw["rerender_of"], job.as_str());
    assert_eq!(state.raw["mode"], "half_sbs");
    assert_eq!(
        state.progress(),
        (total, Some(total)),
        "the original's segments"
    );

    let out = client
        .download(&again, &scratch.path().join("out"))
        .await
        .unwrap();
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("holiday-at-the-sea"), "{name}");
    let got = probe(&out).await.unwrap();
    assert_eq!(
        (got.width, got.height),
        (src.width, src.height),
        "half SBS keeps the source's size"
    );
    assert_eq!(got.frames, src.frames, "frame count");
    assert!(
        (got.duration - src.duration).abs() <= 1.0 / 24.0 + 0.03,
        "duration {} vs {}",
        got.duration,
        src.duration
    );
    assert_eq!(
        got.audio_languages,
        vec!["eng", "fra"],
        "every audio track of the original upload"
    );
    assert!(
        video_stream_text(&out)
            .await
            .contains("side_data_type=Stereo 3D\ntype=side by side\n"),
        "the result says it is side by side"
    );

    // The first conversion ran the model on every segment; the re-render on none.
    let logs = all_logs(&scratch);
    let (first, first_stored) = conversions(&logs, &job);
    // (A segment converted twice, after a retry, logs twice.)
    assert!(
        first >= total as usize && first_stored == 0,
        "{first} conversions, {first_stored} from stored depth\n{}",
        fleet.logs()
    );
    let (rerendered, stored) = conversions(&logs, &again);
    assert!(
        rerendered >= total as usize && stored == rerendered,
        "{rerendered} conversions, {stored} from stored depth\n{}",
        fleet.logs()
    );
    fleet.check_alive().unwrap();
    fleet.stop(std::time::Duration::from_secs(20));
}
