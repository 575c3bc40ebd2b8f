//! The harness that runs the suite against the local adapters, each test in a fresh DATA_DIR
//! and on its own [`TestClock`], which [`Harness::advance`] moves: no test waits for a
//! timeout in real time. Presigned URLs are answered the way web-ui's `/objects/{key}`
//! endpoint answers them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use super::{unique, Harness, HttpResponse};
use crate::backends::{Backends, QueueHandle};
use crate::clock::TestClock;
use crate::completions::SegmentCompletionStore;
use crate::config::CommonArgs;
use crate::error::{Error, Result};
use crate::jobs::JobStore;
use crate::keys::QueueName;
use crate::links::OperatorLinksProvider;
use crate::queue::local::SqliteQueue;
use crate::queue::{QueueReceiver, QueueSettings};
use crate::storage::presign::Presigner;
use crate::storage::ObjectStorage;
use crate::Db;

/// Local adapters in a temporary DATA_DIR that lives as long as the harness.
#[derive(Debug)]
pub struct LocalHarness {
    /// The adapters under test.
    pub backends: Backends,
    /// The clock every adapter of the harness reads.
    pub clock: TestClock,
    db: Db,
    _dir: tempfile::TempDir,
}

impl LocalHarness {
    /// A harness in a fresh temporary DATA_DIR.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = CommonArgs::local(dir.path());
        let clock = TestClock::new();
        let backends = Backends::from_config_with_clock(&args, Arc::new(clock.clone()))
            .await
            .expect("local backends");
        let db = Db::open(&dir.path().join("parallax.db")).expect("db");
        Self {
            backends,
            clock,
            db,
            _dir: dir,
        }
    }
}

#[async_trait]
impl Harness for LocalHarness {
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
    async fn queue(&self, settings: QueueSettings) -> Result<QueueHandle> {
        let name = unique("q");
        let dlq = format!("{name}-dlq");
        let clock = self.backends.clock.clone();
        let q = Arc::new(
            SqliteQueue::new(self.db.clone(), name, Some(dlq.clone()), settings)
                .with_clock(clock.clone()),
        );
        let d = Arc::new(SqliteQueue::new(self.db.clone(), dlq, None, settings).with_clock(clock));
        Ok(QueueHandle {
            sender: q.clone(),
            receiver: q,
            dead_letters: d,
        })
    }
    async fn http(
        &self,
        method: &str,
        url: &str,
        _headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse> {
        let presigner = self.backends.presigner.as_ref().expect("local presigner");
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let path = path.split_once("/objects/").map(|(_, k)| k).unwrap_or("");
        let key = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|e| Error::invalid("url", e.to_string()))?
            .into_owned();
        let forbidden = HttpResponse {
            status: 403,
            body: Vec::new(),
            content_disposition: None,
        };
        let Ok(verified) = presigner.verify(method, &key, query) else {
            return Ok(forbidden);
        };
        let storage = self.storage();
        match method {
            "PUT" => {
                storage
                    .put_stream(&key, Box::pin(std::io::Cursor::new(body)))
                    .await?;
                Ok(HttpResponse {
                    status: 200,
                    body: Vec::new(),
                    content_disposition: None,
                })
            }
            "GET" => {
                let mut out = Vec::new();
                storage
                    .get_stream(&key)
                    .await?
                    .read_to_end(&mut out)
                    .await
                    .map_err(|e| Error::io(&key, e))?;
                Ok(HttpResponse {
                    status: 200,
                    body: out,
                    content_disposition: verified.response_content_disposition,
                })
            }
            _ => Ok(HttpResponse {
                status: 405,
                ..forbidden
            }),
        }
    }
    fn presigner(&self) -> Option<Presigner> {
        self.backends.presigner.clone()
    }
    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
