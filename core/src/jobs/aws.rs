//! JobStore on DynamoDB.
//!
//! One item per job (key `job_id`), every [`Job`] field an attribute, plus two index
//! attributes: `created_us` (creation time in µs) and, on completed jobs only, `completed_sk`
//! (`{completed_at µs, 20 digits}#{job_id}`). Two GSIs partitioned on `status` make every
//! listing a Query: `status-created-index` (in progress, failed) and the sparse
//! `status-completed-index` (completed, newest first with ties by job id, as the contract asks).
//!
//! `update` reads the job, lets [`Job::apply`] compute the new state (which refuses illegal
//! transitions), and writes only the attributes that changed, conditional on the stored status
//! being the one it read. Concurrent updates of different fields therefore never lose each
//! other's writes, and a concurrent status change makes the condition fail, after which the
//! update is retried against the new state (and refused if it is no longer legal).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use base64::Engine as _;
use serde_json::Value;

use super::JobStore;
use crate::aws::{
    error_code, from_item, num, sdk_error, string, to_attribute, to_item, JOBS_BY_COMPLETED_INDEX,
    JOBS_BY_CREATED_INDEX,
};
use crate::error::{Error, Result};
use crate::model::{Job, JobListItem, JobStatus, JobUpdate, Page};

/// How often an update is retried when another writer changed the job's status meanwhile.
const UPDATE_ATTEMPTS: u32 = 20;

/// Jobs in a DynamoDB table (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoJobStore {
    /// A store on `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get_item(&self, job_id: &str) -> Result<Option<Job>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", string(job_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", format!("get job {job_id}"), e))?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// One page of `index` for `status`, newest first, from `start`; at most `limit` items
    /// (DynamoDB may return fewer and a key to go on with).
    async fn query_page(
        &self,
        index: &str,
        status: JobStatus,
        limit: usize,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<Job>, Option<HashMap<String, AttributeValue>>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", string(status.as_str()))
            .scan_index_forward(false)
            .limit(limit.min(1000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", format!("query {index} for {status} jobs"), e))?;
        let jobs = out
            .items
            .unwrap_or_default()
            .iter()
            .map(from_item)
            .collect::<Result<Vec<Job>>>()?;
        Ok((jobs, out.last_evaluated_key))
    }

    /// Up to `limit` jobs of `status` from `index`, newest first, following DynamoDB's pages.
    async fn query_status(
        &self,
        index: &str,
        status: JobStatus,
        limit: usize,
        mut start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        loop {
            let (page, next) = self
                .query_page(index, status, limit - jobs.len(), start)
                .await?;
            jobs.extend(page);
            match next {
                Some(k) if jobs.len() < limit => start = Some(k),
                _ => return Ok(jobs),
            }
        }
    }

    async fn list_statuses(
        &self,
        statuses: &[JobStatus],
        limit: usize,
    ) -> Result<Vec<JobListItem>> {
        let limit = limit.clamp(1, 1000);
        let queries = statuses
            .iter()
            .map(|&s| self.query_status(JOBS_BY_CREATED_INDEX, s, limit, None));
        let mut jobs: Vec<Job> = futures::future::try_join_all(queries)
            .await?
            .into_iter()
            .flatten()
            .collect();
        jobs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.job_id.cmp(&a.job_id))
        });
        jobs.truncate(limit);
        Ok(jobs.iter().map(Into::into).collect())
    }
}

/// The sort key of a completed job in the completed index.
fn completed_sk(job: &Job) -> String {
    let at = job
        .completed_at
        .map(|t| t.timestamp_micros().max(0))
        .unwrap_or(0);
    format!("{at:020}#{}", job.job_id)
}

fn cursor_encode(sk: &str) -> String {
    let raw = serde_json::json!({ "v": 1, "sk": sk }).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The completed index's sort key and job id from a cursor this store made.
fn cursor_decode(key: &str) -> Result<(String, String)> {
    let bad = || Error::invalid("cursor", "not a cursor returned by this listing");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_u64) != Some(1) {
        return Err(bad());
    }
    let sk = v.get("sk").and_then(Value::as_str).ok_or_else(bad)?;
    let (at, job_id) = sk.split_once('#').ok_or_else(bad)?;
    if at.len() != 20 || !at.bytes().all(|b| b.is_ascii_digit()) || job_id.is_empty() {
        return Err(bad());
    }
    Ok((sk.to_owned(), job_id.to_owned()))
}

/// The job as an item, with its index attributes.
fn job_item(job: &Job) -> Result<HashMap<String, AttributeValue>> {
    let mut item = to_item(job)?;
    item.insert("created_us".into(), num(job.created_at.timestamp_micros()));
    if job.status == JobStatus::Completed {
        item.insert("completed_sk".into(), string(completed_sk(job)));
    }
    Ok(item)
}

/// The attributes that differ between `old` and `new`: `(name, Some(value))` to set,
/// `(name, None)` to remove.
fn changed_attributes(old: &Job, new: &Job) -> Result<Vec<(String, Option<AttributeValue>)>> {
    let as_map = |j: &Job| match serde_json::to_value(j) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::backend(
            "dynamodb",
            "a job must serialise to an object",
        )),
        Err(e) => Err(Error::backend("dynamodb", e)),
    };
    let (old_map, new_map) = (as_map(old)?, as_map(new)?);
    let mut changes = Vec::new();
    for (k, v) in &new_map {
        if old_map.get(k) != Some(v) {
            let value = (!v.is_null()).then(|| to_attribute(v));
            changes.push((k.clone(), value));
        }
    }
    for k in old_map.keys().filter(|k| !new_map.contains_key(*k)) {
        changes.push((k.clone(), None));
    }
    let (old_sk, new_sk) = (
        (old.status == JobStatus::Completed).then(|| completed_sk(old)),
        (new.status == JobStatus::Completed).then(|| completed_sk(new)),
    );
    if old_sk != new_sk {
        changes.push(("completed_sk".into(), new_sk.map(string)));
    }
    Ok(changes)
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn get(&self, job_id: &str) -> Result<Option<Job>> {
        self.get_item(job_id).await
    }

    async fn put(&self, job: &Job) -> Result<()> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job)?))
            .condition_expression("attribute_not_exists(job_id)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => {
                Err(Error::Conflict {
                    what: "job",
                    id: job.job_id.clone(),
                    reason: "a job with this id already exists".to_owned(),
                })
            }
            Err(e) => Err(sdk_error("dynamodb", format!("put job {}", job.job_id), e)),
        }
    }

    async fn update(&self, job_id: &str, update: &JobUpdate) -> Result<Job> {
        for attempt in 0..UPDATE_ATTEMPTS {
            let old = self
                .get_item(job_id)
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: "job",
                    id: job_id.to_owned(),
                })?;
            let mut new = old.clone();
            new.apply(update)?;
            let changes = changed_attributes(&old, &new)?;
            if changes.is_empty() {
                return Ok(new);
            }
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("job_id", string(job_id))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":old_status", string(old.status.as_str()))
                .return_values(ReturnValue::AllNew);
            let (mut sets, mut removes) = (Vec::new(), Vec::new());
            for (i, (name, value)) in changes.iter().enumerate() {
                req = req.expression_attribute_names(format!("#f{i}"), name);
                match value {
                    Some(v) => {
                        req = req.expression_attribute_values(format!(":v{i}"), v.clone());
                        sets.push(format!("#f{i} = :v{i}"));
                    }
                    None => removes.push(format!("#f{i}")),
                }
            }
            let mut expr = String::new();
            if !sets.is_empty() {
                expr.push_str(&format!("SET {}", sets.join(", ")));
            }
            if !removes.is_empty() {
                expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            // The completed index key is derived from completed_at: write it only against the
            // completed_at this update was computed from.
            let mut condition = "#status = :old_status".to_owned();
            if changes.iter().any(|(n, _)| n == "completed_sk") {
                req = req.expression_attribute_names("#completed_at", "completed_at");
                match old.completed_at {
                    Some(t) => {
                        req = req.expression_attribute_values(
                            ":old_completed_at",
                            to_attribute(
                                &serde_json::to_value(t)
                                    .map_err(|e| Error::backend("dynamodb", e))?,
                            ),
                        );
                        condition.push_str(" AND #completed_at = :old_completed_at");
                    }
                    None => condition.push_str(" AND attribute_not_exists(#completed_at)"),
                }
            }
            let r = req
                .update_expression(expr.trim())
                .condition_expression(condition)
                .send()
                .await;
            match r {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return from_item(&item);
                }
                Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => {
                    // Someone moved the status (or completion time) first: recompute.
                    tracing::debug!(job_id, attempt, "job changed during update; retrying");
                    let pause = 5 + rand::random::<u64>() % (10 << attempt.min(4));
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(sdk_error("dynamodb", format!("update job {job_id}"), e)),
            }
        }
        Err(Error::Conflict {
            what: "job",
            id: job_id.to_owned(),
            reason: format!("the job kept changing; gave up after {UPDATE_ATTEMPTS} attempts"),
        })
    }

    async fn list_completed(
        &self,
        limit: usize,
        exclusive_start_key: Option<&str>,
    ) -> Result<Page<JobListItem>> {
        let start = exclusive_start_key
            .map(cursor_decode)
            .transpose()?
            .map(|(sk, job_id)| {
                HashMap::from([
                    ("job_id".to_owned(), string(job_id)),
                    ("status".to_owned(), string(JobStatus::Completed.as_str())),
                    ("completed_sk".to_owned(), string(sk)),
                ])
            });
        let limit = limit.clamp(1, 1000);
        // One more than asked tells whether there is a next page.
        let mut jobs = self
            .query_status(
                JOBS_BY_COMPLETED_INDEX,
                JobStatus::Completed,
                limit + 1,
                start,
            )
            .await?;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next_key = more
            .then(|| jobs.last())
            .flatten()
            .map(|last| cursor_encode(&completed_sk(last)));
        Ok(Page {
            items: jobs.iter().map(Into::into).collect(),
            next_key,
        })
    }

    async fn list_in_progress(&self, limit: usize) -> Result<Vec<JobListItem>> {
        let live: Vec<JobStatus> = JobStatus::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        self.list_statuses(&live, limit).await
    }

    async fn list_failed(
        &self,
        limit: usize,
        exclusive_start_key: Option<&str>,
    ) -> Result<Page<JobListItem>> {
        // The created index's position: its keys and the table's (job id).
        let start = exclusive_start_key
            .map(cursor_decode)
            .transpose()?
            .map(|(sk, job_id)| {
                // cursor_decode checked the 20 digits before the '#'.
                let created_us: u64 = sk[..20].parse().unwrap_or(0);
                HashMap::from([
                    ("job_id".to_owned(), string(job_id)),
                    ("status".to_owned(), string(JobStatus::Failed.as_str())),
                    ("created_us".to_owned(), num(created_us)),
                ])
            });
        let limit = limit.clamp(1, 1000);
        let mut jobs = self
            .query_status(JOBS_BY_CREATED_INDEX, JobStatus::Failed, limit + 1, start)
            .await?;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next_key = more.then(|| jobs.last()).flatten().map(|last| {
            let us = last.created_at.timestamp_micros().max(0);
            cursor_encode(&format!("{us:020}#{}", last.job_id))
        });
        Ok(Page {
            items: jobs.iter().map(Into::into).collect(),
            next_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversionSettings, StereoMode};

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let mut job = Job::new("t", StereoMode::FullSbs, ConversionSettings::default());
        job.completed_at = Some(chrono::Utc::now());
        let sk = completed_sk(&job);
        assert_eq!(
            cursor_decode(&cursor_encode(&sk)).unwrap(),
            (sk, job.job_id)
        );
        for bad in [
            "",
            "not-a-cursor",
            "eyJ4IjoxfQ",
            &cursor_encode("123#x"),
            &cursor_encode(&format!("{:020}#", 5)),
        ] {
            assert!(
                matches!(cursor_decode(bad), Err(Error::InvalidInput { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn completed_keys_sort_like_the_listing() {
        let mut a = Job::new("a", StereoMode::FullSbs, ConversionSettings::default());
        let mut b = a.clone();
        a.job_id = "a".into();
        b.job_id = "b".into();
        let t = chrono::Utc::now();
        a.completed_at = Some(t);
        b.completed_at = Some(t);
        // Same time: ties by job id (descending order in the listing).
        assert!(completed_sk(&a) < completed_sk(&b));
        b.completed_at = Some(t - chrono::Duration::microseconds(1));
        assert!(completed_sk(&b) < completed_sk(&a));
    }

    #[test]
    fn only_changed_attributes_are_written() {
        let old = Job::new("t", StereoMode::FullSbs, ConversionSettings::default());
        let mut new = old.clone();
        new.apply(&JobUpdate {
            title: Some("new".into()),
            status: Some(JobStatus::Completed),
            completed_at: Some(chrono::Utc::now()),
            ..Default::default()
        })
        .unwrap();
        let mut names: Vec<String> = changed_attributes(&old, &new)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        names.sort();
        assert_eq!(names, ["completed_at", "completed_sk", "status", "title"]);
    }
}
