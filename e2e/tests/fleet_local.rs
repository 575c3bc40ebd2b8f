//! The whole flow on the local adapters, through separate processes and web-ui's HTTP API:
//! upload -> chunk -> segments -> convert -> trigger -> reassemble -> download.

mod common;

use common::*;
use parallax_launcher::Client;
use parallax_testkit::media::probe;

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
    assert!(
        video_stream_text(&out)
            .await
            .contains("side_data_type=Stereo 3D\ntype=side by side\n"),
        "the result says it is side by side (MP4 st3d)"
    );
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
    parallax_media::process::ToolCommand::ffmpeg(std::time::Duration::from_secs(60))
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

/// `video-worker convert IN OUT` with the fleet's model, as a user would run it.
async fn convert_single(input: &std::path::Path, output: &std::path::Path) {
    let root = parallax_launcher::fleet::repo_root();
    let mut cmd = std::process::Command::new(
        parallax_launcher::fleet::default_bin_dir().join("video-worker"),
    );
    cmd.current_dir(&root)
        .args(["convert", "--quiet"])
        .arg(input)
        .arg(output);
    if let Some(lib) = parallax_launcher::fleet::venv_onnxruntime(&root) {
        cmd.env("ORT_DYLIB_PATH", lib);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every frame keeps its source time through the fleet (segments, per-segment conversion,
/// reassembly) and through `convert`, for a true variable frame rate whose nominal rate is
/// mislabelled (30 against an average near 21) and for NTSC's 30000/1001; the audio keeps its
/// place, and the fleet's output equals `convert`'s frame for frame in time.
#[tokio::test(flavor = "multi_thread")]
async fn every_frame_keeps_its_time_through_the_fleet_and_convert() {
    use parallax_testkit::media::{
        frame_time_error, frame_times, make_clip, make_vfr_clip, stream_spans, ClipSpec,
    };

    let scratch = Scratch::new("e2e-times");
    let dir = scratch.path();
    let vfr = dir.join("vfr.mp4");
    make_vfr_clip(&vfr, 6.0).await.unwrap();
    let ntsc = dir.join("ntsc.mp4");
    let spec = ClipSpec {
        fps: "30000/1001".into(),
        ..ClipSpec::small(4.0)
    };
    make_clip(&ntsc, &spec).await.unwrap();

    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    for (source, name) in [(&vfr, "vfr"), (&ntsc, "ntsc")] {
        let src_times = frame_times(source).await.unwrap();
        if name == "vfr" {
            // The clip is what it claims to be: irregular gaps, nominal rate far off.
            let gaps: Vec<f64> = src_times.windows(2).map(|w| w[1] - w[0]).collect();
            let (lo, hi) = gaps
                .iter()
                .fold((f64::MAX, 0.0f64), |(l, h), g| (l.min(*g), h.max(*g)));
            assert!(hi > 2.0 * lo, "gaps from {lo} to {hi} s");
        }
        let job = client.submit(source, name, "full_sbs").await.unwrap();
        expect_completed(&mut fleet, &client, &job).await;
        let out = client
            .download(&job, &dir.join(format!("out-{name}")))
            .await
            .unwrap();
        let fleet_times = frame_times(&out).await.unwrap();
        let err = frame_time_error(&src_times, &fleet_times).unwrap();
        assert!(
            err <= 0.001,
            "{name}: fleet frame times off by up to {err} s"
        );

        let single = dir.join(format!("{name}-single.mkv"));
        convert_single(source, &single).await;
        let single_times = frame_times(&single).await.unwrap();
        let err = frame_time_error(&src_times, &single_times).unwrap();
        assert!(
            err <= 0.001,
            "{name}: convert's frame times off by up to {err} s"
        );
        let err = frame_time_error(&fleet_times, &single_times).unwrap();
        assert!(
            err <= 0.001,
            "{name}: the fleet and convert differ by up to {err} s"
        );

        // Audio in sync: it starts where it started against the video and lasts as long.
        let spans = |v: Vec<(String, f64, f64)>| {
            let get = |kind: &str| v.iter().find(|s| s.0 == kind).cloned().unwrap();
            let (a, v) = (get("audio"), get("video"));
            (a.1 - v.1, a.2, v.2)
        };
        let (src_lead, src_audio, src_video) = spans(stream_spans(source).await.unwrap());
        let (out_lead, out_audio, out_video) = spans(stream_spans(&out).await.unwrap());
        assert!(
            (src_lead - out_lead).abs() <= 0.001,
            "{name}: audio lead {out_lead} vs {src_lead}"
        );
        assert!(
            (src_audio - out_audio).abs() <= 0.03,
            "{name}: audio {out_audio} s vs {src_audio} s"
        );
        // The last frame's own display time is the encoder's guess: within the longest gap.
        let longest = src_times
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(0.0, f64::max);
        assert!(
            (src_video - out_video).abs() <= longest + 0.001,
            "{name}: video {out_video} s vs {src_video} s"
        );
    }
    fleet.check_alive().unwrap();
    fleet.stop(std::time::Duration::from_secs(20));
}

/// ffmpeg with `args`, for the test's own sources.
async fn make_source(args: &[&str]) {
    parallax_media::process::ToolCommand::ffmpeg(std::time::Duration::from_secs(300))
        .args(["-v", "error", "-y"])
        .args(args)
        .run()
        .await
        .unwrap();
}

/// One entry of a file's first video stream, as ffprobe prints it.
async fn video_entry(path: &std::path::Path, entry: &str) -> String {
    let out = parallax_media::process::ToolCommand::ffprobe(std::time::Duration::from_secs(60))
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(format!("stream={entry}"))
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .await
        .unwrap();
    // A stream with side data (a stereo output's Stereo 3D) ends with an empty field.
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_end_matches(',')
        .to_owned()
}

/// Pictures through the fleet: HDR10 (PQ, with mastering metadata) and HLG sources come out
/// tone-mapped to 8-bit BT.709 SDR, a full-range source at limited range, an interlaced one
/// deinterlaced, each job saying what was done; a transfer the engine cannot map fails its
/// job with `unsupported-transfer`, whether refused at upload (Matroska, probed by ffprobe)
/// or by the segment worker (MP4, read in-process).
#[tokio::test(flavor = "multi_thread")]
async fn pictures_keep_their_meaning_through_the_fleet() {
    let scratch = Scratch::new("e2e-picture");
    let dir = scratch.path();
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let src = "testsrc2=size=320x180:rate=25:duration=3";
    let audio = "sine=frequency=440:sample_rate=48000:duration=3";
    let pq = "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:\
              master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400";
    make_source(&[
        "-f",
        "lavfi",
        "-i",
        src,
        "-f",
        "lavfi",
        "-i",
        audio,
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        pq,
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "smpte2084",
        "-colorspace",
        "bt2020nc",
        "-c:a",
        "aac",
        &p("hdr10.mp4"),
    ])
    .await;
    let hlg = "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc";
    make_source(&[
        "-f",
        "lavfi",
        "-i",
        src,
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        hlg,
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "arib-std-b67",
        "-colorspace",
        "bt2020nc",
        &p("hlg.mp4"),
    ])
    .await;
    make_source(&[
        "-f",
        "lavfi",
        "-i",
        src,
        "-vf",
        "scale=out_range=pc",
        "-pix_fmt",
        "yuvj420p",
        "-color_range",
        "pc",
        "-c:v",
        "libx264",
        &p("full.mp4"),
    ])
    .await;
    make_source(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=50:duration=3",
        "-vf",
        "tinterlace=mode=interleave_top,fieldorder=tff,format=yuv420p",
        "-c:v",
        "libx264",
        "-flags",
        "+ildct+ilme",
        "-x264-params",
        "tff=1",
        &p("interlaced.mp4"),
    ])
    .await;
    for name in ["log.mkv", "log.mp4"] {
        make_source(&[
            "-f",
            "lavfi",
            "-i",
            src,
            "-pix_fmt",
            "yuv420p",
            "-color_trc",
            "log100",
            "-c:v",
            "libx264",
            &p(name),
        ])
        .await;
    }

    let mut fleet = start(local_config(&scratch)).await;
    let client = Client::new(fleet.url());
    // HDR10 kept: x265 main10 with its tags and mastering metadata, through segments and
    // reassembly.
    let kept = client
        .submit_with(
            &dir.join("hdr10.mp4"),
            "hdr10-kept",
            "full_sbs",
            serde_json::json!({"encoder": "libx265"}),
        )
        .await
        .unwrap();
    let good = [
        (
            "hdr10.mp4",
            "HDR10 (PQ) source: tone-mapped",
            "yuv420p,tv,bt709,bt709,bt709",
        ),
        (
            "hlg.mp4",
            "HLG source: tone-mapped",
            "yuv420p,tv,bt709,bt709,bt709",
        ),
        ("full.mp4", "full-range source", "yuv420p,tv"),
        (
            "interlaced.mp4",
            "deinterlaced (bwdif",
            "yuv420p,progressive",
        ),
    ];
    let mut jobs = Vec::new();
    for (name, _, _) in &good {
        jobs.push(
            client
                .submit(&dir.join(name), name, "full_sbs")
                .await
                .unwrap(),
        );
    }
    let mut bad = Vec::new();
    for name in ["log.mkv", "log.mp4"] {
        bad.push(
            client
                .submit(&dir.join(name), name, "full_sbs")
                .await
                .unwrap(),
        );
    }
    for ((name, note, tags), job) in good.iter().zip(&jobs) {
        expect_completed(&mut fleet, &client, job).await;
        let state = client.job(job).await.unwrap();
        let notes: Vec<String> = state.raw["notes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            notes.iter().any(|n| n.contains(note)),
            "{name}: notes {notes:?}"
        );
        let out = client
            .download(job, &dir.join(format!("out-{name}")))
            .await
            .unwrap();
        let entries = match *name {
            "full.mp4" => "pix_fmt,color_range",
            "interlaced.mp4" => "pix_fmt,field_order",
            _ => "pix_fmt,color_range,color_space,color_transfer,color_primaries",
        };
        let got = video_entry(&out, entries).await;
        // MP4 writes no field order for progressive video.
        let got = if *name == "interlaced.mp4" && got == "yuv420p,unknown" {
            "yuv420p,progressive".to_owned()
        } else {
            got
        };
        assert_eq!(&got, tags, "{name}");
    }
    expect_completed(&mut fleet, &client, &kept).await;
    let out = client
        .download(&kept, &dir.join("out-hdr10-kept"))
        .await
        .unwrap();
    assert_eq!(
        video_entry(
            &out,
            "profile,pix_fmt,color_range,color_space,color_transfer,color_primaries"
        )
        .await,
        "Main 10,yuv420p10le,tv,bt2020nc,smpte2084,bt2020"
    );
    let side = parallax_media::process::ToolCommand::ffprobe(std::time::Duration::from_secs(60))
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args(["-show_entries", "frame_side_data_list", "-of", "flat"])
        .arg(&out)
        .output()
        .await
        .unwrap();
    let side = String::from_utf8_lossy(&side.stdout);
    for want in [
        "red_x=\"34000/50000\"",
        "max_luminance=\"10000000/10000\"",
        "max_content=1000",
        "max_average=400",
    ] {
        assert!(side.contains(want), "{want} missing in\n{side}");
    }
    for (job, name) in bad.iter().zip(["log.mkv", "log.mp4"]) {
        let state = wait_done(&mut fleet, &client, job).await;
        assert_eq!(state.status(), "failed", "{name}");
        let (code, message) = state.error().unwrap();
        assert_eq!(code, "unsupported-transfer", "{name}: {message}");
        assert!(message.contains("log100"), "{name}: {message}");
    }
    fleet.check_alive().unwrap();
    fleet.stop(std::time::Duration::from_secs(20));
}
