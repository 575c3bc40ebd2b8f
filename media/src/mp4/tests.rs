//! Unit tests of the MP4/MOV reader: box parsing, codec details and the limits that keep
//! hostile indexes from overflowing, hanging or allocating without bound.

use super::boxes::{children, matrix_rotation};
use super::codec::{aac_channels, avc_pix_fmt};
use super::index::{language, parse_moov, parse_stbl, Movie};
use super::streams::build;
use super::track::{Sample, Track};
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
    let movie = Movie {
        tracks: vec![t],
        timescale: 1000,
        duration: 1,
    };
    let err = build(movie, 100).unwrap_err();
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
