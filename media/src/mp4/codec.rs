//! A track's sample description: the codec ffmpeg would name, and what ffprobe reports about
//! it (the pixel format from the H.264 SPS or the HEVC configuration, the AAC channel count).

use super::boxes::{child, children, no, Cur, Unsupported, R};
use super::track::Track;

pub(super) fn parse_stsd(t: &mut Track, stsd: &[u8]) -> R<()> {
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
pub(super) fn parse_esds(esds: &[u8]) -> R<(u8, Vec<u8>)> {
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
pub(super) struct Bits<'a> {
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

pub(super) fn aac_channels(asc: &[u8]) -> Option<u32> {
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

pub(super) fn pix_fmt(chroma: u32, depth: u32, full_range: bool) -> R<String> {
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
pub(super) fn avc_pix_fmt(avcc: &[u8]) -> R<String> {
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
pub(super) fn hevc_pix_fmt(hvcc: &[u8]) -> R<String> {
    if hvcc.len() < 23 {
        return no("a short hvcC");
    }
    let depth = (hvcc[17] & 7) as u32 + 8;
    if depth == 8 {
        return no("8-bit HEVC (its range flag is not read here)");
    }
    pix_fmt((hvcc[16] & 3) as u32, depth, false)
}
