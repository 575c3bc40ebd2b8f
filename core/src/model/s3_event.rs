//! S3's event notification JSON, exactly as a bucket notification delivers it to SQS, so that
//! the media-worker reads the same body on AWS and locally.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An S3 event notification (`{"Records": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3EventNotification {
    /// The events.
    #[serde(rename = "Records")]
    pub records: Vec<S3EventRecord>,
}

/// One event of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    /// `2.1` for current S3.
    #[serde(default)]
    pub event_version: String,
    /// `aws:s3`.
    #[serde(default)]
    pub event_source: String,
    /// Region of the bucket.
    #[serde(default)]
    pub aws_region: String,
    /// When the event happened.
    pub event_time: DateTime<Utc>,
    /// E.g. `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`.
    pub event_name: String,
    /// The bucket and object.
    pub s3: S3Entity,
}

/// The `s3` part of an event record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    /// `1.0`.
    #[serde(default)]
    pub s3_schema_version: String,
    /// The notification configuration's id.
    #[serde(default)]
    pub configuration_id: String,
    /// The bucket.
    pub bucket: S3Bucket,
    /// The object.
    pub object: S3Object,
}

/// The bucket of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Bucket {
    /// Bucket name.
    pub name: String,
    /// Bucket ARN.
    #[serde(default)]
    pub arn: String,
}

/// The object of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Object {
    /// The key, URL-encoded as S3 sends it (spaces as `+`). Use [`S3Object::decoded_key`].
    pub key: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// ETag.
    #[serde(default)]
    pub e_tag: Option<String>,
    /// Orders events for the same key.
    #[serde(default)]
    pub sequencer: Option<String>,
}

impl S3Object {
    /// The key with S3's form encoding undone (`+` is a space, `%XX` a byte).
    pub fn decoded_key(&self) -> String {
        let plus = self.key.replace('+', " ");
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8_lossy()
            .into_owned()
    }
}

impl S3EventNotification {
    /// The notification S3 sends when `key` is created in `bucket` by a PUT.
    pub fn object_created(bucket: &str, key: &str, size: u64) -> Self {
        let encoded: String =
            url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>();
        // S3 keeps '/' unencoded in event keys.
        let encoded = encoded.replace("%2F", "/");
        Self {
            records: vec![S3EventRecord {
                event_version: "2.1".to_owned(),
                event_source: "aws:s3".to_owned(),
                aws_region: "local".to_owned(),
                event_time: Utc::now(),
                event_name: "ObjectCreated:Put".to_owned(),
                s3: S3Entity {
                    s3_schema_version: "1.0".to_owned(),
                    configuration_id: "uploads".to_owned(),
                    bucket: S3Bucket {
                        name: bucket.to_owned(),
                        arn: format!("arn:aws:s3:::{bucket}"),
                    },
                    object: S3Object {
                        key: encoded,
                        size: Some(size),
                        e_tag: None,
                        sequencer: Some(format!("{:016X}", Utc::now().timestamp_micros())),
                    },
                },
            }],
        }
    }
}

/// The test event S3 sends once when a notification configuration is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3TestEvent {
    /// `Amazon S3`.
    #[serde(default)]
    pub service: String,
    /// `s3:TestEvent`.
    pub event: String,
    /// When.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// The bucket.
    #[serde(default)]
    pub bucket: String,
    /// Request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Host id.
    #[serde(default)]
    pub host_id: Option<String>,
}
