//! Message assembly with permessage-deflate: frames described by the input (header bits, a
//! payload, loss) go through the assembler, so fragmentation, inflation with and without
//! context takeover, history loss, caps and UTF-8 checks all run. Half of the messages are
//! real DEFLATE of input bytes, so inflation goes deep rather than failing on the first byte.
#![no_main]

use flate2::{Compress, Compression, FlushCompress};
use libfuzzer_sys::fuzz_target;
use wsinspect::config::Limits;
use wsinspect::ws::frame::{FrameHeader, minimal_header_len};
use wsinspect::ws::message::{DeflateDir, MessageAssembler, MessageEvent, MessageStatus};

fn deflate(c: &mut Compress, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 64);
    let mut pos = 0;
    loop {
        out.reserve(256);
        let before = c.total_in();
        if c.compress_vec(&input[pos..], &mut out, FlushCompress::Sync)
            .is_err()
        {
            return out;
        }
        pos += (c.total_in() - before) as usize;
        if pos >= input.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut data)) = data.split_first() else {
        return;
    };
    let takeover = cfg & 1 == 0;
    let limits = Limits {
        max_message_bytes: if cfg & 2 == 0 {
            1 << 20
        } else {
            u64::from(cfg >> 2) * 8
        },
        ..Limits::default()
    };
    let max = limits.max_message_bytes;
    let deflate_dir = (cfg & 0x80 == 0).then_some(DeflateDir {
        context_takeover: takeover,
    });
    let mut asm = MessageAssembler::new(deflate_dir, &limits, usize::MAX);
    let mut comp = Compress::new(Compression::fast(), false);
    let mut check = |ev: MessageEvent<'_>| {
        if let MessageEvent::Message(m) = ev {
            assert!(m.data.len() as u64 <= max);
            if m.status == MessageStatus::Complete {
                assert_eq!(m.data.len() as u64, m.len);
            }
            if !matches!(m.status, MessageStatus::Complete | MessageStatus::Truncated) {
                assert!(m.data.is_empty());
            }
        }
    };
    // Record: b0 = FIN | RSV(3) | opcode(4); b1 = length; b2 = flags (bit0: compress the
    // payload for real, bit1: lose bytes, bit2: desync before, bit3: skip, bits 4-7: when
    // non-zero, the frame arrives in pieces of that many bytes); then the payload.
    while data.len() >= 3 {
        let (b0, len, fl) = (data[0], usize::from(data[1]), data[2]);
        let rest = &data[3..];
        let n = len.min(rest.len());
        let raw = &rest[..n];
        data = &rest[n..];
        if fl & 4 != 0 {
            asm.desync(&mut check);
        }
        let payload = if fl & 1 != 0 {
            if !takeover {
                comp.reset();
            }
            deflate(&mut comp, raw)
        } else {
            raw.to_vec()
        };
        let lost = u64::from(fl & 2 != 0) * 10;
        let skipped = u64::from(fl & 8 != 0) * 5;
        let plen = payload.len() as u64 + lost + skipped;
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            opcode: b0 & 0x0F,
            mask: None,
            payload_len: plen,
            header_len: minimal_header_len(plen, false),
        };
        let piece = usize::from(fl >> 4);
        if piece == 0 {
            asm.frame(&header, &payload, lost, skipped, &mut check);
        } else {
            asm.begin(&header);
            for p in payload.chunks(piece) {
                asm.data(p);
            }
            asm.end(&header, lost, skipped, &mut check);
        }
    }
});
