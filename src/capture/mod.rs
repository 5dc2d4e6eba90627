//! Capture input: takes a pcap or pcapng file (or stdin, optionally gzip-compressed) and gives
//! raw link-layer packets with their timestamps, one at a time, in constant memory.

use std::io::Read;
use std::path::Path;

use crate::error::Error;
use crate::types::Ts;

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
        matches!(lt, NULL | ETHERNET | RAW_DLT | RAW_DLT_OPENBSD | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2)
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

/// Streams packets out of a capture file.
pub struct CaptureReader {
    _private: (),
}

impl CaptureReader {
    /// Opens a file; `-` means standard input. Gzip is detected by its magic bytes.
    ///
    /// Fails with [`Error::Open`] when the file cannot be opened, [`Error::NotACapture`] when the
    /// bytes are not pcap/pcapng, and [`Error::UnsupportedLinkType`] when the first interface's link
    /// type is not one [`linktype::is_supported`] accepts.
    pub fn open(path: &Path) -> Result<CaptureReader, Error> {
        let _ = path;
        unimplemented!()
    }

    /// Reads a capture from any byte source (gzip detected as for [`CaptureReader::open`]).
    pub fn from_reader(r: Box<dyn Read + Send>) -> Result<CaptureReader, Error> {
        let _ = r;
        unimplemented!()
    }

    /// The next packet, or `None` at the end of the capture. A capture cut short ends with `None`
    /// and [`CaptureReader::truncated`] set; packets on unsupported interfaces are skipped and
    /// counted in [`CaptureReader::skipped_packets`].
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Error> {
        unimplemented!()
    }

    /// pcap or pcapng.
    pub fn format(&self) -> Format {
        unimplemented!()
    }

    /// Whether the input was gzip-compressed.
    pub fn gzipped(&self) -> bool {
        unimplemented!()
    }

    /// Every distinct link type declared so far, in order of first appearance.
    pub fn link_types(&self) -> &[u32] {
        unimplemented!()
    }

    /// Whether the capture ended in the middle of a block or record.
    pub fn truncated(&self) -> bool {
        unimplemented!()
    }

    /// Bytes of capture consumed so far (of the decompressed stream when gzipped).
    pub fn bytes_consumed(&self) -> u64 {
        unimplemented!()
    }

    /// Packets skipped because their interface's link type is unsupported.
    pub fn skipped_packets(&self) -> u64 {
        unimplemented!()
    }
}
