//! Unit tests of the Matroska reader and writer: element headers, and the refusals that keep
//! hostile segments from overflowing or allocating without bound.

use std::path::PathBuf;

use super::ebml::{
    children, element, parse_header, uint, write_id, CLUSTER, INFO, SEGMENT, SIMPLE_BLOCK,
    TIMESTAMP_SCALE, TRACKS, UNKNOWN,
};
use super::join_in_place;

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
