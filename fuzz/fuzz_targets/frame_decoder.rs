//! The frame decoder fed arbitrary bytes in arbitrary pieces, with gaps: payload accounting
//! must hold for every frame and the buffer must stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsinspect::config::Limits;
use wsinspect::ws::decoder::{FrameDecoder, FrameEvent};

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
    let mut check = |ev: FrameEvent<'_>| {
        if let FrameEvent::Frame {
            header,
            payload,
            lost,
            skipped,
        } = ev
        {
            assert_eq!(payload.len() as u64 + lost + skipped, header.payload_len);
            assert!(payload.len() as u64 <= limits.max_frame_bytes);
        }
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
        assert!(dec.buffered() <= (1 << 20) + 64 * 1024);
    }
});
