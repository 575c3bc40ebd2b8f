//! The one factory that turns configuration into the adapter set. Binaries receive a
//! [`Backends`] and never look at which adapters are behind it.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::clock::{self, Clock};
use crate::completions::{local::SqliteCompletionStore, SegmentCompletionStore};
use crate::config::{AdapterKind, CommonArgs};
use crate::error::{Error, Result};
use crate::jobs::{local::SqliteJobStore, JobStore};
use crate::keys::QueueName;
use crate::links::{NoLinks, OperatorLinksProvider};
use crate::queue::{local::SqliteQueue, QueueReceiver, QueueSender, QueueSettings};
use crate::sqlite::Db;
use crate::storage::{local::LocalObjectStorage, presign::Presigner, ObjectStorage};

/// A queue's two ends.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    /// Sends to the queue.
    pub sender: Arc<dyn QueueSender>,
    /// Receives from the queue.
    pub receiver: Arc<dyn QueueReceiver>,
    /// Receives from the queue's dead-letter queue.
    pub dead_letters: Arc<dyn QueueReceiver>,
}

/// Every adapter a binary needs.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Jobs.
    pub jobs: Arc<dyn JobStore>,
    /// Segment completions and the reassembly trigger.
    pub completions: Arc<dyn SegmentCompletionStore>,
    /// Objects.
    pub storage: Arc<dyn ObjectStorage>,
    /// Operator links.
    pub links: Arc<dyn OperatorLinksProvider>,
    /// Verifies presigned URLs when storage is served by web-ui itself (local adapter);
    /// `None` when storage serves its own URLs (S3).
    pub presigner: Option<Presigner>,
    /// The clock the local adapters read (the system clock unless a test gave another); the
    /// AWS services keep their own. Code that stamps or ages shared state (holder notes)
    /// reads this one, so that it agrees with the adapters.
    pub clock: Arc<dyn Clock>,
    queues: HashMap<QueueName, QueueHandle>,
}

impl Backends {
    /// Builds the adapter set that `args` describes.
    pub async fn from_config(args: &CommonArgs) -> Result<Self> {
        Self::from_config_with_clock(args, clock::system()).await
    }

    /// [`Backends::from_config`] with the local adapters reading `clock`: tests move a
    /// [`TestClock`](crate::clock::TestClock) instead of waiting for a visibility timeout or
    /// a link's expiry. The AWS adapters are built as usual (the services keep their own
    /// clocks).
    pub async fn from_config_with_clock(args: &CommonArgs, clock: Arc<dyn Clock>) -> Result<Self> {
        match args.storage_adapter {
            AdapterKind::Local => Self::local(args, clock),
            AdapterKind::Aws => Self::aws(args, clock).await,
        }
    }

    #[cfg(not(feature = "aws"))]
    async fn aws(_args: &CommonArgs, _clock: Arc<dyn Clock>) -> Result<Self> {
        Err(Error::invalid(
            "STORAGE_ADAPTER",
            "this binary was built without the `aws` feature; rebuild with `--features aws` or use STORAGE_ADAPTER=local",
        ))
    }

    /// S3, SQS and DynamoDB, named from NAME_PREFIX and S3_BUCKET; fails at once, naming the
    /// resource, when one of them does not answer.
    #[cfg(feature = "aws")]
    async fn aws(args: &CommonArgs, clock: Arc<dyn Clock>) -> Result<Self> {
        use crate::aws::{AwsClients, ResourceNames};
        let bucket = args.s3_bucket.as_deref().ok_or_else(|| {
            Error::invalid(
                "S3_BUCKET",
                "STORAGE_ADAPTER=aws needs S3_BUCKET, the bucket that holds uploads and results",
            )
        })?;
        let names = ResourceNames::new(&args.name_prefix, bucket)?;
        let clients = AwsClients::new(args.aws_endpoint_url.as_deref()).await?;
        let urls = clients.check(&names).await?;
        let settings = args.queue_settings();
        let sqs = |name: String| -> Arc<crate::queue::aws::SqsQueue> {
            let url = urls[&name].clone();
            Arc::new(crate::queue::aws::SqsQueue::new(
                clients.sqs.clone(),
                name,
                url,
                settings,
            ))
        };
        let queues = QueueName::ALL
            .into_iter()
            .map(|q| {
                let main = sqs(names.queue(q));
                let handle = QueueHandle {
                    sender: main.clone(),
                    receiver: main,
                    dead_letters: sqs(names.dead_letter_queue(q)),
                };
                (q, handle)
            })
            .collect();
        tracing::info!(prefix = names.prefix(), bucket, region = %clients.region, "using the AWS adapters");
        Ok(Self {
            jobs: Arc::new(crate::jobs::aws::DynamoJobStore::new(
                clients.dynamodb.clone(),
                names.jobs_table(),
            )),
            completions: Arc::new(crate::completions::aws::DynamoCompletionStore::new(
                clients.dynamodb.clone(),
                names.completions_table(),
            )),
            storage: Arc::new(crate::storage::aws::S3ObjectStorage::new(
                clients.s3.clone(),
                bucket,
            )),
            links: Arc::new(crate::links::aws::AwsLinks::new(&clients.region, &names)),
            presigner: None,
            clock,
            queues,
        })
    }

    fn local(args: &CommonArgs, clock: Arc<dyn Clock>) -> Result<Self> {
        let db = Db::open(&args.data_dir.join("parallax.db"))?;
        let settings = args.queue_settings();
        let queues: HashMap<_, _> = QueueName::ALL
            .into_iter()
            .map(|name| (name, local_queue(&db, name, settings, &clock)))
            .collect();
        let secret = match &args.presign_secret {
            Some(s) => s.clone().into_bytes(),
            None => load_or_create_secret(&args.data_dir)?,
        };
        let presigner = Presigner::new(secret).with_clock(clock.clone());
        let storage = LocalObjectStorage::new(
            &args.data_dir,
            args.public_url.clone(),
            presigner.clone(),
            Some(queues[&QueueName::Chunking].sender.clone()),
        )?;
        Ok(Self {
            jobs: Arc::new(SqliteJobStore::new(db.clone())),
            completions: Arc::new(SqliteCompletionStore::new(db).with_clock(clock.clone())),
            storage: Arc::new(storage),
            links: Arc::new(NoLinks),
            presigner: Some(presigner),
            clock,
            queues,
        })
    }

    /// The queue `name`.
    pub fn queue(&self, name: QueueName) -> &QueueHandle {
        &self.queues[&name]
    }
}

fn local_queue(
    db: &Db,
    name: QueueName,
    settings: QueueSettings,
    clock: &Arc<dyn Clock>,
) -> QueueHandle {
    let q = Arc::new(
        SqliteQueue::new(db.clone(), name.as_str(), Some(name.dlq()), settings)
            .with_clock(clock.clone()),
    );
    let dlq = Arc::new(
        SqliteQueue::new(db.clone(), name.dlq(), None, settings).with_clock(clock.clone()),
    );
    QueueHandle {
        sender: q.clone(),
        receiver: q,
        dead_letters: dlq,
    }
}

/// Reads DATA_DIR/presign.key, creating it (32 random bytes, hex) on first start. Creation is
/// race-free across processes: the key is written to a temp file and hard-linked into place,
/// which fails if another process got there first, and then that one's key is read.
fn load_or_create_secret(data_dir: &Path) -> Result<Vec<u8>> {
    let path = data_dir.join("presign.key");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if !s.trim().is_empty() {
            return Ok(s.trim().as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut tmp = tempfile::NamedTempFile::new_in(data_dir).map_err(|e| Error::io(data_dir, e))?;
    tmp.write_all(secret.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    match std::fs::hard_link(tmp.path(), &path) {
        Ok(()) => Ok(secret.into_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let s = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            Ok(s.trim().as_bytes().to_vec())
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}
