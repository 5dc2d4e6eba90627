//! Capture input: takes a pcap or pcapng file (or stdin, optionally gzip-compressed) and gives
//! raw link-layer packets with their timestamps, one at a time, in constant memory.

//!
//! The file is streamed through pcap-parser's circular buffer (a few MiB, grown only for a
//! larger block), so memory does not depend on the capture's size. A capture cut short, or
//! followed by garbage, ends early with [`CaptureReader::truncated`] set rather than failing.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use pcap_parser::pcapng::SecretsType;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, PcapBlockOwned, PcapError};

use crate::error::Error;
use crate::types::Ts;

#[cfg(feature = "live")]
pub mod live;
mod source;

/// Link-layer header types this reader passes on (numbers as in the tcpdump.org registry).
pub mod linktype {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II, possibly with 802.1Q / QinQ tags.
    pub const ETHERNET: u32 = 1;
    /// Raw IP as written by libpcap on most systems (DLT_RAW).
    pub const RAW_DLT: u32 = 12;
    /// Raw IP as written by libpcap on OpenBSD.
    pub const RAW_DLT_OPENBSD: u32 = 14;
    /// Raw IPv4 or IPv6 (LINKTYPE_RAW).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (`tcpdump -i any` with libpcap 1.10 and later).
    pub const LINUX_SLL2: u32 = 276;

    /// Whether the link/IP decoder understands this link type.
    pub fn is_supported(lt: u32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_DLT
                | RAW_DLT_OPENBSD
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format (either byte order, µs or ns).
    Pcap,
    /// pcapng.
    PcapNg,
}

impl Format {
    /// `pcap` or `pcapng`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }
}

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// 1-based packet number in the file, as Wireshark counts.
    pub number: u64,
    /// When it was captured.
    pub ts: Ts,
    /// Link type of the interface it was captured on.
    pub linktype: u32,
    /// The captured bytes (`caplen` of them).
    pub data: &'a [u8],
    /// The packet's length on the wire; larger than `data.len()` when snaplen cut it.
    pub origlen: u32,
}

/// TLS key log bytes kept from Decryption Secrets Blocks; a capture carrying more is not a
/// capture of a few sessions but an attempt to exhaust memory.
const MAX_SECRETS: usize = 16 << 20;

/// Largest block or record the reader grows its buffer for. libpcap never writes packets larger
/// than 256 KiB; pcapng blocks with big options stay far below this too.
const MAX_BLOCK: u64 = 64 << 20;

/// Streams packets out of a capture file.
pub struct CaptureReader {
    rdr: Box<dyn PcapReaderIterator + Send>,
    st: State,
    format: Format,
    gzipped: bool,
    shared: Arc<source::Shared>,
    /// Bytes of the last returned packet, consumed on the next call (the packet borrows them).
    pending: usize,
    capacity: usize,
}

/// How one interface's raw timestamps become nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units of 10^-n s with n ≤ 9: multiply.
    Mul(u64),
    /// Units finer than a nanosecond (10^-n s, n > 9): divide.
    Div(u128),
    /// Units of 2^-n s.
    Pow2(u32),
}

impl TsScale {
    /// From a pcapng `if_tsresol` byte: the top bit picks base 2, the rest is the exponent.
    fn from_tsresol(r: u8) -> TsScale {
        let exp = u32::from(r & 0x7f);
        if r & 0x80 != 0 {
            return TsScale::Pow2(exp);
        }
        if exp <= 9 {
            TsScale::Mul(10u64.pow(9 - exp))
        } else {
            // Beyond 10^38 nothing but zero is representable anyway.
            TsScale::Div(10u128.checked_pow(exp - 9).unwrap_or(u128::MAX))
        }
    }

    fn to_ns(self, units: u64) -> i128 {
        let ns: u128 = match self {
            TsScale::Mul(m) => u128::from(units) * u128::from(m),
            TsScale::Div(d) => u128::from(units) / d,
            TsScale::Pow2(p) => match p {
                // units * 1e9 stays below 2^94, so the shift is exact up to rounding down.
                0..=127 => (u128::from(units) * 1_000_000_000) >> p,
                _ => 0,
            },
        };
        i128::try_from(ns).unwrap_or(i128::MAX)
    }
}

#[derive(Clone, Copy, Debug)]
struct Iface {
    linktype: u32,
    supported: bool,
    scale: TsScale,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

/// Where a packet returned by the reader sits, while the block that described it is gone.
#[derive(Clone, Copy, Debug)]
struct PktMeta {
    number: u64,
    ts: Ts,
    linktype: u32,
    origlen: u32,
    /// Offset of the packet bytes in the parser's buffer data.
    start: usize,
    len: usize,
}

/// What the reader does after a block.
enum Step {
    Packet(PktMeta),
    Other,
}

/// The parser's verdict with the borrow on its buffer dropped.
enum NextErr {
    Eof,
    Truncated,
    Incomplete,
    TooSmall,
    Read,
}

/// Per-file decoding state, kept apart from the parser so both can be borrowed at once.
#[derive(Default)]
struct State {
    /// Interfaces of the current pcapng section (a pcap file has exactly one).
    ifaces: Vec<Iface>,
    link_types: Vec<u32>,
    number: u64,
    skipped: u64,
    truncated: bool,
    done: bool,
    last_ts: Ts,
    /// pcap record header size: 16, or 24 in the modified format.
    record_header: usize,
    /// Byte order of the pcap file or the current pcapng section.
    big_endian: bool,
    /// TLS key log text from Decryption Secrets Blocks, not yet handed out.
    secrets: Vec<u8>,
}

impl State {
    fn add_iface(&mut self, linktype: u32, scale: TsScale, offset_secs: i64) {
        if !self.link_types.contains(&linktype) {
            self.link_types.push(linktype);
        }
        self.ifaces.push(Iface {
            linktype,
            supported: linktype::is_supported(linktype),
            scale,
            offset_ns: i128::from(offset_secs) * 1_000_000_000,
        });
    }

    /// Counts a packet, and gives its interface when it is one to return.
    fn packet_iface(&mut self, if_id: usize) -> Option<Iface> {
        self.number += 1;
        match self.ifaces.get(if_id) {
            Some(i) if i.supported => Some(*i),
            _ => {
                self.skipped += 1;
                None
            }
        }
    }

    /// `base` is the address of the parser's buffer data when the block was parsed.
    fn on_block(&mut self, block: &PcapBlockOwned<'_>, base: usize) -> Step {
        let start = |data: &[u8]| (data.as_ptr() as usize).wrapping_sub(base);
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                let scale = if h.is_nanosecond_precision() {
                    TsScale::Mul(1)
                } else {
                    TsScale::Mul(1_000)
                };
                // The upper bits of the pcap link type field carry FCS information.
                self.add_iface((h.network.0 as u32) & 0x03ff_ffff, scale, 0);
                self.record_header = if h.is_modified_format() { 24 } else { 16 };
                self.big_endian = h.is_bigendian();
                Step::Other
            }
            PcapBlockOwned::Legacy(b) => {
                let Some(iface) = self.packet_iface(0) else {
                    return Step::Other;
                };
                let frac = iface.scale.to_ns(u64::from(b.ts_usec));
                let ns = i128::from(b.ts_sec) * 1_000_000_000 + frac;
                self.packet(iface, ns, b.origlen, start(b.data), b.data.len())
            }
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                // Interface ids restart in every section.
                self.ifaces.clear();
                self.big_endian = shb.big_endian();
                Step::Other
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                // pcap-parser reads if_tsoffset as little-endian whatever the section's order.
                let offset = if self.big_endian {
                    idb.if_tsoffset.swap_bytes()
                } else {
                    idb.if_tsoffset
                };
                self.add_iface(
                    idb.linktype.0 as u32,
                    TsScale::from_tsresol(idb.if_tsresol),
                    offset,
                );
                Step::Other
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let if_id = usize::try_from(epb.if_id).unwrap_or(usize::MAX);
                let Some(iface) = self.packet_iface(if_id) else {
                    return Step::Other;
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ns = iface.scale.to_ns(units) + iface.offset_ns;
                let caplen = usize::try_from(epb.caplen).unwrap_or(usize::MAX);
                let data = epb.data.get(..caplen).unwrap_or(epb.data);
                self.packet(iface, ns, epb.origlen, start(data), data.len())
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let Some(iface) = self.packet_iface(0) else {
                    return Step::Other;
                };
                let origlen = usize::try_from(spb.origlen).unwrap_or(usize::MAX);
                let data = spb.data.get(..origlen).unwrap_or(spb.data);
                // An SPB has no timestamp; repeating the previous one keeps time monotonic for
                // the stages that age flows by capture time.
                let ns = i128::from(self.last_ts.0);
                self.packet(iface, ns, spb.origlen, start(data), data.len())
            }
            PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                if dsb.secrets_type == SecretsType::TlsKeyLog
                    && self.secrets.len() + dsb.data.len() < MAX_SECRETS
                {
                    self.secrets.extend_from_slice(dsb.data);
                    self.secrets.push(b'\n');
                }
                Step::Other
            }
            PcapBlockOwned::NG(_) => Step::Other,
        }
    }

    fn packet(&mut self, iface: Iface, ns: i128, origlen: u32, start: usize, len: usize) -> Step {
        let ts = Ts(i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX }));
        self.last_ts = ts;
        // Downstream computes missing bytes as origlen - caplen: never let that go negative.
        let origlen = origlen.max(u32::try_from(len).unwrap_or(u32::MAX));
        Step::Packet(PktMeta {
            number: self.number,
            ts,
            linktype: iface.linktype,
            origlen,
            start,
            len,
        })
    }
}

impl CaptureReader {
    /// Opens a file; `-` means standard input. Gzip is detected by its magic bytes.
    ///
    /// Fails with [`Error::Open`] when the file cannot be opened, [`Error::NotACapture`] when the
    /// bytes are not pcap/pcapng, and [`Error::UnsupportedLinkType`] when the first interface's link
    /// type is not one [`linktype::is_supported`] accepts.
    pub fn open(path: &Path) -> Result<CaptureReader, Error> {
        CaptureReader::open_with(path, true)
    }

    /// [`CaptureReader::open`], saying whether a gzipped capture is decompressed on a thread of
    /// its own, ahead of the reader: a third of the work on such a capture, worth moving off the
    /// reading thread when a core is free for it, and a cost in switches when none is.
    pub fn open_with(path: &Path, gzip_thread: bool) -> Result<CaptureReader, Error> {
        if path.as_os_str() == "-" {
            return CaptureReader::from_reader_with(Box::new(std::io::stdin()), gzip_thread);
        }
        let file = std::fs::File::open(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureReader::from_reader_with(Box::new(file), gzip_thread)
    }

    /// Reads a capture from any byte source (gzip detected as for [`CaptureReader::open`]).
    pub fn from_reader(r: Box<dyn Read + Send>) -> Result<CaptureReader, Error> {
        CaptureReader::from_reader_with(r, true)
    }

    /// [`CaptureReader::from_reader`] with the choice of [`CaptureReader::open_with`].
    pub fn from_reader_with(
        r: Box<dyn Read + Send>,
        gzip_thread: bool,
    ) -> Result<CaptureReader, Error> {
        let opened = source::open_stream(r, gzip_thread)?;
        let mut reader = CaptureReader {
            rdr: opened.reader,
            st: State::default(),
            format: opened.format,
            gzipped: opened.gzipped,
            shared: opened.shared,
            pending: 0,
            capacity: source::INITIAL_BUFFER,
        };
        // Read up to the first interface so that an unusable capture fails here, not later.
        reader.advance(true)?;
        if let Some(first) = reader.st.ifaces.first()
            && !first.supported
        {
            return Err(Error::UnsupportedLinkType(first.linktype));
        }
        Ok(reader)
    }

    /// The next packet, or `None` at the end of the capture. A capture cut short ends with `None`
    /// and [`CaptureReader::truncated`] set; packets on unsupported interfaces are skipped and
    /// counted in [`CaptureReader::skipped_packets`].
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Error> {
        let mut ignored = Vec::new();
        self.next_packet_and_secrets(&mut ignored)
    }

    /// [`CaptureReader::next_packet`], also appending to `secrets` the TLS key log text of any
    /// Decryption Secrets Block read on the way (they precede the packets they decrypt).
    pub fn next_packet_and_secrets(
        &mut self,
        secrets: &mut Vec<u8>,
    ) -> Result<Option<Packet<'_>>, Error> {
        if self.pending != 0 {
            // Not `consume`: it moves the unread half of the buffer to its front whenever half
            // is read, which copied every byte of the capture once more. The refill moves only
            // the partial block left at the end.
            self.rdr.consume_noshift(self.pending);
            self.pending = 0;
        }
        let next = self.advance(false);
        secrets.append(&mut self.st.secrets);
        let Some(m) = next? else {
            return Ok(None);
        };
        let data = self
            .rdr
            .data()
            .get(m.start..m.start.saturating_add(m.len))
            .unwrap_or(&[]);
        Ok(Some(Packet {
            number: m.number,
            ts: m.ts,
            linktype: m.linktype,
            data,
            origlen: m.origlen,
        }))
    }

    /// Drives the parser to the next packet to return (leaving its bytes unconsumed), or, with
    /// `until_iface`, only until an interface is known.
    fn advance(&mut self, until_iface: bool) -> Result<Option<PktMeta>, Error> {
        loop {
            if self.st.done || (until_iface && !self.st.ifaces.is_empty()) {
                return Ok(None);
            }
            let base = self.rdr.data().as_ptr() as usize;
            let step = match self.rdr.next() {
                Ok((off, block)) => Ok((off, self.st.on_block(&block, base))),
                Err(e) => Err(match e {
                    PcapError::Eof => NextErr::Eof,
                    PcapError::Incomplete(_) => NextErr::Incomplete,
                    PcapError::BufferTooSmall => NextErr::TooSmall,
                    PcapError::ReadError => NextErr::Read,
                    // UnexpectedEof is a cut in the middle of a block; a parse error after a
                    // valid start is garbage or corruption: stop with what was read.
                    _ => NextErr::Truncated,
                }),
            };
            match step {
                // A zero-length step would never advance; only corrupt input could cause it.
                Ok((0, _)) => self.finish(true),
                Ok((off, Step::Packet(m))) => {
                    self.pending = off;
                    return Ok(Some(m));
                }
                Ok((off, Step::Other)) => self.rdr.consume_noshift(off),
                Err(NextErr::Eof) => self.finish(false),
                Err(NextErr::Truncated) => self.finish(true),
                Err(NextErr::Incomplete) if self.head_block_is_whole() => {
                    // The parser wants more than the block's own length: its insides lie (say,
                    // a caplen beyond the block). Reading on would only fill the buffer.
                    self.finish(true)
                }
                Err(NextErr::Incomplete) => self.refill()?,
                Err(NextErr::TooSmall) => self.grow()?,
                Err(NextErr::Read) => return Err(self.shared.take_io_error()),
            }
        }
    }

    fn finish(&mut self, truncated: bool) {
        self.st.done = true;
        self.st.truncated |= truncated || self.shared.corrupt();
    }

    fn refill(&mut self) -> Result<(), Error> {
        let before = self.rdr.data().len();
        if self.rdr.refill().is_err() {
            return Err(self.shared.take_io_error());
        }
        // A refill into a full buffer reads nothing without reaching the end: the block does not
        // fit (the parser could not say how much it needs), so grow instead of spinning.
        if self.rdr.data().len() == before && !self.rdr.reader_exhausted() {
            self.grow()?;
        }
        Ok(())
    }

    /// Makes room for a block larger than the buffer, or decides it is not a real block.
    fn grow(&mut self) -> Result<(), Error> {
        let declared = self.declared_block_len();
        let want = declared.unwrap_or(self.capacity as u64 * 2);
        if want > MAX_BLOCK {
            if self.is_known_block() {
                return Err(Error::BlockTooLarge(
                    usize::try_from(want).unwrap_or(usize::MAX),
                ));
            }
            // A pcap record or unknown pcapng block that long is garbage, not data.
            self.finish(true);
            return Ok(());
        }
        let want = usize::try_from(want).unwrap_or(usize::MAX);
        let new_cap = (self.capacity.saturating_mul(2)).max(want.saturating_add(4096));
        if new_cap > MAX_BLOCK as usize * 2 || !self.rdr.grow(new_cap) {
            return Err(Error::BlockTooLarge(want));
        }
        self.capacity = new_cap;
        Ok(())
    }

    /// Length of the block or record at the head of the buffer, from its header.
    fn declared_block_len(&self) -> Option<u64> {
        let d = self.rdr.data();
        let u32_at = |at: usize, be: bool| -> Option<u32> {
            let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
            Some(if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        match self.format {
            Format::Pcap => {
                let caplen = u32_at(8, self.st.big_endian)?;
                Some(u64::from(caplen) + self.st.record_header as u64)
            }
            Format::PcapNg => {
                let mut be = self.st.big_endian;
                if u32_at(0, false)? == SHB_TYPE {
                    // A new section may switch byte order: its byte-order magic says which.
                    be = u32_at(8, false)? != BYTE_ORDER_MAGIC;
                }
                u32_at(4, be).map(u64::from)
            }
        }
    }

    /// Whether the buffer already holds all the bytes the head block's header announces.
    fn head_block_is_whole(&self) -> bool {
        self.declared_block_len()
            .is_some_and(|n| n >= 12 && self.rdr.data().len() as u64 >= n)
    }

    /// Whether the head of the buffer is a pcapng block type that real writers produce.
    fn is_known_block(&self) -> bool {
        if self.format == Format::Pcap {
            return false;
        }
        let d = self.rdr.data();
        let Some(&b) = d.get(..4).and_then(|s| <&[u8; 4]>::try_from(s).ok()) else {
            return false;
        };
        let t = if self.st.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        matches!(t, SHB_TYPE | 1..=10 | 0x0000_0bad | 0x4000_0bad)
    }

    /// pcap or pcapng.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the input was gzip-compressed.
    pub fn gzipped(&self) -> bool {
        self.gzipped
    }

    /// Every distinct link type declared so far, in order of first appearance.
    pub fn link_types(&self) -> &[u32] {
        &self.st.link_types
    }

    /// Whether the capture ended in the middle of a block or record.
    pub fn truncated(&self) -> bool {
        self.st.truncated
    }

    /// Bytes of capture consumed so far (of the decompressed stream when gzipped).
    pub fn bytes_consumed(&self) -> u64 {
        (self.rdr.consumed() as u64).saturating_add(self.pending as u64)
    }

    /// Packets skipped because their interface's link type is unsupported.
    pub fn skipped_packets(&self) -> u64 {
        self.st.skipped
    }
}

/// pcapng Section Header Block type (a palindrome, so the same in both byte orders).
const SHB_TYPE: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic as read in the section's own byte order.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

#[cfg(test)]
mod tests;
