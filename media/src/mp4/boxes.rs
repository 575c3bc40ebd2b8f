//! The box tree: a big-endian cursor over a payload, a box's children, and the display
//! matrix fields that several boxes share.

/// A big-endian cursor over a box's payload.
#[derive(Clone, Copy)]
pub(super) struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Self { b, at: 0 }
    }
    pub(super) fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.b.len() - self.at < n {
            return no("a box is shorter than its fields");
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    pub(super) fn skip(&mut self, n: usize) -> R<()> {
        self.take(n).map(|_| ())
    }
    pub(super) fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> R<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    pub(super) fn u32(&mut self) -> R<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub(super) fn u64(&mut self) -> R<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub(super) fn fourcc(&mut self) -> R<[u8; 4]> {
        Ok(self.take(4)?.try_into().expect("4"))
    }
    pub(super) fn rest(&self) -> &'a [u8] {
        &self.b[self.at..]
    }
    /// Version and flags of a full box.
    pub(super) fn full(&mut self) -> R<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// The child boxes of a payload: (type, payload).
pub(super) fn children(b: &[u8]) -> R<Vec<([u8; 4], &[u8])>> {
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

pub(super) fn child<'a>(kids: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> Option<&'a [u8]> {
    kids.iter().find(|(k, _)| k == kind).map(|(_, b)| *b)
}

pub(super) fn contains(b: &[u8], needle: &[u8]) -> bool {
    b.windows(needle.len()).any(|w| w == needle)
}

pub(super) fn read_matrix(c: &mut Cur<'_>) -> R<[i32; 9]> {
    let mut m = [0i32; 9];
    for v in &mut m {
        *v = c.u32()? as i32;
    }
    Ok(m)
}

pub(super) fn identity(m: &[i32; 9]) -> bool {
    *m == [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000]
}

/// The rotation ffmpeg reads from a display matrix (`av_display_rotation_get`), in degrees
/// counter-clockwise; `None` for the identity.
pub(super) fn matrix_rotation(m: &[i32; 9]) -> Option<f64> {
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

/// Why the reader gives up on a file (the caller falls back to ffprobe).
#[derive(Debug)]
pub(super) struct Unsupported(pub(super) String);

pub(super) type R<T> = Result<T, Unsupported>;

pub(super) fn no<T>(why: impl Into<String>) -> R<T> {
    Err(Unsupported(why.into()))
}
