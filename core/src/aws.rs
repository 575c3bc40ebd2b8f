//! The one place that talks to AWS before the adapters do: it builds the S3, SQS and DynamoDB
//! clients (with an endpoint override for emulators such as moto or LocalStack, and path-style
//! S3 addressing there), names every resource a deployment creates, and checks at start-up that
//! those resources answer, so that a wrong bucket, region or credential shows up as one clear
//! error instead of a failing first job.
//!
//! The names here are the contract with `infra/` (CloudFormation and the emulator set-up):
//! change one and change them all.

use std::collections::HashMap;
use std::fmt::Display;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::keys::QueueName;

/// The services whose processes log to their own log group.
pub const SERVICES: [&str; 3] = ["web-ui", "media-worker", "video-worker"];

/// The cost-allocation tag key every deployed resource carries (its value is NAME_PREFIX).
pub const COST_TAG_KEY: &str = "app";

/// The jobs table's index for in-progress and failed listings: partition `status`, sort
/// `created_us` (creation time in microseconds).
pub const JOBS_BY_CREATED_INDEX: &str = "status-created-index";

/// The jobs table's sparse index for completed listings: partition `status`, sort
/// `completed_sk` (`{completed_at µs, 20 digits}#{job_id}`), present only on completed jobs.
pub const JOBS_BY_COMPLETED_INDEX: &str = "status-completed-index";

/// Every AWS resource name of a deployment, derived from NAME_PREFIX and S3_BUCKET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    prefix: String,
    bucket: String,
}

impl ResourceNames {
    /// Names for `prefix` (letters, digits, `-` and `_`; at most 40 characters, so that every
    /// derived queue and table name stays within AWS's limits) and `bucket`.
    pub fn new(prefix: &str, bucket: &str) -> Result<Self> {
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok {
            return Err(Error::invalid(
                "NAME_PREFIX",
                format!(
                    "{prefix:?}: use 1 to 40 letters, digits, '-' or '_' (it starts every queue, table and log group name)"
                ),
            ));
        }
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(Error::invalid(
                "S3_BUCKET",
                format!("{bucket:?} is not a valid bucket name (3 to 63 lowercase letters, digits, '-' or '.')"),
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            bucket: bucket.to_owned(),
        })
    }

    /// NAME_PREFIX.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The SQS queue of `queue`: `{prefix}-{name}`.
    pub fn queue(&self, queue: QueueName) -> String {
        format!("{}-{}", self.prefix, queue.as_str())
    }

    /// Its dead-letter queue: `{prefix}-{name}-dlq`.
    pub fn dead_letter_queue(&self, queue: QueueName) -> String {
        format!("{}-{}", self.prefix, queue.dlq())
    }

    /// The jobs table: `{prefix}-jobs`.
    pub fn jobs_table(&self) -> String {
        format!("{}-jobs", self.prefix)
    }

    /// The segment completions table: `{prefix}-segment-completions`.
    pub fn completions_table(&self) -> String {
        format!("{}-segment-completions", self.prefix)
    }

    /// The log group of `service` (one of [`SERVICES`]): `/{prefix}/{service}`.
    pub fn log_group(&self, service: &str) -> String {
        format!("/{}/{service}", self.prefix)
    }
}

/// The S3, SQS and DynamoDB clients, built once from the standard AWS configuration chain
/// (environment, profile, container or instance role).
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// S3 (path-style addressing when an endpoint override is set).
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The region the clients talk to.
    pub region: String,
}

impl AwsClients {
    /// Loads the AWS configuration and builds the clients. `endpoint_url` overrides every
    /// service's endpoint (an emulator); S3 then uses path-style addressing, which emulators
    /// on `localhost` need.
    pub async fn new(endpoint_url: Option<&str>) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = endpoint_url {
            url::Url::parse(url).map_err(|e| {
                Error::invalid("AWS_ENDPOINT_URL", format!("{url:?} is not a URL: {e}"))
            })?;
            loader = loader.endpoint_url(url);
        }
        let config: SdkConfig = loader.load().await;
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::invalid(
                "AWS_REGION",
                "no AWS region is configured: set AWS_REGION (or a region in the AWS profile)",
            )
        })?;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(endpoint_url.is_some())
            .build();
        Ok(Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            region,
        })
    }

    /// The cheap start-up check: the bucket and both tables answer, and every queue and
    /// dead-letter queue exists. Returns the queue URLs by queue name. Each failure names the
    /// resource and says what to do.
    pub async fn check(&self, names: &ResourceNames) -> Result<HashMap<String, String>> {
        let hint = "create the resources first (infra/cloudformation or infra/local) and check \
                    AWS_REGION, credentials and NAME_PREFIX";
        self.s3
            .head_bucket()
            .bucket(names.bucket())
            .send()
            .await
            .map_err(|e| sdk_error("s3", format!("bucket {} ({hint})", names.bucket()), e))?;
        for table in [names.jobs_table(), names.completions_table()] {
            self.dynamodb
                .describe_table()
                .table_name(&table)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", format!("table {table} ({hint})"), e))?;
        }
        let queue_names = QueueName::ALL
            .into_iter()
            .flat_map(|q| [names.queue(q), names.dead_letter_queue(q)]);
        let lookups = queue_names.map(|name| async move {
            let out = self
                .sqs
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| sdk_error("sqs", format!("queue {name} ({hint})"), e))?;
            let url = out.queue_url.ok_or_else(|| {
                Error::backend("sqs", format!("GetQueueUrl for {name} returned no URL"))
            })?;
            Ok::<_, Error>((name, url))
        });
        futures::future::try_join_all(lookups)
            .await
            .map(|v| v.into_iter().collect())
    }
}

/// Maps an SDK error onto [`Error::Backend`], keeping the whole cause chain in the message
/// (the SDK's own `Display` says only "service error").
pub(crate) fn sdk_error<E, R>(
    backend: &'static str,
    context: impl Display,
    err: aws_sdk_s3::error::SdkError<E, R>,
) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::backend(
        backend,
        format!(
            "{context}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&err)
        ),
    )
}

/// The service error code of an SDK error (`ConditionalCheckFailedException`, ...), if the
/// service answered at all.
pub(crate) fn error_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// A serde value as a DynamoDB item: each top-level field becomes an attribute (`null`s are
/// left out), strings `S`, numbers `N`, booleans `BOOL`, objects `M`, arrays `L`. Fields added
/// to a model later are stored without any change here.
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>> {
    match serde_json::to_value(value).map_err(|e| Error::backend("dynamodb", e))? {
        Value::Object(map) => Ok(map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, to_attribute(&v)))
            .collect()),
        other => Err(Error::backend(
            "dynamodb",
            format!("an item must be an object, not {other}"),
        )),
    }
}

/// The inverse of [`to_item`]; attributes the model does not know are ignored by serde.
pub(crate) fn from_item<T: DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> Result<T> {
    let map = item
        .iter()
        .map(|(k, v)| Ok((k.clone(), from_attribute(v)?)))
        .collect::<Result<serde_json::Map<_, _>>>()?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| Error::backend("dynamodb", format!("stored item does not parse: {e}")))
}

/// One JSON value as an attribute value.
pub(crate) fn to_attribute(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attribute).collect()),
        Value::Object(o) => AttributeValue::M(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

fn from_attribute(a: &AttributeValue) -> Result<Value> {
    Ok(match a {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => parse_number(n)?,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attribute).collect::<Result<_>>()?),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_attribute(v)?)))
                .collect::<Result<_>>()?,
        ),
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => {
            Value::Array(ns.iter().map(|n| parse_number(n)).collect::<Result<_>>()?)
        }
        other => {
            return Err(Error::backend(
                "dynamodb",
                format!("unsupported attribute type in stored item: {other:?}"),
            ))
        }
    })
}

fn parse_number(n: &str) -> Result<Value> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(Value::from(u));
    }
    n.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| Error::backend("dynamodb", format!("stored number {n:?} does not parse")))
}

/// A numeric attribute.
pub(crate) fn num(n: impl Display) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A string attribute.
pub(crate) fn string(s: impl Into<String>) -> AttributeValue {
    AttributeValue::S(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversionSettings, Job, JobError, StereoMode};

    #[test]
    fn names_follow_the_deployment_scheme() {
        let n = ResourceNames::new("px", "my-bucket").unwrap();
        assert_eq!(n.queue(QueueName::SegmentOutput), "px-segment-output");
        assert_eq!(n.dead_letter_queue(QueueName::Chunking), "px-chunking-dlq");
        assert_eq!(n.jobs_table(), "px-jobs");
        assert_eq!(n.completions_table(), "px-segment-completions");
        assert_eq!(n.log_group("web-ui"), "/px/web-ui");
    }

    /// The deployment (CloudFormation) and the emulator set-up create what these names say.
    #[test]
    fn infra_creates_the_resources_under_these_names() {
        let template = include_str!("../../infra/cloudformation/parallax.yaml");
        let emulator = include_str!("../../infra/local/create_resources.py");
        let n = ResourceNames::new("PREFIX", "bucket").unwrap();
        let cfn = |name: String| name.replace("PREFIX", "${NamePrefix}");
        let mut expected = vec![
            n.jobs_table(),
            n.completions_table(),
            JOBS_BY_CREATED_INDEX.to_owned(),
            JOBS_BY_COMPLETED_INDEX.to_owned(),
        ];
        for q in QueueName::ALL {
            expected.push(n.queue(q));
            expected.push(n.dead_letter_queue(q));
        }
        for name in &expected {
            assert!(
                template.contains(&format!("\"{}\"", cfn(name.clone())))
                    || template.contains(&format!("IndexName: {name}")),
                "{name} is not in infra/cloudformation/parallax.yaml"
            );
        }
        for s in SERVICES {
            let group = cfn(n.log_group(s));
            assert!(
                template.contains(&format!("LogGroupName: !Sub \"{group}\"")),
                "{group}"
            );
        }
        assert!(template.contains(&format!("Key: {COST_TAG_KEY}, Value: !Ref NamePrefix")));
        assert!(
            template.contains("Value: uploads/"),
            "upload notification filter"
        );
        for name in [
            "{prefix}-jobs",
            "{prefix}-segment-completions",
            "{prefix}-{name}-dlq",
            "{prefix}-{name}",
            JOBS_BY_CREATED_INDEX,
            JOBS_BY_COMPLETED_INDEX,
        ] {
            assert!(
                emulator.contains(name),
                "{name} is not in create_resources.py"
            );
        }
        for q in QueueName::ALL {
            assert!(emulator.contains(&format!("\"{}\"", q.as_str())), "{q}");
        }
        assert!(emulator.contains(&format!(
            "UPLOADS_PREFIX = \"{}\"",
            crate::keys::UPLOADS_PREFIX
        )));
    }

    #[test]
    fn bad_names_are_refused_with_the_setting_named() {
        for (prefix, bucket, what) in [
            ("", "b-ok", "NAME_PREFIX"),
            ("has space", "b-ok", "NAME_PREFIX"),
            ("ok", "Upper", "S3_BUCKET"),
            ("ok", "x", "S3_BUCKET"),
        ] {
            match ResourceNames::new(prefix, bucket) {
                Err(Error::InvalidInput { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{prefix:?}/{bucket:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn items_round_trip_every_job_field() {
        let mut job = Job::new(
            "Ünïcode \"title\"",
            StereoMode::Anaglyph,
            ConversionSettings::default(),
        );
        job.settings.divergence = 3.25;
        job.settings.depth_resolution = Some(518);
        job.source_file_size_bytes = Some(123_456_789_012);
        job.total_segments = Some(0);
        job.error = Some(JobError::new("bad-input", "no video stream"));
        let item = to_item(&job).unwrap();
        assert!(matches!(item.get("total_segments"), Some(AttributeValue::N(n)) if n == "0"));
        assert!(!item.contains_key("completed_at"), "nulls are left out");
        let back: Job = from_item(&item).unwrap();
        assert_eq!(back, job);
    }
}
