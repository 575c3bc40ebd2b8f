//! Models per job, with two in-process workers on one set of local adapters: worker A holds
//! only the default model, worker B also holds `other`. A job naming `other` is converted by
//! B alone (A passes every task it receives on); a job naming a catalogue model nobody holds
//! shows what it waits for and fails with `no-worker-for-model` once the adapters' (test)
//! clock has moved past the deadline; a name
//! the catalogue does not know fails at once with `unknown-model`. The stand-in converter is
//! ffmpeg hstack (see util), one instance per model, so each records what it converted.

mod util;

use std::sync::Arc;
use std::time::Duration;

use parallax_core::backends::Backends;
use parallax_core::keys::{self, QueueName};
use parallax_core::model::{Job, JobStatus, JobUpdate};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_core::worker::CancellationToken;
use parallax_testkit::TempBackends;
use util::*;
use video_worker::infer::{InferConfig, InferWorker};
use video_worker::routing::{HeldModels, HolderTiming};

const CATALOGUE: [&str; 3] = ["default", "other", "ghost"];

struct Worker {
    stop: CancellationToken,
    run: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// A worker holding `models`, with short pauses and note renewals and the default wait
    /// for a model nobody holds (30 min, run out on the test clock).
    fn start(b: &TempBackends, models: HeldModels) -> Self {
        let mut cfg = InferConfig::from_common(b.args());
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
        segment_clip(&clip, 2, (64, 48)).await;
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
    let b = local(30, 3).await;
    let a_default = Arc::new(HstackConverter::new(false));
    let b_default = Arc::new(HstackConverter::new(false));
    let b_other = Arc::new(HstackConverter::new(false));
    // A starts first and alone for a moment, so it receives tasks it cannot serve.
    let a = Worker::start(&b, models(&a_default, None));
    let job = job_naming(&b, b.path(), "other", 3).await;
    let plain = chunked_job(&b, 1).await;
    let clip = b.path().join("plain.mkv");
    segment_clip(&clip, 2, (64, 48)).await;
    b.storage
        .upload(&keys::segment(&plain.job_id, 0), &clip)
        .await
        .unwrap();
    send_task(&b, &task(&plain, 0, 2, 0)).await;
    let w = Worker::start(&b, models(&b_default, Some(&b_other)));

    wait_for_len(&b, QueueName::SegmentOutput, 4).await;
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
    let (b, clock) = local_with_clock(30, 3).await;
    let conv = Arc::new(HstackConverter::new(false));
    let a = Worker::start(&b, models(&conv, None));
    let job = job_naming(&b, b.path(), "ghost", 1).await;

    let id = job.job_id.clone();
    wait_for_job(&b, &id, "the job to show what it waits for", |j| {
        j.waiting.is_some()
    })
    .await;
    let waiting = job_view(&b, &id).await;
    assert_eq!(waiting.0.as_deref(), Some("ghost"));
    assert!(
        waiting.1.contains("waiting for a worker with model ghost"),
        "{}",
        waiting.1
    );
    assert_ne!(self::job(&b, &id).await.status, JobStatus::Failed);

    // The wait outlasts the deadline (30 min) on the adapters' clock.
    clock.advance(InferConfig::from_common(b.args()).model_wait + Duration::from_secs(60));
    wait_for_job(&b, &id, "the wait's deadline to fail the job", |j| {
        j.status == JobStatus::Failed
    })
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
    let b = local(30, 3).await;
    let conv = Arc::new(HstackConverter::new(false));
    let a = Worker::start(&b, models(&conv, None));
    let job = job_naming(&b, b.path(), "no-such-model", 1).await;
    let id = job.job_id.clone();
    wait_for_job(&b, &id, "the job to fail", |j| {
        j.status == JobStatus::Failed
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
    let b = local(30, 3).await;
    let job = job_naming(&b, b.path(), "other", 1).await;
    b.jobs
        .update(
            &job.job_id,
            &JobUpdate {
                waiting: Some(Some(parallax_core::model::Waiting {
                    model: "other".into(),
                    since: b.clock.now(),
                })),
                ..JobUpdate::default()
            },
        )
        .await
        .unwrap();
    let default = Arc::new(HstackConverter::new(false));
    let other = Arc::new(HstackConverter::new(false));
    let w = Worker::start(&b, models(&default, Some(&other)));
    wait_for_job(&b, &job.job_id, "the wait to be cleared", |j| {
        j.waiting.is_none()
    })
    .await;
    w.stop().await;
}
