//! Link and IP decode: takes one captured packet's bytes and its link type and gives the TCP
//! segment inside it (addresses, ports, sequence numbers, flags, TTL, payload), or why not.
//!
//! Slicing is lax: a packet cut by the snaplen still gives its TCP header and the payload bytes
//! that were captured, and [`TcpPacket::missing`] says how many the IP header announced beyond
//! those. Checksums are not verified (loopback and offloaded captures carry bogus ones).

use std::net::{IpAddr, SocketAddr};

use etherparse::err::Layer;
use etherparse::err::packet::SliceError;
use etherparse::{
    EtherType, IpNumber, LaxIpPayloadSlice, LaxIpSlice, LaxNetSlice, LaxSlicedPacket, LenSource,
    TcpSlice, TransportSlice,
};

mod link;

/// TCP flag bits as on the wire (byte 13 of the header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN bit.
    pub const FIN: u8 = 0x01;
    /// SYN bit.
    pub const SYN: u8 = 0x02;
    /// RST bit.
    pub const RST: u8 = 0x04;
    /// PSH bit.
    pub const PSH: u8 = 0x08;
    /// ACK bit.
    pub const ACK: u8 = 0x10;

    /// Whether FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// Whether SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// Whether RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// Whether ACK is set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment as found in one packet.
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<'a> {
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when the ACK flag is set).
    pub ack: u32,
    /// Flag bits.
    pub flags: TcpFlags,
    /// Advertised window (unscaled).
    pub window: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification field; `None` for IPv6.
    pub ip_id: Option<u16>,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces but the capture does not hold (snaplen cut).
    pub missing: u32,
}

/// Why a packet gave no TCP segment. Each is counted, none is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A link type the decoder does not know.
    UnsupportedLink(u32),
    /// Not IPv4/IPv6, or not TCP.
    NotTcp,
    /// A non-first IP fragment or a fragmented TCP segment (not reassembled).
    IpFragment,
    /// Headers cut short or inconsistent; the text says which.
    Malformed(&'static str),
}

/// Decodes one packet down to its TCP segment. Never panics on any input.
pub fn decode(linktype: u32, data: &[u8]) -> Result<TcpPacket<'_>, Skip> {
    if let Some(p) = link::network(linktype, data).and_then(|(et, net)| ip_tcp(et, net)) {
        return Ok(p);
    }
    let sliced = link::slice(linktype, data)?;
    tcp_of(&sliced)
}

/// The common case, TCP in IPv4 or IPv6 right after a link header [`link::network`] reads
/// (Ethernet with at most one VLAN tag, Linux cooked v1 and v2, raw IP), sliced layer by layer
/// by the same etherparse slicers `LaxSlicedPacket` uses, without building that whole value: it
/// is large and moved several times per packet, which cost 5% of the run on captures of small
/// messages. Anything else, or anything wrong, gives `None` and goes the general way, which
/// says why.
fn ip_tcp(ether_type: EtherType, data: &[u8]) -> Option<TcpPacket<'_>> {
    if ether_type != EtherType::IPV4 && ether_type != EtherType::IPV6 {
        return None;
    }
    let (ip, None) = LaxIpSlice::from_slice(data).ok()? else {
        return None;
    };
    let net = LaxNetSlice::from(ip);
    let (info, payload) = ip_info(&net).ok()?;
    if payload.fragmented || payload.ip_number != IpNumber::TCP {
        return None;
    }
    let tcp = TcpSlice::from_slice(payload.payload).ok()?;
    segment(&info, payload, &tcp).ok()
}

/// What the IP layer says about a packet, whichever version it is.
struct IpInfo {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ip_id: Option<u16>,
    /// Address of the IP header's first byte: where `announced_len` counts from.
    start: usize,
    /// Bytes from the start of the IP header to the end of its payload, as the header announces;
    /// `None` when the header gives no usable length (IPv4 TSO with total length 0, IPv6 jumbo).
    announced_len: Option<usize>,
}

fn tcp_of<'a>(p: &LaxSlicedPacket<'a>) -> Result<TcpPacket<'a>, Skip> {
    let Some(net) = &p.net else {
        return Err(match &p.stop_err {
            Some((err, layer)) => classify(err, *layer),
            None => Skip::NotTcp,
        });
    };
    let (ip, payload) = ip_info(net)?;
    if payload.fragmented {
        return Err(Skip::IpFragment);
    }
    let tcp = match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        Some(_) => return Err(Skip::NotTcp),
        None => {
            return Err(match &p.stop_err {
                Some((err, layer)) => classify(err, *layer),
                None if payload.ip_number == IpNumber::TCP => Skip::Malformed("TCP header missing"),
                None => Skip::NotTcp,
            });
        }
    };
    segment(&ip, payload, tcp)
}

/// The IP layer's facts and payload.
fn ip_info<'n, 'a>(net: &'n LaxNetSlice<'a>) -> Result<(IpInfo, &'n LaxIpPayloadSlice<'a>), Skip> {
    Ok(match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let hdr = h.slice();
            let total = usize::from(h.total_len());
            // Zero is what TSO-offloaded packets carry before the NIC fills it in; trust the
            // capture then, as Wireshark does. Anything else below the header size is a lie.
            if total != 0 && total < hdr.len() {
                return Err(Skip::Malformed("IPv4 total length shorter than its header"));
            }
            let info = IpInfo {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                ttl: h.ttl(),
                ip_id: Some(h.identification()),
                start: hdr.as_ptr() as usize,
                announced_len: (total != 0).then_some(total),
            };
            (info, v4.payload())
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let pl = usize::from(h.payload_length());
            let info = IpInfo {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                ttl: h.hop_limit(),
                ip_id: None,
                start: h.slice().as_ptr() as usize,
                announced_len: (pl != 0).then_some(pl + h.slice().len()),
            };
            (info, v6.payload())
        }
        LaxNetSlice::Arp(_) => return Err(Skip::NotTcp),
    })
}

/// The segment from its IP facts, the IP payload and the TCP slice within it.
fn segment<'a>(
    ip: &IpInfo,
    payload: &LaxIpPayloadSlice<'a>,
    tcp: &TcpSlice<'a>,
) -> Result<TcpPacket<'a>, Skip> {
    let body = tcp.payload();
    let missing = if payload.incomplete {
        // Offsets rather than lengths so that IPv4 options, AH and IPv6 extension headers are
        // all accounted for without walking them again.
        let body_start = (body.as_ptr() as usize).saturating_sub(ip.start);
        let announced = ip.announced_len.unwrap_or(0);
        if announced != 0 && body_start > announced {
            return Err(Skip::Malformed("TCP header extends beyond the IP length"));
        }
        let have = body_start + body.len();
        u32::try_from(announced.saturating_sub(have)).unwrap_or(u32::MAX)
    } else {
        0
    };
    let hdr = tcp.header_slice();
    Ok(TcpPacket {
        src: SocketAddr::new(ip.src, tcp.source_port()),
        dst: SocketAddr::new(ip.dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(hdr.get(13).copied().unwrap_or(0)),
        window: tcp.window_size(),
        ttl: ip.ttl,
        ip_id: ip.ip_id,
        payload: body,
        missing,
    })
}

/// Turns etherparse's reason for stopping into a skip: trouble in the layers that lead to TCP is
/// malformation, anything else (UDP, ICMP, ARP, MACsec) is simply not TCP.
fn classify(err: &SliceError, layer: Layer) -> Skip {
    let cut = match err {
        SliceError::Len(l) => Some(l.len_source == LenSource::Slice),
        _ => None,
    };
    let what = match (layer, cut) {
        (Layer::VlanHeader, _) => "VLAN tag cut short",
        (Layer::IpHeader, Some(_)) => "IP header cut short",
        (Layer::Ipv4Header | Layer::Ipv4Packet, Some(_)) => "IPv4 header cut short",
        (Layer::IpHeader | Layer::Ipv4Header | Layer::Ipv4Packet, None) => "bad IP header",
        (Layer::Ipv6Header | Layer::Ipv6Packet, _) => "IPv6 header cut short",
        (Layer::IpAuthHeader, Some(true)) => "IP authentication header cut short",
        (Layer::IpAuthHeader, _) => "bad IP authentication header",
        (
            Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader,
            Some(true),
        ) => "IPv6 extension header cut short",
        (
            Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader,
            _,
        ) => "bad IPv6 extension header",
        (Layer::TcpHeader, Some(true)) => "TCP header cut short",
        (Layer::TcpHeader, Some(false)) => "TCP header extends beyond the IP length",
        (Layer::TcpHeader, None) => "TCP data offset below 5",
        _ => return Skip::NotTcp,
    };
    Skip::Malformed(what)
}

#[cfg(test)]
mod tests;
