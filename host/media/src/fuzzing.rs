//! Entry points for the fuzz targets (`host/fuzz`): the parsers this crate keeps private, reached the
//! way network bytes reach them. Not an API: hidden from the docs, and no other crate uses it.

use std::net::SocketAddr;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::avc::{self, AvcConfig};
use crate::flv::{FlvReader, TagKind};
use crate::rtmp::remux::{Expected, FlvToTs};
use crate::{MediaError, Piece, RtmpConfig};

/// One FLV tag as the fuzz targets see it: type (8 audio, 9 video, 18 script), timestamp (ms), body.
pub type FlvTag = (u8, u32, Bytes);

/// Splits an FLV stream fed in `chunks` into tags, as RTMP play reads ffmpeg's FLV output. Stops at the
/// first error.
pub fn flv_tags<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<FlvTag>, Result<(), MediaError>) {
    let mut reader = FlvReader::new();
    let mut tags = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => tags.push((tag.kind as u8, tag.timestamp, tag.body)),
                Ok(None) => break,
                Err(e) => return (tags, Err(e)),
            }
        }
    }
    (tags, Ok(()))
}

/// Parses an AVCDecoderConfigurationRecord and turns `frame` (AVCC) into Annex-B with it: `None` when
/// the record does not parse, else what [`avc::to_annexb`] returns (the Annex-B bytes and whether the
/// frame holds an IDR; `None` for a malformed frame) and the record's parameter sets.
#[allow(clippy::type_complexity, reason = "a fuzz entry point returns everything it saw")]
pub fn avc_frame(record: &[u8], frame: &[u8]) -> Option<(Option<(Vec<u8>, bool)>, Vec<u8>)> {
    let config = AvcConfig::parse(record)?;
    let mut out = Vec::new();
    let converted = avc::to_annexb(frame, &config, &mut out).map(|idr| (out, idr));
    Some((converted, config.parameter_sets))
}

/// Remuxes RTMP tags to MPEG-TS as an RTMP publish does: `expected` is the publisher's metadata (video,
/// audio), if it sent any. Returns the TS and whether the streams could be muxed.
pub fn remux(
    tags: impl IntoIterator<Item = FlvTag>,
    expected: Option<(bool, bool)>,
) -> (Vec<u8>, Result<(), MediaError>) {
    let mut remux = FlvToTs::new();
    if let Some((video, audio)) = expected {
        remux.expect(Expected { video, audio });
    }
    let mut out = Vec::new();
    for (kind, timestamp, body) in tags {
        let kind = match kind {
            8 => TagKind::Audio,
            9 => TagKind::Video,
            18 => TagKind::Script,
            // rml_rtmp only hands audio and video data over.
            _ => continue,
        };
        if let Err(e) = remux.push(kind, timestamp, body, &mut out) {
            return (out, Err(e));
        }
    }
    let finished = remux.finish(&mut out);
    (out, finished)
}

/// What one RTMP connection served by [`rtmp_connection`] did.
#[derive(Debug)]
pub struct RtmpOutcome {
    /// How the server ended the connection.
    pub result: Result<(), MediaError>,
    /// Pieces of MPEG-TS the publish sent to its consumer.
    pub pieces: Vec<Piece>,
}

/// Serves one RTMP connection whose client completes the handshake, then sends `input` and closes its
/// side: the server's own connection loop (rml_rtmp, the publish, the FLV → TS remux, the segmenter)
/// over an in-memory pipe. Every publish is accepted. Run it on a runtime with paused time, so that the
/// connection's timers fire at once when it waits.
pub async fn rtmp_connection(input: &[u8], config: RtmpConfig) -> RtmpOutcome {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (tx, mut rx) = mpsc::channel::<Piece>(1024);
    let authorizer = move |_| {
        let tx = tx.clone();
        async move { Some(tx) }
    };
    let peer = SocketAddr::from(([127, 0, 0, 1], 1935));
    let consumer = tokio::spawn(async move {
        let mut pieces = Vec::new();
        while let Some(piece) = rx.recv().await {
            pieces.push(piece);
        }
        pieces
    });
    let input = input.to_vec();
    let client = tokio::spawn(async move {
        let (mut read, mut write) = tokio::io::split(client);
        if client_handshake(&mut read, &mut write).await.is_ok() {
            let _ = write.write_all(&input).await;
        }
        let _ = write.shutdown().await;
        // Whatever the server answers is read and dropped, so that it never waits on a full pipe.
        let mut sink = tokio::io::sink();
        let _ = tokio::io::copy(&mut read, &mut sink).await;
    });
    let result = crate::rtmp::serve_one(server, peer, config, authorizer).await;
    let _ = client.await;
    let pieces = consumer.await.unwrap_or_default();
    RtmpOutcome { result, pieces }
}

/// An RTMP client's side of the handshake (C0 C1, then C2 once the server's S0 S1 S2 are in).
async fn client_handshake(
    read: &mut (impl tokio::io::AsyncRead + Unpin),
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<(), MediaError> {
    let protocol = |e: rml_rtmp::handshake::HandshakeError| MediaError::Protocol(e.to_string());
    let mut hs = Handshake::new(PeerType::Client);
    write.write_all(&hs.generate_outbound_p0_and_p1().map_err(protocol)?).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = read.read(&mut buf).await?;
        if n == 0 {
            return Err(MediaError::Closed);
        }
        match hs.process_bytes(buf.get(..n).unwrap_or_default()).map_err(protocol)? {
            HandshakeProcessResult::InProgress { response_bytes } => write.write_all(&response_bytes).await?,
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                write.write_all(&response_bytes).await?;
                return Ok(());
            }
        }
    }
}
