//! A preview through the fleet on the local adapters: three short samples spread over the
//! clip are converted (one after the other, without sound) in a fraction of the whole, then
//! "Convert all" converts the preview's upload whole, with its audio tracks.

mod common;

use common::*;
use parallax_launcher::Client;
use parallax_testkit::media::probe;

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_converts_three_samples_then_convert_all_the_whole_clip() {
    let scratch = Scratch::new("e2e-preview");
    let source = clip(scratch.path(), "long-walk.mp4", 12.0).await;
    let src = probe(&source).await.unwrap();
    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());

    let preview = client
        .submit_preview(&source, "A long walk", "full_sbs")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &preview).await;
    let state = client.job(&preview).await.unwrap();
    assert_eq!(state.raw["preview"], true);
    assert_eq!(state.progress().1, Some(3), "three samples");
    let out = client
        .download(&preview, &scratch.path().join("preview"))
        .await
        .unwrap();
    let got = probe(&out).await.unwrap();
    assert!(
        got.audio_languages.is_empty(),
        "a preview has no sound: {:?}",
        got.audio_languages
    );
    assert_eq!(got.width, 2 * src.width, "full side-by-side");
    assert!(
        (5.5..=7.5).contains(&got.duration),
        "three samples of about 2 s: {} s",
        got.duration
    );
    assert!(got.frames < src.frames * 2 / 3, "a fraction of the clip");

    let all = client
        .convert_all(&preview, serde_json::json!({"mode": "half_sbs"}))
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &all).await;
    let state = client.job(&all).await.unwrap();
    assert_eq!(state.raw["upload_of"], preview.as_str());
    let out = client
        .download(&all, &scratch.path().join("all"))
        .await
        .unwrap();
    let got = probe(&out).await.unwrap();
    assert_eq!(got.frames, src.frames, "the whole clip");
    assert_eq!(got.width, src.width, "half side-by-side");
    assert_eq!(got.audio_languages, src.audio_languages, "with its sound");
}
