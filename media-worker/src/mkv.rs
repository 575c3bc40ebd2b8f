//! Matroska written and joined in-process.
//!
//! - [`write_segment`]: a segment of an MP4/MOV source, straight from its index (chunking
//!   without running ffmpeg's segment muxer; packet for packet what it would write).
//! - [`join_in_place`]: converted segments read by ffmpeg as one Matroska file, each placed
//!   at its start on the source timeline: what the concat demuxer does, without opening and
//!   probing every segment (for each one it decodes pictures to learn the stream's
//!   parameters). Only the new headers are written; the frames are byte ranges of the
//!   segments. Segments that do not share one video track description (codec, size, codec
//!   private data) or lack sized clusters give `Ok(Err(reason))`, and reassembly uses the
//!   concat demuxer instead.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const CRC32: u32 = 0xBF;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_UID: u32 = 0x73C5;
const UNKNOWN: u64 = u64::MAX;

/// Child elements: (id, body).
type Elements<'a> = Vec<(u32, &'a [u8])>;

/// A Tracks body without what differs between files that describe the same stream: the
/// CRC-32 elements and the random track UIDs.
fn track_shape(tracks: &[u8]) -> Option<Vec<(u32, Elements<'_>)>> {
    children(tracks)?
        .into_iter()
        .filter(|(id, _)| *id != CRC32)
        .map(|(id, body)| {
            let kids = if id == TRACK_ENTRY {
                children(body)?
                    .into_iter()
                    .filter(|(k, _)| *k != CRC32 && *k != TRACK_UID)
                    .collect()
            } else {
                vec![(id, body)]
            };
            Some((id, kids))
        })
        .collect()
}

/// An element header: id, where its data starts, its size (`UNKNOWN` if not given).
#[derive(Debug, Clone, Copy)]
struct Header {
    id: u32,
    data: u64,
    size: u64,
}

fn read_at(f: &mut File, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    f.seek(SeekFrom::Start(pos))?;
    crate::mp4::read_up_to(f, buf)
}

/// Parses an element header from `b` (id with its marker bits, size without).
fn parse_header(b: &[u8]) -> Option<(u32, u64, usize)> {
    let first = *b.first()?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 || b.len() < id_len + 1 {
        return None;
    }
    let id = b[..id_len]
        .iter()
        .fold(0u32, |acc, x| (acc << 8) | u32::from(*x));
    let s0 = b[id_len];
    let size_len = s0.leading_zeros() as usize + 1;
    if size_len > 8 || b.len() < id_len + size_len {
        return None;
    }
    let mut size = u64::from(s0) & (0xff >> size_len);
    let mut all_ones = size == (0xff >> size_len);
    for x in &b[id_len + 1..id_len + size_len] {
        size = (size << 8) | u64::from(*x);
        all_ones &= *x == 0xff;
    }
    Some((id, if all_ones { UNKNOWN } else { size }, id_len + size_len))
}

fn header_at(f: &mut File, pos: u64) -> std::io::Result<Option<Header>> {
    let mut b = [0u8; 12];
    let n = read_at(f, pos, &mut b)?;
    Ok(parse_header(&b[..n]).map(|(id, size, len)| Header {
        id,
        data: pos + len as u64,
        size,
    }))
}

/// The children of an in-memory element body: (id, body).
fn children(b: &[u8]) -> Option<Vec<(u32, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (id, size, len) = parse_header(&b[at..])?;
        let start = at + len;
        if size == UNKNOWN || size > (b.len() - start) as u64 {
            return None;
        }
        out.push((id, &b[start..start + size as usize]));
        at = start + size as usize;
    }
    Some(out)
}

fn uint(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// An 8-byte size field.
fn write_size(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    write_id(&mut out, id);
    write_size(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// A cluster of a segment: its timestamp and the byte range of its blocks.
#[derive(Debug, Clone, Copy)]
struct Cluster {
    timestamp: u64,
    body: u64,
    body_len: u64,
}

#[derive(Debug)]
struct Segment {
    ebml_header: Vec<u8>,
    info: Vec<u8>,
    tracks: Vec<u8>,
    scale: u64,
    clusters: Vec<Cluster>,
    /// Earliest block time of the first cluster (in timestamp-scale ticks).
    first_time: i64,
}

type Why = String;

fn read_segment(path: &Path) -> std::io::Result<Result<Segment, Why>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let bad = |why: &str| Ok(Err(format!("{}: {why}", path.display())));
    let Some(h) = header_at(&mut f, 0)? else {
        return bad("not Matroska");
    };
    if h.id != EBML || h.size == UNKNOWN {
        return bad("not Matroska");
    }
    if h.size > len - h.data.min(len) {
        // The declared size (up to 2^56) must not size the buffer below.
        return bad("an EBML header longer than the file");
    }
    let mut ebml_header = vec![0u8; (h.data + h.size) as usize];
    read_at(&mut f, 0, &mut ebml_header)?;
    let Some(seg) = header_at(&mut f, h.data + h.size)? else {
        return bad("no segment");
    };
    if seg.id != SEGMENT {
        return bad("no segment");
    }
    let end = if seg.size == UNKNOWN {
        len
    } else {
        (seg.data + seg.size).min(len)
    };
    let (mut info, mut tracks, mut clusters) = (None, None, Vec::new());
    let mut pos = seg.data;
    while pos < end {
        let Some(e) = header_at(&mut f, pos)? else {
            return bad("a damaged element");
        };
        if e.size == UNKNOWN || e.data + e.size > len {
            return bad("an element of unknown or impossible size");
        }
        match e.id {
            INFO | TRACKS => {
                let mut body = vec![0u8; e.size as usize];
                read_at(&mut f, e.data, &mut body)?;
                if e.id == INFO {
                    info = Some(body);
                } else {
                    tracks = Some(body);
                }
            }
            CLUSTER => {
                // The timestamp comes first; blocks follow.
                let mut at = e.data;
                let cend = e.data + e.size;
                let mut timestamp = None;
                while at < cend {
                    let Some(c) = header_at(&mut f, at)? else {
                        return bad("a damaged cluster");
                    };
                    if c.size == UNKNOWN {
                        return bad("a cluster child of unknown size");
                    }
                    if c.size > cend.saturating_sub(c.data) {
                        // Its end would lie past the cluster's (and the body length
                        // below would underflow).
                        return bad("a cluster child longer than its cluster");
                    }
                    if c.id == SIMPLE_BLOCK || c.id == BLOCK_GROUP {
                        break;
                    }
                    if c.id == CLUSTER_TIMESTAMP {
                        let mut b = vec![0u8; c.size as usize];
                        read_at(&mut f, c.data, &mut b)?;
                        timestamp = Some(uint(&b));
                    }
                    at = c.data + c.size;
                }
                let Some(timestamp) = timestamp else {
                    return bad("a cluster without a timestamp first");
                };
                clusters.push(Cluster {
                    timestamp,
                    body: at,
                    body_len: cend - at,
                });
            }
            _ => {}
        }
        pos = e.data + e.size;
    }
    let (Some(info), Some(tracks)) = (info, tracks) else {
        return bad("no Info or Tracks");
    };
    let scale = children(&info)
        .and_then(|c| {
            c.iter()
                .find(|(id, _)| *id == TIMESTAMP_SCALE)
                .map(|(_, b)| uint(b))
        })
        .unwrap_or(1_000_000);
    if scale == 0 {
        return bad("a timestamp scale of 0");
    }
    let Some(first) = clusters.first().copied() else {
        return bad("no frames");
    };
    // The earliest presentation time among the first cluster's blocks.
    let mut body = vec![0u8; first.body_len as usize];
    read_at(&mut f, first.body, &mut body)?;
    let Some(blocks) = children(&body) else {
        return bad("a damaged first cluster");
    };
    let mut earliest: Option<i64> = None;
    for (id, b) in blocks {
        let block = match id {
            SIMPLE_BLOCK => Some(b),
            BLOCK_GROUP => {
                children(b).and_then(|c| c.into_iter().find(|(i, _)| *i == BLOCK).map(|(_, b)| b))
            }
            _ => None,
        };
        let Some(block) = block else { continue };
        // Track number (a size-like vint), then a signed 16-bit relative time.
        let Some(tn_len) = block.first().map(|b| b.leading_zeros() as usize + 1) else {
            continue;
        };
        if block.len() < tn_len + 2 {
            return bad("a damaged block");
        }
        let rel = i16::from_be_bytes([block[tn_len], block[tn_len + 1]]) as i64;
        let Some(t) = i64::try_from(first.timestamp)
            .ok()
            .and_then(|ts| ts.checked_add(rel))
        else {
            return bad("a cluster timestamp beyond 2^63");
        };
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    }
    let Some(first_time) = earliest else {
        return bad("no blocks in the first cluster");
    };
    Ok(Ok(Segment {
        ebml_header,
        info,
        tracks,
        scale,
        clusters,
        first_time,
    }))
}

/// How the joined file is made of bytes: a head (EBML header, Segment, Info, Tracks), then
/// for each cluster a new header and the body of a segment's cluster.
struct JoinPlan {
    head: Vec<u8>,
    /// (segment file index, new cluster header, body offset, body length).
    clusters: Vec<(usize, Vec<u8>, u64, u64)>,
}

fn plan_join(files: &[PathBuf], starts: &[f64]) -> std::io::Result<Result<JoinPlan, Why>> {
    if files.is_empty() || files.len() != starts.len() {
        return Ok(Err("no segments".into()));
    }
    let mut segs = Vec::with_capacity(files.len());
    for f in files {
        match read_segment(f)? {
            Ok(s) => segs.push(s),
            Err(why) => return Ok(Err(why)),
        }
    }
    let first = &segs[0];
    let shape = track_shape(&first.tracks);
    if shape.is_none()
        || segs
            .iter()
            .any(|s| track_shape(&s.tracks) != shape || s.scale != first.scale)
    {
        return Ok(Err(
            "the segments' track descriptions differ (codec settings changed)".into(),
        ));
    }
    let Some(info_children) = children(&first.info) else {
        return Ok(Err("a damaged Info element".into()));
    };
    let mut info = Vec::new();
    for (id, body) in info_children {
        // The joined file's duration is not the first segment's (and a CRC-32 of the
        // changed element would be wrong).
        if id != DURATION && id != CRC32 {
            write_id(&mut info, id);
            write_size(&mut info, body.len() as u64);
            info.extend_from_slice(body);
        }
    }
    let info = element(INFO, &info);
    let tracks = element(TRACKS, &first.tracks);
    let ticks_per_sec = 1e9 / first.scale as f64;
    let mut deltas = Vec::with_capacity(segs.len());
    for (s, start) in segs.iter().zip(starts) {
        // Timestamps are any 64-bit value in the file: shifted ones that do not fit
        // refuse the join rather than wrap.
        let ticks = (start * ticks_per_sec).round() as i64;
        let Some(delta) = ticks.checked_sub(s.first_time) else {
            return Ok(Err("a segment's times do not fit".into()));
        };
        let shifted = |c: &Cluster| {
            i64::try_from(c.timestamp)
                .ok()
                .and_then(|t| t.checked_add(delta))
        };
        if s.clusters.iter().any(|c| shifted(c).is_none_or(|t| t < 0)) {
            return Ok(Err("a segment would start before zero or after 2^63".into()));
        }
        deltas.push(delta);
    }
    let cluster_header = |size: u64, ts: u64| {
        let mut h = Vec::with_capacity(22);
        write_id(&mut h, CLUSTER);
        write_size(&mut h, size);
        h.extend_from_slice(&[0xE7, 0x88]);
        h.extend_from_slice(&ts.to_be_bytes());
        h
    };
    let body_total: u64 = segs
        .iter()
        .flat_map(|s| &s.clusters)
        .map(|c| 4 + 8 + 10 + c.body_len)
        .sum();
    let seg_size = info.len() as u64 + tracks.len() as u64 + body_total;

    let mut head = first.ebml_header.clone();
    write_id(&mut head, SEGMENT);
    write_size(&mut head, seg_size);
    head.extend_from_slice(&info);
    head.extend_from_slice(&tracks);
    let mut clusters = Vec::new();
    for (i, (s, delta)) in segs.iter().zip(&deltas).enumerate() {
        for c in &s.clusters {
            let h = cluster_header(10 + c.body_len, (c.timestamp as i64 + delta) as u64);
            clusters.push((i, h, c.body, c.body_len));
        }
    }
    Ok(Ok(JoinPlan { head, clusters }))
}

/// Joins `files`, segment `i` starting at `starts[i]` seconds (its earliest picture there),
/// without copying any frame: writes only the new headers to
/// `dir/joined-headers.bin` and a list of byte ranges (of that file and of the segments) to
/// `dir/joined.txt`, and returns the ffmpeg input that reads them as one file
/// (`concatf:` over `subfile` ranges).
pub fn join_in_place(
    files: &[PathBuf],
    starts: &[f64],
    dir: &Path,
) -> std::io::Result<Result<String, Why>> {
    let plan = match plan_join(files, starts)? {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    let dir = std::path::absolute(dir)?;
    let files = files
        .iter()
        .map(std::path::absolute)
        .collect::<std::io::Result<Vec<_>>>()?;
    if let Some(odd) = files
        .iter()
        .chain([&dir])
        .find(|p| p.to_str().is_none_or(|s| s.contains('\n')))
    {
        return Ok(Err(format!("{} cannot be listed", odd.display())));
    }
    let headers_path = dir.join("joined-headers.bin");
    let mut headers = plan.head;
    let mut list = String::new();
    let range = |path: &Path, start: u64, end: u64| {
        format!("subfile,,start,{start},end,{end},,:{}\n", path.display())
    };
    let mut pending = 0u64; // start of header bytes not yet listed
    for (i, header, body, len) in &plan.clusters {
        headers.extend_from_slice(header);
        list.push_str(&range(&headers_path, pending, headers.len() as u64));
        pending = headers.len() as u64;
        if *len > 0 {
            list.push_str(&range(&files[*i], *body, body + len));
        }
    }
    std::fs::write(&headers_path, &headers)?;
    let list_path = dir.join("joined.txt");
    std::fs::write(&list_path, list)?;
    Ok(Ok(format!("concatf:{}", list_path.display())))
}

/// Writes samples `first..first + count` of `track` (read from `source`) as one Matroska file
/// `out` with a single video track, the first sample shown at time zero: what ffmpeg's
/// segment muxer writes with stream copy and `-reset_timestamps 1`, without running it.
/// Returns the number of frames written.
pub fn write_segment(
    source: &Path,
    track: &crate::mp4::VideoTrack,
    first: usize,
    count: usize,
    out: &Path,
) -> std::io::Result<u64> {
    let samples = track
        .samples
        .get(first..first + count)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a segment outside the video's samples",
            )
        })?;
    let ts = i128::from(track.timescale.max(1));
    // Milliseconds, rounded to nearest (halves away from zero), as ffmpeg rescales.
    let round_ms = |t: i64| -> i64 {
        let d = i128::from(t) * 1000;
        (if d >= 0 {
            (2 * d + ts) / (2 * ts)
        } else {
            -((-2 * d + ts) / (2 * ts))
        }) as i64
    };
    // Times as ffmpeg's segment muxer leaves them with `-reset_timestamps 1` in Matroska:
    // later segments start at zero; the first one keeps the shift that makes the stream's
    // first decoding time zero (B-frame delay).
    let origin_ms = if first == 0 {
        round_ms(samples[0].dts.min(samples[0].pts))
    } else {
        round_ms(samples[0].pts)
    };
    let ms = |pts: i64| round_ms(pts) - origin_ms;
    // Clusters: a new one at every keyframe and whenever a block's time would not fit the
    // 16-bit offset from its cluster's time.
    let mut clusters: Vec<(i64, Vec<usize>)> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let t = ms(s.pts);
        let fits = clusters
            .last()
            .is_some_and(|(ct, _)| (t - ct).abs() < 30_000 && !s.key);
        if !fits {
            clusters.push((t.max(0), Vec::new()));
        }
        clusters.last_mut().expect("just pushed").1.push(i);
    }
    let block_len = |s: &crate::mp4::SampleRef| 4 + u64::from(s.size);
    let mut cluster_sizes = Vec::with_capacity(clusters.len());
    for (_, members) in &clusters {
        // Timestamp element (10 bytes) + each SimpleBlock (id 1 + size 8 + body).
        let body: u64 = 10
            + members
                .iter()
                .map(|i| 1 + 8 + block_len(&samples[*i]))
                .sum::<u64>();
        cluster_sizes.push(body);
    }

    let uint = |id: u32, v: u64| {
        let mut e = Vec::new();
        write_id(&mut e, id);
        e.push(0x88);
        e.extend_from_slice(&v.to_be_bytes());
        e
    };
    let text = |id: u32, v: &str| element(id, v.as_bytes());
    let ebml_header = element(
        EBML,
        &[
            uint(0x4286, 1),
            uint(0x42F7, 1),
            uint(0x42F2, 4),
            uint(0x42F3, 8),
            text(0x4282, "matroska"),
            uint(0x4287, 4),
            uint(0x4285, 2),
        ]
        .concat(),
    );
    let end = samples
        .iter()
        .map(|s| s.pts + s.duration)
        .max()
        .unwrap_or(samples[0].pts);
    let mut duration = Vec::new();
    write_id(&mut duration, DURATION);
    duration.push(0x88);
    duration.extend_from_slice(&(ms(end) as f64).to_be_bytes());
    let info = element(
        INFO,
        &[
            uint(TIMESTAMP_SCALE, 1_000_000),
            text(0x4D80, "parallax media-worker"),
            text(0x5741, "parallax media-worker"),
            duration,
        ]
        .concat(),
    );
    let mut entry = vec![
        uint(0xD7, 1),
        uint(TRACK_UID, 1),
        uint(0x83, 1),
        uint(0x9C, 0),
        text(0x86, track.codec_id),
        element(0x63A2, &track.codec_private),
    ];
    let d0 = samples[0].duration;
    if d0 > 0 && samples.iter().all(|s| s.duration == d0) {
        let ns = (i128::from(d0) * 1_000_000_000 + ts / 2) / ts;
        entry.push(uint(0x23E383, ns as u64));
    }
    entry.push(element(
        0xE0,
        &[
            uint(0xB0, u64::from(track.width)),
            uint(0xBA, u64::from(track.height)),
        ]
        .concat(),
    ));
    let tracks = element(TRACKS, &element(TRACK_ENTRY, &entry.concat()));
    let clusters_len: u64 = cluster_sizes.iter().map(|b| 4 + 8 + b).sum();
    let segment_size = info.len() as u64 + tracks.len() as u64 + clusters_len;

    let mut src = File::open(source)?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    w.write_all(&ebml_header)?;
    let mut h = Vec::new();
    write_id(&mut h, SEGMENT);
    write_size(&mut h, segment_size);
    w.write_all(&h)?;
    w.write_all(&info)?;
    w.write_all(&tracks)?;
    let mut buf = Vec::new();
    for ((ct, members), size) in clusters.iter().zip(&cluster_sizes) {
        let mut h = Vec::with_capacity(22);
        write_id(&mut h, CLUSTER);
        write_size(&mut h, *size);
        h.extend_from_slice(&[0xE7, 0x88]);
        h.extend_from_slice(&(*ct as u64).to_be_bytes());
        w.write_all(&h)?;
        for i in members {
            let s = &samples[*i];
            let rel = (ms(s.pts) - ct) as i16;
            let mut b = Vec::with_capacity(13);
            write_id(&mut b, SIMPLE_BLOCK);
            write_size(&mut b, block_len(s));
            b.push(0x81);
            b.extend_from_slice(&rel.to_be_bytes());
            b.push(if s.key { 0x80 } else { 0x00 });
            w.write_all(&b)?;
            buf.resize(s.size as usize, 0);
            src.seek(SeekFrom::Start(s.offset))?;
            src.read_exact(&mut buf)?;
            w.write_all(&buf)?;
        }
    }
    w.flush()?;
    Ok(samples.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_with_marker_bits() {
        // Cluster id, 1-byte size 5.
        assert_eq!(
            parse_header(&[0x1F, 0x43, 0xB6, 0x75, 0x85]),
            Some((CLUSTER, 5, 5))
        );
        // Segment with an unknown 8-byte size.
        let mut b = vec![0x18, 0x53, 0x80, 0x67, 0x01];
        b.extend_from_slice(&[0xff; 7]);
        assert_eq!(parse_header(&b), Some((SEGMENT, UNKNOWN, 12)));
        assert_eq!(parse_header(&[0x00]), None);
    }

    #[test]
    fn written_elements_read_back() {
        let mut e = element(INFO, &[0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]);
        let (id, size, len) = parse_header(&e).unwrap();
        assert_eq!((id, size as usize), (INFO, e.len() - len));
        let body = e.split_off(len);
        let kids = children(&body).unwrap();
        assert_eq!(kids, vec![(TIMESTAMP_SCALE, &[0x0F, 0x42, 0x40][..])]);
        assert_eq!(uint(kids[0].1), 1_000_000);
    }

    /// A segment file: an empty EBML header, a Segment of unknown size holding Info (with
    /// `scale`), an empty Tracks and `clusters`.
    fn segment_file(scale: u64, clusters: &[Vec<u8>]) -> tempfile::NamedTempFile {
        let mut b = vec![0x1A, 0x45, 0xDF, 0xA3, 0x80];
        b.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        let mut scale_el = Vec::new();
        write_id(&mut scale_el, TIMESTAMP_SCALE);
        scale_el.push(0x88);
        scale_el.extend_from_slice(&scale.to_be_bytes());
        b.extend_from_slice(&element(INFO, &scale_el));
        b.extend_from_slice(&element(TRACKS, &[]));
        for c in clusters {
            b.extend_from_slice(c);
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b).unwrap();
        f
    }

    /// A cluster: its timestamp, then one SimpleBlock of track 1 at `rel`.
    fn cluster(timestamp: u64, rel: i16) -> Vec<u8> {
        let mut body = vec![0xE7, 0x88];
        body.extend_from_slice(&timestamp.to_be_bytes());
        let mut block = vec![0x81];
        block.extend_from_slice(&rel.to_be_bytes());
        block.extend_from_slice(&[0x80, 0xAA]);
        body.extend_from_slice(&element(SIMPLE_BLOCK, &block));
        element(CLUSTER, &body)
    }

    fn refusal(files: &[&tempfile::NamedTempFile], starts: &[f64]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = files.iter().map(|f| f.path().to_owned()).collect();
        join_in_place(&files, starts, dir.path())
            .unwrap()
            .unwrap_err()
    }

    #[test]
    fn a_sane_segment_joins() {
        // The shape the refusals below start from is accepted.
        let f = segment_file(1_000_000, &[cluster(0, 0), cluster(40, 0)]);
        let dir = tempfile::tempdir().unwrap();
        let joined = join_in_place(&[f.path().to_owned()], &[0.0], dir.path()).unwrap();
        assert!(joined.unwrap().starts_with("concatf:"));
    }

    #[test]
    fn ebml_header_sizes_beyond_the_file_are_refused_before_allocating() {
        // An EBML header declaring 2^40 bytes (a terabyte as a buffer) in a 13-byte file.
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            [0x1A, 0x45, 0xDF, 0xA3, 0x01, 0, 1, 0, 0, 0, 0, 0, 0],
        )
        .unwrap();
        assert!(refusal(&[&f], &[0.0]).contains("EBML header longer than the file"));
    }

    #[test]
    fn cluster_children_past_their_cluster_are_refused() {
        // A cluster of 3 bytes whose timestamp declares 5: it ends past the cluster.
        let mut c = vec![0x1F, 0x43, 0xB6, 0x75, 0x83, 0xE7, 0x85, 0x00];
        c.extend_from_slice(&cluster(0, 0));
        let f = segment_file(1_000_000, &[c]);
        assert!(refusal(&[&f], &[0.0]).contains("longer than its cluster"));
    }

    #[test]
    fn cluster_timestamps_beyond_i64_are_refused() {
        // i64::MAX plus a block at +1.
        let f = segment_file(1_000_000, &[cluster(i64::MAX as u64, 1)]);
        assert!(refusal(&[&f], &[0.0]).contains("beyond 2^63"));
    }

    #[test]
    fn timestamp_scales_of_zero_are_refused() {
        // With a scale of 0 a start of 2 s is infinitely many ticks.
        let f = segment_file(0, &[cluster(0, -1)]);
        assert!(refusal(&[&f, &f], &[0.0, 2.0]).contains("timestamp scale of 0"));
    }

    #[test]
    fn cluster_times_that_overflow_when_shifted_refuse_the_join() {
        // The first block near i64::MAX moves the segment back by almost 2^63; a later
        // cluster at 2^63 (i64::MIN as a signed value) would wrap.
        let f = segment_file(
            1_000_000,
            &[cluster(i64::MAX as u64 - 10, 0), cluster(1 << 63, 0)],
        );
        assert!(refusal(&[&f], &[0.0]).contains("after 2^63"));
    }
}
