//! Between libavcodec's frames and ours: swscale for size and pixel format, and plane copies that
//! respect each side's row stride.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::software::scaling;

use super::PipelineError;
use crate::{PixelFormat, VideoFrame};

/// The libav pixel format of ours.
pub(crate) fn pixel(format: PixelFormat) -> Pixel {
    match format {
        PixelFormat::I420 => Pixel::YUV420P,
        PixelFormat::Rgb24 => Pixel::RGB24,
        PixelFormat::Rgba => Pixel::RGBA,
    }
}

/// The size a `width` × `height` picture gets under the limits (0: none), keeping its aspect ratio;
/// even sides for I420 (at least 2).
pub(crate) fn fit(width: u32, height: u32, max_width: u32, max_height: u32, format: PixelFormat) -> (u32, u32) {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let (mw, mh) = (u64::from(max_width), u64::from(max_height));
    // Scale by the tighter limit: w' = w·num/den.
    let (mut num, mut den) = (1u64, 1u64);
    if mw > 0 && w > mw {
        (num, den) = (mw, w);
    }
    if mh > 0 && h * num > mh * den {
        (num, den) = (mh, h);
    }
    let mut out_w = (w * num / den).max(1);
    let mut out_h = (h * num / den).max(1);
    if format == PixelFormat::I420 {
        out_w = (out_w & !1).max(2);
        out_h = (out_h & !1).max(2);
    }
    (u32::try_from(out_w).unwrap_or(2), u32::try_from(out_h).unwrap_or(2))
}

/// A picture's pixel format and size.
type Shape = (Pixel, u32, u32);

/// A swscale context kept while its input and output stay the same.
#[derive(Default)]
pub(crate) struct Scaler {
    current: Option<(Shape, Shape, scaling::Context)>,
}

impl Scaler {
    /// `src` scaled and converted into a new frame of `format`, `width` × `height`.
    pub(crate) fn run(
        &mut self,
        src: &frame::Video,
        format: Pixel,
        width: u32,
        height: u32,
    ) -> Result<frame::Video, PipelineError> {
        let from = (src.format(), src.width(), src.height());
        let to = (format, width, height);
        let fresh = !matches!(&self.current, Some((f, t, _)) if *f == from && *t == to);
        if fresh {
            let ctx = scaling::Context::get(from.0, from.1, from.2, to.0, to.1, to.2, scaling::Flags::BILINEAR)
                .map_err(|e| PipelineError::Codec(format!("swscale {from:?} → {to:?}: {e}")))?;
            self.current = Some((from, to, ctx));
        }
        let mut out = frame::Video::new(format, width, height);
        if let Some((_, _, ctx)) = &mut self.current {
            ctx.run(src, &mut out).map_err(|e| PipelineError::Codec(format!("swscale: {e}")))?;
        }
        Ok(out)
    }
}

/// Copies a libav frame (already in `format`'s layout) into one of ours.
pub(crate) fn to_frame(src: &frame::Video, format: PixelFormat, pts_ns: i64) -> Result<VideoFrame, PipelineError> {
    let (width, height) = (src.width(), src.height());
    if src.format() != pixel(format) || src.planes() < format.planes() {
        return Err(PipelineError::Codec(format!("a {:?} frame is not {format:?}", src.format())));
    }
    let mut planes = Vec::with_capacity(format.planes());
    for plane in 0..format.planes() {
        let (row, rows) = format.plane_size(width, height, plane).unwrap_or((0, 0));
        let stride = src.stride(plane);
        let bytes = src.data(plane);
        let mut data = Vec::with_capacity(row * rows);
        for r in 0..rows {
            let line = bytes
                .get(r * stride..r * stride + row)
                .ok_or_else(|| PipelineError::Codec(format!("plane {plane} is short of row {r}")))?;
            data.extend_from_slice(line);
        }
        planes.push(data);
    }
    Ok(VideoFrame::from_planes(width, height, format, pts_ns, planes)?)
}

/// Copies one of our frames into a new libav frame of the same layout.
pub(crate) fn from_frame(src: &VideoFrame) -> Result<frame::Video, PipelineError> {
    let format = src.format();
    let mut out = frame::Video::new(pixel(format), src.width(), src.height());
    for plane in 0..format.planes() {
        let (row, rows) = format.plane_size(src.width(), src.height(), plane).unwrap_or((0, 0));
        let stride = out.stride(plane);
        let bytes = src.plane(plane)?;
        let dst = out.data_mut(plane);
        for r in 0..rows {
            let (Some(from), Some(to)) = (bytes.get(r * row..(r + 1) * row), dst.get_mut(r * stride..r * stride + row))
            else {
                return Err(PipelineError::Codec(format!("plane {plane} is short of row {r}")));
            };
            to.copy_from_slice(from);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_and_even_sides() {
        assert_eq!(fit(320, 240, 160, 120, PixelFormat::Rgb24), (160, 120));
        assert_eq!(fit(320, 240, 0, 0, PixelFormat::I420), (320, 240));
        assert_eq!(fit(1920, 1080, 640, 640, PixelFormat::I420), (640, 360));
        assert_eq!(fit(1080, 1920, 640, 640, PixelFormat::I420), (360, 640));
        assert_eq!(fit(1920, 1080, 0, 100, PixelFormat::I420), (176, 100));
        assert_eq!(fit(333, 201, 100, 0, PixelFormat::I420), (100, 60));
        assert_eq!(fit(333, 201, 100, 0, PixelFormat::Rgba), (100, 60));
        assert_eq!(fit(8000, 2, 100, 100, PixelFormat::I420), (100, 2));
        assert_eq!(fit(100, 100, 200, 200, PixelFormat::I420), (100, 100));
    }

    #[test]
    fn frames_copy_both_ways() {
        ffmpeg_next::init().expect("init");
        let mut ours = VideoFrame::black(34, 18, PixelFormat::I420).expect("frame");
        for plane in 0..3 {
            for (i, b) in ours.plane_mut(plane).expect("plane").iter_mut().enumerate() {
                *b = (i + plane) as u8;
            }
        }
        let theirs = from_frame(&ours).expect("to libav");
        let back = to_frame(&theirs, PixelFormat::I420, 0).expect("back");
        assert!(back.planes().eq(ours.planes()));
        let rgb = Scaler::default().run(&theirs, Pixel::RGB24, 16, 8).expect("scaled");
        let rgb = to_frame(&rgb, PixelFormat::Rgb24, 5).expect("rgb");
        assert_eq!((rgb.width(), rgb.height(), rgb.byte_len(), rgb.pts_ns), (16, 8, 16 * 8 * 3, 5));
    }
}
