//! Rectangles, cropping and scaling.

use crate::Error;
use crate::frames::{PixelFormat, VideoFrame};

/// A rectangle in pixels: top-left corner and size.
///
/// ```
/// use byoc_sdk::frames::Rect;
/// let r = Rect::new(10, 20, 30, 40);
/// assert_eq!((r.right(), r.bottom()), (40, 60));
/// assert_eq!(r.clip(32, 32), Some(Rect::new(10, 20, 22, 12)));
/// assert_eq!(r.clip(8, 8), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its corner and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }

    /// One past the right edge.
    pub const fn right(&self) -> u32 {
        self.x.saturating_add(self.width)
    }

    /// One past the bottom edge.
    pub const fn bottom(&self) -> u32 {
        self.y.saturating_add(self.height)
    }

    /// The part inside a `width` × `height` frame, or `None` if nothing is.
    pub fn clip(&self, width: u32, height: u32) -> Option<Self> {
        let (right, bottom) = (self.right().min(width), self.bottom().min(height));
        (self.x < right && self.y < bottom).then(|| Self::new(self.x, self.y, right - self.x, bottom - self.y))
    }
}

/// How [`scale`] computes a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// The nearest source pixel: fastest, blocky when enlarging.
    Nearest,
    /// Weighted average of the 2×2 nearest source pixels (pixel centres aligned). Smooth
    /// when enlarging and for reductions down to half size; beyond that it skips source
    /// pixels and may alias (scale in steps of 2× for a cleaner large reduction).
    #[default]
    Bilinear,
}

/// The part of `frame` inside `rect` (clipped to the frame), as a new frame with the same
/// pts. Fails if `rect` lies outside the frame.
///
/// For I420 the luma is cropped exactly; the chroma starts at block `x / 2`, `y / 2`, so a
/// crop at an odd position shifts colour by one pixel at most.
///
/// ```
/// use byoc_sdk::frames::{crop, PixelFormat, Rect, VideoFrame};
/// let frame = VideoFrame::from_data(3, 2, PixelFormat::I420, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
/// let part = crop(&frame, Rect::new(1, 0, 2, 2)).unwrap();
/// assert_eq!(part.plane(0), &[2, 3, 5, 6]);
/// assert_eq!(part.plane(1), &[7], "pixel 1 is in chroma block 0");
/// assert_eq!(part.plane(2), &[9]);
/// ```
pub fn crop(frame: &VideoFrame, rect: Rect) -> Result<VideoFrame, Error> {
    let rect = rect.clip(frame.width(), frame.height()).ok_or_else(|| {
        Error::invalid_input(format!("crop {rect:?} is outside the {}x{} frame", frame.width(), frame.height()))
    })?;
    let format = frame.format();
    let mut data = Vec::with_capacity(format.frame_bytes(rect.width, rect.height));
    for plane in 0..format.plane_count() {
        let (x, y, w, h) = if plane == 0 {
            (rect.x as usize, rect.y as usize, rect.width as usize, rect.height as usize)
        } else {
            let (w, h) = format.plane_size(rect.width, rect.height, plane).unwrap_or_default();
            (rect.x as usize / 2, rect.y as usize / 2, w, h)
        };
        let bpp = if plane == 0 { format.bytes_per_pixel() } else { 1 };
        let stride = frame.stride(plane);
        let src = frame.plane(plane);
        for row in y..y + h {
            let start = row * stride + x * bpp;
            // The chroma of an odd-sized crop may reach one block past the source; repeat
            // the last block then.
            let wanted = w * bpp;
            let available = src.get(start..(row + 1) * stride).unwrap_or_default();
            let take = available.get(..wanted).unwrap_or(available);
            data.extend_from_slice(take);
            let last = take.last().copied().unwrap_or(128);
            data.resize(data.len() + (wanted - take.len()), last);
        }
    }
    Ok(VideoFrame::from_data(rect.width, rect.height, format, data)?
        .with_pts(frame.pts())
        .with_keyframe(frame.keyframe()))
}

/// `frame` resized to `width` × `height` (any aspect), with the same layout and pts.
///
/// ```
/// use byoc_sdk::frames::{scale, Filter, PixelFormat, VideoFrame};
/// let frame = VideoFrame::from_data(2, 1, PixelFormat::Rgb24, vec![0, 0, 0, 200, 100, 50]).unwrap();
/// let big = scale(&frame, 4, 1, Filter::Nearest).unwrap();
/// assert_eq!(big.data(), &[0, 0, 0, 0, 0, 0, 200, 100, 50, 200, 100, 50]);
/// let smooth = scale(&frame, 4, 1, Filter::Bilinear).unwrap();
/// assert_eq!(smooth.pixel_rgb(1, 0), Some([50, 25, 13]));
/// ```
pub fn scale(frame: &VideoFrame, width: u32, height: u32, filter: Filter) -> Result<VideoFrame, Error> {
    let format = frame.format();
    let mut out = VideoFrame::new(width, height, format)?.with_pts(frame.pts()).with_keyframe(frame.keyframe());
    for plane in 0..format.plane_count() {
        let bpp = if plane == 0 { format.bytes_per_pixel() } else { 1 };
        let src = Plane { bytes: frame.plane(plane), width: frame.stride(plane) / bpp, height: frame.rows(plane), bpp };
        let (dst_w, dst_h) = (out.stride(plane) / bpp, out.rows(plane));
        scale_plane(&src, out.plane_mut(plane), dst_w, dst_h, filter);
    }
    Ok(out)
}

/// A source plane for [`scale_plane`].
struct Plane<'a> {
    bytes: &'a [u8],
    width: usize,
    height: usize,
    bpp: usize,
}

/// Source position (fixed point, 8 fractional bits) of each of `dst` samples, centres aligned.
fn positions(src: usize, dst: usize) -> Vec<(usize, usize, u32)> {
    (0..dst)
        .map(|d| {
            // (d + 0.5) * src / dst - 0.5, in 1/256 units.
            let pos = ((2 * d + 1) * src * 256 / (2 * dst)).saturating_sub(128);
            let i0 = (pos >> 8).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            (i0, i1, (pos & 0xff) as u32)
        })
        .collect()
}

fn scale_plane(src: &Plane<'_>, dst: &mut [u8], dst_w: usize, dst_h: usize, filter: Filter) {
    if src.width == 0 || src.height == 0 || dst_w == 0 {
        return;
    }
    let bpp = src.bpp;
    let stride = src.width * bpp;
    let row = |y: usize| src.bytes.get(y * stride..(y + 1) * stride).unwrap_or_default();
    match filter {
        Filter::Nearest => {
            let xs: Vec<usize> = (0..dst_w).map(|x| x * src.width / dst_w).collect();
            for (y, dst_row) in dst.chunks_exact_mut(dst_w * bpp).enumerate().take(dst_h) {
                let src_row = row(y * src.height / dst_h);
                for (px, &sx) in dst_row.chunks_exact_mut(bpp).zip(&xs) {
                    if let Some(s) = src_row.get(sx * bpp..(sx + 1) * bpp) {
                        px.copy_from_slice(s);
                    }
                }
            }
        }
        Filter::Bilinear => {
            let xs = positions(src.width, dst_w);
            let ys = positions(src.height, dst_h);
            for (dst_row, &(y0, y1, fy)) in dst.chunks_exact_mut(dst_w * bpp).zip(&ys) {
                let (r0, r1) = (row(y0), row(y1));
                for (px, &(x0, x1, fx)) in dst_row.chunks_exact_mut(bpp).zip(&xs) {
                    for (c, out) in px.iter_mut().enumerate() {
                        let at = |r: &[u8], x: usize| u32::from(r.get(x * bpp + c).copied().unwrap_or(0));
                        let top = at(r0, x0) * (256 - fx) + at(r0, x1) * fx;
                        let bottom = at(r1, x0) * (256 - fx) + at(r1, x1) * fx;
                        *out = ((top * (256 - fy) + bottom * fy + (1 << 15)) >> 16) as u8;
                    }
                }
            }
        }
    }
}

/// The largest size within `max_width` × `max_height` with `width` × `height`'s aspect
/// ratio (even sides for I420), never larger than the original; 0 means no limit.
///
/// ```
/// use byoc_sdk::frames::{fit_within, PixelFormat};
/// assert_eq!(fit_within(1920, 1080, 640, 640, PixelFormat::I420), (640, 360));
/// assert_eq!(fit_within(320, 240, 640, 0, PixelFormat::I420), (320, 240));
/// ```
pub fn fit_within(width: u32, height: u32, max_width: u32, max_height: u32, format: PixelFormat) -> (u32, u32) {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let (mw, mh) = (
        if max_width == 0 { w } else { u64::from(max_width).min(w) },
        if max_height == 0 { h } else { u64::from(max_height).min(h) },
    );
    let (fw, fh) = if w * mh <= mw * h { (w * mh / h, mh) } else { (mw, h * mw / w) };
    let even = |x: u64| if format == PixelFormat::I420 && x > 1 { x & !1 } else { x };
    (even(fw.max(1)) as u32, even(fh.max(1)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> VideoFrame {
        let mut frame = VideoFrame::new(w, h, PixelFormat::I420).unwrap();
        for (i, y) in frame.plane_mut(0).iter_mut().enumerate() {
            *y = f(i as u32 % w, i as u32 / w);
        }
        frame
    }

    #[test]
    fn crop_clips_to_the_frame_and_refuses_outside() {
        let frame = gray(8, 8, |x, y| (x + 10 * y) as u8).with_pts(5);
        let part = crop(&frame, Rect::new(6, 6, 10, 10)).unwrap();
        assert_eq!((part.width(), part.height(), part.pts()), (2, 2, 5));
        assert_eq!(part.plane(0), &[66, 67, 76, 77]);
        assert!(crop(&frame, Rect::new(8, 0, 1, 1)).is_err());
    }

    #[test]
    fn odd_crops_of_odd_frames_fill_every_chroma_sample() {
        let frame = VideoFrame::new(5, 5, PixelFormat::I420).unwrap();
        let part = crop(&frame, Rect::new(3, 3, 2, 2)).unwrap();
        assert_eq!(part.plane(1), &[128]);
        let part = crop(&frame, Rect::new(1, 1, 4, 3)).unwrap();
        assert_eq!(part.plane(2).len(), 4);
    }

    #[test]
    fn scaling_a_flat_frame_keeps_it_flat() {
        let frame = gray(7, 5, |_, _| 99);
        for filter in [Filter::Nearest, Filter::Bilinear] {
            for (w, h) in [(14, 10), (3, 2), (1, 1), (7, 5)] {
                let out = scale(&frame, w, h, filter).unwrap();
                assert!(out.plane(0).iter().all(|&y| y == 99), "{filter:?} {w}x{h}");
                assert!(out.plane(1).iter().all(|&c| c == 128));
            }
        }
    }

    #[test]
    fn halving_with_bilinear_averages_pairs() {
        let frame = gray(4, 2, |x, _| [10, 30, 50, 70][x as usize]);
        let out = scale(&frame, 2, 1, Filter::Bilinear).unwrap();
        assert_eq!(out.plane(0), &[20, 60]);
        let same = scale(&frame, 4, 2, Filter::Bilinear).unwrap();
        assert_eq!(same.plane(0), frame.plane(0));
    }

    #[test]
    fn nearest_picks_source_pixels() {
        let frame = gray(4, 4, |x, y| (x + 4 * y) as u8);
        let out = scale(&frame, 2, 2, Filter::Nearest).unwrap();
        assert_eq!(out.plane(0), &[0, 2, 8, 10]);
    }
}
