//! The whole conformance suite against the AWS adapters (S3, SQS, DynamoDB), on an emulator.
//!
//! `infra/local/with-moto.sh` (which `make test` uses) starts moto's server, creates the
//! resources exactly as a deployment names them (infra/local/create_resources.py) and sets
//! `PARALLAX_AWS_TEST_ENDPOINT`, `PARALLAX_AWS_TEST_NAME_PREFIX` and `PARALLAX_AWS_TEST_BUCKET`.
//! Without them these tests fail with instructions rather than pass without testing anything.
//!
//! The adapters are built by the real factory (`Backends::from_config` with
//! `STORAGE_ADAPTER=aws`), start-up health check included; presigned URLs are fetched over real
//! HTTP. Known emulator gaps: moto accepts any presigned signature and expiry, so
//! `presign_rejects_tampered_expired_wrong_method` checks nothing here (S3 checks its own URLs).
#![cfg(feature = "aws")]

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use parallax_core::aws::AwsClients;
use parallax_core::backends::{Backends, QueueHandle};
use parallax_core::completions::SegmentCompletionStore;
use parallax_core::config::{AdapterKind, CommonArgs};
use parallax_core::conformance::{unique, Harness, HttpResponse};
use parallax_core::jobs::JobStore;
use parallax_core::keys::QueueName;
use parallax_core::links::OperatorLinksProvider;
use parallax_core::queue::aws::SqsQueue;
use parallax_core::queue::{QueueReceiver, QueueSettings};
use parallax_core::storage::presign::Presigner;
use parallax_core::storage::ObjectStorage;
use parallax_core::{Error, Result};

/// The AWS adapters against the emulator the environment names.
struct AwsHarness {
    backends: Backends,
    clients: AwsClients,
    prefix: String,
    http: reqwest::Client,
    /// Held for the test's lifetime (see [`emulator_turn`]).
    _turn: std::fs::File,
}

/// The 200 MiB streaming test keeps moto (one Python process) busy enough to delay other
/// requests by a second, which the queue tests' one-second visibility timeouts cannot absorb.
/// So that test runs alone: it takes an exclusive lock on a file named after the emulator's
/// endpoint, every other test a shared one. (nextest runs each test in its own process; the
/// test's name is its thread's name.)
fn emulator_turn(endpoint: &str) -> std::fs::File {
    let tag: String = endpoint
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = std::env::temp_dir().join(format!("parallax-aws-tests-{tag}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("lock file {}: {e}", path.display()));
    let alone = std::thread::current()
        .name()
        .is_some_and(|n| n.ends_with("large_object_streams_in_bounded_memory"));
    let locked = if alone {
        file.lock()
    } else {
        file.lock_shared()
    };
    locked.unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn harness() -> AwsHarness {
    let Some(endpoint) = env("PARALLAX_AWS_TEST_ENDPOINT") else {
        let ci = env("CI").is_some_and(|v| v == "true");
        panic!(
            "PARALLAX_AWS_TEST_ENDPOINT is not set{}: these tests need an AWS emulator. Run them \
             as `infra/local/with-moto.sh cargo nextest run -p parallax-core --features aws` \
             (or `make test`), which starts moto on a free loopback port and creates the \
             resources.",
            if ci { " in CI" } else { "" }
        );
    };
    let turn = tokio::task::block_in_place(|| emulator_turn(&endpoint));
    let prefix = env("PARALLAX_AWS_TEST_NAME_PREFIX").expect("PARALLAX_AWS_TEST_NAME_PREFIX");
    let bucket = env("PARALLAX_AWS_TEST_BUCKET").expect("PARALLAX_AWS_TEST_BUCKET");
    let mut args = CommonArgs::local("unused-by-the-aws-adapters");
    args.storage_adapter = AdapterKind::Aws;
    args.aws_endpoint_url = Some(endpoint.clone());
    args.name_prefix = prefix.clone();
    args.s3_bucket = Some(bucket);
    let backends = Backends::from_config(&args)
        .await
        .expect("AWS backends against the emulator");
    let clients = AwsClients::new(Some(&endpoint)).await.expect("AWS clients");
    AwsHarness {
        backends,
        clients,
        prefix,
        http: reqwest::Client::new(),
        _turn: turn,
    }
}

fn sqs_error(e: impl std::fmt::Display) -> Error {
    Error::backend("sqs", e.to_string())
}

#[async_trait]
impl Harness for AwsHarness {
    fn jobs(&self) -> Arc<dyn JobStore> {
        self.backends.jobs.clone()
    }
    fn completions(&self) -> Arc<dyn SegmentCompletionStore> {
        self.backends.completions.clone()
    }
    fn storage(&self) -> Arc<dyn ObjectStorage> {
        self.backends.storage.clone()
    }
    fn links(&self) -> Arc<dyn OperatorLinksProvider> {
        self.backends.links.clone()
    }
    fn upload_events(&self) -> Arc<dyn QueueReceiver> {
        self.backends.queue(QueueName::Chunking).receiver.clone()
    }

    /// A fresh queue pair made the way infra/ makes them: a dead-letter queue, and a queue
    /// whose redrive policy sends a message there after `max_receives` receives.
    async fn queue(&self, settings: QueueSettings) -> Result<QueueHandle> {
        let sqs = &self.clients.sqs;
        let name = format!("{}-{}", self.prefix, unique("test"));
        let dlq_name = format!("{name}-dlq");
        let dlq_url = sqs
            .create_queue()
            .queue_name(&dlq_name)
            .send()
            .await
            .map_err(sqs_error)?
            .queue_url
            .expect("dlq url");
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_error)?;
        let dlq_arn = attrs
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("dlq arn");
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": settings.max_receives,
        });
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout.as_secs().to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(sqs_error)?
            .queue_url
            .expect("queue url");
        let main = Arc::new(SqsQueue::new(sqs.clone(), name, url, settings));
        let dead = Arc::new(SqsQueue::new(sqs.clone(), dlq_name, dlq_url, settings));
        Ok(QueueHandle {
            sender: main.clone(),
            receiver: main,
            dead_letters: dead,
        })
    }

    async fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::invalid("method", e.to_string()))?;
        let mut req = self.http.request(method, url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::backend("http", e.to_string()))?;
        let status = resp.status().as_u16();
        let content_disposition = resp
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::backend("http", e.to_string()))?
            .to_vec();
        Ok(HttpResponse {
            status,
            body,
            content_disposition,
        })
    }

    fn presigner(&self) -> Option<Presigner> {
        None
    }
}

parallax_core::conformance_tests!(harness);

/// The factory refuses a missing bucket with the setting named, before any network call.
#[tokio::test(flavor = "multi_thread")]
async fn aws_adapter_without_bucket_names_the_setting() {
    let mut args = CommonArgs::local("unused");
    args.storage_adapter = AdapterKind::Aws;
    let err = Backends::from_config(&args).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                what: "S3_BUCKET",
                ..
            }
        ),
        "{err}"
    );
}

/// A deployment whose resources do not exist fails at start-up with the resource named.
#[tokio::test(flavor = "multi_thread")]
async fn health_check_names_the_missing_resource() {
    let h = harness().await;
    let mut args = CommonArgs::local("unused");
    args.storage_adapter = AdapterKind::Aws;
    args.aws_endpoint_url = env("PARALLAX_AWS_TEST_ENDPOINT");
    args.name_prefix = h.prefix.clone();
    args.s3_bucket = Some(format!("{}-no-such-bucket", h.prefix.to_lowercase()));
    let err = Backends::from_config(&args).await.unwrap_err().to_string();
    assert!(err.contains("no-such-bucket"), "{err}");
    args.s3_bucket = env("PARALLAX_AWS_TEST_BUCKET");
    args.name_prefix = format!("{}-other", h.prefix);
    let err = Backends::from_config(&args).await.unwrap_err().to_string();
    assert!(err.contains(&format!("{}-other-jobs", h.prefix)), "{err}");
}

/// Every queue and dead-letter queue of the flow exists with the redrive policy a deployment
/// gives it, so poison messages of the real queues end in their dead-letter queues.
#[tokio::test(flavor = "multi_thread")]
async fn flow_queues_have_their_dead_letter_queues() {
    let h = harness().await;
    for q in QueueName::ALL {
        let name = format!("{}-{}", h.prefix, q.as_str());
        let url = h
            .clients
            .sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let attrs = h
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
        let target = policy["deadLetterTargetArn"].as_str().unwrap();
        assert!(
            target.ends_with(&format!(":{name}-dlq")),
            "{name}: {policy}"
        );
        assert!(policy["maxReceiveCount"].as_u64().unwrap() >= 1);
    }
}
