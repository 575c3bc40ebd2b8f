//! Helpers shared by the fuzz targets in `fuzz_targets/` (see docs/fuzzing.md).
//!
//! The readers under test (in `parallax-media`) take paths, as media-worker calls them on
//! uploads and segments, so each input is written to a file first: an unnamed temporary file (nothing is left behind
//! when the process ends), reached through `/proc/self/fd`.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// One fuzzing process's files: the input file and a folder for what a target writes.
#[derive(Debug)]
pub struct Scratch {
    file: File,
    path: PathBuf,
    dir: tempfile::TempDir,
}

impl Scratch {
    /// An empty input file and an empty folder, both under the temporary folder (`TMPDIR`).
    pub fn new() -> Self {
        let file = tempfile::tempfile().expect("creating the unnamed input file");
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let dir = tempfile::tempdir().expect("creating the output folder");
        Self { file, path, dir }
    }

    /// Makes `data` the whole content of the input file and returns its path.
    pub fn input(&mut self, data: &[u8]) -> &Path {
        self.file.set_len(0).expect("emptying the input file");
        self.file
            .write_all_at(data, 0)
            .expect("writing the input file");
        self.file.flush().expect("flushing the input file");
        &self.path
    }

    /// The folder for files a target writes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}
