//! Pixel format conversion (BT.601 limited range, the encoder's) and grayscale.
//!
//! Integer arithmetic with 8 fractional bits, as libyuv and ffmpeg's C paths do: a round
//! trip RGB → I420 → RGB stays within a few code values per channel for flat colours
//! (chroma is shared by each 2×2 block, so sharp colour edges blur, as in any 4:2:0 video).

use crate::Error;
use crate::frames::{PixelFormat, VideoFrame};

/// Y, U, V (limited range) of an R, G, B pixel.
///
/// ```
/// use byoc_sdk::frames::convert::rgb_to_yuv;
/// assert_eq!(rgb_to_yuv([0, 0, 0]), [16, 128, 128]);
/// assert_eq!(rgb_to_yuv([255, 255, 255]), [235, 128, 128]);
/// ```
pub fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    [clamp(y), clamp(u), clamp(v)]
}

/// R, G, B of a Y, U, V (limited range) pixel; values outside the range are clamped.
///
/// ```
/// use byoc_sdk::frames::convert::yuv_to_rgb;
/// assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
/// assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
/// ```
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let (ruv, guv, buv) = chroma_terms(u, v);
    rgb_from(y, ruv, guv, buv)
}

#[inline]
fn clamp(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

/// The chroma contributions to R, G and B (shared by the 4 pixels of a block).
#[inline]
fn chroma_terms(u: u8, v: u8) -> (i32, i32, i32) {
    let (d, e) = (i32::from(u) - 128, i32::from(v) - 128);
    (409 * e, -100 * d - 208 * e, 516 * d)
}

#[inline]
fn rgb_from(y: u8, ruv: i32, guv: i32, buv: i32) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16) + 128;
    [clamp((c + ruv) >> 8), clamp((c + guv) >> 8), clamp((c + buv) >> 8)]
}

/// `frame` in layout `to`, with the same size, pts and keyframe flag. Converting to the
/// frame's own layout returns a copy.
///
/// From I420, each pixel takes the chroma of its 2×2 block (no interpolation); to I420, a
/// block's chroma is computed from the average colour of its pixels. Alpha is dropped, and
/// set to 255 when converting to RGBA.
///
/// ```
/// use byoc_sdk::frames::{convert, PixelFormat, VideoFrame};
/// let red = VideoFrame::from_data(2, 2, PixelFormat::Rgb24, [255, 0, 0].repeat(4)).unwrap();
/// let yuv = convert::convert(&red, PixelFormat::I420).unwrap();
/// assert_eq!(yuv.data(), &[82, 82, 82, 82, 90, 240]);
/// let back = convert::convert(&yuv, PixelFormat::Rgb24).unwrap();
/// assert!(back.data().chunks(3).all(|px| px[0] >= 250 && px[1] <= 3 && px[2] <= 3));
/// ```
pub fn convert(frame: &VideoFrame, to: PixelFormat) -> Result<VideoFrame, Error> {
    let (w, h) = (frame.width(), frame.height());
    let data = match (frame.format(), to) {
        (from, to) if from == to => frame.data().to_vec(),
        (PixelFormat::I420, packed) => i420_to_packed(frame, packed.bytes_per_pixel()),
        (packed, PixelFormat::I420) => packed_to_i420(frame, packed.bytes_per_pixel()),
        (PixelFormat::Rgba, PixelFormat::Rgb24) => {
            frame.data().chunks_exact(4).flat_map(|p| p.iter().take(3)).copied().collect()
        }
        (_, _) => frame.data().chunks_exact(3).flat_map(|p| p.iter().copied().chain([255])).collect(),
    };
    Ok(VideoFrame::from_data(w, h, to, data)?.with_pts(frame.pts()).with_keyframe(frame.keyframe()))
}

fn i420_to_packed(frame: &VideoFrame, bpp: usize) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let cw = frame.stride(1);
    let mut out = vec![255u8; w * h * bpp];
    let (ys, us, vs) = (frame.plane(0), frame.plane(1), frame.plane(2));
    for (row, (y_row, out_row)) in ys.chunks_exact(w).zip(out.chunks_exact_mut(w * bpp)).enumerate() {
        let c = (row / 2) * cw;
        let (u_row, v_row) = (us.get(c..c + cw).unwrap_or_default(), vs.get(c..c + cw).unwrap_or_default());
        let pairs = y_row.chunks(2).zip(out_row.chunks_mut(2 * bpp)).zip(u_row.iter().zip(v_row));
        for ((y_pair, out_pair), (&u, &v)) in pairs {
            let (ruv, guv, buv) = chroma_terms(u, v);
            for (&y, px) in y_pair.iter().zip(out_pair.chunks_exact_mut(bpp)) {
                let rgb = rgb_from(y, ruv, guv, buv);
                for (dst, src) in px.iter_mut().zip(rgb) {
                    *dst = src;
                }
            }
        }
    }
    out
}

fn packed_to_i420(frame: &VideoFrame, bpp: usize) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let src = frame.data();
    let rgb_at = |x: usize, y: usize| -> [i32; 3] {
        let at = (y * w + x) * bpp;
        match src.get(at..at + 3) {
            Some(&[r, g, b]) => [i32::from(r), i32::from(g), i32::from(b)],
            _ => [0; 3],
        }
    };
    let mut out = vec![0u8; w * h + 2 * cw * ch];
    let (luma, chroma) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    for (y_row, src_row) in luma.chunks_exact_mut(w).zip(src.chunks_exact(w * bpp)) {
        for (dst, px) in y_row.iter_mut().zip(src_row.chunks_exact(bpp)) {
            if let [r, g, b, ..] = *px {
                let [y, _, _] = rgb_to_yuv([r, g, b]);
                *dst = y;
            }
        }
    }
    for (cy, (u_row, v_row)) in u_plane.chunks_exact_mut(cw).zip(v_plane.chunks_exact_mut(cw)).enumerate() {
        for (cx, (u, v)) in u_row.iter_mut().zip(v_row.iter_mut()).enumerate() {
            let (x0, y0) = (cx * 2, cy * 2);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let mut sum = [0i32; 3];
            for (x, y) in [(x0, y0), (x1, y0), (x0, y1), (x1, y1)] {
                for (s, c) in sum.iter_mut().zip(rgb_at(x, y)) {
                    *s += c;
                }
            }
            let [r, g, b] = sum.map(|s| ((s + 2) / 4) as u8);
            let [_, cu, cv] = rgb_to_yuv([r, g, b]);
            (*u, *v) = (cu, cv);
        }
    }
    out
}

/// Removes the colour in place: U and V set to 128 for I420 (Y untouched, so only the chroma
/// planes are copied back to the host); for RGB, each pixel becomes its BT.601 luma, in full
/// range (alpha untouched).
///
/// ```
/// use byoc_sdk::frames::{convert, PixelFormat, VideoFrame};
/// let mut frame = VideoFrame::from_data(1, 1, PixelFormat::Rgb24, vec![255, 0, 0]).unwrap();
/// convert::grayscale(&mut frame);
/// assert_eq!(frame.data(), &[77, 77, 77]);
/// ```
pub fn grayscale(frame: &mut VideoFrame) {
    match frame.format() {
        PixelFormat::I420 => {
            frame.plane_mut(1).fill(128);
            frame.plane_mut(2).fill(128);
        }
        format => {
            for px in frame.data_mut().chunks_exact_mut(format.bytes_per_pixel()) {
                if let [r, g, b, ..] = px {
                    let l = full_range_luma(*r, *g, *b);
                    (*r, *g, *b) = (l, l, l);
                }
            }
        }
    }
}

/// BT.601 luma of an RGB pixel in full range (0–255).
#[inline]
fn full_range_luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8) as u8
}

/// The luma of `frame`, one byte per pixel, row by row: the Y plane of I420 (limited range,
/// 16–235) as is, or computed from RGB in full range (0–255). Motion and scene analysis
/// usually need only this.
///
/// ```
/// use byoc_sdk::frames::{convert, PixelFormat, VideoFrame};
/// let frame = VideoFrame::new(2, 2, PixelFormat::I420).unwrap();
/// assert_eq!(convert::luma(&frame), vec![16; 4]);
/// ```
pub fn luma(frame: &VideoFrame) -> Vec<u8> {
    match frame.format() {
        PixelFormat::I420 => frame.plane(0).to_vec(),
        format => frame
            .data()
            .chunks_exact(format.bytes_per_pixel())
            .map(|px| match *px {
                [r, g, b, ..] => full_range_luma(r, g, b),
                _ => 0,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_frame(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> VideoFrame {
        let f = &f;
        let data = (0..h).flat_map(|y| (0..w).flat_map(move |x| f(x, y))).collect();
        VideoFrame::from_data(w, h, PixelFormat::Rgb24, data).unwrap()
    }

    #[test]
    fn flat_colours_survive_a_round_trip_within_three_code_values() {
        for rgb in [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [12, 200, 77], [128, 128, 128]] {
            let frame = rgb_frame(6, 4, |_, _| rgb);
            let back = convert(&convert(&frame, PixelFormat::I420).unwrap(), PixelFormat::Rgb24).unwrap();
            for px in back.data().chunks_exact(3) {
                for (a, b) in px.iter().zip(rgb) {
                    assert!(a.abs_diff(b) <= 3, "{rgb:?} came back as {px:?}");
                }
            }
        }
    }

    #[test]
    fn luma_of_a_gradient_round_trips_per_pixel() {
        // Gray pixels have neutral chroma, so each pixel's own Y carries it back exactly enough.
        let frame = rgb_frame(17, 9, |x, y| [((x * 15 + y) % 256) as u8; 3]);
        let back = convert(&convert(&frame, PixelFormat::I420).unwrap(), PixelFormat::Rgb24).unwrap();
        for (a, b) in back.data().iter().zip(frame.data()) {
            assert!(a.abs_diff(*b) <= 2, "{a} vs {b}");
        }
    }

    #[test]
    fn odd_sizes_convert_their_last_row_and_column() {
        let frame = rgb_frame(3, 3, |x, y| if x == 2 || y == 2 { [0, 0, 255] } else { [0, 0, 0] });
        let yuv = convert(&frame, PixelFormat::I420).unwrap();
        assert_eq!(yuv.plane(0), &[16, 16, 41, 16, 16, 41, 41, 41, 41]);
        assert_eq!(yuv.plane(1).len(), 4);
        assert_eq!(yuv.plane(1).get(3), Some(&240), "the corner block is all blue");
    }

    #[test]
    fn packed_layouts_convert_to_each_other() {
        let rgb = rgb_frame(2, 1, |x, _| [x as u8, 2, 3]).with_pts(9);
        let rgba = convert(&rgb, PixelFormat::Rgba).unwrap();
        assert_eq!(rgba.data(), &[0, 2, 3, 255, 1, 2, 3, 255]);
        assert_eq!(rgba.pts(), 9);
        assert_eq!(convert(&rgba, PixelFormat::Rgb24).unwrap(), rgb);
    }

    #[test]
    fn grayscale_neutralises_chroma_only() {
        let mut frame = convert(&rgb_frame(4, 4, |_, _| [200, 30, 90]), PixelFormat::I420).unwrap();
        let y = frame.plane(0).to_vec();
        grayscale(&mut frame);
        assert_eq!(frame.plane(0), y.as_slice());
        assert!(frame.plane(1).iter().chain(frame.plane(2)).all(|&c| c == 128));
    }
}
