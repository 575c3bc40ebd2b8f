//! Models per job, with two in-process workers on one set of local adapters: worker A holds
//! only the default model, worker B also holds `other`. A job naming `other` is converted by
//! B alone (A passes every task it receives on); a job naming a catalogue model nobody holds
//! shows what it waits for and fails after the deadline with `no-worker-for-model`; a name
//! the catalogue does not know fails at once with `unknown-model`. The stand-in converter is
//! ffmpeg hstack (see util), one instance per model, so each records what it converted.

mod util;

use std::sync::Arc;
use std::time::Duration;

use parallax_core::backends::Backends;
use parallax_core::keys;
use parallax_core::model::{Job, JobStatus, JobUpdate};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_core::worker::CancellationToken;
use util::*;
use video_worker::infer::{InferConfig, InferWorker};
use video_worker::routing::{HeldModels, HolderTiming};

const CATALOGUE: [&str; 3] = ["default", "other", "ghost"];

struct Worker {
    stop: CancellationToken,
    run: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(b: &Backends, common: &parallax_core::config::CommonArgs, models: HeldModels) -> Self {
        let mut cfg = InferConfig::from_common(common);
        cfg.model_wait = Duration::from_secs(3);
        cfg.pass_on_pause = Duration::from_millis(100);
        cfg.holders = HolderTiming {
            renew_every: Duration::from_millis(500),
            fresh_for: Duration::from_secs(2),
        };
        let worker = InferWorker::with_models(b, models, cfg);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let run = tokio::spawn(async move { worker.run(token).await });
        Self { stop, run }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.run.await.unwrap();
    }
}

fn models(default: &Arc<HstackConverter>, extra: Option<&Arc<HstackConverter>>) -> HeldModels {
    let mut held = HeldModels::new(default.clone(), Some("default".to_owned()))
        .with_known(CATALOGUE.iter().map(|s| s.to_string()));
    if let Some(c) = extra {
        held = held.with("other", c.clone());
    }
    held
}

/// A chunked job of `segments` two-frame segments whose settings name `model`, its tasks sent.
async fn job_naming(b: &Backends, dir: &std::path::Path, model: &str, segments: u32) -> Job {
    let mut job = chunked_job(b, segments).await;
    job.settings.model = Some(model.to_owned());
    // The settings are the job's; the tasks carry a copy (as media-worker sends them).
    for i in 0..segments {
        let clip = dir.join(format!("{}-{i}.mkv", job.job_id));
        make_clip(&clip, 2, "64x48").await;
        b.storage
            .upload(&keys::segment(&job.job_id, i), &clip)
            .await
            .unwrap();
        send_task(b, &task(&job, i, 2, 0)).await;
    }
    job
}

async fn job(b: &Backends, id: &str) -> Job {
    b.jobs.get(id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_naming_a_model_is_converted_only_by_a_worker_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 3);
    let b = backends(&common).await;
    let a_default = Arc::new(HstackConverter::new(false));
    let b_default = Arc::new(HstackConverter::new(false));
    let b_other = Arc::new(HstackConverter::new(false));
    // A starts first and alone for a moment, so it receives tasks it cannot serve.
    let a = Worker::start(&b, &common, models(&a_default, None));
    let job = job_naming(&b, dir.path(), "other", 3).await;
    let plain = chunked_job(&b, 1).await;
    let clip = dir.path().join("plain.mkv");
    make_clip(&clip, 2, "64x48").await;
    b.storage
        .upload(&keys::segment(&plain.job_id, 0), &clip)
        .await
        .unwrap();
    send_task(&b, &task(&plain, 0, 2, 0)).await;
    let w = Worker::start(&b, &common, models(&b_default, Some(&b_other)));

    let outputs = b.queue(keys::QueueName::SegmentOutput).receiver.clone();
    wait_for("four segment outputs", Duration::from_secs(120), || {
        let q = outputs.clone();
        async move { q.approximate_len().await.unwrap() >= 4 }
    })
    .await;
    a.stop().await;
    w.stop().await;

    let converted_by = |c: &HstackConverter| -> Vec<String> {
        c.seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.output.display().to_string())
            .collect()
    };
    assert_eq!(
        converted_by(&b_other).len(),
        3,
        "the worker holding `other` converts all of its job's segments"
    );
    assert_eq!(
        converted_by(&a_default).len() + converted_by(&b_default).len(),
        1,
        "the default models convert only the job that names no model"
    );
    for i in 0..3 {
        assert!(b
            .storage
            .head(&keys::output(&job.job_id, i))
            .await
            .unwrap()
            .is_some());
    }
    let job = self::job(&b, &job.job_id).await;
    assert!(job.waiting.is_none(), "a held model is never waited for");
    assert_ne!(job.status, JobStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_no_running_worker_holds_is_waited_for_visibly_then_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 3);
    let b = backends(&common).await;
    let conv = Arc::new(HstackConverter::new(false));
    let a = Worker::start(&b, &common, models(&conv, None));
    let job = job_naming(&b, dir.path(), "ghost", 1).await;

    let id = job.job_id.clone();
    wait_for(
        "the job to show what it waits for",
        Duration::from_secs(60),
        || {
            let (b, id) = (&b, id.clone());
            async move { self::job(b, &id).await.waiting.is_some() }
        },
    )
    .await;
    let waiting = job_view(&b, &id).await;
    assert_eq!(waiting.0.as_deref(), Some("ghost"));
    assert!(
        waiting.1.contains("waiting for a worker with model ghost"),
        "{}",
        waiting.1
    );

    wait_for(
        "the wait's deadline to fail the job",
        Duration::from_secs(60),
        || {
            let (b, id) = (&b, id.clone());
            async move { self::job(b, &id).await.status == JobStatus::Failed }
        },
    )
    .await;
    a.stop().await;
    let job = self::job(&b, &id).await;
    let error = job.error.unwrap();
    assert_eq!(error.code, "no-worker-for-model");
    assert!(error.message.contains("ghost"), "{}", error.message);
    assert!(
        conv.seen.lock().unwrap().is_empty(),
        "nothing was converted"
    );
}

async fn job_view(b: &Backends, id: &str) -> (Option<String>, String) {
    let job = job(b, id).await;
    let w = job.waiting.expect("waiting");
    (Some(w.model.clone()), w.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_the_catalogue_does_not_know_fails_the_job_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 3);
    let b = backends(&common).await;
    let conv = Arc::new(HstackConverter::new(false));
    let a = Worker::start(&b, &common, models(&conv, None));
    let job = job_naming(&b, dir.path(), "no-such-model", 1).await;
    let id = job.job_id.clone();
    wait_for("the job to fail", Duration::from_secs(60), || {
        let (b, id) = (&b, id.clone());
        async move { self::job(b, &id).await.status == JobStatus::Failed }
    })
    .await;
    a.stop().await;
    let job = self::job(&b, &id).await;
    let error = job.error.unwrap();
    assert_eq!(error.code, "unknown-model");
    assert!(error.message.contains("no-such-model"), "{}", error.message);
    assert!(conv.seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_gets_its_model_clears_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let common = common(dir.path(), 30, 3);
    let b = backends(&common).await;
    let job = job_naming(&b, dir.path(), "other", 1).await;
    b.jobs
        .update(
            &job.job_id,
            &JobUpdate {
                waiting: Some(Some(parallax_core::model::Waiting {
                    model: "other".into(),
                    since: chrono::Utc::now(),
                })),
                ..JobUpdate::default()
            },
        )
        .await
        .unwrap();
    let default = Arc::new(HstackConverter::new(false));
    let other = Arc::new(HstackConverter::new(false));
    let w = Worker::start(&b, &common, models(&default, Some(&other)));
    let id = job.job_id.clone();
    wait_for("the wait to be cleared", Duration::from_secs(60), || {
        let (b, id) = (&b, id.clone());
        async move { self::job(b, &id).await.waiting.is_none() }
    })
    .await;
    w.stop().await;
}
