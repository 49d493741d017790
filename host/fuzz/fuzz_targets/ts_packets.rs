//! MPEG-TS reading from network bytes: the packet reader in any chunking, every packet's header and
//! adaptation field, PSI sections (reassembled, and in one payload), PAT, PMT with its descriptors and
//! codecs, PES headers. Nothing may panic; the reader must find the same packets however the bytes come.
#![no_main]

use byoc_ts::{Codec, Descriptors, Packet, PacketReader, Pat, PesHeader, Pmt, Section, SectionAssembler};
use libfuzzer_sys::fuzz_target;

// The first byte picks the chunking; the rest is the stream.
fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let whole = read(&[data]);
    let chunked = read(&byoc_fuzz::chunks(data, seed));
    if byoc_fuzz::in_sync(data) {
        assert!(whole == chunked, "the packets found depend on how the bytes were chunked");
    }
});

/// Reads every packet; returns what was seen of each (or its error), for comparison.
fn read(chunks: &[&[u8]]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut reader = PacketReader::new();
    let mut psi = SectionAssembler::new();
    for chunk in chunks {
        reader.push(chunk, |packet| seen.push(look(packet, &mut psi)));
    }
    reader.finish(|packet| seen.push(look(packet, &mut psi)));
    seen
}

fn look(packet: Result<Packet<'_>, byoc_ts::TsError>, psi: &mut SectionAssembler) -> String {
    let packet = match packet {
        Ok(p) => p,
        Err(e) => return format!("error {e}"),
    };
    let _ = (packet.is_random_access(), packet.is_discontinuity());
    let payload = packet.payload.unwrap_or_default();
    if packet.payload_unit_start {
        if let Some(section) = byoc_ts::section_in_unit_start(payload) {
            table(section);
        }
        // Whatever follows the first bytes, read as descriptors and as a stream type's codec.
        let _ = Descriptors::new(payload).count();
        if let Some((&stream_type, descriptors)) = payload.split_first() {
            let _ = Codec::from_stream_type(stream_type, descriptors).name();
        }
        if let Ok(pes) = PesHeader::parse(payload) {
            let _ = (pes.pts.map(|t| t.as_duration()), pes.dts.map(|t| t.ticks()));
        }
    }
    psi.push(&packet, |section| {
        if let Ok(section) = section {
            table(section);
        }
    });
    format!("{packet:?}")
}

fn table(bytes: &[u8]) {
    for section in [Section::parse(bytes), Section::parse_unchecked(bytes)].into_iter().flatten() {
        if let Ok(pat) = Pat::parse(&section) {
            let _ = pat.programs.len();
        }
        if let Ok(pmt) = Pmt::parse(&section) {
            for es in &pmt.streams {
                let _ = (es.codec.name(), es.codec.kind(), es.pid.value(), &es.language);
            }
        }
    }
}
