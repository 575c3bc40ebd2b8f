//! Frames: planar YUV 4:2:0 in 8-bit or 10-bit samples.

/// One sample of a planar YUV frame: 8-bit levels in a `u8` (`yuv420p`), or 10-bit levels in
/// a `u16` (`yuv420p10le`), so a 10-bit source keeps its levels from decode to encode. Colour
/// maths works in 8-bit levels as floats ([`Sample::SCALE`] converts), which keeps the
/// fraction of a 10-bit level.
pub trait Sample:
    Copy + Default + PartialEq + Eq + std::fmt::Debug + Send + Sync + Into<f32> + bytemuck::Pod
{
    /// Bits of a level.
    const BITS: u32;
    /// Levels per 8-bit level (1 or 4).
    const SCALE: f32;
    /// ffmpeg's name of planar 4:2:0 in these samples, in this machine's byte order.
    const PIX_FMT: &'static str;
    /// A level known to be in range.
    fn from_level(v: i32) -> Self;
    /// The level.
    fn level(self) -> i32;
    /// A level from a float in 8-bit levels, rounded and clamped to the range.
    fn from_f32_8bit(v: f32) -> Self {
        let max = (1i32 << Self::BITS) - 1;
        Self::from_level(((v * Self::SCALE + 0.5) as i32).clamp(0, max))
    }
    /// `s` as 8-bit samples when it is, for the 8-bit SIMD kernels.
    fn as_u8(s: &[Self]) -> Option<&[u8]>;
    /// [`Sample::as_u8`], mutable.
    fn as_u8_mut(s: &mut [Self]) -> Option<&mut [u8]>;
    /// `s` as 16-bit samples when it is, for the 16-bit SIMD kernels.
    fn as_u16(s: &[Self]) -> Option<&[u16]>;
    /// [`Sample::as_u16`], mutable.
    fn as_u16_mut(s: &mut [Self]) -> Option<&mut [u16]>;
}

impl Sample for u8 {
    const BITS: u32 = 8;
    const SCALE: f32 = 1.0;
    const PIX_FMT: &'static str = "yuv420p";
    #[inline(always)]
    fn from_level(v: i32) -> Self {
        v as u8
    }
    #[inline(always)]
    fn level(self) -> i32 {
        i32::from(self)
    }
    fn as_u8(s: &[Self]) -> Option<&[u8]> {
        Some(s)
    }
    fn as_u8_mut(s: &mut [Self]) -> Option<&mut [u8]> {
        Some(s)
    }
    fn as_u16(_: &[Self]) -> Option<&[u16]> {
        None
    }
    fn as_u16_mut(_: &mut [Self]) -> Option<&mut [u16]> {
        None
    }
}

impl Sample for u16 {
    const BITS: u32 = 10;
    const SCALE: f32 = 4.0;
    const PIX_FMT: &'static str = if cfg!(target_endian = "big") {
        "yuv420p10be"
    } else {
        "yuv420p10le"
    };
    #[inline(always)]
    fn from_level(v: i32) -> Self {
        v as u16
    }
    #[inline(always)]
    fn level(self) -> i32 {
        i32::from(self)
    }
    fn as_u8(_: &[Self]) -> Option<&[u8]> {
        None
    }
    fn as_u8_mut(_: &mut [Self]) -> Option<&mut [u8]> {
        None
    }
    fn as_u16(s: &[Self]) -> Option<&[u16]> {
        Some(s)
    }
    fn as_u16_mut(s: &mut [Self]) -> Option<&mut [u16]> {
        Some(s)
    }
}

/// A planar YUV 4:2:0 image (`yuv420p`, or `yuv420p10le` with `u16` samples): the Y plane,
/// then U, then V, rows packed. Width and height are even.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420<T = u8> {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// The three planes back to back.
    pub data: Vec<T>,
}

impl Yuv420 {
    /// Bytes of one 8-bit frame of this size.
    pub fn byte_len(width: usize, height: usize) -> usize {
        Self::sample_len(width, height)
    }
}

impl<T: Sample> Yuv420<T> {
    /// A black image (Y=16, U=V=128 in 8-bit levels).
    pub fn new(width: usize, height: usize) -> Self {
        assert!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "yuv420p needs even sizes, got {width}x{height}"
        );
        let mut data = vec![T::from_f32_8bit(128.0); Self::sample_len(width, height)];
        data[..width * height].fill(T::from_f32_8bit(16.0));
        Self {
            width,
            height,
            data,
        }
    }

    /// Samples of one frame of this size.
    pub fn sample_len(width: usize, height: usize) -> usize {
        width * height + 2 * (width / 2) * (height / 2)
    }

    /// The frame as bytes, as ffmpeg pipes it.
    pub fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }

    /// The frame as bytes, mutable (to read a frame from a pipe into).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.data)
    }

    /// The Y, U and V planes.
    pub fn planes(&self) -> (&[T], &[T], &[T]) {
        let ys = self.width * self.height;
        let cs = (self.width / 2) * (self.height / 2);
        let (y, rest) = self.data.split_at(ys);
        let (u, v) = rest.split_at(cs);
        (y, u, &v[..cs])
    }

    /// The Y, U and V planes, mutable.
    pub fn planes_mut(&mut self) -> (&mut [T], &mut [T], &mut [T]) {
        let ys = self.width * self.height;
        let cs = (self.width / 2) * (self.height / 2);
        let (y, rest) = self.data.split_at_mut(ys);
        let (u, v) = rest.split_at_mut(cs);
        (y, u, &mut v[..cs])
    }
}
