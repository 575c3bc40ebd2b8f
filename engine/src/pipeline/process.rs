//! ffmpeg processes as the pipeline runs them: malloc tunables that let ffmpeg reuse its
//! frame buffers, and wide pipes to and from it.

use parallax_media::process::ToolCommand;

/// The capacity asked for the pipes to and from ffmpeg: Linux's default of 64 KiB moves a
/// 720p frame in dozens of writes, each waking the other side; 1 MiB is the most an
/// unprivileged process may ask for by default (`/proc/sys/fs/pipe-max-size`).
pub(super) const PIPE_BYTES: usize = 1 << 20;

/// glibc malloc settings for the decoder and encoder: ffmpeg allocates a fresh buffer for
/// every raw frame it writes or reads. Past glibc's default thresholds those come from
/// `mmap` or from a heap top that is trimmed on every free, so each frame's pages are
/// faulted in and zeroed anew (2% of a conversion's CPU, most of the encoder's kernel
/// time). A fixed mmap threshold of 32 MiB (the most glibc takes) and a high trim threshold
/// keep the freed buffers for the next frame. Other C libraries ignore the variable.
pub(super) const STREAMING_MALLOC: &str =
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456";

/// `cmd` with [`STREAMING_MALLOC`]; tunables already in the environment come after, so they
/// win.
pub(super) fn streaming(cmd: ToolCommand) -> ToolCommand {
    cmd.env(
        "GLIBC_TUNABLES",
        streaming_tunables(std::env::var_os("GLIBC_TUNABLES")),
    )
}

pub(super) fn streaming_tunables(own: Option<std::ffi::OsString>) -> std::ffi::OsString {
    let mut tunables = std::ffi::OsString::from(STREAMING_MALLOC);
    if let Some(own) = own.filter(|v| !v.is_empty()) {
        tunables.push(":");
        tunables.push(own);
    }
    tunables
}

/// Asks for a [`PIPE_BYTES`] pipe: fewer, larger transfers and fewer wake-ups on both sides.
/// A refusal (a lower system limit) only costs speed.
pub(super) fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_BYTES) {
        tracing::debug!(error = %e, "keeping the pipe's default size");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_malloc_tunables_come_after_the_pipelines_so_they_win() {
        assert_eq!(streaming_tunables(None), STREAMING_MALLOC);
        assert_eq!(streaming_tunables(Some("".into())), STREAMING_MALLOC);
        assert_eq!(
            streaming_tunables(Some("glibc.malloc.trim_threshold=0".into())),
            format!("{STREAMING_MALLOC}:glibc.malloc.trim_threshold=0").as_str()
        );
    }
}
