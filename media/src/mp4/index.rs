//! The movie and its tracks: headers, edit list and sample tables, read into `Track`s with
//! every sample's place, size, times and sync flag.

use super::boxes::{
    child, children, contains, identity, matrix_rotation, no, read_matrix, Cur, Unsupported, R,
};
use super::codec::parse_stsd;
use super::track::{Sample, Track};

/// The most samples one track may declare (about a hundred bytes of memory each); a track
/// also cannot declare more samples than its file has bytes.
const MAX_SAMPLES: u64 = 50_000_000;

/// The movie: its tracks, and its own timescale and duration.
#[derive(Debug)]
pub(super) struct Movie {
    pub(super) tracks: Vec<Track>,
    /// Ticks per second of `duration`.
    pub(super) timescale: u32,
    pub(super) duration: u64,
}

pub(super) fn parse_moov(moov: &[u8], file_size: u64) -> R<Movie> {
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
    Ok(Movie {
        tracks,
        timescale: movie_ts,
        duration: movie_dur,
    })
}

pub(super) fn has_cover_art(udta: &[u8]) -> R<bool> {
    Ok(contains(udta, b"covr"))
}

pub(super) fn parse_trak(trak: &[u8], file_size: u64) -> R<Track> {
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
pub(super) fn language(code: u16) -> R<Option<String>> {
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
pub(super) fn parse_elst(edts: &[u8]) -> R<Option<(i64, u64)>> {
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

pub(super) fn parse_stbl(t: &mut Track, stbl: &[u8], file_size: u64) -> R<()> {
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
