//! The production [`SegmentConverter`]: the depth engine itself.

use async_trait::async_trait;

use crate::converter::{SegmentConverter, SegmentReport, SegmentWork};
use crate::engine::{ConvertRequest, Engine};

#[async_trait]
impl SegmentConverter for Engine {
    async fn convert(
        &self,
        work: &SegmentWork,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> anyhow::Result<SegmentReport> {
        let req = ConvertRequest {
            input: work.input.clone(),
            output: work.output.clone(),
            mode: work.mode,
            settings: work.settings.clone(),
            seam: work.seam.clone(),
            seam_end: work.seam_end.clone(),
            expected_frames: work.expected_frames,
            preview_dir: work.preview_dir.clone(),
            depth_out: work.depth_out.clone(),
            depth_in: work.depth_in.clone(),
        };
        let report = Engine::convert(self, &req, progress).await?;
        Ok(SegmentReport {
            frames: report.frames,
            preview_sbs: report.preview_sbs,
            preview_depth: report.preview_depth,
            notes: report.notes,
            depth: work.depth_out.clone(),
        })
    }
}
