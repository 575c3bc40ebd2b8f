//! The completion trigger: exactly one ReassemblyRequest per job, whatever the concurrency,
//! duplication and timing of SegmentOutputs, plus the reconciler that re-sends requests whose
//! sender died between claim and send.

mod concurrency;
mod outputs;
mod reconciler;
mod util;
