//! The media crate's one error type: what went wrong, on which file, in words a person can
//! act on. What a file's bytes say (an MP4 this reader does not understand, segments that do
//! not join) is an answer, not an error; errors are about running the tools and reaching
//! the files.

use std::path::{Path, PathBuf};

use crate::process::ProcessError;

/// Why reading or writing media failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// ffmpeg or ffprobe could not be run, timed out or failed (its exit status and stderr
    /// tail are in the error).
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The file system refused: a file could not be opened, read, written or resolved.
    #[error("{action} {}: {source}", path.display())]
    File {
        /// What was being done, e.g. `reading the MP4/MOV index of`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// ffprobe ran but printed something that is not what it was asked for.
    #[error("ffprobe's {what} for {} cannot be read: {detail}", path.display())]
    Output {
        /// What was asked for, e.g. `JSON` or `frame count`.
        what: &'static str,
        /// The file probed.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
}

impl Error {
    /// A file system error while `action` on `path`.
    pub fn file(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::File {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// The process failure, when a tool ran and failed (its stderr says why).
    pub fn process(&self) -> Option<&ProcessError> {
        match self {
            Error::Process(e) => Some(e),
            _ => None,
        }
    }
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
