//! The frame decoder fed arbitrary bytes in arbitrary pieces, with gaps: payload accounting
//! must hold for every frame, whole or in pieces, and the buffer must stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsinspect::config::Limits;
use wsinspect::ws::decoder::{FrameDecoder, FrameEvent, SEARCH_MAX};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut data)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_frame_bytes: if cfg & 2 == 0 {
            1 << 20
        } else {
            u64::from(cfg)
        },
        ..Limits::default()
    };
    let mut dec = FrameDecoder::new(cfg & 1 == 0, &limits);
    if cfg & 4 != 0 {
        dec.start_mid_stream();
    }
    // Bytes given for the frame in pieces so far.
    let mut given: Option<u64> = None;
    let mut check = |ev: FrameEvent<'_>| match ev {
        FrameEvent::Frame {
            header,
            payload,
            lost,
            skipped,
        } => {
            assert!(given.is_none(), "a whole frame inside a frame in pieces");
            assert_eq!(payload.len() as u64 + lost + skipped, header.payload_len);
            assert!(payload.len() as u64 <= limits.max_frame_bytes);
        }
        FrameEvent::Begin { .. } => {
            assert!(given.replace(0).is_none(), "a frame begun inside another");
        }
        FrameEvent::Data { bytes } => {
            let g = given.as_mut().expect("data outside a frame");
            *g += bytes.len() as u64;
            assert!(*g <= limits.max_frame_bytes);
        }
        FrameEvent::End {
            header,
            lost,
            skipped,
        } => {
            let g = given.take().expect("end outside a frame");
            assert_eq!(g + lost + skipped, header.payload_len);
        }
        _ => {}
    };
    // Control byte: low 7 bits give the piece length; the top bit makes it a gap instead.
    while let Some((&ctl, rest)) = data.split_first() {
        let n = usize::from(ctl & 0x7F).min(rest.len());
        if ctl & 0x80 != 0 && n > 0 {
            dec.gap(n as u64 * 97, &mut check);
            data = rest;
        } else {
            dec.push(&rest[..n], &mut check);
            data = &rest[n..];
        }
        // Only a partial header and the search window are ever held, never payload.
        assert!(dec.buffered() <= SEARCH_MAX + 14);
    }
});
