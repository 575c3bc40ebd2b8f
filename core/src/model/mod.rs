//! The pipeline's data: jobs, segment completions and the messages that travel on the queues.
//! Everything here is serde with a version-tolerant shape: new optional fields default, so an
//! older worker can read a newer message and the other way round.

mod job;
mod messages;
mod s3_event;
mod settings;
pub(crate) mod status;

pub use job::{
    Job, JobError, JobListItem, JobStatus, JobUpdate, Page, StereoMode, Waiting, PREVIEW_SAMPLES,
    PREVIEW_SAMPLE_SECS,
};
pub use messages::{
    ChunkingMessage, DepthSeam, ReassemblyRequest, SegmentCompletion, SegmentOutput, SegmentTask,
};
pub use s3_event::{S3Bucket, S3Entity, S3EventNotification, S3EventRecord, S3Object, S3TestEvent};
pub use settings::{
    AnaglyphMethod, ConversionSettings, FastDepth, SyntheticView, DEFAULT_EDGE_DILATION,
    DEFAULT_FAST_DEPTH_SCALE, DEFAULT_KEYFRAME_INTERVAL,
};

#[cfg(test)]
mod tests;
