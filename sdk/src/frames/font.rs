//! Text with a built-in bitmap font: 5×7 glyphs for printable ASCII, drawn in 6×8 cells.
//!
//! The font is this crate's own, drawn for legibility on video at small integer scales
//! (timestamps, labels, counters). Characters outside printable ASCII are drawn as `?`.

use crate::frames::{Color, Rect, VideoFrame, fill_rect};

/// Width of a glyph in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Height of a glyph in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;
/// Horizontal advance per character (glyph plus one column of spacing).
pub const CELL_WIDTH: u32 = 6;
/// Vertical advance per line (glyph plus one row of spacing).
pub const CELL_HEIGHT: u32 = 8;

/// Rows of each glyph from `' '` (0x20) to `'~'` (0x7e), top to bottom; bit 4 is the
/// leftmost column.
#[rustfmt::skip]
const GLYPHS: [[u8; 7]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // '!'
    [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000], // '"'
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010], // '#'
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100], // '$'
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011], // '%'
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101], // '&'
    [0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000], // "'"
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010], // '('
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000], // ')'
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000], // '*'
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000], // '+'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00110, 0b00100, 0b01000], // ','
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // '-'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // '.'
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000], // '/'
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // '0'
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // '1'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // '2'
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // '3'
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // '4'
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // '5'
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // '6'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // '7'
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // '8'
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // '9'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000], // ':'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000], // ';'
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010], // '<'
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000], // '='
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000], // '>'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // '?'
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110], // '@'
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'A'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // 'B'
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // 'C'
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // 'D'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // 'E'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // 'F'
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // 'G'
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'H'
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'I'
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // 'J'
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // 'K'
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // 'L'
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // 'M'
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // 'N'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'O'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // 'P'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // 'Q'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // 'R'
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // 'S'
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // 'T'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'U'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'V'
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // 'W'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // 'X'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100], // 'Y'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // 'Z'
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110], // '['
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000], // '\\'
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110], // ']'
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000], // '^'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111], // '_'
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000], // '`'
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // 'a'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110], // 'b'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // 'c'
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111], // 'd'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // 'e'
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // 'f'
    [0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'g'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'h'
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // 'i'
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // 'j'
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // 'k'
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'l'
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // 'm'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'n'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // 'o'
    [0b00000, 0b00000, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000], // 'p'
    [0b00000, 0b00000, 0b01101, 0b10011, 0b01111, 0b00001, 0b00001], // 'q'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // 'r'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110], // 's'
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // 't'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // 'u'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'v'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // 'w'
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // 'x'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'y'
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // 'z'
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010], // '{'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // '|'
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000], // '}'
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000], // '~'
];

/// The rows of `c`'s glyph (`?` for characters without one).
///
/// ```
/// assert_eq!(byoc_sdk::frames::font::glyph('1'), [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]);
/// assert_eq!(byoc_sdk::frames::font::glyph('é'), byoc_sdk::frames::font::glyph('?'));
/// ```
pub fn glyph(c: char) -> [u8; 7] {
    let index = u32::from(c).checked_sub(0x20).filter(|&i| i < 95).unwrap_or(u32::from('?') - 0x20);
    GLYPHS.get(index as usize).copied().unwrap_or_default()
}

/// The size in pixels `text` takes at `scale` (each font pixel a `scale` × `scale` square):
/// the longest line's cells by the number of lines (`\n` starts a line), without the
/// spacing after the last column and row.
///
/// ```
/// use byoc_sdk::frames::text_size;
/// assert_eq!(text_size("12:00", 1), (29, 7));
/// assert_eq!(text_size("a\nbc", 2), (22, 30));
/// assert_eq!(text_size("", 3), (0, 0));
/// ```
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    if text.is_empty() {
        return (0, 0);
    }
    let lines = text.split('\n');
    let (mut columns, mut rows) = (0u32, 0u32);
    for line in lines {
        columns = columns.max(u32::try_from(line.chars().count()).unwrap_or(u32::MAX));
        rows = rows.saturating_add(1);
    }
    let width = if columns == 0 { 0 } else { columns.saturating_mul(CELL_WIDTH) - (CELL_WIDTH - GLYPH_WIDTH) };
    let height = rows.saturating_mul(CELL_HEIGHT) - (CELL_HEIGHT - GLYPH_HEIGHT);
    (width.saturating_mul(scale), height.saturating_mul(scale))
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a `scale` × `scale`
/// square (scale 0 is taken as 1), clipped to the frame. Returns the rectangle the text
/// occupies (see [`text_size`]), e.g. to draw a background first on a copy.
///
/// ```
/// use byoc_sdk::frames::{draw_text, Color, PixelFormat, VideoFrame};
/// let mut frame = VideoFrame::new(8, 8, PixelFormat::Rgb24).unwrap();
/// let area = draw_text(&mut frame, 1, 1, "1", 1, Color::WHITE);
/// assert_eq!((area.width, area.height), (5, 7));
/// // The top row of '1' is its middle column only.
/// assert_eq!(frame.pixel_rgb(3, 1), Some([255; 3]));
/// assert_eq!(frame.pixel_rgb(2, 1), Some([0; 3]));
/// ```
pub fn draw_text(frame: &mut VideoFrame, x: u32, y: u32, text: &str, scale: u32, color: Color) -> Rect {
    let scale = scale.max(1);
    let (width, height) = text_size(text, scale);
    for (line_no, line) in (0u32..).zip(text.split('\n')) {
        let top = y.saturating_add(line_no.saturating_mul(CELL_HEIGHT * scale));
        if top >= frame.height() {
            break;
        }
        for (col, c) in (0u32..).zip(line.chars()) {
            let left = x.saturating_add(col.saturating_mul(CELL_WIDTH * scale));
            if left >= frame.width() {
                break;
            }
            draw_glyph(frame, left, top, glyph(c), scale, color);
        }
    }
    Rect::new(x, y, width, height)
}

fn draw_glyph(frame: &mut VideoFrame, left: u32, top: u32, rows: [u8; 7], scale: u32, color: Color) {
    for (gy, bits) in (0u32..).zip(rows) {
        // Runs of set bits become one rectangle each, so a scaled glyph costs a few fills.
        let mut gx = 0;
        while gx < GLYPH_WIDTH {
            if bits & (0b10000 >> gx) == 0 {
                gx += 1;
                continue;
            }
            let start = gx;
            while gx < GLYPH_WIDTH && bits & (0b10000 >> gx) != 0 {
                gx += 1;
            }
            let rect = Rect::new(
                left.saturating_add(start * scale),
                top.saturating_add(gy * scale),
                (gx - start) * scale,
                scale,
            );
            fill_rect(frame, rect, color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::PixelFormat;

    /// The lit pixels of a frame as text art, `#` for white.
    fn art(frame: &VideoFrame) -> Vec<String> {
        (0..frame.height())
            .map(|y| {
                (0..frame.width()).map(|x| if frame.pixel_rgb(x, y) == Some([255; 3]) { '#' } else { '.' }).collect()
            })
            .collect()
    }

    #[test]
    fn every_printable_character_has_a_distinct_glyph_and_only_space_is_blank() {
        let glyphs: Vec<_> = (' '..='~').map(glyph).collect();
        for (i, a) in glyphs.iter().enumerate() {
            assert_eq!(a.iter().all(|&r| r == 0), i == 0, "glyph {:?}", char::from(b' ' + i as u8));
            assert!(a.iter().all(|&r| r < 32));
            for b in glyphs.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn digits_draw_exactly() {
        let mut frame = VideoFrame::new(11, 7, PixelFormat::Rgb24).unwrap();
        draw_text(&mut frame, 0, 0, "07", 1, Color::WHITE);
        assert_eq!(
            art(&frame),
            [".###..#####", "#...#.....#", "#..##....#.", "#.#.#...#..", "##..#..#...", "#...#..#...", ".###...#...",]
        );
    }

    #[test]
    fn scaled_text_is_clipped_at_the_frame_edge() {
        let mut frame = VideoFrame::new(7, 5, PixelFormat::Rgb24).unwrap();
        let area = draw_text(&mut frame, 3, 1, "-", 2, Color::WHITE);
        assert_eq!(area, Rect::new(3, 1, 10, 14));
        // The bar of '-' is font row 3, so pixel rows 7 and 8: outside this frame.
        assert!(art(&frame).iter().all(|row| !row.contains('#')));
        let mut frame = VideoFrame::new(7, 9, PixelFormat::Rgb24).unwrap();
        draw_text(&mut frame, 3, 1, "-", 2, Color::WHITE);
        assert_eq!(art(&frame)[7], "...####");
    }

    #[test]
    fn lines_advance_by_a_cell() {
        let mut frame = VideoFrame::new(6, 16, PixelFormat::Rgb24).unwrap();
        draw_text(&mut frame, 0, 0, "_\n_", 1, Color::WHITE);
        let rows = art(&frame);
        assert_eq!(rows[6], "#####.");
        assert_eq!(rows[14], "#####.");
        assert_eq!(rows.iter().filter(|r| r.contains('#')).count(), 2);
    }
}
