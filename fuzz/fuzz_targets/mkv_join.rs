//! The Matroska reader of converted segments ([`parallax_media::mkv::join_in_place`]) on any
//! file, alone and as both halves of a two-segment join. Segments come back from
//! video-workers, which may run elsewhere (on AWS, on other hosts) and whose output comes
//! from an upload; a damaged one must give a reason (and reassembly falls back to ffmpeg's
//! concat demuxer), never a panic, a hang or a huge allocation, and never an I/O error on a
//! file that can be read.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use parallax_media::mkv;
use parallax_fuzz::Scratch;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

fuzz_target!(|data: &[u8]| {
    SCRATCH.with_borrow_mut(|scratch| {
        let segment = scratch.input(data).to_owned();
        let dir = scratch.dir();
        // A refusal (`Ok(Err(reason))`) is an answer; only an I/O error is a failure.
        let _answer = mkv::join_in_place(std::slice::from_ref(&segment), &[0.0], dir)
            .expect("reading a segment never fails on a readable file");
        let _answer = mkv::join_in_place(&[segment.clone(), segment], &[0.0, 2.0], dir)
            .expect("reading two segments never fails on readable files");
    });
});
