//! The host side of `byoc:capability/frames`: video and audio frames live in the instance's
//! resource table; the guest holds handles, reads planes and samples (one copy into its memory)
//! and writes them back (one copy out).
//!
//! Frames are memory the guest's own limit does not see, so the host counts every frame an
//! instance holds (at least [`MIN_FRAME_COST`] bytes each) against the instance's memory
//! grant: a plugin that creates frames in a loop gets `too-large`, not the node's memory.

use byoc_frames::{AudioFrame, FrameError, VideoFrame};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};

use crate::bindings::v2::byoc::capability::frames::{Host, HostAudioFrame, HostVideoFrame};
use crate::bindings::{WitFrameError, WitPixelFormat};
use crate::state::HostState;

/// The least a frame counts against the budget, whatever its size.
const MIN_FRAME_COST: usize = 1024;

pub(crate) fn video_cost(frame: &VideoFrame) -> usize {
    frame.byte_len().max(MIN_FRAME_COST)
}

pub(crate) fn audio_cost(frame: &AudioFrame) -> usize {
    samples_cost(frame.samples())
}

fn samples_cost(samples: &[f32]) -> usize {
    size_of_val(samples).max(MIN_FRAME_COST)
}

impl HostState {
    /// Hands a decoded video frame to the guest's table. Host frames always fit: they count
    /// against the budget, but only frames the guest makes are refused.
    pub(crate) fn push_video(&mut self, frame: VideoFrame) -> wasmtime::Result<Resource<VideoFrame>> {
        self.frame_bytes = self.frame_bytes.saturating_add(video_cost(&frame));
        Ok(self.table.push(frame)?)
    }

    /// Takes a video frame back from the guest's table.
    pub(crate) fn take_video(&mut self, handle: Resource<VideoFrame>) -> wasmtime::Result<VideoFrame> {
        // Type first: the table's `delete` removes an entry of another type before refusing it,
        // which would lose a frame from the count.
        self.table.get(&handle)?;
        let frame = self.table.delete(handle)?;
        self.frame_bytes = self.frame_bytes.saturating_sub(video_cost(&frame));
        Ok(frame)
    }

    /// Hands a decoded audio frame to the guest's table.
    pub(crate) fn push_audio(&mut self, frame: AudioFrame) -> wasmtime::Result<Resource<AudioFrame>> {
        self.frame_bytes = self.frame_bytes.saturating_add(audio_cost(&frame));
        Ok(self.table.push(frame)?)
    }

    /// Takes an audio frame back from the guest's table.
    pub(crate) fn take_audio(&mut self, handle: Resource<AudioFrame>) -> wasmtime::Result<AudioFrame> {
        self.table.get(&handle)?;
        let frame = self.table.delete(handle)?;
        self.frame_bytes = self.frame_bytes.saturating_sub(audio_cost(&frame));
        Ok(frame)
    }

    /// Whether `cost` more bytes of frames fit the instance's budget.
    fn frame_budget(&self, cost: usize) -> Result<(), WitFrameError> {
        let limit = self.grant.memory_bytes;
        if self.frame_bytes.saturating_add(cost) > limit {
            return Err(WitFrameError::TooLarge(format!(
                "the plugin's frames would hold more than its memory limit ({limit} bytes)"
            )));
        }
        Ok(())
    }

    fn video(&self, handle: &Resource<VideoFrame>) -> wasmtime::Result<&VideoFrame> {
        Ok(self.table.get(handle)?)
    }

    fn audio(&self, handle: &Resource<AudioFrame>) -> wasmtime::Result<&AudioFrame> {
        Ok(self.table.get(handle)?)
    }
}

impl Host for HostState {}

/// Serves `video-frame.plane` and `audio-frame.samples` in place of the bindings' versions,
/// which must return an owned `Vec` (a copy of the plane or samples before the copy into the
/// plugin's memory): these hand wasmtime the frame's shared buffer, lowered into the plugin's
/// memory straight from it. One copy in, as `set-plane` and `set-samples` are one copy out.
pub(crate) fn add_shared_buffers_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = linker.instance("byoc:capability/frames@0.2.0").and_then(|mut frames| {
        frames.func_wrap(
            "[method]video-frame.plane",
            |store: StoreContextMut<'_, HostState>, (frame, plane): (Resource<VideoFrame>, u32)| {
                let frame = store.data().table.get(&frame)?;
                Ok((frame.plane_shared(plane as usize).map_err(WitFrameError::from),))
            },
        )?;
        frames.func_wrap(
            "[method]audio-frame.samples",
            |store: StoreContextMut<'_, HostState>, (frame,): (Resource<AudioFrame>,)| {
                Ok((store.data().table.get(&frame)?.samples_shared(),))
            },
        )
    });
    linker.allow_shadowing(false);
    result
}

impl HostVideoFrame for HostState {
    async fn create(
        &mut self,
        width: u32,
        height: u32,
        format: WitPixelFormat,
    ) -> wasmtime::Result<Result<Resource<VideoFrame>, WitFrameError>> {
        let format = byoc_frames::PixelFormat::from(format);
        // Checked before allocating: the size alone says whether it fits.
        if let Err(e) = self.frame_budget(format.frame_bytes(width, height).max(MIN_FRAME_COST)) {
            return Ok(Err(e));
        }
        match VideoFrame::black(width, height, format) {
            Ok(frame) => Ok(Ok(self.push_video(frame)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn width(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<u32> {
        Ok(self.video(&frame)?.width())
    }

    async fn height(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<u32> {
        Ok(self.video(&frame)?.height())
    }

    async fn format(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<WitPixelFormat> {
        Ok(self.video(&frame)?.format().into())
    }

    async fn pts(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<i64> {
        Ok(self.video(&frame)?.pts_ns)
    }

    async fn set_pts(&mut self, frame: Resource<VideoFrame>, pts: i64) -> wasmtime::Result<()> {
        self.table.get_mut(&frame)?.pts_ns = pts;
        Ok(())
    }

    async fn keyframe(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<bool> {
        Ok(self.video(&frame)?.keyframe)
    }

    async fn plane_count(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<u32> {
        Ok(self.video(&frame)?.format().planes() as u32)
    }

    async fn stride(
        &mut self,
        frame: Resource<VideoFrame>,
        plane: u32,
    ) -> wasmtime::Result<Result<u32, WitFrameError>> {
        Ok(self.video(&frame)?.stride(plane as usize).map(|s| s as u32).map_err(Into::into))
    }

    /// Not called: [`add_shared_buffers_to_linker`] serves `plane` without this copy.
    async fn plane(
        &mut self,
        frame: Resource<VideoFrame>,
        plane: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, WitFrameError>> {
        Ok(self.video(&frame)?.plane(plane as usize).map(<[u8]>::to_vec).map_err(Into::into))
    }

    async fn set_plane(
        &mut self,
        frame: Resource<VideoFrame>,
        plane: u32,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WitFrameError>> {
        // The bytes lifted out of the plugin's memory become the plane: one copy out.
        Ok(self.table.get_mut(&frame)?.set_plane(plane as usize, bytes).map_err(Into::into))
    }

    async fn drop(&mut self, frame: Resource<VideoFrame>) -> wasmtime::Result<()> {
        self.take_video(frame)?;
        Ok(())
    }
}

impl HostAudioFrame for HostState {
    async fn create(
        &mut self,
        sample_rate: u32,
        channels: u8,
        samples: Vec<f32>,
        pts: i64,
    ) -> wasmtime::Result<Result<Resource<AudioFrame>, WitFrameError>> {
        if let Err(e) = self.frame_budget(samples_cost(&samples)) {
            return Ok(Err(e));
        }
        match AudioFrame::new(sample_rate, channels, pts, samples) {
            Ok(frame) => Ok(Ok(self.push_audio(frame)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn sample_rate(&mut self, frame: Resource<AudioFrame>) -> wasmtime::Result<u32> {
        Ok(self.audio(&frame)?.sample_rate())
    }

    async fn channels(&mut self, frame: Resource<AudioFrame>) -> wasmtime::Result<u8> {
        Ok(self.audio(&frame)?.channels())
    }

    async fn pts(&mut self, frame: Resource<AudioFrame>) -> wasmtime::Result<i64> {
        Ok(self.audio(&frame)?.pts_ns)
    }

    async fn set_pts(&mut self, frame: Resource<AudioFrame>, pts: i64) -> wasmtime::Result<()> {
        self.table.get_mut(&frame)?.pts_ns = pts;
        Ok(())
    }

    /// Not called: [`add_shared_buffers_to_linker`] serves `samples` without this copy.
    async fn samples(&mut self, frame: Resource<AudioFrame>) -> wasmtime::Result<Vec<f32>> {
        Ok(self.audio(&frame)?.samples().to_vec())
    }

    async fn set_samples(
        &mut self,
        frame: Resource<AudioFrame>,
        samples: Vec<f32>,
    ) -> wasmtime::Result<Result<(), WitFrameError>> {
        let old = audio_cost(self.audio(&frame)?);
        let new = samples_cost(&samples);
        if new > old
            && let Err(e) = self.frame_budget(new - old)
        {
            return Ok(Err(e));
        }
        let result = self.table.get_mut(&frame)?.set_samples(samples);
        if result.is_ok() {
            self.frame_bytes = self.frame_bytes.saturating_sub(old).saturating_add(new);
        }
        Ok(result.map_err(FrameError::into))
    }

    async fn drop(&mut self, frame: Resource<AudioFrame>) -> wasmtime::Result<()> {
        self.take_audio(frame)?;
        Ok(())
    }
}
