//! An in-process reader of MP4/MOV (ISO-BMFF) indexes: the `moov` box holds every stream's
//! description and its sample table, which is all the chunking step needs to know (streams,
//! exact frame count, keyframes, timestamps). Reading it costs a few milliseconds where each
//! ffprobe run costs a process start plus loading the ffmpeg libraries.
//!
//! The reader answers in ffprobe's own terms (a [`ProbeJson`] and a [`PacketScan`] as
//! ffprobe would list them), so [`crate::probe`] applies the same checks to either path. It
//! only answers for files it understands completely; anything else (fragmented files, cover
//! art, chapter tracks, multi-entry edit lists, codecs it does not name, ...) gives
//! [`Read::Unsupported`] and the caller falls back to ffprobe.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek, SeekFrom};
use std::path::Path;

use crate::probe::{FormatJson, Packet, PacketScan, ProbeJson, SideDataJson, StreamJson};

/// ffprobe's name for the MP4/MOV demuxer.
pub const FORMAT_NAME: &str = "mov,mp4,m4a,3gp,3g2,mj2";

/// The largest `moov` read into memory (a 4-hour 60 fps source needs about 15 MiB).
const MAX_MOOV: u64 = 256 * 1024 * 1024;

/// The most samples one track may declare (about a hundred bytes of memory each); a track
/// also cannot declare more samples than its file has bytes.
const MAX_SAMPLES: u64 = 50_000_000;

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

/// An MP4/MOV index as ffprobe would report it.
#[derive(Debug, Clone)]
pub struct Mp4Probe {
    /// `-show_format -show_streams`.
    pub json: ProbeJson,
    /// The packets of the first video stream, in decoding order.
    pub scan: PacketScan,
    /// Video samples whose bytes are inside the file, when some are not (a cut-off upload).
    pub truncated: Option<u64>,
    /// Where the first video stream's samples are, for splitting without ffmpeg.
    pub video: Option<VideoTrack>,
}

/// The first video stream's description and samples (decoding order).
#[derive(Debug, Clone)]
pub struct VideoTrack {
    /// Matroska codec id (`V_MPEG4/ISO/AVC`, `V_MPEGH/ISO/HEVC`).
    pub codec_id: &'static str,
    /// The decoder configuration record (avcC / hvcC payload), Matroska's CodecPrivate.
    pub codec_private: Vec<u8>,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Ticks per second of `pts` and `duration`.
    pub timescale: u32,
    /// Every sample, decoding order.
    pub samples: Vec<SampleRef>,
}

/// One video sample: where its bytes are and when it is shown.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef {
    /// Byte offset in the file.
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
    /// Presentation time (after the edit list), in track ticks.
    pub pts: i64,
    /// Decoding time (after the edit list), in track ticks.
    pub dts: i64,
    /// Duration in track ticks.
    pub duration: i64,
    /// A sync sample.
    pub key: bool,
}

/// Reads the index of `path` (blocking file I/O; a few reads and one `moov`-sized read).
pub fn read(path: &Path) -> std::io::Result<Read> {
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
    match parse_moov(&moov, file_size) {
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

/// Why the reader gives up on a file (the caller falls back to ffprobe).
#[derive(Debug)]
struct Unsupported(String);

type R<T> = Result<T, Unsupported>;

fn no<T>(why: impl Into<String>) -> R<T> {
    Err(Unsupported(why.into()))
}

/// A big-endian cursor over a box's payload.
#[derive(Clone, Copy)]
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, at: 0 }
    }
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.b.len() - self.at < n {
            return no("a box is shorter than its fields");
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> R<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> R<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn fourcc(&mut self) -> R<[u8; 4]> {
        Ok(self.take(4)?.try_into().expect("4"))
    }
    fn rest(&self) -> &'a [u8] {
        &self.b[self.at..]
    }
    /// Version and flags of a full box.
    fn full(&mut self) -> R<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// The child boxes of a payload: (type, payload).
fn children(b: &[u8]) -> R<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    let mut c = Cur::new(b);
    while c.b.len() - c.at >= 8 {
        let size = c.u32()? as u64;
        let kind = c.fourcc()?;
        let (size, header) = match size {
            1 => (c.u64()?, 16),
            0 => ((c.b.len() - c.at) as u64 + 8, 8),
            s => (s, 8),
        };
        if size < header || size - header > (c.b.len() - c.at) as u64 {
            return no("a box runs past its parent");
        }
        out.push((kind, c.take((size - header) as usize)?));
    }
    Ok(out)
}

fn child<'a>(kids: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> Option<&'a [u8]> {
    kids.iter().find(|(k, _)| k == kind).map(|(_, b)| *b)
}

/// One sample (= packet) of a track, in decoding order.
#[derive(Debug, Clone, Copy)]
struct Sample {
    offset: u64,
    size: u32,
    dts: i64,
    cts_offset: i64,
    duration: i64,
    key: bool,
}

#[derive(Debug, Default)]
struct Track {
    kind: String,
    codec: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    channels: Option<u32>,
    timescale: u32,
    language: Option<String>,
    enabled: bool,
    rotation_ccw: Option<f64>,
    samples: Vec<Sample>,
    /// Edit list: (media_time, duration in movie ticks), when there is one.
    edit: Option<(i64, u64)>,
    /// Bytes of samples that lie inside the file, counted per sample in decoding order.
    samples_in_file: u64,
    /// The decoder configuration record (video).
    codec_private: Vec<u8>,
}

fn parse_moov(moov: &[u8], file_size: u64) -> R<Mp4Probe> {
    let kids = children(moov)?;
    if child(&kids, b"mvex").is_some() {
        return no("fragmented MP4 (mvex)");
    }
    let mvhd = child(&kids, b"mvhd").ok_or_else(|| Unsupported("no mvhd".into()))?;
    let mut c = Cur::new(mvhd);
    let (v, _) = c.full()?;
    let (movie_ts, movie_dur) = if v == 1 {
        c.skip(16)?;
        (c.u32()?, c.u64()?)
    } else {
        c.skip(8)?;
        (c.u32()?, c.u32()? as u64)
    };
    c.skip(4 + 2 + 10)?;
    if !identity(&read_matrix(&mut c)?) {
        return no("a movie-level display matrix");
    }
    if movie_ts == 0 {
        return no("movie timescale 0");
    }
    if let Some(udta) = child(&kids, b"udta") {
        if has_cover_art(udta)? {
            return no("cover art (an extra picture stream)");
        }
    }
    if let Some(meta) = child(&kids, b"meta") {
        if contains(meta, b"covr") {
            return no("cover art (an extra picture stream)");
        }
    }
    let mut tracks = Vec::new();
    for (k, b) in &kids {
        if k == b"trak" {
            tracks.push(parse_trak(b, file_size)?);
        }
    }
    build(tracks, movie_ts, movie_dur, file_size)
}

fn contains(b: &[u8], needle: &[u8]) -> bool {
    b.windows(needle.len()).any(|w| w == needle)
}

fn has_cover_art(udta: &[u8]) -> R<bool> {
    Ok(contains(udta, b"covr"))
}

fn read_matrix(c: &mut Cur<'_>) -> R<[i32; 9]> {
    let mut m = [0i32; 9];
    for v in &mut m {
        *v = c.u32()? as i32;
    }
    Ok(m)
}

fn identity(m: &[i32; 9]) -> bool {
    *m == [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000]
}

/// The rotation ffmpeg reads from a display matrix (`av_display_rotation_get`), in degrees
/// counter-clockwise; `None` for the identity.
fn matrix_rotation(m: &[i32; 9]) -> Option<f64> {
    if identity(m) {
        return None;
    }
    let f = |v: i32| v as f64 / 65536.0;
    let s0 = f(m[0]).hypot(f(m[3]));
    let s1 = f(m[1]).hypot(f(m[4]));
    if s0 == 0.0 || s1 == 0.0 {
        return None;
    }
    let r = -(f(m[1]) / s1).atan2(f(m[0]) / s0).to_degrees();
    // ffprobe prints the angle with this rounding.
    Some(if r == 0.0 { 0.0 } else { r })
}

fn parse_trak(trak: &[u8], file_size: u64) -> R<Track> {
    let kids = children(trak)?;
    if let Some(tref) = child(&kids, b"tref") {
        if contains(tref, b"chap") {
            return no("a chapter track");
        }
    }
    let mut t = Track::default();
    let tkhd = child(&kids, b"tkhd").ok_or_else(|| Unsupported("no tkhd".into()))?;
    let mut c = Cur::new(tkhd);
    let (v, flags) = c.full()?;
    c.skip(if v == 1 {
        8 + 8 + 4 + 4 + 8
    } else {
        4 + 4 + 4 + 4 + 4
    })?;
    c.skip(8 + 2 + 2 + 2 + 2)?;
    t.rotation_ccw = matrix_rotation(&read_matrix(&mut c)?);
    t.enabled = flags & 1 != 0;
    if let Some(edts) = child(&kids, b"edts") {
        t.edit = parse_elst(edts)?;
    }
    let mdia = child(&kids, b"mdia").ok_or_else(|| Unsupported("no mdia".into()))?;
    let mk = children(mdia)?;
    let mdhd = child(&mk, b"mdhd").ok_or_else(|| Unsupported("no mdhd".into()))?;
    let mut c = Cur::new(mdhd);
    let (v, _) = c.full()?;
    c.skip(if v == 1 { 16 } else { 8 })?;
    t.timescale = c.u32()?;
    c.skip(if v == 1 { 8 } else { 4 })?;
    t.language = language(c.u16()?)?;
    if t.timescale == 0 {
        return no("track timescale 0");
    }
    let hdlr = child(&mk, b"hdlr").ok_or_else(|| Unsupported("no hdlr".into()))?;
    let mut c = Cur::new(hdlr);
    c.full()?;
    c.skip(4)?;
    t.kind = match &c.fourcc()? {
        b"vide" => "video",
        b"soun" => "audio",
        b"sbtl" | b"subt" | b"text" | b"clcp" => "subtitle",
        _ => "data",
    }
    .to_owned();
    let minf = child(&mk, b"minf").ok_or_else(|| Unsupported("no minf".into()))?;
    let stbl = child(&children(minf)?, b"stbl").ok_or_else(|| Unsupported("no stbl".into()))?;
    parse_stbl(&mut t, stbl, file_size)?;
    Ok(t)
}

/// mdhd's packed ISO 639-2 code (or an old Macintosh language number).
fn language(code: u16) -> R<Option<String>> {
    // The first entries of ffmpeg's Macintosh language table.
    const MAC: [&str; 12] = [
        "eng", "fra", "ger", "ita", "dut", "sve", "spa", "dan", "por", "nor", "heb", "jpn",
    ];
    if code == 0x7fff {
        return Ok(None);
    }
    if code < 0x400 {
        return match MAC.get(code as usize) {
            Some(l) => Ok(Some((*l).to_owned())),
            None => no(format!("Macintosh language code {code}")),
        };
    }
    let s: String = [(code >> 10) & 31, (code >> 5) & 31, code & 31]
        .iter()
        .map(|c| (*c as u8 + 0x60) as char)
        .collect();
    if !s.bytes().all(|b| b.is_ascii_lowercase()) {
        return no("a malformed language code");
    }
    Ok(Some(s))
}

/// One edit that maps the media onto the presentation from `media_time` (no empty edits,
/// no rate changes); anything else is left to ffprobe.
fn parse_elst(edts: &[u8]) -> R<Option<(i64, u64)>> {
    let Some(elst) = child(&children(edts)?, b"elst") else {
        return Ok(None);
    };
    let mut c = Cur::new(elst);
    let (v, _) = c.full()?;
    let n = c.u32()?;
    if n == 0 {
        return Ok(None);
    }
    if n != 1 {
        return no("an edit list with several edits");
    }
    let (dur, media_time) = if v == 1 {
        (c.u64()?, c.u64()? as i64)
    } else {
        (c.u32()? as u64, c.u32()? as i32 as i64)
    };
    let rate = c.u32()?;
    if media_time < 0 || rate != 0x0001_0000 {
        return no("an empty or rate-changing edit");
    }
    Ok(Some((media_time, dur)))
}

fn parse_stbl(t: &mut Track, stbl: &[u8], file_size: u64) -> R<()> {
    let kids = children(stbl)?;
    for (k, b) in &kids {
        if k == b"sbgp" && t.kind == "video" {
            let mut c = Cur::new(b);
            c.full()?;
            if &c.fourcc()? == b"sync" {
                return no("sync sample groups (open-GOP keyframes)");
            }
        }
        if k == b"stz2" {
            return no("compact sample sizes (stz2)");
        }
    }
    let need = |k: &[u8; 4]| {
        child(&kids, k).ok_or_else(|| {
            Unsupported(format!(
                "no {} in the sample table",
                String::from_utf8_lossy(k)
            ))
        })
    };
    parse_stsd(t, need(b"stsd")?)?;

    // Decoding times and durations.
    let mut c = Cur::new(need(b"stts")?);
    c.full()?;
    let n = c.u32()?;
    let mut deltas = Vec::new();
    for _ in 0..n {
        let (count, delta) = (c.u32()?, c.u32()?);
        if deltas.len() as u64 + count as u64 > MAX_SAMPLES.min(file_size) {
            // An 8-byte entry may declare four billion samples: the count must not size
            // the tables below before anything else bounds it.
            return no("more samples than the file can hold");
        }
        deltas.extend(std::iter::repeat_n(delta as i64, count as usize));
    }
    let mut c = Cur::new(need(b"stsz")?);
    c.full()?;
    let (fixed, count) = (c.u32()?, c.u32()? as usize);
    if count != deltas.len() {
        return no("sample tables of different lengths");
    }
    let sizes: Vec<u64> = if fixed != 0 {
        vec![fixed as u64; count]
    } else {
        (0..count)
            .map(|_| c.u32().map(u64::from))
            .collect::<R<_>>()?
    };
    let mut cts = vec![0i64; count];
    if let Some(ctts) = child(&kids, b"ctts") {
        let mut c = Cur::new(ctts);
        c.full()?;
        let n = c.u32()?;
        let mut i = 0usize;
        for _ in 0..n {
            let (k, off) = (c.u32()? as usize, c.u32()? as i32 as i64);
            // A run is filled in one step: counting a hostile run sample by sample is a
            // loop of up to four billion steps per eight bytes of table.
            let end = i.saturating_add(k);
            if end > count {
                return no("a composition table of another length");
            }
            cts[i..end].fill(off);
            i = end;
        }
        if i != count {
            return no("a composition table of another length");
        }
    }
    let mut key = vec![true; count];
    if let Some(stss) = child(&kids, b"stss") {
        let mut c = Cur::new(stss);
        c.full()?;
        let n = c.u32()?;
        if n == 0 {
            return no("an empty sync sample table");
        }
        key = vec![false; count];
        for _ in 0..n {
            let s = c.u32()? as usize;
            if s == 0 || s > count {
                return no("a sync sample out of range");
            }
            key[s - 1] = true;
        }
    }
    // Where the samples are: chunks (stco/co64) of stsc-given sample counts.
    let offsets: Vec<u64> = if let Some(stco) = child(&kids, b"stco") {
        let mut c = Cur::new(stco);
        c.full()?;
        let n = c.u32()?;
        (0..n).map(|_| c.u32().map(u64::from)).collect::<R<_>>()?
    } else {
        let mut c = Cur::new(need(b"co64")?);
        c.full()?;
        let n = c.u32()?;
        (0..n).map(|_| c.u64()).collect::<R<_>>()?
    };
    let mut c = Cur::new(need(b"stsc")?);
    c.full()?;
    let n = c.u32()?;
    // 12 bytes an entry: the declared count does not size the allocation.
    let mut runs = Vec::with_capacity((n as usize).min(c.rest().len() / 12));
    for _ in 0..n {
        let (first, per, desc) = (c.u32()?, c.u32()?, c.u32()?);
        if desc != 1 || first == 0 {
            return no("several sample descriptions");
        }
        runs.push((first as usize, per as usize));
    }
    let mut sample = 0usize;
    let mut inside = 0u64;
    let mut starts = vec![0u64; count];
    for (i, (first, per)) in runs.iter().enumerate() {
        let last = runs.get(i + 1).map_or(offsets.len(), |r| r.0 - 1);
        let chunks = offsets
            .get(*first - 1..last.min(offsets.len()))
            .unwrap_or(&[]);
        for &chunk_offset in chunks {
            let mut at = chunk_offset;
            for _ in 0..*per {
                if sample >= count {
                    break;
                }
                starts[sample] = at;
                // co64 offsets are any 64-bit value: a sample that would end past
                // u64::MAX is not inside the file either.
                at = at.saturating_add(sizes[sample]);
                if at <= file_size {
                    inside += 1;
                }
                sample += 1;
            }
        }
    }
    if sample != count {
        return no("chunks that do not hold every sample");
    }
    t.samples_in_file = inside;
    let mut dts = 0i64;
    t.samples = (0..count)
        .map(|i| {
            let s = Sample {
                offset: starts[i],
                size: sizes[i] as u32,
                dts,
                cts_offset: cts[i],
                duration: deltas[i],
                key: key[i],
            };
            dts += deltas[i];
            s
        })
        .collect();
    Ok(())
}

fn parse_stsd(t: &mut Track, stsd: &[u8]) -> R<()> {
    let mut c = Cur::new(stsd);
    c.full()?;
    if c.u32()? != 1 {
        return no("several sample descriptions");
    }
    let entries = children(c.rest())?;
    let (fourcc, body) = entries
        .first()
        .ok_or_else(|| Unsupported("an empty sample description".into()))?;
    let mut c = Cur::new(body);
    c.skip(8)?; // reserved + data reference index
    match t.kind.as_str() {
        "video" => {
            c.skip(16)?;
            t.width = Some(c.u16()? as u32);
            t.height = Some(c.u16()? as u32);
            c.skip(4 + 4 + 4 + 2 + 32 + 2 + 2)?;
            let ext = children(c.rest())?;
            let (codec, pix_fmt) = match fourcc {
                b"avc1" | b"avc3" => {
                    let avcc = child(&ext, b"avcC").ok_or_else(|| Unsupported("no avcC".into()))?;
                    t.codec_private = avcc.to_vec();
                    ("h264", avc_pix_fmt(avcc)?)
                }
                b"hvc1" | b"hev1" => {
                    let hvcc = child(&ext, b"hvcC").ok_or_else(|| Unsupported("no hvcC".into()))?;
                    t.codec_private = hvcc.to_vec();
                    ("hevc", hevc_pix_fmt(hvcc)?)
                }
                _ => return no(format!("video codec {}", String::from_utf8_lossy(fourcc))),
            };
            t.codec = Some(codec.into());
            t.pix_fmt = Some(pix_fmt);
        }
        "audio" => {
            let version = c.u16()?;
            c.skip(6)?;
            let channels = c.u16()? as u32;
            let bits = c.u16()?;
            c.skip(2 + 2 + 4)?;
            match version {
                0 => {}
                1 => c.skip(16)?,
                _ => return no("a version 2 sound description"),
            }
            let ext = children(c.rest())?;
            let codec = match fourcc {
                b"mp4a" => {
                    let esds = child(&ext, b"esds")
                        .or_else(|| {
                            child(&ext, b"wave")
                                .and_then(|w| children(w).ok())
                                .and_then(|w| child(&w, b"esds"))
                        })
                        .ok_or_else(|| Unsupported("mp4a without esds".into()))?;
                    let (object, asc) = parse_esds(esds)?;
                    match object {
                        0x40 | 0x66 | 0x67 | 0x68 => {
                            t.channels = aac_channels(&asc).or(Some(channels));
                            "aac"
                        }
                        0x69 | 0x6b => "mp3",
                        _ => return no(format!("MPEG-4 audio object type {object:#x}")),
                    }
                }
                b"ac-3" => "ac3",
                b"ec-3" => "eac3",
                b"Opus" => "opus",
                b"fLaC" => "flac",
                b"alac" => "alac",
                b"sowt" if bits == 16 => "pcm_s16le",
                b"twos" if bits == 16 => "pcm_s16be",
                _ => return no(format!("audio codec {}", String::from_utf8_lossy(fourcc))),
            };
            if t.channels.is_none() {
                t.channels = Some(channels);
            }
            if codec != "aac" && !codec.starts_with("pcm") {
                // The channel count of these lives in their own config boxes.
                return no(format!("{codec} channel layout"));
            }
            t.codec = Some(codec.into());
        }
        "subtitle" => {
            t.codec = Some(
                match fourcc {
                    b"tx3g" | b"text" if t.kind == "subtitle" => "mov_text",
                    _ => {
                        return no(format!(
                            "subtitle codec {}",
                            String::from_utf8_lossy(fourcc)
                        ))
                    }
                }
                .into(),
            );
        }
        _ => {}
    }
    Ok(())
}

/// (objectTypeIndication, DecoderSpecificInfo) of an esds box.
fn parse_esds(esds: &[u8]) -> R<(u8, Vec<u8>)> {
    let mut c = Cur::new(esds);
    c.full()?;
    fn descriptor<'a>(c: &mut Cur<'a>) -> R<(u8, Cur<'a>)> {
        let tag = c.u8()?;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = c.u8()?;
            len = (len << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                break;
            }
        }
        Ok((tag, Cur::new(c.take(len)?)))
    }
    let (tag, mut es) = descriptor(&mut c)?;
    if tag != 3 {
        return no("an esds without ES descriptor");
    }
    es.skip(2)?;
    let flags = es.u8()?;
    if flags & 0x80 != 0 {
        es.skip(2)?;
    }
    if flags & 0x40 != 0 {
        let n = es.u8()? as usize;
        es.skip(n)?;
    }
    if flags & 0x20 != 0 {
        es.skip(2)?;
    }
    let (tag, mut dc) = descriptor(&mut es)?;
    if tag != 4 {
        return no("an esds without decoder config");
    }
    let object = dc.u8()?;
    dc.skip(12)?;
    let asc = match descriptor(&mut dc) {
        Ok((5, d)) => d.rest().to_vec(),
        _ => Vec::new(),
    };
    Ok((object, asc))
}

/// A big-endian bit reader (for AudioSpecificConfig and H.264 parameter sets).
struct Bits<'a> {
    b: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> R<u32> {
        let byte = *self
            .b
            .get(self.at / 8)
            .ok_or_else(|| Unsupported("a parameter set is cut short".into()))?;
        let v = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(v as u32)
    }
    fn bits(&mut self, n: u32) -> R<u32> {
        (0..n).try_fold(0u32, |acc, _| Ok((acc << 1) | self.bit()?))
    }
    fn ue(&mut self) -> R<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return no("a malformed parameter set");
            }
        }
        Ok((1u32 << zeros) - 1 + self.bits(zeros)?)
    }
    fn se(&mut self) -> R<i32> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 {
            ((k + 1) / 2) as i32
        } else {
            -(k / 2) as i32
        })
    }
}

fn aac_channels(asc: &[u8]) -> Option<u32> {
    let mut b = Bits { b: asc, at: 0 };
    let aot = b.bits(5).ok()?;
    if aot == 31 {
        b.bits(6).ok()?;
    }
    if b.bits(4).ok()? == 15 {
        b.bits(24).ok()?;
    }
    match b.bits(4).ok()? {
        0 => None,
        7 => Some(8),
        n @ 1..=6 => Some(n),
        _ => None,
    }
}

fn pix_fmt(chroma: u32, depth: u32, full_range: bool) -> R<String> {
    let base = match chroma {
        0 => "gray",
        1 => "yuv420p",
        2 => "yuv422p",
        3 => "yuv444p",
        _ => return no("an unknown chroma format"),
    };
    Ok(match (depth, full_range) {
        (8, true) if chroma != 0 => format!("yuvj{}", &base[3..]),
        (8, _) => base.to_owned(),
        (d @ 9..=16, _) => format!("{base}{d}le"),
        _ => return no("an unknown bit depth"),
    })
}

/// The pixel format ffmpeg's H.264 decoder reports, from the first SPS of an avcC box.
fn avc_pix_fmt(avcc: &[u8]) -> R<String> {
    let mut c = Cur::new(avcc);
    c.skip(5)?;
    if c.u8()? & 0x1f == 0 {
        return no("avcC without SPS");
    }
    let len = c.u16()? as usize;
    let nal = c.take(len)?;
    // Drop the NAL header and the emulation prevention bytes.
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.iter().skip(1) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits { b: &rbsp, at: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?;
    r.ue()?;
    let (mut chroma, mut depth) = (1, 8);
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma == 3 {
            r.bit()?;
        }
        // bit_depth_luma_minus8: a hostile value near u32::MAX must not overflow.
        depth = r.ue()?.saturating_add(8);
        r.ue()?;
        r.bit()?;
        if r.bit()? == 1 {
            for i in 0..(if chroma == 3 { 12 } else { 8 }) {
                if r.bit()? == 1 {
                    let n = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..n {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?;
    r.ue()?;
    r.ue()?;
    if r.bit()? == 0 {
        r.bit()?; // mb_adaptive_frame_field
    }
    r.bit()?;
    if r.bit()? == 1 {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    let mut full = false;
    if r.bit()? == 1 {
        if r.bit()? == 1 && r.bits(8)? == 255 {
            r.bits(32)?;
        }
        if r.bit()? == 1 {
            r.bit()?;
        }
        if r.bit()? == 1 {
            r.bits(3)?;
            full = r.bit()? == 1;
        }
    }
    pix_fmt(chroma, depth, full)
}

/// The pixel format of an HEVC stream from its hvcC (limited range assumed: the range flag
/// is deep in the SPS, and ffmpeg names full-range HEVC the same way for 10-bit).
fn hevc_pix_fmt(hvcc: &[u8]) -> R<String> {
    if hvcc.len() < 23 {
        return no("a short hvcC");
    }
    let depth = (hvcc[17] & 7) as u32 + 8;
    if depth == 8 {
        return no("8-bit HEVC (its range flag is not read here)");
    }
    pix_fmt((hvcc[16] & 3) as u32, depth, false)
}

fn secs_str(v: f64) -> String {
    format!("{v:.6}")
}

fn build(tracks: Vec<Track>, movie_ts: u32, movie_dur: u64, file_size: u64) -> R<Mp4Probe> {
    let mut streams = Vec::new();
    let mut scan = None;
    let mut video = None;
    let mut truncated = None;
    let mut starts = Vec::new();
    let mut ends = vec![movie_dur as f64 / movie_ts as f64];
    for (index, t) in tracks.iter().enumerate() {
        let ts = t.timescale as i64;
        let shift = t.edit.map_or(0, |e| e.0);
        // The edit's media time is any 63-bit value: a time that does not fit is refused.
        let pts: Vec<i64> = t
            .samples
            .iter()
            .map(|s| {
                s.dts
                    .checked_add(s.cts_offset)
                    .and_then(|v| v.checked_sub(shift))
                    .ok_or_else(|| Unsupported("an edit list beyond the track".into()))
            })
            .collect::<R<_>>()?;
        let min_pts = pts.iter().copied().min();
        let end = t
            .samples
            .iter()
            .zip(&pts)
            .map(|(s, p)| p + s.duration)
            .max();
        let total: i64 = t.samples.iter().map(|s| s.duration).sum();
        if t.kind == "video" {
            if min_pts.is_some_and(|m| m < 0) {
                return no("an edit list that hides video frames");
            }
            if let (Some((_, d)), Some(last)) = (t.edit, pts.iter().max()) {
                let edit_end = (d as i128 * ts as i128 / movie_ts as i128) as i64;
                if *last >= edit_end {
                    return no("an edit list that ends before the video does");
                }
            }
        }
        let start = min_pts.map(|m| m.max(0));
        if let Some(s) = start {
            starts.push(s as f64 / ts as f64);
        }
        if let Some(e) = end {
            ends.push(e as f64 / ts as f64);
        }
        let n = t.samples.len() as u64;
        let mut tags = BTreeMap::new();
        if let Some(l) = &t.language {
            tags.insert("language".to_owned(), l.clone());
        }
        let mut disposition = BTreeMap::new();
        disposition.insert("default".to_owned(), t.enabled as i64);
        disposition.insert("attached_pic".to_owned(), 0);
        let rate = |num: i64, den: i64| {
            let g = gcd(num, den).max(1);
            format!("{}/{}", num / g, den / g)
        };
        let mut s = StreamJson {
            index: index as u32,
            codec_type: Some(t.kind.clone()),
            codec_name: t.codec.clone(),
            width: t.width,
            height: t.height,
            pix_fmt: t.pix_fmt.clone(),
            channels: t.channels,
            time_base: Some(format!("1/{ts}")),
            start_time: start.map(|s| secs_str(s as f64 / ts as f64)),
            duration: Some(secs_str(total as f64 / ts as f64)),
            nb_frames: Some(n.to_string()),
            disposition,
            tags,
            ..StreamJson::default()
        };
        if t.kind == "video" {
            if n > 0 && total > 0 {
                s.avg_frame_rate = Some(rate(n as i64 * ts, total));
            }
            let d0 = t.samples.first().map_or(0, |s| s.duration);
            let constant = t.samples.iter().rev().skip(1).all(|s| s.duration == d0);
            if constant && d0 > 0 {
                s.r_frame_rate = Some(rate(ts, d0));
            } else if let Some(min) = t
                .samples
                .iter()
                .map(|s| s.duration)
                .filter(|d| *d > 0)
                .min()
            {
                // Variable rate: the fastest rate that fits every frame.
                s.r_frame_rate = Some(rate(ts, min));
            }
            if let Some(r) = t.rotation_ccw {
                s.side_data_list.push(SideDataJson {
                    side_data_type: Some("Display Matrix".into()),
                    rotation: Some(r),
                });
            }
            if scan.is_none() {
                let mut sc = PacketScan::default();
                let dts_shift = shift;
                for (smp, p) in t.samples.iter().zip(&pts) {
                    sc.push(Packet {
                        pts: Some(*p),
                        dts: Some(smp.dts - dts_shift),
                        duration: Some(smp.duration),
                        key: smp.key,
                        discard: false,
                    });
                }
                sc.finish();
                if t.samples_in_file < n {
                    truncated = Some(t.samples_in_file);
                }
                scan = Some(sc);
                video = Some(VideoTrack {
                    codec_id: if t.codec.as_deref() == Some("hevc") {
                        "V_MPEGH/ISO/HEVC"
                    } else {
                        "V_MPEG4/ISO/AVC"
                    },
                    codec_private: t.codec_private.clone(),
                    width: t.width.unwrap_or(0),
                    height: t.height.unwrap_or(0),
                    timescale: t.timescale,
                    samples: t
                        .samples
                        .iter()
                        .zip(&pts)
                        .map(|(smp, p)| SampleRef {
                            offset: smp.offset,
                            size: smp.size,
                            pts: *p,
                            dts: smp.dts - dts_shift,
                            duration: smp.duration,
                            key: smp.key,
                        })
                        .collect(),
                });
            }
        } else if t.samples_in_file < n && truncated.is_none() {
            truncated = Some(
                tracks
                    .iter()
                    .find(|v| v.kind == "video")
                    .map_or(0, |v| v.samples_in_file),
            );
        }
        streams.push(s);
    }
    let start = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let start = if start.is_finite() { start } else { 0.0 };
    let end = ends.iter().copied().fold(0.0, f64::max);
    let format = FormatJson {
        format_name: Some(FORMAT_NAME.into()),
        duration: Some(secs_str(
            (end - start)
                .max(0.0)
                .max(movie_dur as f64 / movie_ts as f64),
        )),
        start_time: Some(secs_str(start)),
        size: Some(file_size.to_string()),
    };
    Ok(Mp4Probe {
        json: ProbeJson {
            streams,
            format: Some(format),
        },
        scan: scan.unwrap_or_default(),
        truncated,
        video,
    })
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_decode_like_ffmpeg() {
        // "eng" packed as three 5-bit letters.
        let eng = ((b'e' - 0x60) as u16) << 10 | ((b'n' - 0x60) as u16) << 5 | (b'g' - 0x60) as u16;
        assert_eq!(language(eng).unwrap().as_deref(), Some("eng"));
        assert_eq!(language(2).unwrap().as_deref(), Some("ger"));
        assert_eq!(language(0x7fff).unwrap(), None);
        assert!(language(200).is_err());
    }

    #[test]
    fn rotation_from_the_matrix() {
        // ffmpeg's matrix for `rotate=90`: a=0 b=-1 c=1 d=0.
        let m = [0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x4000_0000];
        assert_eq!(matrix_rotation(&m), Some(90.0));
        let id = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];
        assert_eq!(matrix_rotation(&id), None);
    }

    #[test]
    fn aac_channel_configuration() {
        // AAC-LC (2), 48 kHz (3), mono (1): 00010 0011 0001 000
        assert_eq!(aac_channels(&[0x11, 0x88]), Some(1));
        // stereo
        assert_eq!(aac_channels(&[0x11, 0x90]), Some(2));
    }

    #[test]
    fn garbage_is_not_understood() {
        assert!(children(&[0, 0, 0, 50, b'a', b'b', b'c', b'd', 1, 2]).is_err());
        assert!(parse_moov(b"\0\0\0\x08junk", 100).is_err());
    }

    /// A box: size, type, payload.
    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        [&(8 + payload.len() as u32).to_be_bytes()[..], kind, payload].concat()
    }

    /// A full box: version 0, no flags, then `fields` as big-endian u32s.
    fn full(kind: &[u8; 4], fields: &[u32]) -> Vec<u8> {
        let body: Vec<u8> = [0u32]
            .iter()
            .chain(fields)
            .flat_map(|v| v.to_be_bytes())
            .collect();
        bx(kind, &body)
    }

    /// A sample table of a data track (no codec to read) from its boxes.
    fn stbl(tables: &[Vec<u8>]) -> Vec<u8> {
        let stsd = bx(
            b"stsd",
            &[&[0, 0, 0, 0, 0, 0, 0, 1][..], &bx(b"data", &[0; 8])].concat(),
        );
        [stsd].iter().chain(tables).flatten().copied().collect()
    }

    fn data_track() -> Track {
        Track {
            kind: "data".into(),
            timescale: 1000,
            ..Track::default()
        }
    }

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    #[test]
    fn top_level_sizes_near_u64_max_do_not_overflow() {
        let ftyp = bx(b"ftyp", b"isom\0\0\0\0");
        for kind in [b"moov", b"free"] {
            // A 64-bit size (size field 1) a few bytes short of u64::MAX.
            let mut huge = vec![0, 0, 0, 1];
            huge.extend_from_slice(kind);
            huge.extend_from_slice(&(u64::MAX - 4).to_be_bytes());
            let f = file_with(&[&ftyp[..], &huge, &[0; 16]].concat());
            assert!(matches!(read(f.path()).unwrap(), Read::MissingIndex));
        }
    }

    #[test]
    fn declared_sample_counts_beyond_the_file_are_refused_before_allocating() {
        // 8 bytes of stts declare 50 million samples of a fixed size: the tables they
        // would size take gigabytes for a file of a few hundred bytes.
        let n = 50_000_000;
        let tables = stbl(&[
            full(b"stts", &[1, n, 1]),
            full(b"stsz", &[1, n]),
            full(b"stco", &[1, 0]),
            full(b"stsc", &[1, 1, n, 1]),
        ]);
        let err = parse_stbl(&mut data_track(), &tables, 500).unwrap_err();
        assert!(err.0.contains("more samples than the file"), "{}", err.0);
    }

    #[test]
    fn composition_runs_of_billions_of_samples_do_not_hang() {
        // Sixteen ctts runs of u32::MAX samples each for a one-sample track: sample by
        // sample, that is 2^36 steps.
        let mut ctts = vec![16];
        ctts.extend([u32::MAX, 0].repeat(16));
        let tables = stbl(&[
            full(b"stts", &[1, 1, 1]),
            full(b"stsz", &[1, 1]),
            full(b"ctts", &ctts),
            full(b"stco", &[1, 0]),
            full(b"stsc", &[1, 1, 1, 1]),
        ]);
        let start = std::time::Instant::now();
        assert!(parse_stbl(&mut data_track(), &tables, 500).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn sample_to_chunk_counts_do_not_size_the_allocation() {
        // stsc declares u32::MAX entries (64 GiB as a vector) and holds none.
        let tables = stbl(&[
            full(b"stts", &[1, 1, 1]),
            full(b"stsz", &[1, 1]),
            full(b"stco", &[1, 0]),
            full(b"stsc", &[u32::MAX]),
        ]);
        let err = parse_stbl(&mut data_track(), &tables, 500).unwrap_err();
        assert!(err.0.contains("shorter than its fields"), "{}", err.0);
    }

    #[test]
    fn chunk_offsets_near_u64_max_do_not_overflow() {
        let co64 = bx(
            b"co64",
            &[
                &[0u8; 4][..],
                &1u32.to_be_bytes(),
                &(u64::MAX - 2).to_be_bytes(),
            ]
            .concat(),
        );
        let tables = stbl(&[
            full(b"stts", &[1, 1, 1]),
            full(b"stsz", &[10, 1]),
            co64,
            full(b"stsc", &[1, 1, 1, 1]),
        ]);
        let mut t = data_track();
        parse_stbl(&mut t, &tables, 500).unwrap();
        assert_eq!((t.samples.len(), t.samples_in_file), (1, 0));
    }

    #[test]
    fn edits_far_past_the_samples_do_not_overflow() {
        // Decoding time 0, composition offset i32::MIN, edit media time i64::MAX: the
        // presentation time is below i64::MIN.
        let t = Track {
            kind: "audio".into(),
            timescale: 1000,
            samples: vec![Sample {
                offset: 0,
                size: 1,
                dts: 0,
                cts_offset: i32::MIN.into(),
                duration: 1,
                key: true,
            }],
            edit: Some((i64::MAX, 1)),
            ..Track::default()
        };
        let err = build(vec![t], 1000, 1, 100).unwrap_err();
        assert!(err.0.contains("edit list beyond"), "{}", err.0);
    }

    #[test]
    fn bit_depths_near_u32_max_do_not_overflow() {
        // An SPS of the High profile (100) whose bit_depth_luma_minus8 is 2^32 - 2.
        let bits = format!(
            "{:08b}{}1010{}1{}{}",
            100,
            "0".repeat(16),
            "0".repeat(31),
            "1".repeat(31),
            "1".repeat(40)
        );
        let mut sps = vec![0x67];
        sps.extend(bits.as_bytes().chunks(8).map(|c| {
            u8::from_str_radix(&format!("{:0<8}", std::str::from_utf8(c).unwrap()), 2).unwrap()
        }));
        let mut avcc = vec![1, 100, 0, 30, 0xff, 0xe1];
        avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        avcc.extend_from_slice(&sps);
        assert!(avc_pix_fmt(&avcc).is_err());
    }
}
