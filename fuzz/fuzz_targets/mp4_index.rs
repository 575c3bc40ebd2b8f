//! The MP4/MOV index reader on any file ([`parallax_media::mp4::read`]): an upload is the first
//! thing media-worker parses. Where the reader accepts a file whose samples are all inside
//! it, the target goes on as chunking does (media-worker's `split::split_in_process`): one
//! Matroska segment per keyframe ([`parallax_media::mkv::write_segment`]), each read back by
//! the joiner of converted segments.
//!
//! Beyond "no panic, no hang, no unbounded allocation" (libFuzzer's limits), it checks that
//! a file that can be read never gives an error (media-worker would retry the job
//! forever instead of refusing it) and that every planned segment holds its samples.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use parallax_media::{mkv, mp4};
use parallax_fuzz::Scratch;

/// Segments written per input: enough to cover the writer, few enough to stay fast.
const MAX_SEGMENTS: usize = 4;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

fuzz_target!(|data: &[u8]| {
    SCRATCH.with_borrow_mut(|scratch| {
        let source = scratch.input(data).to_owned();
        let read = mp4::read(&source).expect("reading an index never fails on a readable file");
        let mp4::Read::Index(probe) = read else {
            return;
        };
        let (Some(track), None) = (&probe.video, probe.truncated) else {
            return;
        };
        assert_eq!(probe.scan.count, track.samples.len() as u64);
        let keys: Vec<usize> = (0..track.samples.len())
            .filter(|i| track.samples[*i].key)
            .take(MAX_SEGMENTS + 1)
            .collect();
        for (n, first) in keys.iter().take(MAX_SEGMENTS).enumerate() {
            let end = keys.get(n + 1).copied().unwrap_or(track.samples.len());
            let out = scratch.dir().join(format!("{n:05}.mkv"));
            let written = mkv::write_segment(&source, track, *first, end - first, &out)
                .expect("samples inside the file can be copied");
            assert_eq!(written, (end - first) as u64);
            // The joiner may refuse a segment whose times a hostile index made odd (one
            // that would start before zero); it must not fail to read it.
            let _answer = mkv::join_in_place(&[out], &[0.0], scratch.dir())
                .expect("a written segment can be read");
        }
    });
});
