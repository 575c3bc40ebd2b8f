//! Joining converted segments in place: each segment's clusters, re-timed onto the source
//! timeline behind one new header, listed as byte ranges that ffmpeg reads as one file.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::ebml::{
    children, element, header_at, read_at, uint, write_id, write_size, BLOCK, BLOCK_GROUP, CLUSTER,
    CLUSTER_TIMESTAMP, CRC32, DURATION, EBML, INFO, SEGMENT, SIMPLE_BLOCK, TIMESTAMP_SCALE, TRACKS,
    TRACK_ENTRY, TRACK_UID, UNKNOWN,
};
use crate::error::{Error, Result};

/// Child elements: (id, body).
type Elements<'a> = Vec<(u32, &'a [u8])>;

/// A Tracks body without what differs between files that describe the same stream: the
/// CRC-32 elements and the random track UIDs.
pub(super) fn track_shape(tracks: &[u8]) -> Option<Vec<(u32, Elements<'_>)>> {
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

/// A cluster of a segment: its timestamp and the byte range of its blocks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cluster {
    timestamp: u64,
    body: u64,
    body_len: u64,
}

#[derive(Debug)]
pub(super) struct Segment {
    ebml_header: Vec<u8>,
    info: Vec<u8>,
    tracks: Vec<u8>,
    scale: u64,
    clusters: Vec<Cluster>,
    /// Earliest block time of the first cluster (in timestamp-scale ticks).
    first_time: i64,
}

/// Why segments cannot be joined in place (the caller then uses the concat demuxer).
pub type Why = String;

pub(super) fn read_segment(path: &Path) -> std::io::Result<Result<Segment, Why>> {
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
pub(super) struct JoinPlan {
    head: Vec<u8>,
    /// (segment file index, new cluster header, body offset, body length).
    clusters: Vec<(usize, Vec<u8>, u64, u64)>,
}

pub(super) fn plan_join(files: &[PathBuf], starts: &[f64]) -> Result<Result<JoinPlan, Why>> {
    if files.is_empty() || files.len() != starts.len() {
        return Ok(Err("no segments".into()));
    }
    let mut segs = Vec::with_capacity(files.len());
    for f in files {
        match read_segment(f).map_err(|e| Error::file("reading the segment", f, e))? {
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
pub fn join_in_place(files: &[PathBuf], starts: &[f64], dir: &Path) -> Result<Result<String, Why>> {
    let plan = match plan_join(files, starts)? {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::file("resolving", p, e));
    let dir = absolute(dir)?;
    let files = files
        .iter()
        .map(|f| absolute(f))
        .collect::<Result<Vec<_>>>()?;
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
    std::fs::write(&headers_path, &headers)
        .map_err(|e| Error::file("writing", &headers_path, e))?;
    let list_path = dir.join("joined.txt");
    std::fs::write(&list_path, list).map_err(|e| Error::file("writing", &list_path, e))?;
    Ok(Ok(format!("concatf:{}", list_path.display())))
}
