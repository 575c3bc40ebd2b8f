//! The whole flow on the AWS adapters (S3, SQS, DynamoDB) against moto's server: the same
//! binaries, switched to `STORAGE_ADAPTER=aws`, with S3's own event notification starting
//! chunking and presigned S3 URLs for the upload and the download.
//!
//! `make test` runs this under `infra/local/with-moto.sh`, which starts the emulator and sets
//! PARALLAX_AWS_TEST_ENDPOINT. The test makes its own resources with their own NAME_PREFIX, so
//! it shares nothing with the conformance suite. Without an emulator it fails under CI and
//! is skipped (with a message) elsewhere.

mod common;

use common::*;
use parallax_launcher::fleet::{repo_root, FleetConfig};
use parallax_launcher::Client;
use parallax_testkit::media::probe;

#[tokio::test(flavor = "multi_thread")]
async fn converts_a_clip_end_to_end_on_aws_adapters() {
    let Ok(endpoint) = std::env::var("PARALLAX_AWS_TEST_ENDPOINT") else {
        assert!(
            std::env::var("CI").is_err(),
            "PARALLAX_AWS_TEST_ENDPOINT is not set: run through infra/local/with-moto.sh (make test)"
        );
        eprintln!("skipped: no AWS emulator (run `make test`, which starts moto)");
        return;
    };
    let scratch = Scratch::new("e2e-aws");
    let suffix = uuid_suffix();
    let prefix = format!("e2e{suffix}");
    let bucket = format!("e2e-{suffix}-bucket");
    let python = repo_root().join(".venv/bin/python");
    let status = std::process::Command::new(&python)
        .arg(repo_root().join("infra/local/create_resources.py"))
        .args([
            "--endpoint",
            &endpoint,
            "--name-prefix",
            &prefix,
            "--bucket",
            &bucket,
        ])
        .args(["--visibility-timeout", "30", "--max-receives", "4"])
        .status()
        .expect("running create_resources.py");
    assert!(status.success(), "creating the emulator resources failed");

    let source = clip(scratch.path(), "cloud.mp4", 4.0).await;
    let src = probe(&source).await.unwrap();
    let cfg = FleetConfig::local(scratch.data())
        .with_env("STORAGE_ADAPTER", "aws")
        .with_env("AWS_ENDPOINT_URL", endpoint.as_str())
        .with_env("NAME_PREFIX", prefix.as_str())
        .with_env("S3_BUCKET", bucket.as_str())
        .with_env("QUEUE_VISIBILITY_TIMEOUT_SECS", "30")
        .with_env("SEGMENT_SECS", "2");
    let mut fleet = start(cfg).await;
    let client = Client::new(fleet.url());
    let job = client
        .submit(&source, "Up in the cloud", "full_sbs")
        .await
        .unwrap();
    expect_completed(&mut fleet, &client, &job).await;
    let out = client
        .download(&job, &scratch.path().join("out"))
        .await
        .unwrap();
    assert!(
        out.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("up-in-the-cloud"),
        "{}",
        out.display()
    );
    let got = probe(&out).await.unwrap();
    assert_eq!((got.width, got.height), (2 * src.width, src.height));
    assert_eq!(got.frames, src.frames);
    assert!((got.duration - src.duration).abs() <= 1.0 / 24.0 + 0.03);
    assert_eq!(got.audio_languages, vec!["eng", "fra"]);
    // Nothing of the job lives in DATA_DIR: state is in the emulator.
    assert!(!scratch.data().join("objects/final").exists());
    fleet.check_alive().unwrap();
    fleet.stop(std::time::Duration::from_secs(20));
}

fn uuid_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", nanos % 0xFFFF_FFFF)
}
