//! `motion-detector`: a frame plugin. Each frame's luma is averaged over a grid of at most
//! 160 cells across ([`grid`]); a cell whose mean moved by more than `pixel_threshold` since
//! the previous frame counts as changed, and the share of changed cells is the frame's
//! motion score.
//!
//! - A score at or above `threshold` starts motion: event
//!   `{"type": "motion_start", "score", "pts_ms"}`.
//! - Motion ends once no frame reached the threshold for `hold_ms` of stream time: event
//!   `{"type": "motion_end", "peak_score", "duration_ms", "pts_ms"}` (also at stream stop).
//! - Every second (a tick, input or not) a data line
//!   `{"motion": bool, "score": last, "peak": highest since the last line, "frames": n}`.
//! - With `draw_boxes`, frames in motion get a red box around the changed area; other frames
//!   go back untouched (no copy back to the host).

pub mod grid;

use std::time::Duration;

use byoc_sdk::frames::{Color, FrameNeeds, FrameProcessor, PixelFormat, StreamInfo, VideoFrame, VideoNeeds, draw_rect};
use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
use serde::Deserialize;

use crate::grid::Grid;

/// The stream's params.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Share of grid cells (0 to 1) that must change for a frame to count as motion.
    pub threshold: f64,
    /// Change of a cell's mean luma (levels) above which the cell counts as changed.
    pub pixel_threshold: u8,
    /// Stream time without motion before motion ends, in milliseconds.
    pub hold_ms: u64,
    /// Draw a box around the changed area on frames in motion.
    pub draw_boxes: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self { threshold: 0.01, pixel_threshold: 20, hold_ms: 1000, draw_boxes: true }
    }
}

impl Params {
    fn validate(self) -> Result<Self, Error> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::invalid_params(format!(
                "threshold must be above 0 and at most 1, not {}",
                self.threshold
            )));
        }
        if self.hold_ms > 60_000 {
            return Err(Error::invalid_params("hold_ms must be at most 60000"));
        }
        Ok(self)
    }
}

const PARAMS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.01,
      "description": "Share of the picture that must change for motion"},
    "pixel_threshold": {"type": "integer", "minimum": 0, "maximum": 255, "default": 20,
      "description": "Luma change (levels) above which an area counts as changed"},
    "hold_ms": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 1000,
      "description": "Stream time without motion before motion_end"},
    "draw_boxes": {"type": "boolean", "default": true,
      "description": "Draw a box around the moving area"}
  }
}"#;

/// Nanoseconds per millisecond.
const NS_PER_MS: i64 = 1_000_000;

/// An ongoing motion.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Motion {
    start_pts: i64,
    last_pts: i64,
    peak: f64,
}

/// One stream.
pub struct MotionDetector {
    params: Params,
    previous: Option<Grid>,
    motion: Option<Motion>,
    last_pts: i64,
    last_score: f64,
    peak_since_line: f64,
    frames_since_line: u64,
}

impl MotionDetector {
    /// Whether motion is ongoing.
    pub fn in_motion(&self) -> bool {
        self.motion.is_some()
    }

    fn end_motion(&mut self, ctx: &Context<'_>, pts: i64) -> Result<(), Error> {
        if let Some(motion) = self.motion.take() {
            ctx.publish_event(&serde_json::json!({
                "type": "motion_end",
                "peak_score": motion.peak,
                "duration_ms": motion.last_pts.saturating_sub(motion.start_pts) / NS_PER_MS,
                "pts_ms": pts / NS_PER_MS,
            }))?;
        }
        Ok(())
    }

    /// Updates the motion state with one frame's score.
    fn observe(&mut self, ctx: &Context<'_>, score: f64, pts: i64) -> Result<(), Error> {
        let moving = score >= self.params.threshold;
        match (&mut self.motion, moving) {
            (Some(motion), true) => {
                motion.last_pts = pts;
                motion.peak = motion.peak.max(score);
            }
            (Some(motion), false) => {
                let quiet_ns = pts.saturating_sub(motion.last_pts);
                let hold_ns = i64::try_from(self.params.hold_ms).unwrap_or(i64::MAX).saturating_mul(NS_PER_MS);
                if quiet_ns >= hold_ns {
                    self.end_motion(ctx, pts)?;
                }
            }
            (None, true) => {
                self.motion = Some(Motion { start_pts: pts, last_pts: pts, peak: score });
                ctx.publish_event(&serde_json::json!({
                    "type": "motion_start", "score": score, "pts_ms": pts / NS_PER_MS,
                }))?;
            }
            (None, false) => {}
        }
        Ok(())
    }
}

impl Describe for MotionDetector {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new("motion-detector", env!("CARGO_PKG_VERSION"), "Detects motion in video")
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::DATA | Legs::EVENTS)
            .params_schema(PARAMS_SCHEMA)
            .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::I420).max_size(1280, 720)))
    }
}

impl FrameProcessor for MotionDetector {
    type Params = Params;

    fn on_start(ctx: &Context<'_>, params: Params, _info: StreamInfo) -> Result<Self, Error> {
        let params = params.validate()?;
        ctx.set_tick(Duration::from_secs(1));
        Ok(Self {
            params,
            previous: None,
            motion: None,
            last_pts: 0,
            last_score: 0.0,
            peak_since_line: 0.0,
            frames_since_line: 0,
        })
    }

    fn process_video(&mut self, ctx: &Context<'_>, mut frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        if frame.format() != PixelFormat::I420 {
            return Err(Error::invalid_input(format!("expected an I420 frame, got {:?}", frame.format())));
        }
        let grid = Grid::of_luma(frame.plane(0), frame.width(), frame.height());
        // The first frame, or one of a new size, has nothing to compare with.
        let diff = self.previous.as_ref().and_then(|previous| grid.diff(previous, self.params.pixel_threshold));
        self.previous = Some(grid);
        let pts = frame.pts();
        self.last_pts = pts;
        self.frames_since_line += 1;
        let Some(diff) = diff else {
            return Ok(Some(frame));
        };
        self.last_score = diff.score;
        self.peak_since_line = self.peak_since_line.max(diff.score);
        self.observe(ctx, diff.score, pts)?;
        if self.params.draw_boxes
            && self.motion.is_some()
            && diff.score >= self.params.threshold
            && let Some(bounds) = diff.bounds
        {
            let thickness = (frame.height() / 180).max(2);
            draw_rect(&mut frame, bounds, thickness, Color::RED);
        }
        Ok(Some(frame))
    }

    /// Takes the new params, keeping the motion state and the previous frame.
    fn update_params(&mut self, _ctx: &Context<'_>, params: Params, _info: &StreamInfo) -> Result<(), Error> {
        self.params = params.validate()?;
        Ok(())
    }

    fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        ctx.publish_data_json(&serde_json::json!({
            "motion": self.motion.is_some(),
            "score": self.last_score,
            "peak": self.peak_since_line,
            "frames": self.frames_since_line,
        }))?;
        self.peak_since_line = 0.0;
        self.frames_since_line = 0;
        Ok(())
    }

    fn on_stop(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        self.end_motion(ctx, self.last_pts)
    }
}

byoc_sdk::export!(frames MotionDetector);

#[cfg(test)]
mod tests;
