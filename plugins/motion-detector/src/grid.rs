//! The analysis grid: a frame's luma averaged over square cells, and the difference of two
//! grids.

use byoc_sdk::frames::Rect;

/// The most cells across a grid; wider frames get larger cells.
pub const MAX_GRID_WIDTH: usize = 160;

/// Mean luma per cell of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// Cell side in frame pixels.
    pub cell: usize,
    /// Cells across.
    pub width: usize,
    /// Cells down.
    pub height: usize,
    /// Frame size the grid was made from.
    pub frame_size: (u32, u32),
    /// Mean luma of each cell, row by row.
    pub cells: Vec<u8>,
}

impl Grid {
    /// The grid of a `width` × `height` luma plane (`luma` packed, one byte per pixel).
    pub fn of_luma(luma: &[u8], width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let cell = w.div_ceil(MAX_GRID_WIDTH).max(1);
        let (gw, gh) = (w.div_ceil(cell), h.div_ceil(cell));
        let mut sums = vec![0u32; gw * gh];
        let mut counts = vec![0u32; gw * gh];
        if w > 0 {
            for (y, row) in luma.chunks_exact(w).enumerate().take(h) {
                let band = (y / cell) * gw;
                let sums = sums.get_mut(band..band + gw).unwrap_or_default();
                let counts = counts.get_mut(band..band + gw).unwrap_or_default();
                for ((chunk, sum), count) in row.chunks(cell).zip(sums).zip(counts) {
                    *sum += chunk.iter().map(|&b| u32::from(b)).sum::<u32>();
                    *count += chunk.len() as u32;
                }
            }
        }
        let cells = sums.iter().zip(&counts).map(|(&s, &c)| (s + c / 2).checked_div(c).unwrap_or(0) as u8).collect();
        Self { cell, width: gw, height: gh, frame_size: (width, height), cells }
    }

    /// Compares with the previous grid of the same frame size: the share of cells whose mean
    /// changed by more than `threshold` (0 to 1), and the box around them in frame pixels.
    /// `None` when the grids are of different sizes.
    pub fn diff(&self, previous: &Self, threshold: u8) -> Option<Diff> {
        if self.frame_size != previous.frame_size || self.cells.len() != previous.cells.len() {
            return None;
        }
        let (mut changed, mut bounds) = (0usize, None::<(usize, usize, usize, usize)>);
        for (i, (&a, &b)) in self.cells.iter().zip(&previous.cells).enumerate() {
            if a.abs_diff(b) > threshold {
                changed += 1;
                let (x, y) = (i % self.width.max(1), i / self.width.max(1));
                bounds = Some(match bounds {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
        let score = changed as f64 / self.cells.len().max(1) as f64;
        let bounds = bounds.map(|(x0, y0, x1, y1)| {
            let px = |cells: usize| u32::try_from(cells * self.cell).unwrap_or(u32::MAX);
            let (fw, fh) = self.frame_size;
            let (left, top) = (px(x0), px(y0));
            let (right, bottom) = (px(x1 + 1).min(fw), px(y1 + 1).min(fh));
            Rect::new(left, top, right.saturating_sub(left), bottom.saturating_sub(top))
        });
        Some(Diff { score, bounds })
    }
}

/// What changed between two grids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diff {
    /// Share of cells that changed, 0 to 1.
    pub score: f64,
    /// The box around the changed cells, in frame pixels; `None` when nothing changed.
    pub bounds: Option<Rect>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_grow_with_the_frame_so_the_grid_stays_small() {
        let grid = Grid::of_luma(&vec![16; 1280 * 720], 1280, 720);
        assert_eq!((grid.cell, grid.width, grid.height), (8, 160, 90));
        let grid = Grid::of_luma(&[7; 12], 4, 3);
        assert_eq!((grid.cell, grid.cells), (1, vec![7; 12]));
    }

    #[test]
    fn partial_cells_average_what_they_cover() {
        // 331 wide: cells of 3 pixels, 111 across; the last covers only column 330.
        let luma: Vec<u8> = (0..331u32 * 2).map(|i| if i % 331 == 330 { 200 } else { 20 }).collect();
        let grid = Grid::of_luma(&luma, 331, 2);
        assert_eq!((grid.cell, grid.width, grid.height), (3, 111, 1));
        assert_eq!(grid.cells.first(), Some(&20));
        assert_eq!(grid.cells.last(), Some(&200), "the last cell covers one column");
    }

    #[test]
    fn diff_scores_changed_cells_and_boxes_them_in_pixels() {
        let before = Grid::of_luma(&[50; 16], 4, 4);
        let mut luma = [50u8; 16];
        luma[5] = 200;
        luma[10] = 100;
        let after = Grid::of_luma(&luma, 4, 4);
        let diff = after.diff(&before, 25).unwrap();
        assert_eq!(diff.score, 2.0 / 16.0);
        assert_eq!(diff.bounds, Some(Rect::new(1, 1, 2, 2)));
        assert_eq!(before.diff(&before, 25).unwrap().bounds, None);
        assert!(after.diff(&Grid::of_luma(&[50; 20], 5, 4), 25).is_none());
    }
}
