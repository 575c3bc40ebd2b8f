use super::*;
use chrono::Utc;

fn round_trip<T>(v: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

#[test]
fn job_round_trips_through_json() {
    let mut job = Job::new(
        "my <video>",
        StereoMode::Anaglyph,
        ConversionSettings::default(),
    );
    job.total_segments = Some(3);
    job.uploaded_at = Some(Utc::now());
    job.error = Some(JobError::new(
        "too-long",
        "The video is longer than 2 hours.",
    ));
    assert_eq!(round_trip(&job), job);
    let item = JobListItem::from(&job);
    assert_eq!(round_trip(&item), item);
    let json = serde_json::to_value(&job).unwrap();
    assert_eq!(json["status"], "awaiting_upload");
    assert_eq!(json["mode"], "anaglyph");
}

#[test]
fn old_job_json_without_new_fields_still_reads() {
    let json = r#"{"job_id":"j","status":"chunking","created_at":"2026-01-01T00:00:00Z"}"#;
    let job: Job = serde_json::from_str(json).unwrap();
    assert_eq!(job.mode, StereoMode::FullSbs);
    assert_eq!(job.settings, ConversionSettings::default());
    assert_eq!(job.title, "");
    assert_eq!(job.rerender_of, None);
}

#[test]
fn a_rerender_job_names_its_source_job() {
    let mut job = Job::new("again", StereoMode::HalfSbs, ConversionSettings::default());
    assert_eq!(
        serde_json::to_value(&job).unwrap().get("rerender_of"),
        None,
        "not written for an ordinary job"
    );
    job.rerender_of = Some("original".into());
    assert_eq!(round_trip(&job), job);
    assert_eq!(
        serde_json::to_value(&job).unwrap()["rerender_of"],
        "original"
    );
}

#[test]
fn messages_round_trip_and_tolerate_missing_fields() {
    let task = SegmentTask {
        job_id: "j".into(),
        segment_index: 4,
        total_segments: 9,
        source_key: crate::keys::segment("j", 4),
        output_key: crate::keys::output("j", 4),
        first_frame: 1200,
        frame_count: 300,
        mode: StereoMode::HalfTb,
        settings: ConversionSettings::default(),
        seam: DepthSeam {
            prev_source_key: Some(crate::keys::segment("j", 3)),
            warmup_frames: 12,
        },
        depth_key: None,
    };
    assert_eq!(round_trip(&task), task);
    let rerender = SegmentTask {
        depth_key: Some(crate::keys::depth("original", 4)),
        ..task.clone()
    };
    assert_eq!(round_trip(&rerender), rerender);
    let minimal: SegmentTask = serde_json::from_str(
        r#"{"job_id":"j","segment_index":0,"total_segments":1,"source_key":"s","output_key":"o","unknown_future_field":1}"#,
    )
    .unwrap();
    assert_eq!(minimal.seam, DepthSeam::default());
    assert_eq!(minimal.depth_key, None);
    let out = SegmentOutput {
        job_id: "j".into(),
        segment_index: 2,
        output_key: "o".into(),
        frame_count: 10,
    };
    assert_eq!(round_trip(&out), out);
    let req = ReassemblyRequest {
        job_id: "j".into(),
        total_segments: Some(3),
    };
    assert_eq!(round_trip(&req), req);
    let c = SegmentCompletion {
        job_id: "j".into(),
        segment_index: 1,
        output_uri: "outputs/j/00001.mkv".into(),
        completed_at: Utc::now(),
        frame_count: None,
    };
    assert_eq!(round_trip(&c), c);
}

#[test]
fn real_s3_notification_parses() {
    // As S3 delivers it to SQS (key URL-encoded, spaces as '+').
    let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
      "eventTime":"2026-11-26T10:00:00.000Z","eventName":"ObjectCreated:CompleteMultipartUpload",
      "userIdentity":{"principalId":"AWS:XYZ"},"requestParameters":{"sourceIPAddress":"1.2.3.4"},
      "responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},
      "s3":{"s3SchemaVersion":"1.0","configurationId":"uploads","bucket":{"name":"b",
      "ownerIdentity":{"principalId":"P"},"arn":"arn:aws:s3:::b"},
      "object":{"key":"uploads/job-1/source","size":1024,"eTag":"e","sequencer":"00"}}}]}"#;
    let msg = ChunkingMessage::parse(body).unwrap();
    assert_eq!(msg.job_ids(), vec!["job-1".to_owned()]);
    let spaced = S3Object {
        key: "final/j/my+movie%283d%29.mp4".into(),
        size: None,
        e_tag: None,
        sequencer: None,
    };
    assert_eq!(spaced.decoded_key(), "final/j/my movie(3d).mp4");
}

#[test]
fn s3_test_event_and_plain_job_parse() {
    let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T10:00:00.000Z",
      "Bucket":"b","RequestId":"R","HostId":"H"}"#;
    let msg = ChunkingMessage::parse(test).unwrap();
    assert!(matches!(msg, ChunkingMessage::Test(_)));
    assert!(msg.job_ids().is_empty());
    let plain = ChunkingMessage::parse(r#"{"job_id":"abc"}"#).unwrap();
    assert_eq!(plain.job_ids(), vec!["abc".to_owned()]);
    assert!(ChunkingMessage::parse("not json").is_err());
    assert!(ChunkingMessage::parse(r#"{"hello":1}"#).is_err());
}

#[test]
fn generated_event_round_trips_with_awkward_keys() {
    let key = "uploads/j 1/source";
    let ev = S3EventNotification::object_created("b", key, 5);
    let body = serde_json::to_string(&ev).unwrap();
    let msg = ChunkingMessage::parse(&body).unwrap();
    assert_eq!(msg.job_ids(), vec!["j 1".to_owned()]);
}

#[test]
fn status_only_moves_forward() {
    use JobStatus::*;
    assert!(AwaitingUpload.can_become(Uploaded));
    assert!(
        AwaitingUpload.can_become(Chunking),
        "event may overtake the PATCH"
    );
    assert!(
        Chunking.can_become(Chunking),
        "a redelivered step may re-run"
    );
    assert!(ChunkingComplete.can_become(Failed));
    assert!(!ChunkingComplete.can_become(Chunking));
    assert!(!Completed.can_become(Failed));
    assert!(!Failed.can_become(Uploaded));
    let mut job = Job::new("t", StereoMode::FullSbs, ConversionSettings::default());
    job.apply(&JobUpdate::status(Reassembling)).unwrap();
    let err = job.apply(&JobUpdate::status(Uploaded)).unwrap_err();
    assert!(
        err.to_string().contains("reassembling -> uploaded"),
        "{err}"
    );
    job.apply(&JobUpdate::status(Completed)).unwrap();
    assert!(job.apply(&JobUpdate::status(Completed)).is_err());
}

#[test]
fn settings_are_validated_with_readable_reasons() {
    assert!(ConversionSettings::default().validate().is_ok());
    let s = ConversionSettings {
        divergence: 50.0,
        ..Default::default()
    };
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("3D strength"));
    let s = ConversionSettings {
        encoder: "rm -rf".into(),
        ..Default::default()
    };
    assert!(s.validate().is_err());
    assert_eq!(StereoMode::parse("half-sbs").unwrap(), StereoMode::HalfSbs);
    assert!(StereoMode::parse("3d").is_err());
}
