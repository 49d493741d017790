//! Robustness: no input makes the transport stream code panic or loop, and the walkers
//! account for every byte.

use proptest::prelude::*;

use super::*;

/// A plausible packet: sync byte, any header bits, any payload.
fn packet_strategy() -> impl Strategy<Value = Vec<u8>> {
    (any::<[u8; 3]>(), proptest::collection::vec(any::<u8>(), 184)).prop_map(|(header, body)| {
        let mut p = vec![SYNC_BYTE];
        p.extend_from_slice(&header);
        p.extend_from_slice(&body);
        p
    })
}

/// Parses everything that can be parsed out of a packet, the way an analyser would.
fn parse_all(packet: &Packet<'_>, assembler: &mut SectionAssembler) {
    if let Some(payload) = packet.payload {
        let _ = PesHeader::parse(payload);
    }
    assembler.push(packet, |section| {
        if let Ok(bytes) = section
            && let Ok(section) = Section::parse(bytes)
        {
            let _ = Pat::parse(&section);
            let _ = Pmt::parse(&section);
        }
    });
}

proptest! {
    #[test]
    fn walker_consumes_arbitrary_bytes_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut walker = packets(&bytes);
        let mut last = 0;
        let mut assembler = SectionAssembler::new();
        while let Some(item) = walker.next() {
            prop_assert!(walker.position() > last, "the walker must always advance");
            last = walker.position();
            if let Ok(packet) = item {
                parse_all(&packet, &mut assembler);
            }
        }
        prop_assert_eq!(last, bytes.len());
    }

    #[test]
    fn valid_looking_packets_parse_and_chunking_does_not_change_them(
        packets_in in proptest::collection::vec(packet_strategy(), 1..12),
        chunk in 1usize..400,
    ) {
        let stream: Vec<u8> = packets_in.concat();
        let whole: Vec<_> = packets(&stream).map(|r| r.map(|p| p.pid)).collect();
        prop_assert_eq!(whole.len(), packets_in.len());

        let mut reader = PacketReader::new();
        let mut chunked = Vec::new();
        for part in stream.chunks(chunk) {
            reader.push(part, |r| chunked.push(r.map(|p| p.pid)));
        }
        reader.finish(|r| chunked.push(r.map(|p| p.pid)));
        prop_assert_eq!(chunked, whole);

        let mut raw = Vec::new();
        let mut reader = PacketReader::new();
        for part in stream.chunks(chunk) {
            reader.push_raw(part, |r| raw.extend_from_slice(r.unwrap_or(&[0; PACKET_SIZE])));
        }
        prop_assert_eq!(raw, stream);
    }

    #[test]
    fn parsers_accept_any_slice_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Packet::parse(&bytes);
        let _ = PesHeader::parse(&bytes);
        if let Ok(section) = Section::parse(&bytes) {
            let _ = Pat::parse(&section);
            let _ = Pmt::parse(&section);
        }
        let _ = Descriptors::new(&bytes).count();
        if let Some(section) = section_in_unit_start(&bytes) {
            let _ = Section::parse_unchecked(section);
        }
        let _ = Codec::from_stream_type(0x06, &bytes);
    }

    #[test]
    fn tables_with_a_valid_crc_but_random_body_do_not_panic(
        table_id in prop_oneof![Just(0u8), Just(2u8)],
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let len = body.len() + 5 + 4;
        let mut bytes = vec![table_id, 0xb0 | (len >> 8) as u8, len as u8, 0, 1, 0xc1, 0, 0];
        bytes.extend_from_slice(&body);
        let crc = crc32_mpeg2(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        let section = Section::parse(&bytes);
        prop_assert!(section.is_ok());
        if let Ok(section) = section {
            let _ = Pat::parse(&section);
            let _ = Pmt::parse(&section);
        }
    }
}

#[test]
fn every_adaptation_field_header_is_handled() {
    // Exhaustive over adaptation_field_control (2 values with a field), the length byte
    // and the flags byte.
    for control in [0x20u8, 0x30] {
        for len in 0..=255u8 {
            for flags in 0..=255u8 {
                let mut p = [0u8; PACKET_SIZE];
                p[..6].copy_from_slice(&[SYNC_BYTE, 0x41, 0x00, control, len, flags]);
                match Packet::parse(&p) {
                    Ok(packet) => {
                        assert!(usize::from(len) <= 183);
                        let payload = packet.payload.map_or(0, <[u8]>::len);
                        let expected = if control == 0x30 { 183 - usize::from(len) } else { 0 };
                        assert_eq!(payload, expected);
                    }
                    Err(e) => {
                        assert!(matches!(e, TsError::AdaptationFieldLength(_)), "len {len} flags {flags:#x}: {e}")
                    }
                }
            }
        }
    }
}

#[test]
fn reserved_adaptation_control_is_an_error() {
    let mut p = [0u8; PACKET_SIZE];
    p[0] = SYNC_BYTE;
    assert_eq!(Packet::parse(&p), Err(TsError::ReservedAdaptationControl));
}
