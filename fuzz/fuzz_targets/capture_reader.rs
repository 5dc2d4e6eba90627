//! The capture reader on arbitrary bytes: pcap, pcapng and gzip framing, interface tables,
//! timestamps. Every packet it gives must lie within what it read.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use wsinspect::capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_reader(Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    let plain = !reader.gzipped();
    let mut last = 0u64;
    while let Ok(Some(pkt)) = reader.next_packet() {
        assert!(pkt.number > last);
        last = pkt.number;
        // A gzip stream may expand, so the data bound is only checked for plain input.
        if plain {
            assert!(pkt.data.len() <= data.len());
        }
    }
    let _ = (
        reader.truncated(),
        reader.bytes_consumed(),
        reader.link_types(),
    );
});
