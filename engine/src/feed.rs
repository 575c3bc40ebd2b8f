//! Feeding raw frames to the encoder's stdin. Frames larger than twice the pipe are spliced
//! into it (`vmsplice`): the pipe refers to the frame's own pages and the encoder copies
//! straight from them, which saves copying every byte into the pipe and allocating the
//! pipe's pages. Smaller frames are written as usual.
//!
//! A spliced frame must stay unmodified until the encoder has read it: [`Feed::feed`]'s
//! caller keeps each spliced buffer until the next frame has been fed (the pipe holds at
//! most its capacity, so once a frame of more than that has gone in after it, every byte of
//! the earlier one has been read), or until the encoder has exited.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;

use rustix::pipe::{IoSliceRaw, SpliceFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::process::ChildStdin;

/// The encoder's stdin, ready for whole frames.
pub(super) struct Feed {
    fd: AsyncFd<OwnedFd>,
    /// Frames of at least this many bytes are spliced.
    splice_from: usize,
}

impl Feed {
    pub(super) fn new(stdin: ChildStdin) -> io::Result<Self> {
        // Taken out of tokio in blocking mode; polled here, so non-blocking again.
        let fd = stdin.into_owned_fd()?;
        rustix::io::ioctl_fionbio(&fd, true)?;
        let splice_from = rustix::pipe::fcntl_getpipe_size(&fd)
            .map(|cap| cap.saturating_mul(2))
            .unwrap_or(usize::MAX);
        // SAFETY: an OwnedFd is a valid open descriptor, the same one for its whole life,
        // and the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { fd, splice_from })
    }

    /// Whether a frame of `len` bytes is spliced: then its buffer must stay unmodified until
    /// the next frame has been fed or the encoder has exited (see the module's notes).
    pub(super) fn splices(&self, len: usize) -> bool {
        len >= self.splice_from
    }

    /// Feeds all of `frame`, waiting while the pipe is full.
    pub(super) async fn feed(&self, frame: &[u8]) -> io::Result<()> {
        let splice = self.splices(frame.len());
        let mut done = 0;
        while done < frame.len() {
            let rest = &frame[done..];
            let mut ready = self.fd.writable().await?;
            let result = ready.try_io(|fd| {
                let n = if splice {
                    // SAFETY: vmsplice only reads `rest` (this is the pipe's write end), and
                    // the caller keeps the buffer unmodified while the pipe may still refer to
                    // its pages (`splices`).
                    unsafe {
                        rustix::pipe::vmsplice(
                            fd.get_ref(),
                            &[IoSliceRaw::from_slice(rest)],
                            SpliceFlags::NONBLOCK,
                        )
                    }
                } else {
                    rustix::io::write(fd.get_ref(), rest)
                };
                n.map_err(io::Error::from)
            });
            match result {
                Ok(Ok(n)) => done += n,
                Ok(Err(e)) => return Err(e),
                // Full again: wait for the next readiness.
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;

    /// Frames fed as the write stage does, each buffer overwritten the moment the protocol
    /// gives it back (as the frame pool reuses it), to a reader that starts late: every byte
    /// must arrive as fed, through the splice path and the write path.
    #[tokio::test]
    async fn every_fed_byte_arrives_although_released_buffers_are_reused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        for frame_len in [3 << 20, 100_000] {
            let out = dir.path().join(format!("fed-{frame_len}"));
            let mut child = tokio::process::Command::new("sh")
                .args(["-c", "sleep 0.3; exec cat"])
                .stdin(Stdio::piped())
                .stdout(std::fs::File::create(&out).unwrap())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            rustix::pipe::fcntl_setpipe_size(&stdin, 1 << 20).ok();
            let feed = Feed::new(stdin).unwrap();
            assert_eq!(feed.splices(frame_len), frame_len == 3 << 20);
            let mut want = Vec::new();
            let mut held = None;
            for i in 0..5u8 {
                let frame: Vec<u8> = (0..frame_len).map(|j| (j % 251) as u8 ^ i).collect();
                want.extend_from_slice(&frame);
                feed.feed(&frame).await.unwrap();
                let done = if feed.splices(frame.len()) {
                    held.replace(frame)
                } else {
                    Some(frame)
                };
                if let Some(mut reused) = done {
                    reused.fill(0xee);
                }
            }
            drop(feed);
            assert!(child.wait().await.unwrap().success());
            drop(held);
            let got = std::fs::read(&out).unwrap();
            assert_eq!(got.len(), want.len(), "{frame_len}-byte frames");
            assert!(got == want, "{frame_len}-byte frames arrived changed");
        }
    }
}
