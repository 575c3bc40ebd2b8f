//! What a received task leads to: skipped (its job is finished or gone), rejected (a model
//! the catalogue does not know), passed on (a model this worker does not hold, see
//! [`crate::routing`]) or converted ([`super::segment`]).

use std::time::Duration;

use anyhow::Context as _;
use parallax_core::model::{Job, JobUpdate, SegmentTask};
use parallax_core::queue::ReceivedMessage;
use parallax_core::worker::{Context, HandlerError, Outcome};

use super::InferWorker;
use crate::routing::{self, Pick};

impl InferWorker {
    /// Handles one task: skip, pass on, or convert and report.
    pub(super) async fn handle_task(
        &self,
        task: &SegmentTask,
        msg: &ReceivedMessage,
        ctx: &Context,
    ) -> Result<Outcome, HandlerError> {
        let job = match self
            .jobs
            .get(&task.job_id)
            .await
            .context("reading the job")?
        {
            Some(job) if job.status.is_terminal() => {
                tracing::info!(status = %job.status, "job already finished; skipping the segment");
                return Ok(Outcome::Done);
            }
            Some(job) => job,
            None => {
                tracing::warn!(
                    "segment task for a job that does not exist (deleted?); dropping it"
                );
                return Ok(Outcome::Done);
            }
        };
        match self.models.pick(task.settings.model.as_deref()) {
            Pick::Held(_) => {
                if job.waiting.is_some() {
                    let clear = JobUpdate {
                        waiting: Some(None),
                        ..JobUpdate::default()
                    };
                    if let Err(e) = self.jobs.update(&task.job_id, &clear).await {
                        tracing::warn!(error = %e, "could not clear the job's wait for a model");
                    }
                }
            }
            Pick::Unknown(name) => {
                return Err(HandlerError::reject(
                    "unknown-model",
                    format!("the depth model {name:?} is not in the model catalogue; `video-worker models list` shows the known models"),
                ));
            }
            Pick::NotHeld(name) => {
                let name = name.to_owned();
                return self.pass_on(msg, &job, &name, ctx).await;
            }
        }

        tracing::info!(frames = task.frame_count, "converting segment");
        let out = self.process(task, ctx).await?;
        tracing::info!(frames = out.frame_count, key = %out.output_key, "segment converted and reported");
        Ok(Outcome::Done)
    }

    /// A task for a model this worker does not hold: passed on to the queue for a worker
    /// that holds it, or, when no running worker does, the job shows what it waits for and
    /// fails once the wait outlasts `model_wait` (see [`crate::routing`]).
    async fn pass_on(
        &self,
        msg: &ReceivedMessage,
        job: &Job,
        model: &str,
        ctx: &Context,
    ) -> Result<Outcome, HandlerError> {
        let now = self.clock.now();
        let held = routing::held_by_a_running_worker_at(
            &*self.storage,
            model,
            self.cfg.holders.fresh_for,
            now,
        )
        .await;
        let mut pause = self.cfg.pass_on_pause;
        if !held {
            let since = job
                .waiting
                .as_ref()
                .filter(|w| w.model == model)
                .map(|w| w.since);
            let waited = since.map_or(Duration::ZERO, |s| (now - s).to_std().unwrap_or_default());
            if waited > self.cfg.model_wait {
                return Err(HandlerError::reject(
                    "no-worker-for-model",
                    format!(
                        "no running video-worker holds the depth model {model} (waited {} min): start one that holds it (`video-worker --models {model}`, after `video-worker models fetch {model}`), or convert with another model",
                        waited.as_secs() / 60
                    ),
                ));
            }
            if since.is_none() {
                let wait = parallax_core::model::Waiting {
                    model: model.to_owned(),
                    since: now,
                };
                tracing::info!(%model, "no running worker holds the model: the job waits");
                let update = JobUpdate {
                    waiting: Some(Some(wait)),
                    ..JobUpdate::default()
                };
                if let Err(e) = self.jobs.update(&job.job_id, &update).await {
                    tracing::warn!(error = %e, "could not record the job's wait for a model");
                }
            }
            // Nobody to hand it to yet: look again less often.
            pause = pause.max(self.cfg.holders.renew_every);
        } else {
            tracing::debug!(%model, "passing the task on to a worker that holds its model");
        }
        tokio::select! {
            // Back to the queue at once, for the next worker to look at.
            _ = ctx.shutdown.cancelled() => return Ok(Outcome::Release(Duration::ZERO)),
            _ = tokio::time::sleep(pause) => {}
        }
        // A copy first, then the original (deleted by the runtime on `Done`): a crash in
        // between leaves a harmless duplicate, never a lost task. The copy starts with a
        // fresh receive count, so passing on never moves a task towards the dead-letter queue.
        self.own_queue
            .send(&msg.body)
            .await
            .context("passing the task on (sending its copy to the segments queue)")?;
        Ok(Outcome::Done)
    }
}
