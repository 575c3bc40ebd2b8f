//! What a source's picture is, from ffprobe's names: its pixel format (bit depth, chroma),
//! its transfer (SDR, PQ, HLG) and whether it is interlaced; and which of these the service
//! cannot convert. The media worker refuses those at upload with a stable code, and the
//! engine decides from the same rules how it decodes (deinterlace, tone-map, range).

/// How the chroma is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// 4:2:0 (or coarser: 4:1:1, 4:1:0), what the engine works in.
    C420,
    /// 4:2:2.
    C422,
    /// 4:4:4, RGB included.
    C444,
    /// No chroma (grey).
    Gray,
}

/// The transfer function's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Standard dynamic range (BT.709, BT.601, sRGB, BT.2020 SDR, or untagged).
    Sdr,
    /// HDR10 / Dolby Vision base layer: SMPTE ST 2084.
    Pq,
    /// Hybrid log-gamma (ARIB STD-B67).
    Hlg,
}

/// A picture property the service cannot convert: a stable code and a readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Unsupported {
    /// `unsupported-pixel-format` or `unsupported-transfer`.
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// A pixel format's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLayout {
    /// Bits per component.
    pub bits: u32,
    /// Chroma sampling.
    pub chroma: Chroma,
}

/// The layout of ffmpeg's pixel format `name`; raw sensor (Bayer), hardware surfaces and
/// formats without a name are [`Unsupported`].
pub fn pixel_layout(name: Option<&str>) -> Result<PixelLayout, Unsupported> {
    let unsupported = |why: &str| Unsupported {
        code: "unsupported-pixel-format",
        message: why.to_owned(),
    };
    let Some(name) = name.filter(|n| !n.is_empty() && *n != "none" && *n != "unknown") else {
        return Err(unsupported(
            "the video's pixel format is unknown, so its colours cannot be read; re-encode it (e.g. ffmpeg -i in -pix_fmt yuv420p out.mp4) and upload again",
        ));
    };
    const HARDWARE: [&str; 11] = [
        "vaapi",
        "vdpau",
        "cuda",
        "qsv",
        "d3d11",
        "dxva2",
        "videotoolbox",
        "mediacodec",
        "drm_prime",
        "opencl",
        "vulkan",
    ];
    if name.starts_with("bayer")
        || HARDWARE.iter().any(|h| name.starts_with(h))
        || name == "xyz12le"
        || name == "xyz12be"
    {
        return Err(unsupported(&format!(
            "the video's pixel format {name} (raw sensor, hardware or XYZ data) cannot be converted; export it as ordinary YUV or RGB video and upload again"
        )));
    }
    let chroma = if name.starts_with("gray") || name.starts_with("ya") && !name.starts_with("yuv") {
        Chroma::Gray
    } else if ["420", "411", "410", "nv12", "nv21", "p010", "p012", "p016"]
        .iter()
        .any(|k| name.contains(k))
    {
        Chroma::C420
    } else if [
        "422", "yuyv", "uyvy", "yvyu", "nv16", "nv20", "y210", "v210", "p210", "p216",
    ]
    .iter()
    .any(|k| name.contains(k))
    {
        Chroma::C422
    } else {
        Chroma::C444
    };
    let bits = if ["p010", "y210", "v210", "p210", "x2rgb10", "x2bgr10", "nv20"]
        .iter()
        .any(|k| name.starts_with(k))
    {
        10
    } else if ["p012"].iter().any(|k| name.starts_with(k)) {
        12
    } else if ["p016", "p216", "rgb48", "bgr48", "rgba64", "bgra64", "ya16"]
        .iter()
        .any(|k| name.starts_with(k))
    {
        16
    } else if name.starts_with("nv") {
        // nv12, nv16, nv24: the digits name the layout.
        8
    } else {
        // `yuv420p10le`, `gbrp12le`, `gray10be`, ...: the digits before the endianness.
        let body = name.trim_end_matches("le").trim_end_matches("be");
        let digits = body.len() - body.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        body[body.len() - digits..]
            .parse::<u32>()
            .ok()
            .filter(|b| (9..=16).contains(b))
            .unwrap_or(8)
    };
    Ok(PixelLayout { bits, chroma })
}

/// The family of ffmpeg's transfer name (`color_transfer`); untagged is SDR. Transfers that
/// no player maps to a display (logarithmic, SMPTE 428 cinema) are [`Unsupported`].
pub fn transfer(name: Option<&str>) -> Result<Transfer, Unsupported> {
    match name.unwrap_or("unknown") {
        "smpte2084" => Ok(Transfer::Pq),
        "arib-std-b67" => Ok(Transfer::Hlg),
        t @ ("log100" | "log316" | "smpte428" | "smpte428_1") => Err(Unsupported {
            code: "unsupported-transfer",
            message: format!(
                "the video's transfer function {t} (logarithmic or cinema XYZ) has no standard display mapping; grade it to BT.709 or HDR10 and upload again"
            ),
        }),
        _ => Ok(Transfer::Sdr),
    }
}

/// Whether ffprobe's `field_order` says the frames are interlaced (`tt`, `bb`, `tb`, `bt`).
pub fn interlaced(field_order: Option<&str>) -> bool {
    matches!(field_order, Some("tt" | "bb" | "tb" | "bt"))
}

/// Checks a source's picture: its pixel format and transfer.
pub fn check(
    pix_fmt: Option<&str>,
    color_transfer: Option<&str>,
) -> Result<(PixelLayout, Transfer), Unsupported> {
    Ok((pixel_layout(pix_fmt)?, transfer(color_transfer)?))
}

/// What the conversion does with a source's picture: the output's bits per sample and
/// whether HDR is tone-mapped to SDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Bits per sample (8 or 10).
    pub bits: u32,
    /// An HDR source is tone-mapped to BT.709 SDR.
    pub tone_map: bool,
}

impl Output {
    /// The output for a source of `layout` and `transfer`: `bits` as the settings decide,
    /// HDR kept only at 10 bits and when not asked to tone-map (never 8-bit with PQ/HLG tags).
    pub fn new(transfer: Transfer, bits: u32, tone_map_asked: bool) -> Self {
        Self {
            bits,
            tone_map: transfer != Transfer::Sdr && (bits <= 8 || tone_map_asked),
        }
    }
}

/// What the conversion does to a picture, in words for the job (empty for a plain 8-bit
/// 4:2:0 SDR progressive source written as such).
pub fn conversion_notes(
    layout: PixelLayout,
    transfer: Transfer,
    output: Output,
    interlaced: bool,
    deinterlace: bool,
    full_range: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    let name = match transfer {
        Transfer::Pq => "HDR10 (PQ)",
        Transfer::Hlg => "HLG",
        Transfer::Sdr => "",
    };
    if transfer != Transfer::Sdr {
        notes.push(if !output.tone_map {
            format!("{name} source: kept as 10-bit HDR (BT.2020, its transfer and HDR10 metadata)")
        } else if output.bits <= 8 {
            format!("{name} source: tone-mapped to BT.709 SDR for the 8-bit output")
        } else {
            format!("{name} source: tone-mapped to BT.709 SDR as the job asked (10-bit output)")
        });
    }
    if layout.bits > output.bits {
        notes.push(format!(
            "{}-bit source: written as {}-bit",
            layout.bits, output.bits
        ));
    } else if layout.bits < output.bits {
        notes.push(format!(
            "{}-bit source: written as {}-bit as the job asked",
            layout.bits, output.bits
        ));
    }
    match layout.chroma {
        Chroma::C422 => notes.push("4:2:2 chroma: written as 4:2:0".to_owned()),
        Chroma::C444 => notes.push("4:4:4 (or RGB) chroma: written as 4:2:0".to_owned()),
        Chroma::Gray => {
            notes.push("greyscale source: written as 4:2:0 with neutral chroma".to_owned())
        }
        Chroma::C420 => {}
    }
    if full_range {
        notes.push("full-range source: converted to limited range and tagged so".to_owned());
    }
    if interlaced {
        notes.push(if deinterlace {
            "interlaced source: deinterlaced (bwdif, one frame per frame) before depth".to_owned()
        } else {
            "interlaced source: deinterlacing turned off by the job's settings".to_owned()
        });
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_formats_are_read_by_name() {
        let l = |n| pixel_layout(Some(n)).unwrap();
        assert_eq!(
            l("yuv420p"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::C420
            }
        );
        assert_eq!(
            l("yuvj420p"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::C420
            }
        );
        assert_eq!(
            l("yuv420p10le"),
            PixelLayout {
                bits: 10,
                chroma: Chroma::C420
            }
        );
        assert_eq!(
            l("p010le"),
            PixelLayout {
                bits: 10,
                chroma: Chroma::C420
            }
        );
        assert_eq!(
            l("yuv422p10le"),
            PixelLayout {
                bits: 10,
                chroma: Chroma::C422
            }
        );
        assert_eq!(
            l("yuv444p"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::C444
            }
        );
        assert_eq!(
            l("gbrp12le"),
            PixelLayout {
                bits: 12,
                chroma: Chroma::C444
            }
        );
        assert_eq!(
            l("rgb24"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::C444
            }
        );
        assert_eq!(
            l("uyvy422"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::C422
            }
        );
        assert_eq!(
            l("gray"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::Gray
            }
        );
        assert_eq!(
            l("nv12"),
            PixelLayout {
                bits: 8,
                chroma: Chroma::C420
            }
        );
        for bad in ["bayer_rggb8", "vaapi", "cuda", "xyz12le", "none", ""] {
            let e = pixel_layout(Some(bad)).unwrap_err();
            assert_eq!(e.code, "unsupported-pixel-format", "{bad}");
        }
        assert!(pixel_layout(None).is_err());
    }

    #[test]
    fn transfers_fall_in_three_families_and_log_is_refused() {
        assert_eq!(transfer(Some("smpte2084")), Ok(Transfer::Pq));
        assert_eq!(transfer(Some("arib-std-b67")), Ok(Transfer::Hlg));
        assert_eq!(transfer(Some("bt709")), Ok(Transfer::Sdr));
        assert_eq!(transfer(None), Ok(Transfer::Sdr));
        assert_eq!(
            transfer(Some("log100")).unwrap_err().code,
            "unsupported-transfer"
        );
        assert!(interlaced(Some("tt")) && interlaced(Some("bt")));
        assert!(!interlaced(Some("progressive")) && !interlaced(None));
    }

    #[test]
    fn notes_say_what_was_done() {
        let hdr = PixelLayout {
            bits: 10,
            chroma: Chroma::C422,
        };
        let eight = Output::new(Transfer::Pq, 8, false);
        assert!(eight.tone_map, "8-bit output never carries PQ");
        let notes = conversion_notes(hdr, Transfer::Pq, eight, true, true, false);
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(notes[0].contains("tone-mapped"));
        assert!(notes[1].contains("written as 8-bit"));
        let kept = Output::new(Transfer::Pq, 10, false);
        assert!(!kept.tone_map);
        let notes = conversion_notes(hdr, Transfer::Pq, kept, false, true, false);
        assert!(notes[0].contains("kept as 10-bit HDR"), "{notes:?}");
        assert!(Output::new(Transfer::Hlg, 10, true).tone_map);
        assert!(!Output::new(Transfer::Sdr, 8, true).tone_map);
        let plain = PixelLayout {
            bits: 8,
            chroma: Chroma::C420,
        };
        let sdr = Output::new(Transfer::Sdr, 8, false);
        assert!(conversion_notes(plain, Transfer::Sdr, sdr, false, true, false).is_empty());
    }
}
