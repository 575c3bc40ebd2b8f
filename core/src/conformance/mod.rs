//! The contract tests every adapter must pass, written against the traits only so that the
//! local and AWS adapters are held to the same suite.
//!
//! An adapter set plugs in through a [`Harness`]; [`conformance_tests!`](crate::conformance_tests)
//! expands to one `#[tokio::test]` per contract test:
//!
//! ```ignore
//! async fn harness() -> MyHarness { ... }
//! parallax_core::conformance_tests!(harness);
//! ```
//!
//! Tests never assume a fresh store: listings are checked for the test's own ids only, so the
//! suite also runs against shared emulator tables.
//!
//! Tests that need time to pass (a visibility timeout running out, a heartbeat outlasting
//! it, a link expiring) ask the harness for it ([`Harness::advance`]): the local harness
//! moves its test clock at once, a harness on real services waits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::backends::QueueHandle;
use crate::completions::SegmentCompletionStore;
use crate::error::Result;
use crate::jobs::JobStore;
use crate::links::OperatorLinksProvider;
use crate::queue::{QueueReceiver, QueueSettings};
use crate::storage::presign::Presigner;
use crate::storage::ObjectStorage;

pub mod completions;
pub mod jobs;
pub mod local;
pub mod queue;
pub mod storage;

/// An HTTP response as the presign tests need it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// The `Content-Disposition` header, if any.
    pub content_disposition: Option<String>,
}

/// Builds the adapters under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The job store.
    fn jobs(&self) -> Arc<dyn JobStore>;
    /// The completion store.
    fn completions(&self) -> Arc<dyn SegmentCompletionStore>;
    /// The object storage.
    fn storage(&self) -> Arc<dyn ObjectStorage>;
    /// The operator links.
    fn links(&self) -> Arc<dyn OperatorLinksProvider>;
    /// Where the storage's object-created events for `uploads/` arrive.
    fn upload_events(&self) -> Arc<dyn QueueReceiver>;
    /// A new, empty queue (with its dead-letter queue) behaving as `settings` say.
    async fn queue(&self, settings: QueueSettings) -> Result<QueueHandle>;
    /// Performs an HTTP request against a presigned URL, as a browser would.
    async fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse>;
    /// The presigner that checks this storage's URLs when parallax checks them itself
    /// (local storage); `None` when the storage service does (S3).
    fn presigner(&self) -> Option<Presigner>;
    /// Lets `by` pass on the clock the adapters read. A service with its own clock (SQS, an
    /// emulator) only sees real time pass, so the default waits for real; a harness whose
    /// adapters read a [`TestClock`](crate::clock::TestClock) moves it instead. A harness
    /// with a [`Harness::presigner`] should move a clock: the expiry test lets five minutes
    /// pass.
    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
}

/// A unique id for test data, so that runs and tests never collide.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Expands to one `#[tokio::test]` per conformance test, each calling `$harness().await` for
/// a harness.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:path) => {
        $crate::conformance_tests!(@each $harness;
            jobs::get_missing_is_none,
            jobs::put_get_round_trip,
            jobs::put_twice_conflicts,
            jobs::update_touches_only_given_fields,
            jobs::waiting_is_set_kept_and_cleared,
            jobs::illegal_transition_writes_nothing,
            jobs::update_unknown_is_not_found,
            jobs::concurrent_updates_keep_every_field,
            jobs::list_completed_pages_without_duplicates_or_gaps,
            jobs::list_completed_rejects_foreign_cursor,
            jobs::list_failed_pages_without_duplicates_or_gaps,
            jobs::list_in_progress_and_failed,
            completions::put_is_idempotent,
            completions::query_orders_by_segment_index,
            completions::claim_needs_every_segment,
            completions::claim_is_won_once_under_concurrency,
            completions::resend_is_recorded_once_per_period,
            queue::send_receive_delete,
            queue::batch_send_delivers_every_entry,
            queue::receive_long_polls_then_returns_empty,
            queue::visibility_timeout_redelivers,
            queue::change_visibility_extends_and_releases,
            queue::dead_letter_after_max_receives,
            queue::stale_handle_does_not_delete,
            queue::unknown_handle_is_rejected,
            queue::concurrent_receivers_never_share_a_message,
            storage::put_get_head_round_trip,
            storage::get_range_reads_only_the_range,
            storage::missing_object_is_not_found,
            storage::keys_cannot_escape,
            storage::overwrite_replaces_atomically,
            storage::delete_prefix_removes_only_the_prefix,
            storage::large_object_streams_in_bounded_memory,
            storage::upload_under_uploads_emits_event,
            storage::presigned_round_trip,
            storage::presign_rejects_tampered_expired_wrong_method,
            storage::links_are_consistent,
        );
    };
    (@each $harness:path; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let h = $harness().await;
                $crate::conformance::$module::$test(&h).await;
            }
        )*
    };
}
