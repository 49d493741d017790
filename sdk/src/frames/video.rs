//! [`VideoFrame`]: one decoded picture owned by the plugin, and its [`PixelFormat`].

use std::fmt;
use std::ops::Range;

use crate::Error;

/// Largest width or height of a video frame the host accepts, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// Largest video frame the host accepts, in bytes of all its planes.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// The memory layout of a [`VideoFrame`] (`pixel-format` in the WIT). Every sample is one byte.
///
/// ```
/// use byoc_sdk::frames::PixelFormat;
/// assert_eq!(PixelFormat::I420.plane_count(), 3);
/// assert_eq!(PixelFormat::I420.plane_size(5, 3, 1), Some((3, 2)));
/// assert_eq!(PixelFormat::Rgb24.frame_bytes(2, 2), 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar YUV 4:2:0, BT.601 limited range: Y (width × height), then U and V, one sample
    /// per 2×2 block (`(width + 1) / 2` × `(height + 1) / 2` each).
    I420,
    /// Packed R, G, B: one plane, 3 bytes per pixel.
    Rgb24,
    /// Packed R, G, B, A: one plane, 4 bytes per pixel (alpha is ignored by the encoder).
    Rgba,
}

impl PixelFormat {
    /// How many planes the layout has.
    pub const fn plane_count(self) -> usize {
        match self {
            Self::I420 => 3,
            Self::Rgb24 | Self::Rgba => 1,
        }
    }

    /// Bytes per pixel of a packed layout; 1 for I420 (per plane sample).
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            Self::I420 => 1,
            Self::Rgb24 => 3,
            Self::Rgba => 4,
        }
    }

    /// `(stride, rows)` of plane `plane` of a `width` × `height` frame, or `None` when the
    /// layout has no such plane. The stride is the row's width in bytes (rows are packed).
    pub fn plane_size(self, width: u32, height: u32, plane: usize) -> Option<(usize, usize)> {
        let (w, h) = (width as usize, height as usize);
        match (self, plane) {
            (Self::I420, 0) => Some((w, h)),
            (Self::I420, 1 | 2) => Some((w.div_ceil(2), h.div_ceil(2))),
            (Self::Rgb24 | Self::Rgba, 0) => Some((w.saturating_mul(self.bytes_per_pixel()), h)),
            _ => None,
        }
    }

    /// Total bytes of all planes of a `width` × `height` frame.
    pub fn frame_bytes(self, width: u32, height: u32) -> usize {
        (0..self.plane_count())
            .filter_map(|p| self.plane_size(width, height, p))
            .map(|(stride, rows)| stride.saturating_mul(rows))
            .fold(0, usize::saturating_add)
    }
}

/// A video frame in plugin memory: size, layout, presentation time and pixels.
///
/// The pixels are one buffer holding the planes in order, each tightly packed (the stride
/// of a plane is its row width in bytes): for [`PixelFormat::I420`] the Y plane, then U,
/// then V; for the packed formats one plane. Read and change them with [`plane`](Self::plane),
/// [`plane_mut`](Self::plane_mut), [`i420_planes_mut`](Self::i420_planes_mut) or
/// [`data_mut`](Self::data_mut).
///
/// In a wasm plugin, a frame handed to
/// [`FrameProcessor::process_video`](crate::frames::FrameProcessor::process_video) was copied
/// once out of the host's frame. Returning it copies back only the planes borrowed mutably
/// since, into the same host frame when the size and layout are unchanged (else into a new
/// one). A frame made with [`new`](Self::new) or [`from_data`](Self::from_data) is copied
/// whole into a new host frame.
///
/// ```
/// use byoc_sdk::frames::{PixelFormat, VideoFrame};
///
/// let mut frame = VideoFrame::new(4, 2, PixelFormat::I420).unwrap();
/// assert_eq!(frame.plane(0), &[16; 8]);     // black: Y 16
/// assert_eq!(frame.plane(1), &[128; 2]);    // U 128
/// frame.plane_mut(0).fill(235);             // white luma
/// assert_eq!(frame.data().len(), 8 + 2 + 2);
/// ```
pub struct VideoFrame {
    width: u32,
    height: u32,
    format: PixelFormat,
    pts: i64,
    keyframe: bool,
    data: Vec<u8>,
    /// Bit `i` set: plane `i` may have changed since the frame came from the host.
    dirty: u8,
    #[cfg(target_arch = "wasm32")]
    pub(crate) origin: Option<crate::wasm::frames::HostVideoFrame>,
}

impl VideoFrame {
    const ALL_DIRTY: u8 = 0b111;

    fn check_size(width: u32, height: u32, format: PixelFormat) -> Result<usize, Error> {
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(Error::invalid_input(format!(
                "a {width}x{height} frame is out of range (1 to {MAX_SIDE} pixels per side)"
            )));
        }
        let bytes = format.frame_bytes(width, height);
        if bytes > MAX_BYTES {
            return Err(Error::limit_exceeded(format!(
                "a {width}x{height} {format:?} frame exceeds {MAX_BYTES} bytes"
            )));
        }
        Ok(bytes)
    }

    /// A black frame: Y 16 and U, V 128 for I420 (limited range), zeros for RGB, opaque
    /// black for RGBA; pts 0, not a keyframe. Fails on a side of 0 or above [`MAX_SIDE`].
    ///
    /// ```
    /// use byoc_sdk::frames::{PixelFormat, VideoFrame};
    /// assert_eq!(VideoFrame::new(1, 1, PixelFormat::Rgba).unwrap().data(), &[0, 0, 0, 255]);
    /// assert!(VideoFrame::new(0, 1, PixelFormat::Rgb24).is_err());
    /// ```
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Result<Self, Error> {
        let bytes = Self::check_size(width, height, format)?;
        let data = match format {
            PixelFormat::I420 => {
                let luma = width as usize * height as usize;
                let mut data = vec![128; bytes];
                if let Some(y) = data.get_mut(..luma) {
                    y.fill(16);
                }
                data
            }
            PixelFormat::Rgb24 => vec![0; bytes],
            PixelFormat::Rgba => [0, 0, 0, 255].repeat(bytes / 4),
        };
        Ok(Self::from_parts(width, height, format, data))
    }

    /// A frame over `data` (all planes, packed, in order). Fails unless `data` has exactly
    /// [`PixelFormat::frame_bytes`] bytes.
    ///
    /// ```
    /// use byoc_sdk::frames::{PixelFormat, VideoFrame};
    /// let frame = VideoFrame::from_data(2, 1, PixelFormat::Rgb24, vec![255, 0, 0, 0, 0, 255]).unwrap();
    /// assert_eq!(frame.pixel_rgb(1, 0), Some([0, 0, 255]));
    /// assert!(VideoFrame::from_data(2, 1, PixelFormat::Rgb24, vec![0; 5]).is_err());
    /// ```
    pub fn from_data(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> Result<Self, Error> {
        let bytes = Self::check_size(width, height, format)?;
        if data.len() != bytes {
            return Err(Error::invalid_input(format!(
                "a {width}x{height} {format:?} frame has {bytes} bytes, not {}",
                data.len()
            )));
        }
        Ok(Self::from_parts(width, height, format, data))
    }

    /// A frame from parts already checked.
    pub(crate) fn from_parts(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> Self {
        Self {
            width,
            height,
            format,
            pts: 0,
            keyframe: false,
            data,
            dirty: Self::ALL_DIRTY,
            #[cfg(target_arch = "wasm32")]
            origin: None,
        }
    }

    /// Sets the presentation time (builder form of [`set_pts`](Self::set_pts)).
    pub fn with_pts(mut self, pts: i64) -> Self {
        self.pts = pts;
        self
    }

    /// Sets the keyframe flag (builder form; the host picks the output's keyframes itself).
    pub fn with_keyframe(mut self, keyframe: bool) -> Self {
        self.keyframe = keyframe;
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The layout.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Presentation time in nanoseconds on the stream's clock (not necessarily from 0).
    pub fn pts(&self) -> i64 {
        self.pts
    }

    /// Sets the presentation time the frame is encoded with.
    pub fn set_pts(&mut self, pts: i64) {
        self.pts = pts;
    }

    /// Whether the decoder marked the frame as a keyframe.
    pub fn keyframe(&self) -> bool {
        self.keyframe
    }

    /// How many planes the layout has.
    pub fn plane_count(&self) -> usize {
        self.format.plane_count()
    }

    /// Bytes per row of plane `plane` (0 when there is no such plane).
    pub fn stride(&self, plane: usize) -> usize {
        self.format.plane_size(self.width, self.height, plane).map_or(0, |(stride, _)| stride)
    }

    /// Rows of plane `plane` (0 when there is no such plane).
    pub fn rows(&self, plane: usize) -> usize {
        self.format.plane_size(self.width, self.height, plane).map_or(0, |(_, rows)| rows)
    }

    fn plane_range(&self, plane: usize) -> Range<usize> {
        let mut start = 0usize;
        for p in 0..self.plane_count() {
            let len = self.stride(p).saturating_mul(self.rows(p));
            if p == plane {
                return start..start.saturating_add(len);
            }
            start = start.saturating_add(len);
        }
        0..0
    }

    /// The bytes of plane `plane` (`stride × rows`); empty when there is no such plane.
    pub fn plane(&self, plane: usize) -> &[u8] {
        self.data.get(self.plane_range(plane)).unwrap_or_default()
    }

    /// The bytes of plane `plane`, to change; empty when there is no such plane.
    pub fn plane_mut(&mut self, plane: usize) -> &mut [u8] {
        let range = self.plane_range(plane);
        if plane < 8 {
            self.dirty |= 1 << plane;
        }
        self.data.get_mut(range).unwrap_or_default()
    }

    /// The Y, U and V planes of an I420 frame, each to change; `None` for other layouts.
    ///
    /// ```
    /// use byoc_sdk::frames::{PixelFormat, VideoFrame};
    /// let mut frame = VideoFrame::new(2, 2, PixelFormat::I420).unwrap();
    /// let (y, u, v) = frame.i420_planes_mut().unwrap();
    /// y.fill(100);
    /// u.fill(90);
    /// v.fill(240);
    /// assert_eq!(frame.data(), &[100, 100, 100, 100, 90, 240]);
    /// ```
    pub fn i420_planes_mut(&mut self) -> Option<(&mut [u8], &mut [u8], &mut [u8])> {
        if self.format != PixelFormat::I420 {
            return None;
        }
        let luma = self.plane_range(0).len();
        let chroma = self.plane_range(1).len();
        self.dirty = Self::ALL_DIRTY;
        let (y, rest) = self.data.split_at_mut_checked(luma)?;
        let (u, v) = rest.split_at_mut_checked(chroma)?;
        Some((y, u, v))
    }

    /// All planes, in order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// All planes, in order, to change.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.dirty = Self::ALL_DIRTY;
        &mut self.data
    }

    /// Takes the pixel buffer (all planes, in order).
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The pixel at (`x`, `y`) as R, G, B (converted from YUV for I420, BT.601 limited
    /// range); `None` outside the frame. Meant for tests and sampling, not per-pixel loops.
    pub fn pixel_rgb(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let (x, y) = (x as usize, y as usize);
        match self.format {
            PixelFormat::I420 => {
                let cw = self.stride(1);
                let luma = *self.plane(0).get(y * self.width as usize + x)?;
                let c = (y / 2) * cw + x / 2;
                let (u, v) = (*self.plane(1).get(c)?, *self.plane(2).get(c)?);
                Some(crate::frames::convert::yuv_to_rgb(luma, u, v))
            }
            PixelFormat::Rgb24 | PixelFormat::Rgba => {
                let bpp = self.format.bytes_per_pixel();
                let at = y * self.stride(0) + x * bpp;
                let px = self.data.get(at..at + 3)?;
                Some([*px.first()?, *px.get(1)?, *px.get(2)?])
            }
        }
    }

    /// Which planes may have changed (bit per plane).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn dirty_planes(&self) -> u8 {
        self.dirty
    }

    /// A frame read from the host: nothing changed yet.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn from_host(
        width: u32,
        height: u32,
        format: PixelFormat,
        pts: i64,
        keyframe: bool,
        data: Vec<u8>,
        origin: crate::wasm::frames::HostVideoFrame,
    ) -> Self {
        Self { width, height, format, pts, keyframe, data, dirty: 0, origin: Some(origin) }
    }
}

impl Clone for VideoFrame {
    /// A copy in plugin memory; it is not tied to the host's frame, so returning it copies
    /// all of its planes into a new host frame.
    fn clone(&self) -> Self {
        Self::from_parts(self.width, self.height, self.format, self.data.clone())
            .with_pts(self.pts)
            .with_keyframe(self.keyframe)
    }
}

impl PartialEq for VideoFrame {
    /// Same size, layout, pts, keyframe flag and pixels.
    fn eq(&self, other: &Self) -> bool {
        (self.width, self.height, self.format, self.pts, self.keyframe)
            == (other.width, other.height, other.format, other.pts, other.keyframe)
            && self.data == other.data
    }
}

impl Eq for VideoFrame {}

impl fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .field("pts", &self.pts)
            .field("keyframe", &self.keyframe)
            .field("bytes", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_round_chroma_up() {
        let frame = VideoFrame::new(5, 3, PixelFormat::I420).unwrap();
        assert_eq!((frame.stride(1), frame.rows(1)), (3, 2));
        assert_eq!(frame.data().len(), 15 + 6 + 6);
        assert_eq!(frame.plane(2).len(), 6);
        assert!(frame.plane(3).is_empty());
    }

    #[test]
    fn sizes_beyond_the_host_limits_are_refused() {
        assert!(VideoFrame::new(MAX_SIDE + 1, 1, PixelFormat::I420).is_err());
        assert!(matches!(VideoFrame::new(8192, 8192, PixelFormat::Rgba), Err(Error::LimitExceeded(_))));
    }

    #[test]
    fn clones_compare_equal_and_mutable_access_marks_planes() {
        let mut frame = VideoFrame::new(2, 2, PixelFormat::I420).unwrap().with_pts(7);
        frame.dirty = 0;
        frame.plane_mut(2).fill(1);
        assert_eq!(frame.dirty, 0b100);
        assert_eq!(frame.clone(), frame);
    }
}
