//! EBML, Matroska's binary format: element ids, headers with their variable-length sizes,
//! and the writing of elements.

use std::fs::File;
use std::io::{Seek, SeekFrom};

pub(super) const EBML: u32 = 0x1A45_DFA3;
pub(super) const SEGMENT: u32 = 0x1853_8067;
pub(super) const INFO: u32 = 0x1549_A966;
pub(super) const TRACKS: u32 = 0x1654_AE6B;
pub(super) const CLUSTER: u32 = 0x1F43_B675;
pub(super) const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
pub(super) const DURATION: u32 = 0x4489;
pub(super) const CLUSTER_TIMESTAMP: u32 = 0xE7;
pub(super) const SIMPLE_BLOCK: u32 = 0xA3;
pub(super) const BLOCK_GROUP: u32 = 0xA0;
pub(super) const BLOCK: u32 = 0xA1;
pub(super) const CRC32: u32 = 0xBF;
pub(super) const TRACK_ENTRY: u32 = 0xAE;
pub(super) const TRACK_UID: u32 = 0x73C5;
pub(super) const UNKNOWN: u64 = u64::MAX;

/// An element header: id, where its data starts, its size (`UNKNOWN` if not given).
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) id: u32,
    pub(super) data: u64,
    pub(super) size: u64,
}

pub(super) fn read_at(f: &mut File, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    f.seek(SeekFrom::Start(pos))?;
    crate::mp4::read_up_to(f, buf)
}

/// Parses an element header from `b` (id with its marker bits, size without).
pub(super) fn parse_header(b: &[u8]) -> Option<(u32, u64, usize)> {
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

pub(super) fn header_at(f: &mut File, pos: u64) -> std::io::Result<Option<Header>> {
    let mut b = [0u8; 12];
    let n = read_at(f, pos, &mut b)?;
    Ok(parse_header(&b[..n]).map(|(id, size, len)| Header {
        id,
        data: pos + len as u64,
        size,
    }))
}

/// The children of an in-memory element body: (id, body).
pub(super) fn children(b: &[u8]) -> Option<Vec<(u32, &[u8])>> {
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

pub(super) fn uint(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

pub(super) fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// An 8-byte size field.
pub(super) fn write_size(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

pub(super) fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    write_id(&mut out, id);
    write_size(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}
