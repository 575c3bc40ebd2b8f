//! An in-process reader of MP4/MOV (ISO-BMFF) indexes: the `moov` box holds every stream's
//! description and its sample table, which is all the chunking step needs to know (streams,
//! exact frame count, keyframes, timestamps). Reading it costs a few milliseconds where each
//! ffprobe run costs a process start plus loading the ffmpeg libraries.
//!
//! The reader answers in ffprobe's own terms (a [`ProbeJson`] and a [`PacketScan`] as
//! ffprobe would list them), so a caller applies the same checks to either path. It
//! only answers for files it understands completely; anything else (fragmented files, cover
//! art, chapter tracks, multi-entry edit lists, codecs it does not name, ...) gives
//! [`Read::Unsupported`] and the caller falls back to ffprobe.
//!
//! The parts, each using only those before it: `boxes` walks the box tree, `track` holds
//! what is read of a track, `codec` reads its sample description (codec, pixel format,
//! channels), `index` the movie and each track's header and sample tables, and `streams`
//! turns the tracks into ffprobe's terms.
//!
//! [`ProbeJson`]: crate::schema::ProbeJson
//! [`PacketScan`]: crate::packets::PacketScan

mod boxes;
mod codec;
mod index;
mod streams;
#[cfg(test)]
mod tests;
mod track;

use std::io::{Read as _, Seek, SeekFrom};
use std::path::Path;

use boxes::Unsupported;
use index::parse_moov;
use streams::build;
pub use streams::{Mp4Probe, SampleRef, VideoTrack, FORMAT_NAME};

use crate::error::{Error, Result};

/// The largest `moov` read into memory (a 4-hour 60 fps source needs about 15 MiB).
const MAX_MOOV: u64 = 256 * 1024 * 1024;

/// What reading a file's index gave.
#[derive(Debug)]
pub enum Read {
    /// The index, in ffprobe's terms.
    Index(Box<Mp4Probe>),
    /// An MP4/MOV file without its index (`moov`): the upload was cut off.
    MissingIndex,
    /// Not an MP4/MOV file, or one this reader does not fully understand: ask ffprobe.
    Unsupported(String),
}

/// Reads the index of `path` (blocking file I/O; a few reads and one `moov`-sized read).
/// An error means the file could not be read at all; what its bytes say is in [`Read`].
pub fn read(path: &Path) -> Result<Read> {
    read_file(path).map_err(|e| Error::file("reading the MP4/MOV index of", path, e))
}

fn read_file(path: &Path) -> std::io::Result<Read> {
    let mut f = std::fs::File::open(path)?;
    let file_size = f.metadata()?.len();
    let mut pos = 0u64;
    let mut first = true;
    let mut moov = None;
    let mut saw_mp4 = false;
    while file_size.saturating_sub(pos) >= 8 {
        f.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 16];
        let n = read_up_to(&mut f, &mut h)?;
        if n < 8 {
            break;
        }
        let kind: [u8; 4] = h[4..8].try_into().expect("4 bytes");
        let (size, header) = match u32::from_be_bytes(h[0..4].try_into().expect("4 bytes")) {
            0 => (file_size - pos, 8),
            1 if n >= 16 => (
                u64::from_be_bytes(h[8..16].try_into().expect("8 bytes")),
                16,
            ),
            s => (u64::from(s), 8),
        };
        let known = matches!(
            &kind,
            b"ftyp" | b"moov" | b"mdat" | b"free" | b"skip" | b"wide" | b"uuid" | b"pnot" | b"meta"
        );
        if first
            && !matches!(
                &kind,
                b"ftyp" | b"moov" | b"mdat" | b"wide" | b"free" | b"skip"
            )
        {
            return Ok(Read::Unsupported("not an MP4/MOV file".into()));
        }
        first = false;
        if matches!(&kind, b"moof" | b"sidx" | b"mfra" | b"styp") {
            return Ok(Read::Unsupported("fragmented MP4".into()));
        }
        if !known || size < header {
            return Ok(Read::Unsupported(format!(
                "unexpected top-level box {:?}",
                String::from_utf8_lossy(&kind)
            )));
        }
        saw_mp4 |= matches!(&kind, b"ftyp" | b"mdat" | b"moov");
        if &kind == b"moov" {
            if moov.is_some() {
                return Ok(Read::Unsupported("two moov boxes".into()));
            }
            if size > file_size - pos {
                // The index itself is cut off.
                return Ok(Read::MissingIndex);
            }
            if size > MAX_MOOV {
                return Ok(Read::Unsupported("very large index".into()));
            }
            let mut buf = vec![0u8; (size - header) as usize];
            f.seek(SeekFrom::Start(pos + header))?;
            f.read_exact(&mut buf)?;
            moov = Some(buf);
        }
        pos = pos.saturating_add(size);
    }
    let Some(moov) = moov else {
        return Ok(if saw_mp4 {
            Read::MissingIndex
        } else {
            Read::Unsupported("no moov box".into())
        });
    };
    match parse_moov(&moov, file_size).and_then(|movie| build(movie, file_size)) {
        Ok(p) => Ok(Read::Index(Box::new(p))),
        Err(Unsupported(why)) => Ok(Read::Unsupported(why)),
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
