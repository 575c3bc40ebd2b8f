//! SegmentCompletionStore on DynamoDB.
//!
//! Table key: `job_id` (partition) and `segment_index` (sort). Each completion is one item,
//! written only if absent. Beside them, each job has a counter item at `segment_index = -1`
//! holding `done_count` (how many distinct completions exist) and, once claimed, `claimed_at`.
//!
//! - `put` is ONE transaction: the completion put (condition `attribute_not_exists`) and
//!   `ADD done_count 1` on the counter. A duplicate fails the condition, so the whole
//!   transaction is cancelled and the counter is not bumped: duplicates never count.
//! - `claim_reassembly` is ONE conditional update of the counter:
//!   `SET claimed_at = :now` if `done_count = :total AND attribute_not_exists(claimed_at)`.
//!   No read precedes it, so there is no read-then-write race; DynamoDB serialises
//!   conditional writes to one item, so exactly one caller wins.
//! - `claim_resend` is ONE conditional update of the counter too: `SET resent_at = :now` if
//!   `claimed_at <= :cutoff AND (attribute_not_exists(resent_at) OR resent_at <= :cutoff)`,
//!   so one reconciler per period wins, whichever process it runs in.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::SegmentCompletionStore;
use crate::aws::{error_code, from_item, num, sdk_error, string, to_item};
use crate::error::{Error, Result};
use crate::model::SegmentCompletion;

/// The counter item's sort key (segments are numbered from 0).
const COUNTER_INDEX: i64 = -1;

/// Attempts of a completion put when concurrent transactions on the same job collide.
const PUT_ATTEMPTS: u32 = 25;

/// Completions in a DynamoDB table (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct DynamoCompletionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCompletionStore {
    /// A store on `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn transaction(&self, completion: &SegmentCompletion) -> Result<Vec<TransactWriteItem>> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(completion)?))
            .condition_expression("attribute_not_exists(job_id)")
            .build()
            .map_err(|e| Error::backend("dynamodb", e))?;
        let bump = Update::builder()
            .table_name(&self.table)
            .key("job_id", string(&completion.job_id))
            .key("segment_index", num(COUNTER_INDEX))
            .update_expression("ADD done_count :one")
            .expression_attribute_values(":one", num(1))
            .build()
            .map_err(|e| Error::backend("dynamodb", e))?;
        Ok(vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(bump).build(),
        ])
    }
}

impl DynamoCompletionStore {
    /// A time attribute (microseconds) of the job's counter item.
    async fn counter_time(&self, job_id: &str, attribute: &str) -> Result<Option<DateTime<Utc>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", string(job_id))
            .key("segment_index", num(COUNTER_INDEX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", format!("read {attribute} of {job_id}"), e))?;
        let at = out
            .item
            .as_ref()
            .and_then(|i| i.get(attribute))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        Ok(at.and_then(DateTime::from_timestamp_micros))
    }
}

/// Why a transaction was cancelled, per item, as DynamoDB reports it.
fn cancellation_codes(err: &TransactWriteItemsError) -> Option<Vec<String>> {
    let TransactWriteItemsError::TransactionCanceledException(e) = err else {
        return None;
    };
    let reasons = e.cancellation_reasons();
    if !reasons.is_empty() {
        return Some(
            reasons
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
        );
    }
    // Some emulators only list the reasons in the message: "... [ConditionalCheckFailed, None]".
    let msg = e.message().unwrap_or_default();
    let list = msg.rsplit_once('[')?.1.split_once(']')?.0;
    Some(list.split(',').map(|s| s.trim().to_owned()).collect())
}

#[async_trait]
impl SegmentCompletionStore for DynamoCompletionStore {
    async fn put(&self, completion: &SegmentCompletion) -> Result<bool> {
        let items = self.transaction(completion)?;
        let what = format!(
            "record completion of job {} segment {}",
            completion.job_id, completion.segment_index
        );
        for attempt in 0..PUT_ATTEMPTS {
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match r {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            let codes = err.as_service_error().and_then(cancellation_codes);
            match codes.as_deref() {
                Some([first, ..]) if first == "ConditionalCheckFailed" => return Ok(false),
                Some(codes) if codes.iter().any(|c| c == "TransactionConflict") => {}
                _ if error_code(&err) == Some("TransactionInProgressException") => {}
                _ => return Err(sdk_error("dynamodb", what, err)),
            }
            // Another trigger's transaction on the same job's counter ran at the same time.
            tracing::debug!(job_id = %completion.job_id, attempt, "transaction conflict; retrying");
            let pause = 5 + rand::random::<u64>() % (10 << attempt.min(5));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(Error::Conflict {
            what: "segment completion",
            id: format!("{}/{}", completion.job_id, completion.segment_index),
            reason: format!("transaction kept conflicting; gave up after {PUT_ATTEMPTS} attempts"),
        })
    }

    async fn query_by_job(&self, job_id: &str) -> Result<Vec<SegmentCompletion>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("job_id = :j AND segment_index >= :first")
                .expression_attribute_values(":j", string(job_id))
                .expression_attribute_values(":first", num(0))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", format!("query completions of {job_id}"), e))?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn claim_reassembly(&self, job_id: &str, total_segments: u32) -> Result<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", string(job_id))
            .key("segment_index", num(COUNTER_INDEX))
            .update_expression("SET claimed_at = :now")
            .expression_attribute_values(":now", num(Utc::now().timestamp_micros()));
        req = if total_segments == 0 {
            // No completion means no counter yet; the claim creates it.
            req.condition_expression(
                "attribute_not_exists(done_count) AND attribute_not_exists(claimed_at)",
            )
        } else {
            req.condition_expression("done_count = :total AND attribute_not_exists(claimed_at)")
                .expression_attribute_values(":total", num(total_segments))
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(
                "dynamodb",
                format!("claim reassembly of {job_id}"),
                e,
            )),
        }
    }

    async fn reassembly_claimed_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>> {
        self.counter_time(job_id, "claimed_at").await
    }

    async fn claim_resend(
        &self,
        job_id: &str,
        now: DateTime<Utc>,
        every: Duration,
    ) -> Result<bool> {
        let now = now.timestamp_micros();
        let cutoff = now.saturating_sub(i64::try_from(every.as_micros()).unwrap_or(i64::MAX));
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", string(job_id))
            .key("segment_index", num(COUNTER_INDEX))
            .update_expression("SET resent_at = :now")
            .condition_expression(
                "claimed_at <= :cutoff AND (attribute_not_exists(resent_at) OR resent_at <= :cutoff)",
            )
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":cutoff", num(cutoff))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(
                "dynamodb",
                format!("record a re-send of {job_id}'s reassembly request"),
                e,
            )),
        }
    }

    async fn reassembly_resent_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>> {
        self.counter_time(job_id, "resent_at").await
    }
}
