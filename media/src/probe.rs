//! Running ffprobe for JSON, parsed into the one typed schema ([`crate::schema`]).

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::ToolCommand;
use crate::schema::ProbeJson;

/// Runs `ffprobe <args> -of json <path>` and parses its output. `args` choose what is shown
/// (`-show_streams`, `-select_streams v:0`, `-show_entries ...`); ffprobe's failure on the
/// file (not a media file, damaged) is [`Error::Process`] with `ProcessError::Failed`.
pub async fn json(path: &Path, timeout: Duration, args: &[&str]) -> Result<ProbeJson> {
    let out = ToolCommand::ffprobe(timeout)
        .args(args)
        .args(["-of", "json"])
        .arg(path)
        .output()
        .await?;
    ProbeJson::parse(&out.stdout).map_err(|e| Error::Output {
        what: "JSON",
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// `ffprobe -show_format -show_streams`: the container and every stream.
pub async fn format_and_streams(path: &Path, timeout: Duration) -> Result<ProbeJson> {
    json(path, timeout, &["-show_format", "-show_streams"]).await
}
