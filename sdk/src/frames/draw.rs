//! Drawing on frames: colours, filled rectangles and outlines.

use crate::frames::convert::rgb_to_yuv;
use crate::frames::{PixelFormat, Rect, VideoFrame};

/// An opaque colour, as R, G, B.
///
/// ```
/// use byoc_sdk::frames::Color;
/// assert_eq!(Color::WHITE.yuv(), [235, 128, 128]);
/// assert_eq!(Color::rgb(1, 2, 3).r, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Color {
    /// Black.
    pub const BLACK: Self = Self::rgb(0, 0, 0);
    /// White.
    pub const WHITE: Self = Self::rgb(255, 255, 255);
    /// Red.
    pub const RED: Self = Self::rgb(255, 0, 0);
    /// Green.
    pub const GREEN: Self = Self::rgb(0, 255, 0);
    /// Blue.
    pub const BLUE: Self = Self::rgb(0, 0, 255);
    /// Yellow.
    pub const YELLOW: Self = Self::rgb(255, 255, 0);

    /// A colour from its components.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }

    /// Y, U, V in BT.601 limited range.
    pub fn yuv(self) -> [u8; 3] {
        rgb_to_yuv([self.r, self.g, self.b])
    }
}

/// Fills `rect` (clipped to the frame) with `color`.
///
/// On I420 the luma is exact; each 2×2 chroma block the rectangle touches takes the colour,
/// so a rectangle with odd edges tints a one-pixel fringe outside it (luma unchanged there).
///
/// ```
/// use byoc_sdk::frames::{fill_rect, Color, PixelFormat, Rect, VideoFrame};
/// let mut frame = VideoFrame::new(4, 2, PixelFormat::Rgb24).unwrap();
/// fill_rect(&mut frame, Rect::new(1, 0, 2, 1), Color::RED);
/// assert_eq!(frame.pixel_rgb(0, 0), Some([0, 0, 0]));
/// assert_eq!(frame.pixel_rgb(1, 0), Some([255, 0, 0]));
/// assert_eq!(frame.pixel_rgb(2, 1), Some([0, 0, 0]));
/// ```
pub fn fill_rect(frame: &mut VideoFrame, rect: Rect, color: Color) {
    let Some(rect) = rect.clip(frame.width(), frame.height()) else {
        return;
    };
    match frame.format() {
        PixelFormat::I420 => {
            let [y, u, v] = color.yuv();
            let (x0, y0, x1, y1) = (rect.x as usize, rect.y as usize, rect.right() as usize, rect.bottom() as usize);
            fill_plane(frame, 0, (x0, y0, x1, y1), &[y]);
            let chroma = (x0 / 2, y0 / 2, x1.div_ceil(2), y1.div_ceil(2));
            fill_plane(frame, 1, chroma, &[u]);
            fill_plane(frame, 2, chroma, &[v]);
        }
        PixelFormat::Rgb24 => {
            let r = rect;
            fill_plane(
                frame,
                0,
                (r.x as usize, r.y as usize, r.right() as usize, r.bottom() as usize),
                &[color.r, color.g, color.b],
            );
        }
        PixelFormat::Rgba => {
            let r = rect;
            let px = [color.r, color.g, color.b, 255];
            fill_plane(frame, 0, (r.x as usize, r.y as usize, r.right() as usize, r.bottom() as usize), &px);
        }
    }
}

/// Sets pixels `x0..x1` of rows `y0..y1` of `plane` to `px` (one sample per byte of `px`).
fn fill_plane(frame: &mut VideoFrame, plane: usize, (x0, y0, x1, y1): (usize, usize, usize, usize), px: &[u8]) {
    let stride = frame.stride(plane);
    let bpp = px.len();
    for row in frame.plane_mut(plane).chunks_exact_mut(stride).skip(y0).take(y1.saturating_sub(y0)) {
        let span = row.get_mut(x0 * bpp..(x1 * bpp).min(stride)).unwrap_or_default();
        for dst in span.chunks_exact_mut(bpp) {
            dst.copy_from_slice(px);
        }
    }
}

/// Draws the outline of `rect`, `thickness` pixels wide, inside the rectangle.
///
/// ```
/// use byoc_sdk::frames::{draw_rect, Color, PixelFormat, Rect, VideoFrame};
/// let mut frame = VideoFrame::new(5, 5, PixelFormat::Rgb24).unwrap();
/// draw_rect(&mut frame, Rect::new(0, 0, 5, 5), 1, Color::WHITE);
/// assert_eq!(frame.pixel_rgb(0, 2), Some([255; 3]));
/// assert_eq!(frame.pixel_rgb(4, 4), Some([255; 3]));
/// assert_eq!(frame.pixel_rgb(2, 2), Some([0; 3]), "inside stays");
/// ```
pub fn draw_rect(frame: &mut VideoFrame, rect: Rect, thickness: u32, color: Color) {
    let t = thickness.max(1).min(rect.width).min(rect.height);
    if t == 0 {
        return;
    }
    let (x, y, w, h) = (rect.x, rect.y, rect.width, rect.height);
    fill_rect(frame, Rect::new(x, y, w, t), color);
    fill_rect(frame, Rect::new(x, y + h - t, w, t), color);
    fill_rect(frame, Rect::new(x, y, t, h), color);
    fill_rect(frame, Rect::new(x + w - t, y, t, h), color);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i420_fill_sets_luma_exactly_and_the_touched_chroma_blocks() {
        let mut frame = VideoFrame::new(6, 4, PixelFormat::I420).unwrap();
        fill_rect(&mut frame, Rect::new(1, 1, 2, 2), Color::WHITE);
        #[rustfmt::skip]
        let expected_y = [
            16, 16, 16, 16, 16, 16,
            16, 235, 235, 16, 16, 16,
            16, 235, 235, 16, 16, 16,
            16, 16, 16, 16, 16, 16,
        ];
        assert_eq!(frame.plane(0), &expected_y);
        fill_rect(&mut frame, Rect::new(1, 1, 2, 2), Color::BLUE);
        // Blocks (0,0), (1,0), (0,1), (1,1) are touched; column 2 is not.
        assert_eq!(frame.plane(1), &[240, 240, 128, 240, 240, 128]);
    }

    #[test]
    fn rects_beyond_the_edges_are_clipped() {
        let mut frame = VideoFrame::new(4, 4, PixelFormat::Rgba).unwrap();
        fill_rect(&mut frame, Rect::new(3, 3, 100, 100), Color::GREEN);
        fill_rect(&mut frame, Rect::new(9, 9, 1, 1), Color::RED);
        let lit: Vec<_> = frame.data().chunks(4).map(|p| p[1] == 255).collect();
        assert_eq!(lit.iter().filter(|&&l| l).count(), 1);
        assert_eq!(frame.data()[60..64], [0, 255, 0, 255]);
    }

    #[test]
    fn outline_thickness_is_inside_the_rect() {
        let mut frame = VideoFrame::new(8, 8, PixelFormat::Rgb24).unwrap();
        draw_rect(&mut frame, Rect::new(1, 1, 6, 6), 2, Color::RED);
        let red = |x, y| frame.pixel_rgb(x, y) == Some([255, 0, 0]);
        assert!(red(1, 1) && red(2, 2) && red(6, 6) && red(5, 3));
        assert!(!red(3, 3) && !red(4, 4) && !red(0, 0) && !red(7, 7));
    }
}
