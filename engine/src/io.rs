//! Reading a child process's output in whole frames.

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Reads into `buf` until it is full or the stream ends; returns how many bytes came (fewer
/// than `buf.len()` only at the end of the stream). `what` names the stream in errors.
pub(crate) async fn read_full(
    r: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    what: &'static str,
) -> anyhow::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = r
            .read(&mut buf[got..])
            .await
            .with_context(|| format!("reading {what}"))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}
