//! A Matroska segment written straight from an MP4/MOV index: what ffmpeg's segment muxer
//! writes with stream copy, without running it.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::ebml::{
    element, write_id, write_size, CLUSTER, DURATION, EBML, INFO, SEGMENT, SIMPLE_BLOCK,
    TIMESTAMP_SCALE, TRACKS, TRACK_ENTRY, TRACK_UID,
};
use crate::error::{Error, Result};
use crate::mp4::{SampleRef, VideoTrack};

/// Writes samples `first..first + count` of `track` (read from `source`) as one Matroska file
/// `out` with a single video track, the first sample shown at time zero: what ffmpeg's
/// segment muxer writes with stream copy and `-reset_timestamps 1`, without running it.
/// Returns the number of frames written.
pub fn write_segment(
    source: &Path,
    track: &VideoTrack,
    first: usize,
    count: usize,
    out: &Path,
) -> Result<u64> {
    write(source, track, first, count, out).map_err(|e| {
        Error::file(
            "writing a segment of the video",
            out,
            std::io::Error::new(e.kind(), format!("from {}: {e}", source.display())),
        )
    })
}

fn write(
    source: &Path,
    track: &VideoTrack,
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
    let block_len = |s: &SampleRef| 4 + u64::from(s.size);
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
