//! Every storage key and queue name in one place. Keys derive from (job, segment index) only,
//! so re-running a step rewrites the same objects instead of making a second set.

/// Prefix under which browsers upload sources; objects created here start chunking.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// Key of a job's uploaded source.
pub fn source(job_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{job_id}/source")
}

/// Key of a job's segment manifest (the segment list saved before any task is sent).
pub fn manifest(job_id: &str) -> String {
    format!("segments/{job_id}/manifest.json")
}

/// Key of a source segment (video only).
pub fn segment(job_id: &str, segment_index: u32) -> String {
    format!("segments/{job_id}/{segment_index:05}.mkv")
}

/// Key of a converted segment.
pub fn output(job_id: &str, segment_index: u32) -> String {
    format!("outputs/{job_id}/{segment_index:05}.mkv")
}

/// Key of a converted segment's browser-playable copy: the same video stream, unchanged,
/// remuxed into fragmented MP4 (`moov` first, one fragment per keyframe), so that a job page
/// can append the finished segments, in order, to a Media Source while the rest converts.
pub fn playable(job_id: &str, segment_index: u32) -> String {
    format!("outputs/{job_id}/{segment_index:05}.play.mp4")
}

/// Key of the note a video-worker writes when it starts converting a segment (its Unix time):
/// the job page shows the segment as in progress until its completion is recorded.
pub fn segment_started(job_id: &str, segment_index: u32) -> String {
    format!("outputs/{job_id}/{segment_index:05}.started")
}

/// Key of a converted segment's normalised depth maps: exactly what the renderer was given
/// (after temporal normalisation, seam-continuous), as a lossless 16-bit grey video at the
/// depth map's resolution. A re-render of the job reads them instead of running the model.
pub fn depth(job_id: &str, segment_index: u32) -> String {
    format!("depth/{job_id}/{segment_index:05}.mkv")
}

/// Key of the marker object that starts a re-render job: created under the job's uploads
/// prefix, so that it reaches the chunking queue through the storage event exactly as an
/// upload does (the web-ui never talks to a queue). It holds a small JSON note, never video.
pub fn rerender_marker(job_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{job_id}/rerender")
}

/// Key of the marker object that starts a job converting another job's upload (a preview's
/// "Convert all"): like [`rerender_marker`], it reaches the chunking queue through the
/// storage event of the uploads prefix. It holds a small JSON note, never video.
pub fn convert_marker(job_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{job_id}/convert")
}

/// Key of the side-by-side preview frame shown on the job page.
pub fn preview_frame(job_id: &str) -> String {
    format!("outputs/{job_id}/preview-sbs.jpg")
}

/// Key of the depth-map preview shown on the job page.
pub fn preview_depth(job_id: &str) -> String {
    format!("outputs/{job_id}/preview-depth.png")
}

/// Key of a job's final result; `file_name` carries the extension.
pub fn final_output(job_id: &str, file_name: &str) -> String {
    format!("final/{job_id}/{file_name}")
}

/// Key of the note that some running video-worker holds the depth model `model` (its
/// catalogue name): the time it was last renewed, in Unix seconds. Every worker holding the
/// model renews it; a worker that cannot serve a task for the model reads it to tell "another
/// worker will take this" from "nobody can".
pub fn model_holder(model: &str) -> String {
    format!("workers/models/{model}")
}

/// The job id of an `uploads/{job_id}/...` key, if it is one.
pub fn job_id_of_upload(key: &str) -> Option<String> {
    let rest = key.strip_prefix(UPLOADS_PREFIX)?;
    let (job_id, tail) = rest.split_once('/')?;
    (!job_id.is_empty() && !tail.is_empty()).then(|| job_id.to_owned())
}

/// The queues of the flow. Names are the suffixes a deployment puts after its NAME_PREFIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// Storage object-created events for uploads: media-worker chunks.
    Chunking,
    /// SegmentTask: video-worker converts.
    Segments,
    /// SegmentOutput: video-worker's trigger records completions.
    SegmentOutput,
    /// ReassemblyRequest: media-worker stitches.
    Reassembly,
}

impl QueueName {
    /// Every queue.
    pub const ALL: [QueueName; 4] = [
        QueueName::Chunking,
        QueueName::Segments,
        QueueName::SegmentOutput,
        QueueName::Reassembly,
    ];

    /// The queue's name.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Chunking => "chunking",
            QueueName::Segments => "segments",
            QueueName::SegmentOutput => "segment-output",
            QueueName::Reassembly => "reassembly",
        }
    }

    /// The name of its dead-letter queue.
    pub fn dlq(self) -> String {
        format!("{}-dlq", self.as_str())
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_name_their_job() {
        assert_eq!(job_id_of_upload(&source("abc")), Some("abc".to_owned()));
        assert_eq!(job_id_of_upload("uploads/abc"), None);
        assert_eq!(job_id_of_upload("uploads//source"), None);
        assert_eq!(job_id_of_upload("final/abc/x.mp4"), None);
        // A re-render's marker starts chunking for its job like an upload.
        assert_eq!(
            job_id_of_upload(&rerender_marker("abc")),
            Some("abc".to_owned())
        );
    }

    #[test]
    fn segment_keys_sort_in_segment_order() {
        let mut keys: Vec<_> = [10, 2, 1].iter().map(|&i| segment("j", i)).collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![segment("j", 1), segment("j", 2), segment("j", 10)]
        );
        let mut keys: Vec<_> = [10, 2, 1].iter().map(|&i| depth("j", i)).collect();
        keys.sort();
        assert_eq!(keys, vec![depth("j", 1), depth("j", 2), depth("j", 10)]);
        assert_eq!(playable("j", 3), "outputs/j/00003.play.mp4");
        assert_ne!(playable("j", 3), output("j", 3));
    }
}
