//! Link, IP and TCP header decoding of one packet: the first byte picks the link type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsinspect::net;

/// Link types the decoder handles, plus one it does not.
const LINKTYPES: [u32; 9] = [1, 113, 276, 101, 0, 12, 228, 229, 147];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    if let Ok(tp) = net::decode(lt, bytes) {
        // The payload is a view into the packet.
        assert!(tp.payload.len() <= bytes.len());
        let range = bytes.as_ptr_range();
        let p = tp.payload.as_ptr_range();
        assert!(tp.payload.is_empty() || (range.start <= p.start && p.end <= range.end));
    }
});
