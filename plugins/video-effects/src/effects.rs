//! The effects, as functions on I420 planes. Every one works in place on the planes it
//! changes and leaves the others alone, so the SDK copies back only what changed.
//!
//! All values are BT.601 limited range, as the host decodes: luma 16–235, chroma 16–240
//! around 128.

use byoc_sdk::frames::{Color, PixelFormat, Rect, VideoFrame, draw_text, fill_rect, text_size};

/// Lowest luma of limited range (black).
const Y_MIN: i32 = 16;
/// Highest luma of limited range (white).
const Y_MAX: i32 = 235;
/// The middle of the luma range, the pivot of `contrast`.
const Y_MID: i32 = 126;
/// The largest brightness offset, reached at strength 0 (darker) and 1 (brighter).
const MAX_BRIGHTNESS_OFFSET: f32 = 110.0;
/// The largest pixelation block, at strength 1.
const MAX_BLOCK: usize = 32;
/// The largest blur radius, at strength 1.
const MAX_BLUR_RADIUS: usize = 10;

/// A plane of `width` × `height` samples, one byte each, rows packed.
pub struct Plane<'a> {
    /// The samples.
    pub bytes: &'a mut [u8],
    /// Samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

/// The three planes of an I420 frame, or `None` for another layout.
fn planes(frame: &mut VideoFrame) -> Option<[Plane<'_>; 3]> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y, u, v) = frame.i420_planes_mut()?;
    Some([
        Plane { bytes: y, width: w, height: h },
        Plane { bytes: u, width: cw, height: ch },
        Plane { bytes: v, width: cw, height: ch },
    ])
}

/// Removes colour: U and V set to 128 (the neutral value); luma is untouched.
pub fn grayscale(frame: &mut VideoFrame) {
    frame.plane_mut(1).fill(128);
    frame.plane_mut(2).fill(128);
}

/// Inverts the picture as inverting R, G and B would (`255 − c` per channel), expressed in
/// limited-range YUV: luma mirrors within 16–235 (`Y' = 251 − Y`, clamped to 0–255 for
/// out-of-range input), chroma mirrors around 128 (`C' = 256 − C`, clamped to 255).
pub fn invert(frame: &mut VideoFrame) {
    for y in frame.plane_mut(0) {
        *y = (Y_MIN + Y_MAX - i32::from(*y)).clamp(0, 255) as u8;
    }
    for plane in [1, 2] {
        for c in frame.plane_mut(plane) {
            *c = (256 - i32::from(*c)).clamp(0, 255) as u8;
        }
    }
}

/// The pixelation block side in luma pixels for `strength`: even (so chroma blocks align),
/// from 2 at strength 0 to [`MAX_BLOCK`] at 1.
pub fn block_size(strength: f32) -> usize {
    let size = 2.0 + strength.clamp(0.0, 1.0) * (MAX_BLOCK - 2) as f32;
    ((size.round() as usize) / 2 * 2).clamp(2, MAX_BLOCK)
}

/// Replaces each block of `block` × `block` luma pixels (and the matching chroma blocks of
/// half the side) by its average, rounded.
pub fn pixelate(frame: &mut VideoFrame, strength: f32) {
    let block = block_size(strength);
    if let Some([y, u, v]) = planes(frame) {
        average_blocks(y, block);
        average_blocks(u, block / 2);
        average_blocks(v, block / 2);
    }
}

fn average_blocks(plane: Plane<'_>, block: usize) {
    let (w, block) = (plane.width, block.max(1));
    if w == 0 {
        return;
    }
    let columns = w.div_ceil(block);
    let mut sums = vec![0u32; columns];
    let mut counts = vec![0u32; columns];
    for band in plane.bytes.chunks_mut(w * block) {
        sums.fill(0);
        counts.fill(0);
        for row in band.chunks_exact(w) {
            for (chunk, (sum, count)) in row.chunks(block).zip(sums.iter_mut().zip(counts.iter_mut())) {
                *sum += chunk.iter().map(|&b| u32::from(b)).sum::<u32>();
                *count += chunk.len() as u32;
            }
        }
        let means: Vec<u8> =
            sums.iter().zip(&counts).map(|(&s, &c)| (s + c / 2).checked_div(c).unwrap_or(0) as u8).collect();
        for row in band.chunks_exact_mut(w) {
            for (chunk, &mean) in row.chunks_mut(block).zip(&means) {
                chunk.fill(mean);
            }
        }
    }
}

/// The box blur radius in luma pixels for `strength`: 0 (none) to [`MAX_BLUR_RADIUS`].
pub fn blur_radius(strength: f32) -> usize {
    (strength.clamp(0.0, 1.0) * MAX_BLUR_RADIUS as f32).round() as usize
}

/// A box blur (separable: rows, then columns) of radius [`blur_radius`] on luma and half
/// that, rounded up, on chroma; edges repeat the border sample.
pub fn blur(frame: &mut VideoFrame, strength: f32) {
    let radius = blur_radius(strength);
    if radius == 0 {
        return;
    }
    if let Some([y, u, v]) = planes(frame) {
        box_blur(y, radius);
        box_blur(u, radius.div_ceil(2));
        box_blur(v, radius.div_ceil(2));
    }
}

/// The sample at `i` of `line`, with indices clamped into the line (edge repeat).
fn at(line: &[u8], i: isize) -> u32 {
    let last = line.len().saturating_sub(1);
    let i = usize::try_from(i).unwrap_or(0).min(last);
    line.get(i).copied().map_or(0, u32::from)
}

fn box_blur(plane: Plane<'_>, radius: usize) {
    let (w, h) = (plane.width, plane.height);
    if w == 0 || h == 0 {
        return;
    }
    let r = radius as isize;
    let n = (2 * radius + 1) as u32;
    // Rows: a running sum over the window, one add and one subtract per sample.
    let mut line = vec![0u8; w];
    for row in plane.bytes.chunks_exact_mut(w) {
        line.copy_from_slice(row);
        let mut sum: u32 = (-r..=r).map(|i| at(&line, i)).sum();
        for (x, out) in (0isize..).zip(row.iter_mut()) {
            *out = ((sum + n / 2) / n) as u8;
            sum = sum + at(&line, x + r + 1) - at(&line, x - r);
        }
    }
    // Columns: the same on whole rows at once, keeping one running sum per column.
    let source = plane.bytes.to_vec();
    let row_of = |y: isize| {
        let y = usize::try_from(y).unwrap_or(0).min(h - 1);
        source.get(y * w..(y + 1) * w).unwrap_or_default()
    };
    let mut sums = vec![0u32; w];
    for y in -r..=r {
        for (sum, &b) in sums.iter_mut().zip(row_of(y)) {
            *sum += u32::from(b);
        }
    }
    for (y, row) in (0isize..).zip(plane.bytes.chunks_exact_mut(w)) {
        for (out, &sum) in row.iter_mut().zip(&sums) {
            *out = ((sum + n / 2) / n) as u8;
        }
        for ((sum, &add), &sub) in sums.iter_mut().zip(row_of(y + r + 1)).zip(row_of(y - r)) {
            *sum = *sum + u32::from(add) - u32::from(sub);
        }
    }
}

/// Mirrors the picture left to right.
pub fn mirror(frame: &mut VideoFrame) {
    if let Some(planes) = planes(frame) {
        for plane in planes {
            for row in plane.bytes.chunks_exact_mut(plane.width.max(1)) {
                row.reverse();
            }
        }
    }
}

/// Shifts luma by `(strength − 0.5) × 2 × 110`: 0.5 leaves the picture as is, 1 brightens
/// by 110 levels, 0 darkens by 110; the result is clamped to 16–235. Chroma is untouched.
pub fn brightness(frame: &mut VideoFrame, strength: f32) {
    let offset = ((strength.clamp(0.0, 1.0) - 0.5) * 2.0 * MAX_BRIGHTNESS_OFFSET).round() as i32;
    map_luma(frame, |y| y + offset);
}

/// Scales luma around mid-gray (126) by `2 × strength`: 0 gives flat gray, 0.5 leaves the
/// picture as is, 1 doubles the contrast; the result is clamped to 16–235. Chroma is
/// untouched.
pub fn contrast(frame: &mut VideoFrame, strength: f32) {
    // In 1/256 steps, so the mapping is exact integer arithmetic.
    let gain = (strength.clamp(0.0, 1.0) * 512.0).round() as i32;
    map_luma(frame, |y| Y_MID + ((y - Y_MID) * gain + 128).div_euclid(256));
}

/// Applies `f` to every luma value through a 256-entry table, clamping to limited range.
fn map_luma(frame: &mut VideoFrame, f: impl Fn(i32) -> i32) {
    let table: Vec<u8> = (0..=255).map(|y| f(y).clamp(Y_MIN, Y_MAX) as u8).collect();
    for y in frame.plane_mut(0) {
        *y = table.get(usize::from(*y)).copied().unwrap_or(*y);
    }
}

/// `pts` (nanoseconds) as `H:MM:SS.mmm`, with a `-` before negative times.
pub fn format_pts(pts: i64) -> String {
    let sign = if pts < 0 { "-" } else { "" };
    let ms = pts.unsigned_abs() / 1_000_000;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{sign}{h}:{m:02}:{s:02}.{ms:03}")
}

/// The text scale for a frame: about 1/180 of its height (4 on 720p), at least 1.
pub fn text_scale(height: u32) -> u32 {
    (height / 180).max(1)
}

/// Draws `text` (if any) and the frame's timestamp, white on black boxes, at the top left.
/// Returns the area covered.
pub fn overlay(frame: &mut VideoFrame, text: &str) -> Rect {
    let scale = text_scale(frame.height());
    let margin = 2 * scale;
    let stamp = format_pts(frame.pts());
    let label = if text.is_empty() { stamp } else { format!("{text}\n{stamp}") };
    let (w, h) = text_size(&label, scale);
    let background = Rect::new(margin, margin, w + 2 * margin, h + 2 * margin);
    fill_rect(frame, background, Color::BLACK);
    draw_text(frame, 2 * margin, 2 * margin, &label, scale, Color::WHITE);
    background
}

/// Whether `frame` is in the layout every effect expects.
pub fn is_i420(frame: &VideoFrame) -> bool {
    frame.format() == PixelFormat::I420
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luma_frame(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> VideoFrame {
        let mut frame = VideoFrame::new(w, h, PixelFormat::I420).unwrap();
        for (i, y) in frame.plane_mut(0).iter_mut().enumerate() {
            *y = f(i as u32 % w, i as u32 / w);
        }
        frame
    }

    #[test]
    fn block_sizes_are_even_and_grow_with_strength() {
        assert_eq!(block_size(0.0), 2);
        assert_eq!(block_size(0.5), 16);
        assert_eq!(block_size(1.0), MAX_BLOCK);
        assert_eq!(block_size(f32::NAN), 2);
    }

    #[test]
    fn blur_radius_grows_with_strength() {
        assert_eq!((blur_radius(0.0), blur_radius(0.5), blur_radius(1.0)), (0, 5, 10));
    }

    #[test]
    fn box_blur_of_a_step_is_the_window_average() {
        // Left 4 columns at 16, right 4 at 235; radius 1 averages 3 samples per axis.
        let mut frame = luma_frame(8, 3, |x, _| if x < 4 { 16 } else { 235 });
        let [y, _, _] = planes(&mut frame).unwrap();
        box_blur(y, 1);
        let row: Vec<u8> = frame.plane(0)[..8].to_vec();
        assert_eq!(row, [16, 16, 16, 89, 162, 235, 235, 235]);
        assert_eq!(&frame.plane(0)[16..24], row.as_slice(), "columns are uniform, so rows stay equal");
    }

    #[test]
    fn box_blur_of_an_impulse_spreads_it_evenly() {
        let mut frame = luma_frame(5, 5, |x, y| if (x, y) == (2, 2) { 225 } else { 0 });
        let [y, _, _] = planes(&mut frame).unwrap();
        box_blur(y, 1);
        for (i, &v) in frame.plane(0).iter().enumerate() {
            let (x, y) = (i % 5, i / 5);
            let inside = (1..=3).contains(&x) && (1..=3).contains(&y);
            assert_eq!(v, if inside { 25 } else { 0 }, "at {x},{y}");
        }
    }

    #[test]
    fn averaging_blocks_handles_partial_blocks() {
        let mut frame = luma_frame(3, 3, |x, y| (x + 3 * y) as u8 * 10);
        let [y, _, _] = planes(&mut frame).unwrap();
        average_blocks(y, 2);
        // Blocks: {0,10,30,40} → 20; {20,50} → 35; {60,70} → 65; {80} → 80.
        assert_eq!(frame.plane(0), &[20, 20, 35, 20, 20, 35, 65, 65, 80]);
    }

    #[test]
    fn timestamps_format_as_hours_minutes_seconds_millis() {
        assert_eq!(format_pts(0), "0:00:00.000");
        assert_eq!(format_pts(3_723_456_000_000), "1:02:03.456");
        assert_eq!(format_pts(-1_500_000_000), "-0:00:01.500");
    }
}
