//! The whole conformance suite against the local (SQLite + filesystem) adapters.

use parallax_core::conformance::local::LocalHarness;

async fn harness() -> LocalHarness {
    LocalHarness::new().await
}

parallax_core::conformance_tests!(harness);
